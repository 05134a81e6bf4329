"""SDTM findings: reported vs standard values, collected precision, last observation before exposure, --DY, EPOCH."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapter.export.sdtm.build import build_sdtm
from adapter.export.sdtm.check import check
from adapter.export.sdtm.findings import at_precision
from adapter.fhir.constants import REPORTED_PRECISION_EXTENSION, REPORTED_VALUE_EXTENSION
from tests.unit.export.trial import NCT, resources, write_folder


def _with_extra(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    items = resources(1)
    observations = [r for r in items if r["resourceType"] == "Observation"]
    template = next(r for r in observations if r["code"]["coding"][0]["code"] == "26881-3")
    return [*items, *({**template, **change} for change in extra)]


def test_orres_is_the_reported_value_and_stresn_the_standard_one(tmp_path: Path) -> None:
    reported = {"url": REPORTED_VALUE_EXTENSION, "valueQuantity": {"value": 1.9, "unit": "mg/dL", "code": "mg/dL"}}
    crp = {"id": "crp", "code": {"coding": [{"system": "http://loinc.org", "code": "1988-5"}]},
           "effectiveDateTime": "2020-06-12T10:00:00+07:00", "extension": [reported],
           "valueQuantity": {"value": 19, "unit": "mg/L", "system": "http://unitsofmeasure.org", "code": "mg/L"}}
    result = build_sdtm(write_folder(tmp_path / "in", _with_extra(crp)))
    row = next(r for r in result.datasets["LB"].rows if r["LBTESTCD"] == "CRP")
    assert (row["LBORRES"], row["LBORRESU"]) == ("1.9", "mg/dL")
    assert (row["LBSTRESC"], row["LBSTRESN"], row["LBSTRESU"]) == ("19", 19.0, "mg/L")
    assert (row["LBCAT"], row["LBSPEC"]) == ("CHEMISTRY", "SERUM OR PLASMA")
    assert (row["LBDY"], row["EPOCH"]) == (2.0, "TREATMENT")


def test_dtc_keeps_the_collected_precision() -> None:
    element = {"extension": [{"url": REPORTED_PRECISION_EXTENSION, "valueCode": "day"}]}
    assert at_precision("2020-06-12T00:00:00+07:00", element) == "2020-06-12"
    assert at_precision("2020-06-12T10:00:00+07:00", None) == "2020-06-12T10:00:00+07:00"
    minute = {"extension": [{"url": REPORTED_PRECISION_EXTENSION, "valueCode": "minute"}]}
    assert at_precision("2020-06-12T10:05:00+07:00", minute) == "2020-06-12T10:05+07:00", "the offset stays"
    assert at_precision("2020-06-12T10:05:00Z", minute) == "2020-06-12T10:05Z"


def test_last_observation_before_exposure_is_flagged_once_per_test(tmp_path: Path) -> None:
    before = [{"id": f"pre-{n}", "effectiveDateTime": f"2020-06-{n:02d}T08:00:00+07:00",
               "extension": [], "valueQuantity": {"value": n, "unit": "pg/mL", "code": "pg/mL"}} for n in (8, 10)]
    result = build_sdtm(write_folder(tmp_path / "in", _with_extra(*before)))
    assert check(result.datasets) == []
    flagged = [(r["LBDTC"], r["LBDY"]) for r in result.datasets["LB"].rows if r["LBLOBXFL"] == "Y"]
    assert flagged == [("2020-06-11T08:30:00+07:00", 1.0)], "the pre-dose sample of day 1 (first dose 09:00)"
    epochs = {r["LBDTC"]: r["EPOCH"] for r in result.datasets["LB"].rows}
    assert (epochs["2020-06-08T08:00:00+07:00"], epochs["2020-06-11T08:30:00+07:00"]) == ("SCREENING", "SCREENING")
    assert epochs["2020-06-17T08:30:00+07:00"] == "TREATMENT"
    assert {r["USUBJID"] for r in result.datasets["LB"].rows} == {f"{NCT}-01-001"}
