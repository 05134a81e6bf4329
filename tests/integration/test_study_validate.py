"""Every study Bundle resource passes the HAPI FHIR R4 server's ``$validate`` with no errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from adapter.sources.ctgov import read_study
from adapter.studybundle import study_bundle
from tests.conftest import REPO, SHARED_SAMPLES, validation_errors

pytestmark = pytest.mark.integration

SEED = REPO / "fixtures" / "NCT04753476"
RECORDS = sorted(
    [
        *SHARED_SAMPLES.glob("v2/*.json"),
        *SHARED_SAMPLES.glob("xml/*.xml"),
        SEED / "study.json",
        SEED / "study.legacy.xml",
        *(REPO / "tests" / "data" / "ctgov").glob("*.json"),
    ]
)


def test_every_shared_record_is_validated() -> None:
    """Guards the test below: a missing shared folder or a record added to it must not shrink it silently."""
    listed = re.findall(r"^\| ((?:v2|xml)/\S+) \|", (SHARED_SAMPLES / "README.md").read_text(encoding="utf-8"), re.M)
    assert len(listed) >= 8
    assert {SHARED_SAMPLES / name for name in listed} == {p for p in RECORDS if p.is_relative_to(SHARED_SAMPLES)}
    assert REPO / "tests" / "data" / "ctgov" / "NCT00973089-months-to-years.json" in RECORDS


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_every_resource_validates(path: Path, fhir_http: requests.Session, fhir_base_url: str) -> None:
    problems = {}
    for entry in study_bundle(read_study(path))["entry"]:
        resource = entry["resource"]
        errors = validation_errors(fhir_http, fhir_base_url, resource)
        if errors:
            problems[entry["request"]["url"]] = errors
    assert problems == {}


def test_a_resource_the_server_rejects_is_reported(fhir_http: requests.Session, fhir_base_url: str) -> None:
    """Guards the test above: a broken ResearchStudy (status outside the required value set) must fail."""
    resource = study_bundle(read_study(SEED / "study.json"))["entry"][-1]["resource"]
    broken = dict(resource, status="recruiting")
    assert validation_errors(fhir_http, fhir_base_url, broken)


def test_an_age_range_in_two_units_is_what_the_server_rejects(fhir_http: requests.Session, fhir_base_url: str) -> None:
    """Guards the months-to-years record: rng-2 fails on "3 mo" to "17 a", so the mapper must write one unit."""
    record = REPO / "tests" / "data" / "ctgov" / "NCT00973089-months-to-years.json"
    group = next(e["resource"] for e in study_bundle(read_study(record))["entry"]
                 if e["resource"]["resourceType"] == "Group")  # fmt: skip
    assert validation_errors(fhir_http, fhir_base_url, group) == []
    age = next(c for c in group["characteristic"] if "valueRange" in c)
    age["valueRange"] = {"low": {"value": 3, "unit": "months", "system": "http://unitsofmeasure.org", "code": "mo"},
                         "high": {"value": 17, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"}}
    assert any("rng-2" in error for error in validation_errors(fhir_http, fhir_base_url, group))
