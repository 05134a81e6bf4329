"""Round trip: the seed trial's LB/VS results equal measurements.csv as the sites wrote them (value, unit, time)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from adapter.export.sdtm.terms import load_terms
from adapter.sources.package import read_measurements, read_subjects
from adapter.sources.package_descriptor import load_package
from tests.unit.export.conftest import SEED

NCT = "NCT04753476"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_lb_and_vs_hold_every_accepted_measurement_as_collected(seed_sdtm: Path) -> None:
    terms = load_terms()
    found = {}
    for domain in ("LB", "VS"):
        for row in _rows(seed_sdtm / f"{domain.lower()}.csv"):
            found[(row["USUBJID"], row[f"{domain}TESTCD"], row["VISITNUM"])] = (domain, row)
    package = load_package(SEED)
    index: dict[str, str] = {}
    for _ in read_subjects(package, index):
        pass
    source = _rows(SEED / "measurements.csv")
    compared, mismatched = 0, []
    for item in read_measurements(package, index):
        if not isinstance(item, tuple):
            continue  # rejected rows never reach the server, so not SDTM either (counted in the map report)
        line, measurement = item
        test = next((terms.tests[c.code] for c in measurement.codes if c.code in terms.tests), None)
        if test is None or test.domain not in ("LB", "VS"):
            continue
        usubjid = f"{NCT}-{measurement.site_id}-{measurement.subject_id}"
        domain, row = found.pop((usubjid, test.testcd, str(measurement.visit.day)))
        wrote = source[line - 2]
        if row[f"{domain}ORRES"] != wrote["value"]:
            mismatched.append((line, "value", wrote["value"], row[f"{domain}ORRES"]))
        ucum = measurement.reported.ucum if measurement.reported else measurement.unit
        if row[f"{domain}ORRESU"] != terms.unit(ucum, test):
            mismatched.append((line, "unit", wrote["unit"], row[f"{domain}ORRESU"]))
        # The time as the site wrote it (its own separators), now ISO 8601 with the site's offset.
        if re.findall(r"\d+", wrote["collected_at"])[:5] != re.findall(r"\d+", row[f"{domain}DTC"])[:5]:
            mismatched.append((line, "time", wrote["collected_at"], row[f"{domain}DTC"]))
        compared += 1
    assert mismatched[:10] == []
    assert compared > 3000
    assert found == {}, "no LB/VS record without a source row"


def test_every_seed_observation_reaches_a_dataset(seed_folder: Path, seed_sdtm: Path) -> None:
    observations = len((seed_folder / "Observation.ndjson").read_text(encoding="utf-8").splitlines())
    findings = sum(len(_rows(seed_sdtm / f"{name}.csv")) for name in ("lb", "vs", "rs", "mb", "re", "pr"))
    assert findings == observations
    metadata = json.loads((seed_sdtm / "metadata.json").read_text(encoding="utf-8"))
    assert not [e for e in metadata["excluded"] if e["reason"].startswith("Observation")]
    oxygen = {(r["PRTRT"], r["PROCCUR"]) for r in _rows(seed_sdtm / "pr.csv")}
    assert ("Supplemental oxygen", "N") in oxygen and ("Invasive mechanical ventilation", "Y") in oxygen
    assert {r["REMETHOD"] for r in _rows(seed_sdtm / "re.csv")} == {"X-RAY"}


def test_every_administration_is_in_ex_or_cm_or_counted(seed_folder: Path, seed_sdtm: Path) -> None:
    administrations = len((seed_folder / "MedicationAdministration.ndjson").read_text(encoding="utf-8").splitlines())
    metadata = json.loads((seed_sdtm / "metadata.json").read_text(encoding="utf-8"))
    left_out = sum(e["count"] for e in metadata["excluded"] if e["reason"].startswith("MedicationAdministration"))
    written = len(_rows(seed_sdtm / "ex.csv")) + len(_rows(seed_sdtm / "cm.csv"))
    assert written + left_out == administrations
    assert {r["EXTRT"] for r in _rows(seed_sdtm / "ex.csv")} == {
        "SECRETOME OF HYPOXIA-MESENCHYMAL STEM CELLS (SECRETOME-MSCS)"}
