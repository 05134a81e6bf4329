"""SDTM trial design: TS from the study record with CDISC CT codes, TA/TE arms and elements, TV visits, TI criteria."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.export.sdtm.build import build_sdtm
from adapter.export.sdtm.design import element_code, investigational
from adapter.export.sdtm.model import SdtmResult, Study, planned_study_day
from adapter.export.sdtm.terms import load_ct
from tests.unit.export.trial import NCT, resources, write_folder


@pytest.fixture()
def built(tmp_path: Path) -> SdtmResult:
    return build_sdtm(write_folder(tmp_path / "in"))


def _ts(result: SdtmResult) -> dict[str, list[tuple[object, ...]]]:
    found: dict[str, list[tuple[object, ...]]] = {}
    for row in result.datasets["TS"].rows:
        found.setdefault(str(row["TSPARMCD"]), []).append((row["TSVAL"], row["TSVALCD"], row["TSSEQ"]))
    return found


def test_ts_takes_the_record_and_codes_coded_parameters_from_cdisc_ct(built: SdtmResult) -> None:
    ts = _ts(built)
    assert ts["TITLE"] == [("A small trial", "", 1.0)]
    assert ts["REGID"] == [(NCT, NCT, 1.0)]
    assert ts["TPHASE"] == [("PHASE II TRIAL", "C15601", 1.0)]
    assert ts["TBLIND"] == [("DOUBLE BLIND", "C15228", 1.0)]
    assert ts["SPONSOR"][0][0] == "Sponsor One"
    assert (ts["PLANSUB"][0][0], ts["ACTSUB"][0][0], ts["NARMS"][0][0]) == ("40", "3", "2")
    assert ts["TRT"] == [("Secretome-MSCs", "", 1.0)], "standard care is in every arm, so not study treatment"
    assert ts["FCNTRY"][0][0] == "IDN"
    assert ts["SDTIGVER"][0][0] == "3.4"
    assert all(row["TSPARM"] for row in built.datasets["TS"].rows)
    versions = {row["TSVCDREF"]: row["TSVCDVER"] for row in built.datasets["TS"].rows}
    assert versions["CDISC CT"] == load_ct().version == "2025-03-28", "CDISC CT values name their release"
    assert versions["ISO 3166-1 alpha-3"] == ""


def test_ta_te_have_screening_then_one_treatment_element_per_arm(built: SdtmResult) -> None:
    ta = [(r["ARMCD"], r["TAETORD"], r["ETCD"], r["EPOCH"]) for r in built.datasets["TA"].rows]
    assert ta == [("CONTROL", 1.0, "SCRN", "SCREENING"), ("CONTROL", 2.0, "CONTROL", "TREATMENT"),
                  ("SECRETOMEMSCS", 1.0, "SCRN", "SCREENING"), ("SECRETOMEMSCS", 2.0, "SECRETOM", "TREATMENT")]
    assert {r["ETCD"] for r in built.datasets["TE"].rows} == {"SCRN", "CONTROL", "SECRETOM"}
    assert all(r["TESTRL"] for r in built.datasets["TE"].rows)


def test_tv_lists_the_visits_of_the_data_in_planned_day_order(built: SdtmResult) -> None:
    tv = [(r["VISITNUM"], r["VISIT"], r["VISITDY"]) for r in built.datasets["TV"].rows]
    assert tv == [(1.0, "Day 1", 1.0), (7.0, "Day 7", 7.0)]


def test_ti_parses_the_eligibility_criteria(built: SdtmResult) -> None:
    ti = [(r["IETESTCD"], r["IECAT"], r["IETEST"]) for r in built.datasets["TI"].rows]
    assert ti == [("EXCL01", "EXCLUSION", "Pregnancy"), ("INCL01", "INCLUSION", "Adults aged 18 or more"),
                  ("INCL02", "INCLUSION", "Severe COVID-19")]


def test_a_record_without_criteria_gives_an_empty_ti(tmp_path: Path) -> None:
    items = [r for r in resources(1) if r["resourceType"] != "Group"]
    result = build_sdtm(write_folder(tmp_path / "in", items))
    assert result.datasets["TI"].rows == []
    assert "PLANSUB" not in _ts(result)


def test_sdtm_has_no_day_zero() -> None:
    assert [planned_study_day(d) for d in (0.0, -3.0, 1.0, 28.0, None)] == [-1.0, -4.0, 1.0, 28.0, None]


def test_element_codes_are_short_and_unique() -> None:
    taken = {"SCRN"}
    codes = [element_code(c, taken) for c in ("SECRETOMEMSCSHIGH", "SECRETOMEMSCSLOW", "")]
    assert codes == ["SECRETOM", "SECRETO2", "TRT"]


def test_a_single_arm_study_treats_with_all_its_interventions() -> None:
    arm = {"name": "A", "extension": [{"url": "https://trialfhir.dev/fhir/StructureDefinition/arm-intervention",
                                       "valueCodeableConcept": {"text": "Drug: X"}}]}
    assert investigational(Study({"arm": [arm]}, NCT, {"A": "A"})) == ["X"]
