"""The test FHIR server is a real HAPI JPA server and behaves as the adapter relies on."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import requests

from tests.conftest import validation_errors

pytestmark = pytest.mark.integration

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def _search(http: requests.Session, url: str, **params: str) -> dict[str, Any]:
    response = http.get(url, params={**params, "_total": "accurate"}, timeout=60)
    response.raise_for_status()
    return dict(response.json())


def test_metadata_is_r4_with_transactions_and_research_study(fhir_http: requests.Session, fhir_base_url: str) -> None:
    capabilities = fhir_http.get(f"{fhir_base_url}/metadata", timeout=60).json()
    assert capabilities["fhirVersion"] == "4.0.1"
    rest = capabilities["rest"][0]
    assert "transaction" in {i["code"] for i in rest["interaction"]}
    types = {r["type"]: r for r in rest["resource"]}
    assert "ResearchStudy" in types
    assert "export" in {op["name"] for op in rest["operation"]}


def test_transaction_links_patient_and_observation_by_urn_uuid(
    fhir_http: requests.Session, fhir_base_url: str
) -> None:
    patient_urn = f"urn:uuid:{uuid.uuid4()}"
    marker = f"server-test-{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_urn,
                "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": marker}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": marker},
                    "subject": {"reference": patient_urn},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    response = fhir_http.post(fhir_base_url, json=bundle, headers=FHIR_JSON, timeout=60)
    assert response.status_code == 200, response.text
    patient_location, observation_location = (e["response"]["location"] for e in response.json()["entry"])
    patient_ref = "/".join(patient_location.split("/")[:2])
    observation = fhir_http.get(f"{fhir_base_url}/{observation_location}", timeout=60).json()
    assert observation["subject"]["reference"] == patient_ref


def test_conditional_create_twice_makes_one_resource(fhir_http: requests.Session, fhir_base_url: str) -> None:
    marker = f"cond-{uuid.uuid4()}"
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": marker}]}
    headers = {**FHIR_JSON, "If-None-Exist": f"identifier=urn:test|{marker}"}
    first = fhir_http.post(f"{fhir_base_url}/Patient", json=patient, headers=headers, timeout=60)
    second = fhir_http.post(f"{fhir_base_url}/Patient", json=patient, headers=headers, timeout=60)
    assert (first.status_code, second.status_code) == (201, 200)
    found = _search(fhir_http, f"{fhir_base_url}/Patient", identifier=f"urn:test|{marker}")
    assert found["total"] == 1


def test_put_with_client_id_creates(fhir_http: requests.Session, fhir_base_url: str) -> None:
    client_id = str(uuid.uuid4())
    response = fhir_http.put(
        f"{fhir_base_url}/Patient/{client_id}",
        json={"resourceType": "Patient", "id": client_id, "gender": "female"},
        headers=FHIR_JSON,
        timeout=60,
    )
    assert response.status_code == 201, response.text
    read = fhir_http.get(f"{fhir_base_url}/Patient/{client_id}", timeout=60).json()
    assert (read["id"], read["gender"], read["meta"]["versionId"]) == (client_id, "female", "1")


def test_validate_reports_an_error_for_research_study_without_valid_status(
    fhir_http: requests.Session, fhir_base_url: str
) -> None:
    missing = validation_errors(fhir_http, fhir_base_url, {"resourceType": "ResearchStudy", "title": "t"})
    assert any("ResearchStudy.status" in e for e in missing), missing
    invalid = validation_errors(fhir_http, fhir_base_url, {"resourceType": "ResearchStudy", "status": "bogus"})
    assert invalid, "an unknown status code must be an error"
    assert validation_errors(fhir_http, fhir_base_url, {"resourceType": "ResearchStudy", "status": "active"}) == []


def test_search_after_write_is_fresh(fhir_http: requests.Session, fhir_base_url: str) -> None:
    marker = f"fresh-{uuid.uuid4()}"
    url = f"{fhir_base_url}/Patient"
    assert _search(fhir_http, url, identifier=f"urn:test|{marker}")["total"] == 0
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": marker}]}
    assert fhir_http.post(url, json=patient, headers=FHIR_JSON, timeout=60).status_code == 201
    # Sent without Cache-Control: the server itself must not serve the cached empty result.
    plain = requests.get(url, params={"identifier": f"urn:test|{marker}", "_total": "accurate"}, timeout=60)
    assert plain.json()["total"] == 1


@pytest.mark.parametrize("level", ["system", "Patient", "Group"])
def test_bulk_export_kicks_off_with_202_and_completes(
    fhir_http: requests.Session, fhir_base_url: str, level: str
) -> None:
    patient_id = str(uuid.uuid4())
    fhir_http.put(
        f"{fhir_base_url}/Patient/{patient_id}",
        json={"resourceType": "Patient", "id": patient_id},
        headers=FHIR_JSON,
        timeout=60,
    ).raise_for_status()
    kickoff_url = {"system": f"{fhir_base_url}/$export", "Patient": f"{fhir_base_url}/Patient/$export"}.get(level)
    if level == "Group":
        group_id = str(uuid.uuid4())
        group = {
            "resourceType": "Group",
            "id": group_id,
            "type": "person",
            "actual": True,
            "member": [{"entity": {"reference": f"Patient/{patient_id}"}}],
        }
        fhir_http.put(f"{fhir_base_url}/Group/{group_id}", json=group, headers=FHIR_JSON, timeout=60).raise_for_status()
        kickoff_url = f"{fhir_base_url}/Group/{group_id}/$export"
    assert kickoff_url
    kickoff = fhir_http.get(
        kickoff_url, params={"_type": "Patient"}, headers={"Prefer": "respond-async"}, timeout=60
    )
    assert kickoff.status_code == 202, kickoff.text
    status_url = kickoff.headers["Content-Location"]
    deadline = time.monotonic() + 120
    while True:
        status = fhir_http.get(status_url, timeout=60)
        if status.status_code == 200:
            break
        assert status.status_code == 202, status.text
        assert time.monotonic() < deadline, "export did not complete within 120 s"
        time.sleep(1)
    manifest = status.json()
    assert [o["type"] for o in manifest["output"]] == ["Patient"]
    ndjson = fhir_http.get(manifest["output"][0]["url"], headers={"Accept": "application/fhir+ndjson"}, timeout=60)
    exported_ids = {json.loads(line)["id"] for line in ndjson.text.splitlines() if line}
    assert patient_id in exported_ids
