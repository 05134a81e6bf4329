"""The seed trial, pushed with the command line: everything there, references right, counts equal the report."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import requests

from adapter.cli import main
from adapter.package import map_package
from adapter.sources.ctgov import read_study
from adapter.studybundle import study_resources
from tests.integration.sync.test_push import search_counts

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[3] / "fixtures" / "NCT04753476"


def test_seed_trial_push_is_complete_and_idempotent(
    fhir_http: requests.Session, fhir_base_url: str, cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = map_package(SEED)
    package_resources = list(mapping)
    study_level = study_resources(read_study(SEED / "study.json"))
    expected = Counter(mapping.report.resources) + Counter(r["resourceType"] for r in {
        (r["resourceType"], r["id"]): r for r in study_level}.values())  # fmt: skip
    assert mapping.report.rejected == 0

    assert main(["push", str(SEED), "--server", fhir_base_url, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["ok"] and first["failures"] == []
    done = {name: t["written"] + t["unchanged"] for name, t in first["types"].items()}
    assert done == dict(expected)

    everything = study_level + package_resources
    assert search_counts(fhir_http, fhir_base_url, everything) == expected

    # References resolve on the server: searched by reference, the counts add up to the report's.
    study_id = next(r["id"] for r in study_level if r["resourceType"] == "ResearchStudy")
    subjects = fhir_http.get(
        f"{fhir_base_url}/ResearchSubject", params={"study": f"ResearchStudy/{study_id}", "_summary": "count"}
    ).json()
    assert subjects["total"] == expected["ResearchSubject"]
    per_patient: Counter[str] = Counter()
    for patient in (r for r in package_resources if r["resourceType"] == "Patient"):
        for kind in ("Observation", "MedicationAdministration"):
            found = fhir_http.get(
                f"{fhir_base_url}/{kind}", params={"subject": f"Patient/{patient['id']}", "_summary": "count"}
            ).json()
            per_patient[kind] += found["total"]
    assert per_patient == Counter({k: expected[k] for k in ("Observation", "MedicationAdministration")})

    # Again: nothing written.
    assert main(["push", str(SEED), "--server", fhir_base_url, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert sum(t["written"] for t in again["types"].values()) == 0 and again["bundles"] == 0
