"""Fault paths of pull that a real server will not produce on demand (HTTP stubbed with ``responses``).

The stubbed server holds one study with one subject (a ResearchSubject and its Patient).
Search tests stub the Observation pages; Bulk Data tests stub ``Patient/$export`` (the
study has no enrollment Group), its status URL and its files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from adapter.auth import BearerAuth
from adapter.client import FhirClient
from adapter.errors import ServerError
from adapter.settings import Secret
from adapter.sync.bulk import STATUS_FILE, SUBJECT_TYPES, Kickoff, cancel_saved_export
from adapter.sync.pull import pull
from tests.unit.conftest import Sleeps

BASE = "https://fhir.test/r4"
NCT = "NCT00000042"
STATUS = f"{BASE}/$export-poll-status?_jobId=job-1"
FILE = f"{BASE}/Binary/obs-1"
STUDY = {"resourceType": "ResearchStudy", "id": "rs1",
         "identifier": [{"system": "https://clinicaltrials.gov", "value": NCT}], "status": "active"}  # fmt: skip
SUBJECT = {"resourceType": "ResearchSubject", "id": "sub1", "status": "on-study",
           "study": {"reference": "ResearchStudy/rs1"}, "individual": {"reference": "Patient/p1"}}  # fmt: skip
PATIENT = {"resourceType": "Patient", "id": "p1"}
METADATA = {
    "resourceType": "CapabilityStatement", "fhirVersion": "4.0.1",
    "rest": [{"mode": "server", "resource": [{"type": "Patient", "operation": [{"name": "export"}]}]}],
}  # fmt: skip


def observation(number: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"o{number}", "status": "final",
            "code": {"text": "glucose"}, "subject": {"reference": "Patient/p1"}}  # fmt: skip


def page(*resources: dict[str, Any], total: int | None = None, following: str | None = None,
         included: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:  # fmt: skip
    """A searchset Bundle: ``resources`` as matches, ``included`` as includes, an optional next link."""
    entries = [{"resource": r, "search": {"mode": "match"}} for r in resources]
    entries += [{"resource": r, "search": {"mode": "include"}} for r in included]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    if total is not None:
        bundle["total"] = total
    if following:
        bundle["link"] = [{"relation": "next", "url": following}]
    return bundle


@pytest.fixture
def client(sleeps: Sleeps) -> FhirClient:
    # No retries: a stubbed error answer stays an error, and nothing really sleeps.
    return FhirClient(BASE, sleep=sleeps, max_retries=0)


@pytest.fixture
def server() -> Any:
    """The study and its one subject, for every test; each test adds what it is about."""
    with responses.RequestsMock() as stubs:
        stubs.get(f"{BASE}/ResearchStudy", json=page(STUDY, total=1))
        stubs.get(f"{BASE}/ResearchSubject", json=page(SUBJECT, total=1, included=(PATIENT,)))
        yield stubs


def empty_search(server: Any, *kinds: str) -> None:
    for kind in kinds:
        server.get(f"{BASE}/{kind}", json=page(total=0))


def query(**params: str) -> Any:
    return matchers.query_param_matcher(params)


# --- search --------------------------------------------------------------------------------------


def test_a_next_link_seen_twice_stops_the_pull_with_an_error(server: Any, client: FhirClient, tmp_path: Path) -> None:
    empty_search(server, "Consent")
    server.get(f"{BASE}/Observation", match=[query(patient="p1", _count="200")],
               json=page(observation(1), following=f"{BASE}?_getpages=a&_getpagesoffset=200"))  # fmt: skip
    server.get(f"{BASE}", match=[query(_getpages="a", _getpagesoffset="200")],
               json=page(observation(2), following=f"{BASE}?_getpages=a&_getpagesoffset=400"))  # fmt: skip
    fetched_again: list[str] = []

    def loop_back(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        # The third page links back to the second. Without loop detection the pull would read
        # pages for ever; fail after a few rounds instead of hanging.
        fetched_again.append(str(request.url))
        assert len(fetched_again) < 5, "the pull kept following a next link it had already followed"
        return 200, {}, json.dumps(page(observation(3), following=f"{BASE}?_getpages=a&_getpagesoffset=200"))

    server.add_callback("GET", f"{BASE}", callback=loop_back,
                        match=[query(_getpages="a", _getpagesoffset="400")])  # fmt: skip
    with pytest.raises(ServerError, match="loop back to a page already read") as raised:
        pull(client, NCT, tmp_path, mode="search")
    assert raised.value.url == f"{BASE}?_getpages=a&_getpagesoffset=200"
    assert len(fetched_again) == 1, "stopped before reading the looped page again"


def test_a_total_that_disagrees_with_the_matches_received_makes_the_report_not_ok(
    server: Any, client: FhirClient, tmp_path: Path
) -> None:
    # Three matches announced; two pages arrive with o1, o2 and o2 again (two distinct).
    server.get(f"{BASE}/Observation", match=[query(patient="p1", _count="200")],
               json=page(observation(1), observation(2), total=3, following=f"{BASE}?_getpages=b"))  # fmt: skip
    server.get(f"{BASE}", match=[query(_getpages="b")], json=page(observation(2), total=3))
    empty_search(server, "Consent", "MedicationAdministration")
    report = pull(client, NCT, tmp_path, mode="search")
    assert not report.ok
    assert report.problems == ["Observation search {'patient': 'p1'}: the server said 3 matches, 2 arrived"]
    assert report.counts["Observation"] == 2 and report.duplicates == 1
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["extension"]["trialfhir"]["problems"] == report.problems, "the mismatch is in the manifest too"


def test_a_server_that_leaves_out_next_links_stops_the_pull_with_an_error_the_manifest_keeps(
    server: Any, client: FhirClient, tmp_path: Path
) -> None:
    # A first page of 2 of the 5 matches the server reports, and no next link to the others.
    server.get(f"{BASE}/Observation", match=[query(patient="p1", _count="2")],
               json=page(observation(1), observation(2), total=5))  # fmt: skip
    empty_search(server, "Consent")
    with pytest.raises(ServerError, match=r"reported 5 matches but sent 2 and no next link to the rest") as raised:
        pull(client, NCT, tmp_path, mode="search", page_size=2)
    assert "--page-size" in str(raised.value) and "Observation search" in str(raised.value)
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    [problem] = manifest["extension"]["trialfhir"]["problems"]
    assert problem.startswith("the pull stopped before it ended: ") and "no next link" in problem
    assert {o["type"]: o["count"] for o in manifest["output"]}["Observation"] == 2  # what the files hold


def test_the_page_size_is_sent_as_count(server: Any, client: FhirClient, tmp_path: Path) -> None:
    server.get(f"{BASE}/Observation", match=[query(patient="p1", _count="7")], json=page(observation(1), total=1))
    empty_search(server, "Consent", "MedicationAdministration")
    report = pull(client, NCT, tmp_path, mode="search", page_size=7)
    assert report.ok and report.counts["Observation"] == 1


def test_a_total_that_counts_only_matches_not_includes_is_ok(server: Any, client: FhirClient, tmp_path: Path) -> None:
    # The contrast to the test above: the subject search's total (1) leaves out the included
    # Patient, and pages that agree with their total raise nothing.
    server.get(f"{BASE}/Observation", match=[query(patient="p1", _count="200")],
               json=page(observation(1), observation(2), total=3, following=f"{BASE}?_getpages=c"))  # fmt: skip
    server.get(f"{BASE}", match=[query(_getpages="c")], json=page(observation(3), total=3))
    empty_search(server, "Consent", "MedicationAdministration")
    report = pull(client, NCT, tmp_path, mode="search")
    assert report.ok, report.problems
    assert report.counts == {"ResearchStudy": 1, "ResearchSubject": 1, "Patient": 1, "Observation": 3}


# --- Bulk Data $export ---------------------------------------------------------------------------


def kickoff() -> Kickoff:
    """The kick-off pull plans for the stubbed study (what a saved status file must name to be resumed)."""
    params = {"_type": ",".join(SUBJECT_TYPES), "_outputFormat": "application/fhir+ndjson"}
    return Kickoff("Patient/$export", params, ("p1",))


def export_server(server: Any, *, status: str = STATUS) -> None:
    """The capability statement and a kick-off that answers 202 with ``status`` as Content-Location."""
    server.get(f"{BASE}/metadata", json=METADATA)
    server.post(f"{BASE}/Patient/$export", status=202, headers={"Content-Location": status},
                match=[matchers.header_matcher({"Prefer": "respond-async"})])  # fmt: skip


def complete(*files: tuple[str, str]) -> dict[str, Any]:
    return {"transactionTime": "2024-05-01T00:00:00Z", "request": f"{BASE}/Patient/$export",
            "requiresAccessToken": True, "output": [{"type": kind, "url": url} for kind, url in files],
            "error": []}  # fmt: skip


def ndjson(*resources: dict[str, Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in resources)


def calls(server: Any, method: str, url: str) -> int:
    return sum(1 for call in server.calls if call.request.method == method and call.request.url == url)


def test_status_polls_honour_retry_after_up_to_the_poll_cap(
    server: Any, client: FhirClient, sleeps: Sleeps, tmp_path: Path
) -> None:
    export_server(server)
    server.get(STATUS, status=202, headers={"Retry-After": "3", "X-Progress": "queued"})
    server.get(STATUS, status=202, headers={"Retry-After": "120"})  # HAPI's usual advice
    server.get(STATUS, status=202)  # no advice: our own interval, grown once per poll (1 -> 1.5 -> 2.25)
    server.get(STATUS, json=complete(("Observation", FILE)))
    server.get(FILE, body=ndjson(observation(1), observation(2)))
    server.delete(STATUS, status=202)
    report = pull(client, NCT, tmp_path, mode="bulk", sleep=sleeps, poll_interval=1.0, poll_cap=5.0)
    assert sleeps == [3.0, 5.0, 2.25]
    assert report.ok and report.mode == "bulk" and report.counts["Observation"] == 2
    assert calls(server, "DELETE", STATUS) == 1, "a finished job is released"
    assert not (tmp_path / STATUS_FILE).exists()


def test_an_http_date_retry_after_is_capped_too(
    server: Any, client: FhirClient, sleeps: Sleeps, tmp_path: Path
) -> None:
    export_server(server)
    server.get(STATUS, status=202, headers={"Retry-After": "Fri, 31 Dec 2100 23:59:59 GMT"})
    server.get(STATUS, json=complete())
    server.delete(STATUS, status=202)
    pull(client, NCT, tmp_path, mode="bulk", sleep=sleeps, poll_cap=4.0)
    assert sleeps == [4.0]


def _poll_fails(server: Any) -> None:
    outcome = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "error", "code": "exception", "diagnostics": "export job failed"}]}  # fmt: skip
    server.get(STATUS, status=202)
    server.get(STATUS, status=500, json=outcome)


def _file_is_gone(server: Any) -> None:
    server.get(STATUS, json=complete(("Observation", FILE)))
    server.get(FILE, status=404)


def _file_holds_another_type(server: Any) -> None:
    server.get(STATUS, json=complete(("Observation", FILE)))
    server.get(FILE, body=ndjson(observation(1), PATIENT))


def _never_finishes(server: Any) -> None:
    server.get(STATUS, status=202, headers={"Retry-After": "2"})


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (_poll_fails, "HTTP 500: error: export job failed"),
        (_file_is_gone, "HTTP 404"),
        (_file_holds_another_type, "a Patient in the Observation file"),
        (_never_finishes, "did not finish within 5 s"),
    ],
)
def test_a_failure_after_kick_off_cancels_the_job_with_delete(
    server: Any, client: FhirClient, sleeps: Sleeps, tmp_path: Path, failure: Any, message: str
) -> None:
    export_server(server)
    failure(server)
    server.delete(STATUS, status=202)
    with pytest.raises(ServerError, match=message):
        pull(client, NCT, tmp_path, mode="bulk", sleep=sleeps, max_wait=5.0)
    assert calls(server, "DELETE", STATUS) == 1
    assert not (tmp_path / STATUS_FILE).exists(), "a cancelled job is not resumed"


def test_an_interrupted_pull_keeps_the_job_and_sends_no_delete(
    server: Any, client: FhirClient, tmp_path: Path
) -> None:
    # The contrast to the test above: Ctrl-C is not a failure, the next pull resumes the job.
    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    export_server(server)
    server.get(STATUS, status=202)
    with pytest.raises(KeyboardInterrupt):
        pull(client, NCT, tmp_path, mode="bulk", sleep=interrupt)
    assert calls(server, "DELETE", STATUS) == 0
    assert json.loads((tmp_path / STATUS_FILE).read_text(encoding="utf-8"))["status"] == STATUS


def save_status(folder: Path, url: str) -> None:
    document = {"status": url, "kickoff": kickoff().describe(), "started": "2024-05-01T00:00:00+00:00"}
    (folder / STATUS_FILE).write_text(json.dumps(document), encoding="utf-8")


def test_a_saved_status_url_is_resumed_without_a_new_kick_off(server: Any, client: FhirClient, tmp_path: Path) -> None:
    saved = f"{BASE}/$export-poll-status?_jobId=saved"
    save_status(tmp_path, saved)
    server.get(f"{BASE}/metadata", json=METADATA)
    server.get(saved, json=complete(("Observation", FILE)))
    server.get(FILE, body=ndjson(observation(1)))
    server.delete(saved, status=202)
    report = pull(client, NCT, tmp_path, mode="bulk")
    assert report.ok and report.counts["Observation"] == 1
    assert not any(call.request.method == "POST" for call in server.calls), "no second kick-off"


@pytest.mark.parametrize("gone", [404, 410])
def test_a_saved_status_url_the_server_no_longer_knows_starts_a_new_export(
    server: Any, client: FhirClient, tmp_path: Path, gone: int
) -> None:
    # Servers drop finished or abandoned jobs after a while; resuming one of those is not an
    # error for the user to clear by hand: the pull starts the same export again.
    saved = f"{BASE}/$export-poll-status?_jobId=expired"
    save_status(tmp_path, saved)
    server.get(saved, status=gone)
    export_server(server)
    server.get(STATUS, json=complete(("Observation", FILE)))
    server.get(FILE, body=ndjson(observation(1)))
    server.delete(STATUS, status=202)
    report = pull(client, NCT, tmp_path, mode="bulk")
    assert report.ok and report.counts["Observation"] == 1
    assert calls(server, "POST", f"{BASE}/Patient/$export") == 1, "a new kick-off"
    assert calls(server, "DELETE", saved) == 0, "nothing to cancel: the server has no such job"
    assert calls(server, "DELETE", STATUS) == 1
    assert not (tmp_path / STATUS_FILE).exists()


def test_a_saved_job_that_failed_is_still_an_error(server: Any, client: FhirClient, tmp_path: Path) -> None:
    # Only a job the server no longer knows is started again; one that failed is reported and cancelled.
    saved = f"{BASE}/$export-poll-status?_jobId=failed"
    save_status(tmp_path, saved)
    server.get(f"{BASE}/metadata", json=METADATA)
    outcome = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "error", "code": "invalid", "diagnostics": "bad"}]}  # fmt: skip
    server.get(saved, status=400, json=outcome)
    server.delete(saved, status=202)
    with pytest.raises(ServerError, match="HTTP 400"):
        pull(client, NCT, tmp_path, mode="bulk")
    assert calls(server, "DELETE", saved) == 1
    assert not any(call.request.method == "POST" for call in server.calls)


@pytest.mark.parametrize("gone", [404, 410])
def test_cancelling_a_job_the_server_no_longer_knows_forgets_it(client: FhirClient, tmp_path: Path, gone: int) -> None:
    saved = f"{BASE}/$export-poll-status?_jobId=expired"
    save_status(tmp_path, saved)
    with responses.RequestsMock() as stubs:
        stubs.delete(saved, status=gone)
        assert cancel_saved_export(client, tmp_path)
    assert not (tmp_path / STATUS_FILE).exists()


def test_cancelling_a_job_the_server_fails_to_delete_is_an_error(client: FhirClient, tmp_path: Path) -> None:
    # The contrast to the test above: the job may still run, so its status URL is kept.
    saved = f"{BASE}/$export-poll-status?_jobId=busy"
    save_status(tmp_path, saved)
    with responses.RequestsMock() as stubs, pytest.raises(ServerError, match="HTTP 500"):
        stubs.delete(saved, status=500)
        cancel_saved_export(client, tmp_path)
    assert (tmp_path / STATUS_FILE).exists()


# --- whose token goes where (issue 13): only when the manifest asks, only to a trusted origin ------------

TOKEN = "server-token-0123456789"
ELSEWHERE = "https://files.test/obs-1.ndjson"


def token_client(sleeps: Sleeps, *allowed: str) -> FhirClient:
    return FhirClient(BASE, auth=BearerAuth(Secret(TOKEN)), sleep=sleeps, max_retries=0, allowed_origins=allowed)


def sent_token(server: Any, url: str) -> list[str | None]:
    return [call.request.headers.get("Authorization") for call in server.calls if call.request.url == url]


@pytest.mark.parametrize(("requires", "expected"), [(True, f"Bearer {TOKEN}"), (False, None)])
def test_the_token_goes_with_a_file_only_when_the_manifest_asks(
    server: Any, sleeps: Sleeps, tmp_path: Path, requires: bool, expected: str | None
) -> None:
    export_server(server)
    server.get(STATUS, json={**complete(("Observation", FILE)), "requiresAccessToken": requires})
    server.get(FILE, body=ndjson(observation(1)))
    server.delete(STATUS, status=202)
    report = pull(token_client(sleeps), NCT, tmp_path, mode="bulk", sleep=sleeps)
    assert report.ok and report.counts["Observation"] == 1
    assert sent_token(server, FILE) == [expected]


def test_a_file_on_another_origin_is_refused_unless_allowed(server: Any, sleeps: Sleeps, tmp_path: Path) -> None:
    export_server(server)
    server.get(STATUS, json=complete(("Observation", ELSEWHERE)))
    server.delete(STATUS, status=202)
    with pytest.raises(ServerError, match=r"another origin, https://files\.test:443"):
        pull(token_client(sleeps), NCT, tmp_path, mode="bulk", sleep=sleeps)
    assert sent_token(server, ELSEWHERE) == []


def test_a_file_on_an_allowed_origin_gets_the_token(server: Any, sleeps: Sleeps, tmp_path: Path) -> None:
    export_server(server)
    server.get(STATUS, json=complete(("Observation", ELSEWHERE)))
    server.get(ELSEWHERE, body=ndjson(observation(1)))
    server.delete(STATUS, status=202)
    report = pull(token_client(sleeps, "https://files.test"), NCT, tmp_path, mode="bulk", sleep=sleeps)
    assert report.counts["Observation"] == 1
    assert sent_token(server, ELSEWHERE) == [f"Bearer {TOKEN}"]


def test_the_cli_says_what_the_server_did_as_json_and_exits_3(
    server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapter.cli import main

    monkeypatch.setenv("ADAPTER_MAX_RETRIES", "0")
    server.get(f"{BASE}/Observation", match=[query(patient="p1", _count="50")],
               json=page(observation(1), total=3))  # fmt: skip
    empty_search(server, "Consent")
    code = main(["pull", "--server", BASE, "--study", NCT, "-o", str(tmp_path / "out"), "--search",
                 "--page-size", "50", "--json"])
    captured = capsys.readouterr()
    assert code == 3
    answer = json.loads(captured.out)
    assert answer["exit"] == 3 and answer["kind"] == "server error"
    assert "reported 3 matches but sent 1 and no next link" in answer["error"]
    assert "no next link" in captured.err  # a person reading the terminal sees it too


def test_the_cli_prints_the_pull_report_as_json(
    server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapter.cli import main

    monkeypatch.setenv("ADAPTER_MAX_RETRIES", "0")
    server.get(f"{BASE}/Observation", match=[query(patient="p1", _count="200")], json=page(observation(1), total=1))
    empty_search(server, "Consent", "MedicationAdministration")
    out = tmp_path / "out"
    assert main(["pull", "--server", BASE, "--study", NCT, "-o", str(out), "--search", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {
        "output": str(out), "mode": "search", "ok": True, "duplicates": 0, "problems": [],
        "counts": {"Observation": 1, "Patient": 1, "ResearchStudy": 1, "ResearchSubject": 1},
    }
    assert captured.err == ""  # no progress drawn: standard error is not a terminal
