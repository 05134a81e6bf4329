"""Regression tests for the attacks of issue 13: each reproduces one and holds the fix."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, cast

import pytest
from flask.testing import FlaskClient

from adapter.errors import InputError
from adapter.service import runner as runner_module
from adapter.service import studies
from adapter.service.jobs import reject_errors
from adapter.service.runner import JobContext, JobResult, JobRunner
from adapter.service.store import JobStore
from adapter.sources.package_descriptor import load_package
from adapter.sync.inputs import open_input
from tests.unit.service.conftest import AUTH, SEED_STUDY, AppFactory, wait_for
from tests.unit.sources.test_loader import BOMB
from tests.unit.sources.trialpackage import SUBJECT_ROWS, SUBJECTS_HEADER, csv, write_package

PACKAGE_FILES = ["package.yaml", "study.json", "subjects.csv", "measurements.csv", "administrations.csv"]


def package_zip(**replaced: bytes) -> bytes:
    """The seed trial's package as a zip, with some members replaced (``subjects_csv=b"..."``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in PACKAGE_FILES:
            data = replaced.get(name.replace(".", "_"), (SEED_STUDY.parent / name).read_bytes())
            archive.writestr(name, data)
    return buffer.getvalue()


def post_zip(client: FlaskClient, data: bytes) -> tuple[int, Any]:
    response = client.post("/api/v1/studies", data=data, content_type="application/zip", headers=AUTH)
    return response.status_code, response.json


def stored(tmp_path: Path) -> list[str]:
    studies = tmp_path / "data" / "studies"
    return sorted(p.name for p in studies.iterdir() if p.name != ".incoming")


# --- 1. YAML alias bomb ------------------------------------------------------------------------------


def test_a_package_yaml_alias_bomb_is_refused_with_400(client: FlaskClient, tmp_path: Path) -> None:
    status, body = post_zip(client, package_zip(package_yaml=BOMB.encode()))
    assert status == 400, body
    assert "aliases (*name) are not accepted" in body["issue"][0]["diagnostics"]
    assert stored(tmp_path) == []


# --- 2 and 4. Long CPU work, cancel, bounded shutdown, no resume after a cancel ------------------------


def _busy(context: JobContext) -> JobResult:
    """A job in a long pure-Python loop that never reports progress (like a quadratic header check)."""
    count = 0
    while True:
        count += 1


def _wait_state(store: JobStore, job_id: str, states: set[str], timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while (job := store.job(job_id)) is None or job.state not in states:
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} never reached {states}: {job}")
        time.sleep(0.02)
    return job.state


def test_a_cancel_reaches_a_job_busy_in_python_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "STOP_GRACE", 0.2)
    store = JobStore(tmp_path / "jobs.sqlite")
    runner = JobRunner(store, {"push": _busy}, folder=tmp_path / "jobs", workers=1)
    try:
        job = store.add_job("push", "NCT04753476", "hapi", {}, "etl")
        runner.submit(job)
        _wait_state(store, job.id, {"running"})
        runner.cancel(job.id)
        assert _wait_state(store, job.id, {"cancelled", "failed", "succeeded"}) == "cancelled"
    finally:
        assert runner.close(grace=1, kill_grace=1)
        store.close()


