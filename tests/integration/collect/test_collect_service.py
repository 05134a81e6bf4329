"""collect as a service job against HAPI: the links file comes with the request and is gone when the job ends."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from adapter.client import FhirClient
from adapter.service import close_app, create_app
from adapter.service.keys import hash_key
from adapter.settings import ServerSettings, ServiceSettings, Settings
from tests.integration.collect.hospital import PACKAGE_YAML

KEY = "collect-service-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SUBJECTS = ("subject_id,site_id,sex,birth_year,arm_assigned,arm_actual,consent_date,status,start_date,end_date,"
            "withdrawal_reason\n01-0001,01,U,,Control,Control,2021-03-01,completed,2021-03-01,2021-03-28,\n")


@pytest.fixture
def service(fhir_base_url: str, tmp_path: Path) -> Iterator[tuple[FlaskClient, Path]]:
    data = tmp_path / "data"
    settings = Settings(
        servers={"hospital": ServerSettings(name="hospital", base_url=fhir_base_url)},
        journal_dir=data / "journal",
        service=ServiceSettings(api_keys={"tester": hash_key(KEY)}, data_dir=data),
        env={},
    )
    app = create_app(settings)
    try:
        client = app.test_client()
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("package.yaml", PACKAGE_YAML)
            z.writestr("subjects.csv", SUBJECTS)
            z.writestr("measurements.csv", "subject_id,visit,test_code,value,unit,collected_at\n")
            z.writestr("administrations.csv", "subject_id,product_code,start,status\n")
        response = client.post("/api/v1/studies", data=archive.getvalue(), content_type="application/zip",
                               headers=AUTH)
        assert response.status_code in (200, 201), response.json
        yield client, data
    finally:
        close_app(app)


@pytest.fixture
def mrn(fhir_base_url: str) -> str:
    """A hospital patient with one PaO2 on day 1, found by the MRN returned."""
    tag, mrn = uuid.uuid4().hex[:12], f"MRN-{uuid.uuid4().hex[:12]}"  # the MRN is no part of any id
    with FhirClient(fhir_base_url) as client:
        client.update(f"Patient/c14s-{tag}", {"resourceType": "Patient", "id": f"c14s-{tag}",
                                              "identifier": [{"system": "https://hospital.test/mrn", "value": mrn}]})
        client.update(f"Observation/c14s-{tag}", {
            "resourceType": "Observation", "id": f"c14s-{tag}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2703-7"}]},
            "subject": {"reference": f"Patient/c14s-{tag}"}, "effectiveDateTime": "2021-03-02T10:00:00Z",
            "valueQuantity": {"value": 81, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
        })
    return mrn


def submit(client: FlaskClient, links: str) -> dict[str, Any]:
    job = {"kind": "collect", "study": "NCT04753476", "server": "hospital"}
    response = client.post("/api/v1/jobs", headers=AUTH, content_type="multipart/form-data",
                           data={"job": json.dumps(job), "links": (io.BytesIO(links.encode()), "LINKS.csv")})
    assert response.status_code == 202, response.json
    job_id = response.json["id"]
    deadline = time.monotonic() + 120
    while (state := client.get(f"/api/v1/jobs/{job_id}", headers=AUTH).json)["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    return dict(state)


def stored_text(data: Path) -> str:
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in data.rglob("*") if p.is_file())


def test_a_collect_job_collects_and_deletes_the_links_file(service: tuple[FlaskClient, Path], mrn: str) -> None:
    client, data = service
    job = submit(client, f"subject_id,identifier_system,identifier_value\n01-0001,https://hospital.test/mrn,{mrn}\n")
    assert job["state"] == "succeeded", job["errors"]
    assert job["summary"]["subjects"] == {"found": 1}
    files = {f["name"]: f["url"] for f in job["files"]}
    assert {"measurements.csv", "report.json", "reconciliation.csv"} <= set(files)
    response = client.get(files["measurements.csv"], headers=AUTH)
    rows = response.get_data(as_text=True).splitlines()
    response.close()
    assert [r.split(",")[:5] for r in rows[1:]] == [["01-0001", "D1", "PAO2", "81", "mm[Hg]"]]
    assert not list(data.rglob("links.csv")) and mrn not in stored_text(data)


def test_the_links_file_is_deleted_when_the_job_fails(service: tuple[FlaskClient, Path], mrn: str) -> None:
    client, data = service
    # A subject that subjects.csv does not hold: the job fails after reading the file.
    job = submit(client, f"subject_id,identifier_system,identifier_value\n02-0009,https://hospital.test/mrn,{mrn}\n")
    assert job["state"] == "failed" and "subjects.csv" in json.dumps(job["errors"])
    assert not list(data.rglob("links.csv")) and mrn not in stored_text(data)


def test_a_collect_job_needs_its_links_file(service: tuple[FlaskClient, Path]) -> None:
    client, _ = service
    response = client.post("/api/v1/jobs", headers=AUTH,
                           json={"kind": "collect", "study": "NCT04753476", "server": "hospital"})
    assert response.status_code == 400 and "links" in response.json["issue"][0]["diagnostics"]
