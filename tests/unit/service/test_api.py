"""The API over the Flask test client, with job kinds replaced by fakes (no FHIR server needed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from adapter.errors import MappingError
from adapter.service.runner import JobContext, JobResult
from tests.unit.service.conftest import AUTH, SEED_STUDY, AppFactory, assert_documented, upload_seed, wait_for

JOB = {"kind": "push", "study": "NCT04753476", "server": "hapi"}


def _fake(body: Callable[[JobContext], JobResult]) -> dict[str, Callable[[JobContext], JobResult]]:
    return {"push": body, "pull": body, "export": body}


def _quick(context: JobContext) -> JobResult:
    context.progress(total=3, done=3)
    context.files.mkdir(parents=True, exist_ok=True)
    (context.files / "Patient.ndjson").write_text('{"resourceType":"Patient","id":"p1"}\n')
    return JobResult(summary={"types": {"Patient": {"written": 3}}})


# --- studies -------------------------------------------------------------------------------------


def test_upload_list_get_and_bundle_of_a_study(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/studies", data=SEED_STUDY.read_bytes(), content_type="application/json", headers=AUTH
    )
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/v1/studies/NCT04753476"
    assert_documented("/api/v1/studies", "post", 201, response.json)
    again = client.post("/api/v1/studies", data=SEED_STUDY.read_bytes(), content_type="application/json", headers=AUTH)
    assert again.status_code == 200

    listing = client.get("/api/v1/studies", headers=AUTH).json
    assert [study["id"] for study in listing["studies"]] == ["NCT04753476"]
    assert_documented("/api/v1/studies", "get", 200, listing)
    study = client.get("/api/v1/studies/NCT04753476", headers=AUTH).json
    assert study["source"] == "record" and "Secretome" in study["title"]

    bundle = client.get("/api/v1/studies/NCT04753476/bundle", headers=AUTH)
    assert bundle.mimetype == "application/fhir+json"
    assert_documented("/api/v1/studies/{study_id}/bundle", "get", 200, bundle.json)
    # The same engine as `trialfhir map study`: the reviewed golden Bundle of the seed trial.
    import json

    golden = json.loads((SEED_STUDY.parent / "study.bundle.json").read_text(encoding="utf-8"))
    assert bundle.json == golden


def test_legacy_xml_record_is_accepted(client: FlaskClient) -> None:
    data = (SEED_STUDY.parent / "study.legacy.xml").read_bytes()
    response = client.post("/api/v1/studies", data=data, content_type="application/xml", headers=AUTH)
    assert response.status_code == 201, response.json
    assert response.json["id"] == "NCT04753476"


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b'{"protocolSection": {}}', "application/json", 400),
        (b"not json at all", "application/json", 400),
        (b"{}", "text/plain", 415),
        (b"", "application/json", 400),
    ],
    ids=["no-nct-id", "not-json", "wrong-type", "empty"],
)
def test_bad_records_are_outcomes(client: FlaskClient, data: bytes, content_type: str, status: int) -> None:
    response = client.post("/api/v1/studies", data=data, content_type=content_type, headers=AUTH)
    assert response.status_code == status, response.json
    assert_documented("/api/v1/studies", "post", status, response.json)


def test_unknown_study_and_job_are_404(client: FlaskClient) -> None:
    for path in (
        "/api/v1/studies/NCT00000000",
        "/api/v1/studies/nonsense",
        "/api/v1/jobs/" + "0" * 32,
        "/api/v1/jobs/x",
    ):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 404
        assert response.json["issue"][0]["code"] == "not-found"


# --- job requests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expression"),
    [
        ({"study": "NCT04753476", "server": "hapi"}, "kind"),
        ({**JOB, "kind": "delete-everything"}, "kind"),
        ({**JOB, "study": "NCT123"}, "study"),
        ({**JOB, "server": "http://169.254.169.254/latest"}, "server"),
        ({**JOB, "options": {"ful": True}}, "options"),
        ({**JOB, "options": {"full": "yes"}}, "options.full"),
        ({**JOB, "url": "http://example.org/fhir"}, None),
    ],
    ids=["no-kind", "bad-kind", "bad-study", "url-as-server", "unknown-option", "option-type", "extra-field"],
)
def test_bad_job_requests_are_400_with_the_failing_path(
    client: FlaskClient, body: dict[str, object], expression: str | None
) -> None:
    upload_seed(client)
    response = client.post("/api/v1/jobs", json=body, headers=AUTH)
    assert response.status_code == 400, response.json
    issue = response.json["issue"][0]
    assert issue.get("expression") == ([expression] if expression else None), issue
    assert_documented("/api/v1/jobs", "post", 400, response.json)


def test_a_job_naming_an_unknown_server_is_refused_before_anything_runs(make_app: AppFactory) -> None:
    calls: list[str] = []
    client = make_app(kinds=_fake(lambda context: calls.append(context.job.id) or JobResult())).test_client()
    upload_seed(client)
    response = client.post("/api/v1/jobs", json={**JOB, "server": "elsewhere"}, headers=AUTH)
    assert response.status_code == 400
    assert response.json["issue"][0]["expression"] == ["server"]
    assert client.get("/api/v1/jobs", headers=AUTH).json == {"jobs": []}
    assert calls == []


def test_a_job_naming_an_unknown_study_is_404(client: FlaskClient) -> None:
    response = client.post("/api/v1/jobs", json=JOB, headers=AUTH)
    assert response.status_code == 404 and response.json["issue"][0]["expression"] == ["study"]
    assert_documented("/api/v1/jobs", "post", 404, response.json)


def test_a_job_body_must_be_json(client: FlaskClient) -> None:
    assert client.post("/api/v1/jobs", data="kind=push", content_type="text/plain", headers=AUTH).status_code == 415
    assert client.post("/api/v1/jobs", data="{", content_type="application/json", headers=AUTH).status_code == 400
    assert client.post("/api/v1/jobs", json=[JOB], headers=AUTH).status_code == 400


# --- jobs ----------------------------------------------------------------------------------------


def test_submit_poll_and_fetch_files(make_app: AppFactory) -> None:
    client = make_app(kinds=_fake(_quick)).test_client()
    upload_seed(client)
    response = client.post("/api/v1/jobs", json={**JOB, "options": {"dry_run": True}}, headers=AUTH)
    assert response.status_code == 202
    assert_documented("/api/v1/jobs", "post", 202, response.json)
    location = response.headers["Location"]
    assert location == f"/api/v1/jobs/{response.json['id']}"

    job = wait_for(client, response.json["id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded", job
    assert job["progress"] == {"total": 3, "done": 3}
    assert job["summary"] == {"types": {"Patient": {"written": 3}}}
    assert job["options"] == {"dry_run": True} and job["submitted_by"] == "tester"
    assert_documented("/api/v1/jobs/{job_id}", "get", 200, job)
    assert [f["name"] for f in job["files"]] == ["Patient.ndjson"]

    with client.get(job["files"][0]["url"], headers=AUTH) as file:
        assert file.status_code == 200 and file.mimetype == "application/fhir+ndjson"
        assert file.data == b'{"resourceType":"Patient","id":"p1"}\n'
    for bad in ("nope.ndjson", "..", "%2e%2e%2fjobs.sqlite", ".hidden"):
        assert client.get(f"{location}/files/{bad}", headers=AUTH).status_code == 404

    listing = client.get("/api/v1/jobs?limit=5", headers=AUTH).json
    assert [j["id"] for j in listing["jobs"]] == [job["id"]]
    assert_documented("/api/v1/jobs", "get", 200, listing)
    assert client.get("/api/v1/jobs?limit=0", headers=AUTH).status_code == 400
    assert client.get("/api/v1/jobs?limit=x", headers=AUTH).status_code == 400


def test_twenty_jobs_submitted_at_once(make_app: AppFactory) -> None:
    running = 0
    most = 0
    lock = threading.Lock()

    def slow(context: JobContext) -> JobResult:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return JobResult(summary={"n": 1})

    app = make_app(kinds=_fake(slow), workers=3)
    upload_seed(app.test_client())
    studies = ["NCT04753476"]

    def submit(n: int) -> tuple[int, str]:
        kind = ("push", "pull", "export")[n % 3]
        response = app.test_client().post(
            "/api/v1/jobs", json={"kind": kind, "study": studies[0], "server": "hapi"}, headers=AUTH
        )
        return response.status_code, response.json["id"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(submit, range(20)))
    assert [status for status, _ in results] == [202] * 20
    ids = {job_id for _, job_id in results}
    assert len(ids) == 20
    client = app.test_client()
    finished = [wait_for(client, job_id, {"succeeded", "failed"}, timeout=30) for job_id in ids]
    assert [job["state"] for job in finished] == ["succeeded"] * 20
    # Same study and server: one at a time (they share a sync journal), whatever the pool size.
    assert most == 1


def test_cancel_a_running_job_and_a_queued_one(make_app: AppFactory) -> None:
    started = threading.Event()

    def endless(context: JobContext) -> JobResult:
        started.set()
        while True:
            context.progress(done=1)
            time.sleep(0.01)

    client = make_app(kinds=_fake(endless), workers=1).test_client()
    upload_seed(client)
    first = client.post("/api/v1/jobs", json=JOB, headers=AUTH).json["id"]
    second = client.post("/api/v1/jobs", json=JOB, headers=AUTH).json["id"]
    assert started.wait(5)

    queued = client.delete(f"/api/v1/jobs/{second}", headers=AUTH)
    assert queued.status_code == 200 and queued.json["state"] == "cancelled"
    assert_documented("/api/v1/jobs/{job_id}", "delete", 200, queued.json)

    stopping = client.delete(f"/api/v1/jobs/{first}", headers=AUTH)
    assert stopping.status_code == 202 and stopping.json["cancel_requested"] is True
    assert wait_for(client, first, {"cancelled"})["state"] == "cancelled"

    again = client.delete(f"/api/v1/jobs/{first}", headers=AUTH)
    assert again.status_code == 409
    assert_documented("/api/v1/jobs/{job_id}", "delete", 409, again.json)


def test_a_failing_job_records_where_but_not_the_value(make_app: AppFactory) -> None:
    def bad(context: JobContext) -> JobResult:
        raise MappingError(
            "not a valid date", record_id="subjects.csv:7", element="Patient.birthDate", value="1961-02-30"
        )

    client = make_app(kinds=_fake(bad)).test_client()
    upload_seed(client)
    job_id = client.post("/api/v1/jobs", json=JOB, headers=AUTH).json["id"]
    job = wait_for(client, job_id, {"failed"})
    assert job["errors"] == [{"message": "subjects.csv:7: not a valid date", "where": "Patient.birthDate"}]
    assert "1961-02-30" not in str(job)


def test_replacing_a_study_with_jobs_in_flight_is_409(make_app: AppFactory) -> None:
    release = threading.Event()

    def waiting(context: JobContext) -> JobResult:
        release.wait(5)
        return JobResult()

    client = make_app(kinds=_fake(waiting), workers=1).test_client()
    upload_seed(client)
    job_id = client.post("/api/v1/jobs", json=JOB, headers=AUTH).json["id"]
    response = client.post(
        "/api/v1/studies", data=SEED_STUDY.read_bytes(), content_type="application/json", headers=AUTH
    )
    assert response.status_code == 409
    release.set()
    assert wait_for(client, job_id, {"succeeded"})["state"] == "succeeded"


# --- status page and OpenAPI ---------------------------------------------------------------------


def test_status_page_lists_studies_jobs_and_files(make_app: AppFactory, tmp_path: Path) -> None:
    client = make_app(kinds=_fake(_quick)).test_client()
    upload_seed(client)
    job_id = client.post("/api/v1/jobs", json=JOB, headers=AUTH).json["id"]
    wait_for(client, job_id, {"succeeded"})
    page = client.get("/", headers=AUTH)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'http-equiv="refresh"' in html
    assert "NCT04753476" in html and job_id[:8] in html and "succeeded" in html
    assert f'href="/api/v1/jobs/{job_id}/files/Patient.ndjson"' in html


def test_openapi_document_is_served_and_lists_every_route(client: FlaskClient) -> None:
    document = client.get("/openapi.json", headers=AUTH).json
    assert document["openapi"] == "3.1.0"
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item if method != "parameters"
    }
    routes = set()
    for rule in client.application.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = str(rule.rule).replace("<", "{").replace(">", "}")
        routes |= {
            (path, method, rule.endpoint.split(".")[-1])
            for method in rule.methods or ()
            if method not in ("HEAD", "OPTIONS")
        }
    documented_ids = {
        (path, method, document["paths"][path][method.lower()]["operationId"]) for path, method in documented
    }
    assert routes == documented_ids
    assert document["components"]["schemas"]["JobRequest"]["oneOf"][0]["properties"]["server"]["enum"] == ["hapi"]