def test_close_interrupts_a_busy_job_within_its_bound(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    runner = JobRunner(store, {"push": _busy}, folder=tmp_path / "jobs", workers=1)
    job = store.add_job("push", "NCT04753476", "hapi", {}, "etl")
    runner.submit(job)
    _wait_state(store, job.id, {"running"})
    assert runner.close(grace=0.2, kill_grace=5)  # before issue 13 close waited for ever
    stopped = store.job(job.id)
    assert stopped is not None and stopped.state == "interrupted"
    store.close()


def test_close_gives_up_on_a_job_stuck_in_c_code_and_says_so(tmp_path: Path) -> None:
    release = threading.Event()

    def stuck(context: JobContext) -> JobResult:
        release.wait(30)  # a C-level wait: no Python bytecode runs, so nothing can interrupt it
        return JobResult()

    store = JobStore(tmp_path / "jobs.sqlite")
    runner = JobRunner(store, {"push": stuck}, folder=tmp_path / "jobs", workers=1)
    job = store.add_job("push", "NCT04753476", "hapi", {}, "etl")
    runner.submit(job)
    _wait_state(store, job.id, {"running"})
    started = time.monotonic()
    try:
        assert runner.close(grace=0.1, kill_grace=0.1) is False
        assert time.monotonic() - started < 5
    finally:
        release.set()
        store.close()


def test_a_push_cancelled_then_cut_by_a_restart_is_not_resumed(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    push = store.add_job("push", "NCT04753476", "hapi", {}, "etl")
    assert store.start(push.id, "dead-process")
    store.request_cancel(push.id)  # DELETE arrived; the process died before the job noticed
    runner = JobRunner(store, {"push": _busy}, folder=tmp_path / "jobs", workers=1)
    try:
        assert runner.recover() == []
        old = store.job(push.id)
        assert old is not None and old.state == "cancelled" and old.resumed_by is None
        assert store.unresumed_interruptions("push") == []
    finally:
        runner.close(grace=0.1, kill_grace=0.1)
        store.close()


def test_a_shutdown_overtaking_a_cancel_ends_the_job_cancelled(tmp_path: Path) -> None:
    def waits_for_stop(context: JobContext) -> JobResult:
        while True:
            context.check()
            time.sleep(0.01)

    store = JobStore(tmp_path / "jobs.sqlite")
    runner = JobRunner(store, {"push": waits_for_stop}, folder=tmp_path / "jobs", workers=1)
    job = store.add_job("push", "NCT04753476", "hapi", {}, "etl")
    runner.submit(job)
    _wait_state(store, job.id, {"running"})
    store.request_cancel(job.id)  # asked, but the runner's stop comes from the shutdown below
    assert runner.close(grace=2, kill_grace=2)
    ended = store.job(job.id)
    assert ended is not None and ended.state == "cancelled"
    assert store.unresumed_interruptions("push") == []
    store.close()


# --- 5 and 11. Rejected rows: where in the log and the job record, the reasons only in a file -----------

MRN = "MRN-88412377"
LEAKY_ROW = f"S3,J,M,1961-02-03 {MRN},Control,,2020-07-03,enrolled,2020-07-03,"


def test_a_rejected_row_is_logged_and_recorded_by_place_never_by_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_package(tmp_path / "pkg", subjects=csv(SUBJECTS_HEADER, *SUBJECT_ROWS, LEAKY_ROW))
    source = open_input(folder)
    with caplog.at_level(logging.WARNING):
        list(source.resources)
    assert source.rejected() == 1
    assert "subjects.csv:4: birth_year" in caplog.text
    assert MRN not in caplog.text and "1961" not in caplog.text

    job = JobStore(tmp_path / "jobs.sqlite").add_job("push", "NCT04753476", "hapi", {}, "etl")
    context = JobContext(job, cast(JobRunner, None), tmp_path / "job", threading.Event())
    errors = reject_errors(context, source)
    assert errors == [{"message": "row rejected", "where": "subjects.csv:4: birth_year"}]  # was: errors: []
    assert MRN not in str(errors)
    # The reason, value and all, goes to the data owner in the job's files.
    saved = (tmp_path / "job" / "files" / "rejects.ndjson").read_text(encoding="utf-8")
    assert json.loads(saved)["line"] == 4 and json.loads(saved)["column"] == "birth_year"


# --- 6. A broken package never replaces a good study ----------------------------------------------------

SUBJECTS = (SEED_STUDY.parent / "subjects.csv").read_bytes()


@pytest.mark.parametrize(
    "broken",
    [
        {"subjects_csv": SUBJECTS.replace(b",", b";")},
        {"subjects_csv": SUBJECTS.replace(b"birth_year", b"year_of_birth")},
        {"measurements_csv": (SEED_STUDY.parent / "measurements.csv").read_text(encoding="utf-8").encode("utf-16")},
        {"administrations_csv": b"subject_id," * 100_000 + b"\n"},
    ],
    ids=["semicolons", "wrong-column", "utf-16", "giant-header"],
)
def test_a_broken_package_is_refused_and_the_stored_study_kept(
    client: FlaskClient, tmp_path: Path, broken: dict[str, bytes]
) -> None:
    assert post_zip(client, package_zip())[0] == 201
    before = client.get("/api/v1/studies/NCT04753476", headers=AUTH).json
    status, body = post_zip(client, package_zip(**broken))
    assert status == 400, body
    assert client.get("/api/v1/studies/NCT04753476", headers=AUTH).json == before
    kept = tmp_path / "data" / "studies" / "NCT04753476" / "package"
    assert (kept / "subjects.csv").read_bytes() == SUBJECTS
    assert list((tmp_path / "data" / "studies" / ".incoming").iterdir()) == []


def test_a_package_missing_a_csv_is_refused(client: FlaskClient) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in PACKAGE_FILES[:-1]:
            archive.writestr(name, (SEED_STUDY.parent / name).read_bytes())
    status, body = post_zip(client, buffer.getvalue())
    assert status == 400 and "administrations.csv" in str(body), body


def test_the_dry_run_stops_at_its_time_budget(tmp_path: Path) -> None:
    folder = write_package(tmp_path / "pkg", subjects=csv(SUBJECTS_HEADER, *SUBJECT_ROWS))
    started = time.monotonic()
    studies._dry_run(load_package(folder), budget=0)  # no time at all: headers checked, rows not awaited
    assert time.monotonic() - started < 5
    with pytest.raises(InputError, match="UTF-16"):
        (folder / "measurements.csv").write_bytes("subject_id".encode("utf-16"))
        studies._dry_run(load_package(folder), budget=0)


# --- 8. Log lines cannot be forged through the path ----------------------------------------------------


def test_a_newline_in_the_path_cannot_forge_a_log_line(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="adapter.service"):
        client.get("/api/v1/jobs%0A2026-12-01 INFO GET /api/v1/admin 200 0.001s root\x1b[2J")
    lines = [record.getMessage() for record in caplog.records if "/api/v1/jobs" in record.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and "\x1b" not in lines[0], lines
    assert "/api/v1/jobs\\n2026-12-01 INFO GET" in lines[0]


# --- 9. The NCT number is matched whole ------------------------------------------------------------------


def test_a_package_whose_nct_number_ends_in_a_newline_is_refused(client: FlaskClient, tmp_path: Path) -> None:
    descriptor = (SEED_STUDY.parent / "package.yaml").read_bytes()
    newline = descriptor.replace(b"nct_id: NCT04753476", b'nct_id: "NCT04753476\\n"')
    assert newline != descriptor
    status, body = post_zip(client, package_zip(package_yaml=newline))
    assert status == 400, body
    assert stored(tmp_path) == []


def test_a_record_whose_nct_number_ends_in_a_newline_is_refused(client: FlaskClient, tmp_path: Path) -> None:
    record = SEED_STUDY.read_bytes().replace(b'"nctId": "NCT04753476"', b'"nctId": "NCT04753476\\n"', 1)
    response = client.post("/api/v1/studies", data=record, content_type="application/json", headers=AUTH)
    assert response.status_code == 400, response.json
    assert stored(tmp_path) == []


# --- 10. Parallel uploads of one study -------------------------------------------------------------------


def test_parallel_uploads_of_one_study_all_succeed_and_leave_no_scratch(make_app: AppFactory, tmp_path: Path) -> None:
    app = make_app()
    record = SEED_STUDY.read_bytes()
    start = threading.Barrier(12)
    statuses: list[int] = []

    def upload() -> None:
        client = app.test_client()
        start.wait()
        for _ in range(3):
            response = client.post("/api/v1/studies", data=record, content_type="application/json", headers=AUTH)
            statuses.append(response.status_code)

    threads = [threading.Thread(target=upload) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200] * 35 + [201], statuses
    assert stored(tmp_path) == ["NCT04753476"]
    assert list((tmp_path / "data" / "studies" / ".incoming").iterdir()) == []


def test_scratch_left_by_a_dead_process_is_removed_at_start(make_app: AppFactory, tmp_path: Path) -> None:
    leftover = tmp_path / "data" / "studies" / ".incoming" / "0123abcd"
    leftover.mkdir(parents=True)
    make_app()
    assert not leftover.exists()


# --- 11. Malformed input gets a 4xx naming the problem (and the CLI an exit code), never a 500 -----------


def _corrupt_member() -> bytes:
    data = bytearray(package_zip())
    start = 30 + len("package.yaml")  # the first member's compressed data follows its local header
    for offset in range(start + 5, start + 40):
        data[offset] ^= 0x5A
    return bytes(data)


def _zip_of(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (_corrupt_member(), "not a readable zip archive"),
        (_zip_of(("package.yaml", b"x"), ("a", b"1"), ("a/b", b"2")), "a file and also the folder"),
        (_zip_of(("package.yaml", b"x"), ("x" * 300, b"1")), "longer than"),
        (_zip_of(("package.yaml", b"x"), ("/".join(["d" * 200] * 8), b"1")), "longer than"),
        (package_zip(package_yaml=b"format: \xff\xfe trialfhir\n"), "not UTF-8"),
        (package_zip(package_yaml=b"study: [unclosed\n  nct_id: x: y\n"), "not valid YAML"),
    ],
    ids=["corrupt-member", "file-and-folder", "long-name", "long-path", "not-utf8-yaml", "broken-yaml"],
)
def test_a_malformed_upload_is_a_400_naming_the_problem(
    client: FlaskClient, tmp_path: Path, archive: bytes, message: str
) -> None:
    status, body = post_zip(client, archive)
    assert status == 400, body
    assert message in str(body)
    assert stored(tmp_path) == []
    assert list((tmp_path / "data" / "studies" / ".incoming").iterdir()) == []


def test_deeply_nested_json_is_a_400(client: FlaskClient) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    record = client.post("/api/v1/studies", data=deep, content_type="application/json", headers=AUTH)
    assert record.status_code == 400 and "nested too deeply" in str(record.json), record.json
    job = client.post("/api/v1/jobs", data=deep, content_type="application/json", headers=AUTH)
    assert job.status_code == 400, job.json


@pytest.mark.parametrize("limit", ["²", "٣", "1.5", "-1", "0", "1001", ""])
def test_a_limit_that_is_not_a_plain_number_is_a_400(client: FlaskClient, limit: str) -> None:
    response = client.get("/api/v1/jobs", query_string={"limit": limit}, headers=AUTH)
    assert response.status_code == 400, response.json


def test_an_upload_error_names_package_files_not_server_folders(client: FlaskClient, tmp_path: Path) -> None:
    status, body = post_zip(client, package_zip(subjects_csv=SUBJECTS.replace(b"birth_year", b"year_of_birth")))
    assert status == 400
    assert str(tmp_path) not in json.dumps(body) and ".incoming" not in json.dumps(body)
    assert "subjects.csv" in json.dumps(body)


@pytest.mark.parametrize(
    ("files", "argv"),
    [
        ({"deep.json": b"[" * 200_000 + b"]" * 200_000}, ["map", "study", "deep.json", "-o", "out"]),
        ({"pkg/package.yaml": b"format: \xff\n"}, ["map", "package", "pkg", "-o", "out"]),
    ],
    ids=["deep-json", "non-utf8-package-yaml"],
)
def test_the_cli_answers_malformed_input_with_a_message_and_an_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    files: dict[str, bytes], argv: list[str],
) -> None:  # fmt: skip
    from adapter.cli import main

    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("trialfhir: error: ") and "Traceback" not in err


# --- 12. Security headers, no-store, no body read before the 401, impossible dates ----------------------


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/", AUTH), ("/api/v1/jobs", AUTH), ("/api/v1/studies", {}), ("/healthz", {}), ("/api/v1/nowhere", AUTH)],
)
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str, headers: dict[str, str]) -> None:
    response = client.get(path, headers=headers)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src" not in response.headers["Content-Security-Policy"]  # default-src 'none': no script at all
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def test_a_job_file_is_served_no_store(make_app: AppFactory) -> None:
    def writes_a_file(context: JobContext) -> JobResult:
        context.files.mkdir(parents=True)
        (context.files / "Patient.ndjson").write_text('{"resourceType": "Patient"}\n', encoding="utf-8")
        return JobResult()

    client = make_app(kinds={"push": writes_a_file, "pull": writes_a_file, "export": writes_a_file}).test_client()
    assert client.post("/api/v1/studies", data=SEED_STUDY.read_bytes(), content_type="application/json",
                       headers=AUTH).status_code == 201  # fmt: skip
    job = client.post("/api/v1/jobs", json={"kind": "pull", "study": "NCT04753476", "server": "hapi"}, headers=AUTH)
    job_id = (job.json or {})["id"]
    assert wait_for(client, job_id, {"succeeded"})["state"] == "succeeded"
    with client.get(f"/api/v1/jobs/{job_id}/files/Patient.ndjson", headers=AUTH) as response:
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


