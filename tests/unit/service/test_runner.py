"""The job runner and store across restarts: interrupted jobs are marked, pushes resume, queues survive."""

from __future__ import annotations

import threading
from pathlib import Path

from flask.testing import FlaskClient

from adapter.service import close_app
from adapter.service.runner import JobContext, JobResult, JobRunner
from adapter.service.store import JobStore
from tests.unit.service.conftest import AUTH, AppFactory, upload_seed, wait_for


def _ok(context: JobContext) -> JobResult:
    return JobResult(summary={"resumed": context.job.resumes})


KINDS = {"push": _ok, "pull": _ok, "export": _ok}


def _wait(store: JobStore, job_id: str, state: str) -> None:
    for _ in range(500):
        job = store.job(job_id)
        if job and job.state == state:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"job {job_id} never became {state}: {store.job(job_id)}")


def test_jobs_left_running_by_a_dead_process_are_interrupted_and_pushes_resume(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    push = store.add_job("push", "NCT04753476", "hapi", {"full": True}, "etl")
    pull = store.add_job("pull", "NCT04753476", "hapi", {}, "etl")
    waiting = store.add_job("export", "NCT04753476", "hapi", {}, "etl")
    assert store.start(push.id, "dead-process") and store.start(pull.id, "dead-process")

    runner = JobRunner(store, KINDS, folder=tmp_path / "jobs", workers=2)
    try:
        resumed = runner.recover()
        assert [job.resumes for job in resumed] == [push.id]
        old_push, old_pull = store.job(push.id), store.job(pull.id)
        assert old_push and old_push.state == "interrupted" and old_push.resumed_by == resumed[0].id
        assert old_pull and old_pull.state == "interrupted" and old_pull.resumed_by is None
        _wait(store, resumed[0].id, "succeeded")
        _wait(store, waiting.id, "succeeded")  # queued before the restart, run after it
        new_push = store.job(resumed[0].id)
        assert new_push and new_push.options == {"full": True} and new_push.summary == {"resumed": push.id}
        # The dead process's claim is void: it cannot overwrite what the new one recorded.
        assert not store.finish(push.id, "dead-process", "succeeded", progress={}, summary={}, errors=[])
    finally:
        runner.close()
        store.close()


def test_a_second_recover_does_not_resume_twice(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    push = store.add_job("push", "NCT04753476", "hapi", {}, "etl")
    store.start(push.id, "dead-process")
    for _ in range(2):
        runner = JobRunner(store, KINDS, folder=tmp_path / "jobs", workers=1)
        runner.recover()
        runner.close()
    assert [job.kind for job in store.jobs()] == ["push", "push"]
    store.close()


def test_restart_with_a_job_in_flight(make_app: AppFactory) -> None:
    started = threading.Event()

    def endless(context: JobContext) -> JobResult:
        started.set()
        while True:
            context.progress(done=1)
            threading.Event().wait(0.01)

    first = make_app(kinds={"push": endless, "pull": endless, "export": endless})
    client: FlaskClient = first.test_client()
    upload_seed(client)
    job_id = client.post("/api/v1/jobs", json={"kind": "push", "study": "NCT04753476", "server": "hapi"}, headers=AUTH)
    job_id = job_id.json["id"]
    assert started.wait(5)
    close_app(first)  # the service stops while the push runs

    second = make_app(kinds=KINDS).test_client()
    old = second.get(f"/api/v1/jobs/{job_id}", headers=AUTH).json
    assert old["state"] == "interrupted" and old["resumed_by"]
    new = wait_for(second, old["resumed_by"], {"succeeded", "failed"})
    assert new["state"] == "succeeded" and new["resumes"] == job_id
    assert [study["id"] for study in second.get("/api/v1/studies", headers=AUTH).json["studies"]] == ["NCT04753476"]
