"""A second trial, not the seed: NCT00711542 (cardiology, German EDC export) through the CLI against HAPI.

The package brings only its own files (package.yaml with its CSV dialect, a test, its products and a unit
spelling): map, push, push again, pull and export work with no edit of the project's tables. Its export is
semicolon-separated with decimal commas, dd.mm.yyyy dates and censored results.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from adapter.cli import main
from tests.conftest import REPO, validation_errors

pytestmark = pytest.mark.e2e

TRIAL = REPO / "fixtures" / "NCT00711542"
NCT = "NCT00711542"


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("second-trial")


@pytest.fixture(scope="module")
def mapped(workdir: Path) -> Path:
    out = workdir / "mapped"
    assert main(["map", "package", str(TRIAL), "-o", str(out)]) == 0
    return out


def test_the_edc_export_maps_without_a_reject(mapped: Path) -> None:
    report = json.loads((mapped / "report.json").read_text(encoding="utf-8"))
    assert report["rejected"] == 0 and report["reconciles"]
    assert report["files"]["measurements.csv"]["mapped"] == 956
    observations = lines(mapped / "Observation.ndjson")
    by_code = {o["code"]["coding"][0]["code"]: o for o in observations}
    # Conventional units converted per test: cholesterol and glucose each with their own molar mass.
    assert by_code["14647-2"]["valueQuantity"]["code"] == by_code["14749-6"]["valueQuantity"]["code"] == "mmol/L"
    assert by_code["14682-9"]["valueQuantity"]["code"] == "umol/L"
    assert by_code["33762-6"]["valueQuantity"]["code"] == "pg/mL"  # the package's own test
    censored = [o for o in observations if "comparator" in o["valueQuantity"]]
    assert {(o["code"]["coding"][0]["code"], o["valueQuantity"]["comparator"]) for o in censored} >= {("1988-5", "<")}
    assert [r["resourceType"] for r in lines(mapped / "ResearchStudy.ndjson")] == ["ResearchStudy"]


@pytest.mark.integration
def test_what_it_maps_passes_the_servers_validation(mapped: Path, fhir_base_url: str, fhir_http: requests.Session
                                                    ) -> None:
    observations = lines(mapped / "Observation.ndjson")
    one_per_code = {o["code"]["coding"][0]["code"]: o for o in observations}
    censored = next(o for o in observations if "comparator" in o["valueQuantity"])
    for resource in [*one_per_code.values(), censored, *lines(mapped / "MedicationAdministration.ndjson")[:1]]:
        assert validation_errors(fhir_http, fhir_base_url, resource) == [], resource["code"] if "code" in resource \
            else resource["id"]


@pytest.mark.integration
def test_push_pull_and_export_round_trip(mapped: Path, workdir: Path, fhir_base_url: str,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ADAPTER_JOURNAL_DIR", str(workdir / "journal"))
    assert main(["push", str(mapped), "--server", fhir_base_url, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["push", str(mapped), "--server", fhir_base_url, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert first["ok"] and again["ok"] and not first["failures"] and not again["failures"]
    written = {name: t["create"] + t["update"] + t["written"] for name, t in again["types"].items()}
    assert set(written.values()) == {0}, written  # the second run changes nothing

    pulled = workdir / "pulled"
    assert main(["pull", "--server", fhir_base_url, "--study", NCT, "-o", str(pulled), "--search"]) == 0
    assert len(lines(pulled / "Observation.ndjson")) == 956
    assert len(lines(pulled / "Patient.ndjson")) == 20

    sdtm = workdir / "sdtm"
    assert main(["export", str(pulled), "--format", "sdtm", "-o", str(sdtm)]) == 0
    with (sdtm / "lb.csv").open(encoding="utf-8", newline="") as stream:
        tests = {row["LBTESTCD"] for row in csv.DictReader(stream)}
    assert {"CHOL", "LDL", "HDL", "TRIG", "GLUC", "HBA1C", "CREAT", "CRP", "HGB", "WBC", "PLAT"} <= tests
    assert "NTPROBNP" not in tests  # the package's own test has no project SDTM term ...
    with (sdtm / "vs.csv").open(encoding="utf-8", newline="") as stream:
        vital_signs = {row["VSTESTCD"] for row in csv.DictReader(stream)}
    assert vital_signs == {"SYSBP", "DIABP", "HR", "WEIGHT", "HEIGHT", "BMI"}
    assert json.loads((sdtm / "export.json").read_text(encoding="utf-8"))["complete"] is True
    assert main(["check-sdtm", str(sdtm)]) == 0  # its units (mmol/L, umol/L, g/L, ...) are CDISC CT terms too

    # ... until the package's own terms file gives it one, a sponsor-extended LBTESTCD that define.xml declares.
    own_terms, with_terms = TRIAL / "sdtm-terms.yaml", workdir / "sdtm-own-terms"
    assert main(["export", str(pulled), "--format", "sdtm", "-o", str(with_terms), "--terms", str(own_terms)]) == 0
    with (with_terms / "lb.csv").open(encoding="utf-8", newline="") as stream:
        probnp = [row for row in csv.DictReader(stream) if row["LBTESTCD"] == "NTPROBNP"]
    assert len(probnp) == 39 and {row["LBSTRESU"] for row in probnp} == {"ng/L"}  # CDISC's term for pg/mL
    define = (with_terms / "define.xml").read_text(encoding="utf-8")
    assert re.search(r'CodedValue="NTPROBNP"[^>]*def:ExtendedValue="Yes"', define)
    assert main(["check-sdtm", str(with_terms), "--terms", str(own_terms)]) == 0
    assert main(["check-sdtm", str(with_terms)]) == 1  # without the file, NTPROBNP is not a term of C65047