class _Tripwire(io.BytesIO):
    """A request body that records whether anyone read it."""

    read_at_all = False

    def read(self, size: int | None = -1) -> bytes:
        _Tripwire.read_at_all = True
        return super().read(size)


def test_an_unauthenticated_body_is_not_read_before_the_401(client: FlaskClient) -> None:
    body = _Tripwire(b"x" * 1_000_000)
    response = client.post("/api/v1/studies", input_stream=body, content_type="application/zip",
                           headers={"Content-Length": "1000000"})  # fmt: skip
    assert response.status_code == 401
    assert not _Tripwire.read_at_all


@pytest.mark.parametrize("since", ["2024-02-30T00:00:00Z", "2024-01-01T25:00:00Z", "2024-01-01T10:61:00+01:00"])
def test_an_impossible_since_is_a_400(client: FlaskClient, since: str) -> None:
    client.post("/api/v1/studies", data=SEED_STUDY.read_bytes(), content_type="application/json", headers=AUTH)
    body = {"kind": "pull", "study": "NCT04753476", "server": "hapi", "options": {"since": since}}
    response = client.post("/api/v1/jobs", json=body, headers=AUTH)
    assert response.status_code == 400, response.json
    assert (response.json or {})["issue"][0]["expression"] == ["options.since"]
