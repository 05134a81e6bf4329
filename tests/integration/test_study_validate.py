"""Every study Bundle resource passes the HAPI FHIR R4 server's ``$validate`` with no errors."""

from __future__ import annotations

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
    ]
)


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
