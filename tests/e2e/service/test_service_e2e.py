"""The service as a user drives it: a real process on a port, over HTTP, against the shared HAPI server."""

from __future__ import annotations

import signal

import pytest
import requests

from adapter.fhir.ids import resource_id
from tests.e2e.service.conftest import SEED, Api, ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

STUDY = "NCT04753476"


def test_push_the_seed_trial_over_http(api: Api, fhir_base_url: str, fhir_http: requests.Session) -> None:
    uploaded = api("POST", "/api/v1/studies", data=(SEED / "study.json").read_bytes(),
                   headers={"Content-Type": "application/json"})  # fmt: skip
    assert uploaded.status_code in (200, 201), uploaded.text

    submitted = api("POST", "/api/v1/jobs", json={"kind": "push", "study": STUDY, "server": "hapi"})
    assert submitted.status_code == 202, submitted.text
    assert submitted.headers["Location"] == f"/api/v1/jobs/{submitted.json()['id']}"
    job = api.wait(submitted.json()["id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded", job
    assert job["summary"]["types"]["ResearchStudy"]["create"] + job["summary"]["types"]["ResearchStudy"]["update"] == 1

    study = fhir_http.get(f"{fhir_base_url}/ResearchStudy/{resource_id('ResearchStudy', STUDY)}", timeout=30)
    assert study.status_code == 200
    assert {"system": "http://clinicaltrials.gov", "value": STUDY}.items() <= study.json()["identifier"][0].items()

    # The same push again changes nothing: the journal says all is on the server.
    again = api("POST", "/api/v1/jobs", json={"kind": "push", "study": STUDY, "server": "hapi"}).json()
    again = api.wait(again["id"], {"succeeded", "failed"})
    assert again["state"] == "succeeded"
    assert sum(counts["written"] for counts in again["summary"]["types"].values()) == 0

    page = api("GET", "/")
    assert page.status_code == 200 and job["id"][:8] in page.text


@pytest.mark.slow  # 34 s with --durations on the shared HAPI server
def test_push_pull_and_export_the_seed_package(api: Api) -> None:
    assert api.upload_package().status_code in (200, 201)
    push = api("POST", "/api/v1/jobs", json={"kind": "push", "study": STUDY, "server": "hapi"}).json()
    assert api.wait(push["id"], {"succeeded", "failed"})["state"] == "succeeded"
    for kind in ("pull", "export"):
        job = api("POST", "/api/v1/jobs", json={"kind": kind, "study": STUDY, "server": "hapi"}).json()
        job = api.wait(job["id"], {"succeeded", "failed"})
        assert job["state"] == "succeeded", (job["errors"], job["summary"])
        assert job["files"], job
        for file in job["files"]:
            download = api("GET", file["url"])
            assert download.status_code == 200 and len(download.content) == file["size"]


@pytest.mark.slow  # 26 s with --durations on the shared HAPI server
def test_restart_with_a_push_in_flight(service: ServiceProcess, api: Api) -> None:
    assert api.upload_package().status_code in (200, 201), "upload"
    submitted = api(
        "POST", "/api/v1/jobs", json={"kind": "push", "study": STUDY, "server": "hapi", "options": {"full": True}}
    )
    job_id = submitted.json()["id"]
    running = api.wait(job_id, {"running", "succeeded", "failed"}, condition=lambda job: job["state"] != "running"
                       or job["progress"].get("done", 0) > 0)  # fmt: skip
    assert running["state"] == "running", f"the push ended before it could be interrupted: {running}"

    service.stop(signal.SIGKILL)  # no chance to clean up: as a crash
    service.start()

    old = api("GET", f"/api/v1/jobs/{job_id}").json()
    assert old["state"] == "interrupted" and old["resumed_by"], old
    new = api.wait(old["resumed_by"], {"succeeded", "failed"})
    assert new["state"] == "succeeded", new
    assert new["resumes"] == job_id
    # The resumed push kept the options of the killed one and covered the whole package without a failure.
    assert new["options"] == {"full": True}
    types = new["summary"]["types"]
    assert types["Patient"]["written"] == 48 and types["Observation"]["written"] > 0
    assert all(counts["failed"] == 0 for counts in types.values())
