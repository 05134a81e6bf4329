"""Push against the real HAPI server: complete, idempotent, minimal on change, honest about rejections."""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from adapter.client import FhirClient
from adapter.sync.journal import Journal, journal_path
from adapter.sync.push import push
from adapter.sync.report import PushReport
from tests.conftest import validation_errors
from tests.synthetic import counts, trial

pytestmark = pytest.mark.integration

PAGE = 50  # HAPI's largest search page unless configured otherwise


def new_nct() -> str:
    return "NCT9" + uuid.uuid4().hex[:7]


def server_state(http: requests.Session, base_url: str, resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Each expected resource as the server has it now: version and content without meta; absent ones as None."""
    by_type: dict[str, list[str]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource["id"])
    state: dict[str, Any] = {}
    for resource_type, ids in by_type.items():
        for start in range(0, len(ids), PAGE):
            page_ids = ids[start : start + PAGE]
            state.update(dict.fromkeys(f"{resource_type}/{i}" for i in page_ids))
            response = http.get(
                f"{base_url}/{resource_type}", params={"_id": ",".join(page_ids), "_count": str(PAGE)}, timeout=60
            )
            response.raise_for_status()
            for entry in response.json().get("entry", []):
                found = entry["resource"]
                meta = found.pop("meta")
                state[f"{resource_type}/{found['id']}"] = (meta["versionId"], found)
    return state


def search_counts(http: requests.Session, base_url: str, resources: Iterable[dict[str, Any]]) -> Counter[str]:
    """The server's search totals per type, restricted to this study's ids (the server is shared)."""
    totals: Counter[str] = Counter()
    by_type: dict[str, list[str]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource["id"])
    for resource_type, ids in by_type.items():
        for start in range(0, len(ids), PAGE):
            response = http.get(
                f"{base_url}/{resource_type}",
                params={"_id": ",".join(ids[start : start + PAGE]), "_summary": "count"},
                timeout=60,
            )
            totals[resource_type] += response.json()["total"]
    return totals


def run(resources: Iterable[dict[str, Any]], base_url: str, journal_dir: Path, nct: str, **options: Any) -> PushReport:
    with FhirClient(base_url) as client, Journal(journal_path(journal_dir, base_url, nct), base_url=base_url,
                                                  study=nct) as journal:  # fmt: skip
        return push(resources, client=client, journal=journal, study=nct, bundle_entries=7, concurrency=3, **options)


@pytest.fixture
def nct() -> str:
    return new_nct()


def test_synthetic_resources_are_valid_r4(fhir_http: requests.Session, fhir_base_url: str, nct: str) -> None:
    seen: set[str] = set()
    for resource in trial(nct, subjects=1, measurements=1):
        if resource["resourceType"] not in seen:
            seen.add(resource["resourceType"])
            assert validation_errors(fhir_http, fhir_base_url, resource) == []


def test_push_puts_everything_there_with_references(
    fhir_http: requests.Session, fhir_base_url: str, tmp_path: Path, nct: str
) -> None:
    resources = list(trial(nct, subjects=4, measurements=3))
    report = run(resources, fhir_base_url, tmp_path, nct)
    assert report.ok, report.failures
    assert {name: summary.written for name, summary in report.types.items()} == counts(4, 3)
    assert search_counts(fhir_http, fhir_base_url, resources) == Counter(counts(4, 3))
    state = server_state(fhir_http, fhir_base_url, resources)
    for resource in resources:
        version, stored = state[f"{resource['resourceType']}/{resource['id']}"]
        assert version == "1"
        assert stored == resource  # references included, exactly as mapped
    # The server resolves the references: every subject's observations hang off its Patient.
    subject = resources[2]
    found = fhir_http.get(f"{fhir_base_url}/Observation", params={"subject": f"Patient/{subject['id']}"}).json()
    assert found["total"] == 3


def test_push_again_writes_nothing(fhir_http: requests.Session, fhir_base_url: str, tmp_path: Path, nct: str) -> None:
    resources = list(trial(nct, subjects=3, measurements=2))
    run(resources, fhir_base_url, tmp_path, nct)
    before = server_state(fhir_http, fhir_base_url, resources)
    again = run(resources, fhir_base_url, tmp_path, nct)
    assert again.ok and again.total("written") == 0 and again.bundles == 0
    assert again.total("unchanged") == len(resources)
    assert server_state(fhir_http, fhir_base_url, resources) == before
    # --full rewrites everything; the server sees no change, so versions stay.
    full = run(resources, fhir_base_url, tmp_path, nct, full=True)
    assert full.total("written") == len(resources)
    assert server_state(fhir_http, fhir_base_url, resources) == before


def test_changing_one_measurement_writes_exactly_one_resource(
    fhir_http: requests.Session, fhir_base_url: str, tmp_path: Path, nct: str
) -> None:
    resources = list(trial(nct, subjects=3, measurements=2))
    run(resources, fhir_base_url, tmp_path, nct)
    before = server_state(fhir_http, fhir_base_url, resources)
    changed = copy.deepcopy(resources)
    target = next(r for r in changed if r["resourceType"] == "Observation")
    target["valueQuantity"]["value"] = 99.5
    report = run(changed, fhir_base_url, tmp_path, nct)
    assert report.total("written") == 1 and report.types["Observation"].update == 1
    after = server_state(fhir_http, fhir_base_url, changed)
    key = f"Observation/{target['id']}"
    assert after[key][0] == "2" and after[key][1]["valueQuantity"]["value"] == 99.5
    assert {k: v for k, v in after.items() if k != key} == {k: v for k, v in before.items() if k != key}


def test_a_rejected_resource_is_reported_and_the_rest_is_written(
    fhir_http: requests.Session, fhir_base_url: str, tmp_path: Path, nct: str
) -> None:
    resources = list(trial(nct, subjects=3, measurements=2))
    bad = next(r for r in resources if r["resourceType"] == "Observation")
    bad["status"] = "bogus"
    report = run(resources, fhir_base_url, tmp_path, nct)
    assert not report.ok
    assert [f.key for f in report.failures] == [f"Observation/{bad['id']}"]
    failure = report.failures[0]
    assert failure.status == 400 and "Unknown ObservationStatus code 'bogus'" in failure.message
    assert failure.identifier and failure.identifier.endswith(f"{nct}|S0001|GLUC|1")
    assert report.types["Observation"].failed == 1 and report.types["Observation"].written == 5
    state = server_state(fhir_http, fhir_base_url, resources)
    assert [key for key, value in state.items() if value is None] == [f"Observation/{bad['id']}"]
    # The failed resource is not journaled: fixed and pushed again, only it is written.
    bad["status"] = "final"
    retry = run(resources, fhir_base_url, tmp_path, nct)
    assert retry.ok and retry.total("written") == 1


def test_dry_run_plans_and_writes_nothing(
    fhir_http: requests.Session, fhir_base_url: str, tmp_path: Path, nct: str
) -> None:
    resources = list(trial(nct, subjects=2, measurements=2))
    run(resources[:4], fhir_base_url, tmp_path, nct)
    plan = run(resources, fhir_base_url, tmp_path, nct, dry_run=True)
    assert plan.total("written") == 0
    assert plan.types["Patient"].unchanged == 1 and plan.types["Patient"].create == 1
    assert plan.types["Observation"].create == 4
    state = server_state(fhir_http, fhir_base_url, resources)
    assert sum(value is None for value in state.values()) == len(resources) - 4


def test_removed_rows_are_kept_by_default_and_deleted_on_request(
    fhir_http: requests.Session, fhir_base_url: str, tmp_path: Path, nct: str
) -> None:
    resources = list(trial(nct, subjects=2, measurements=2))
    run(resources, fhir_base_url, tmp_path, nct)
    # Subject S0002 leaves the source entirely: Patient, ResearchSubject and two Observations.
    gone = [r for r in resources if r.get("identifier", [{}])[0].get("value", "").startswith(f"{nct}|S0002")]
    assert len(gone) == 4
    kept_resources = [r for r in resources if r not in gone]
    kept = run(kept_resources, fhir_base_url, tmp_path, nct)
    assert sorted(kept.removed) == sorted(f"{r['resourceType']}/{r['id']}" for r in gone)
    assert kept.removed_action == "kept" and kept.total("written") == 0
    # The summary counts them (a run can remove thousands); their keys go to a file (issue 13).
    assert kept.to_json(removed_file="removed.txt")["removed"] == {"action": "kept", "count": 4, "file": "removed.txt"}
    kept.write_removed(tmp_path / "removed.txt")
    assert sorted((tmp_path / "removed.txt").read_text(encoding="utf-8").split()) == sorted(kept.removed)
    assert all(value is not None for value in server_state(fhir_http, fhir_base_url, gone).values())
    deleted = run(kept_resources, fhir_base_url, tmp_path, nct, delete_removed=True)
    assert deleted.ok and deleted.removed_action == "deleted"
    assert all(value is None for value in server_state(fhir_http, fhir_base_url, gone).values())
    assert all(value is not None for value in server_state(fhir_http, fhir_base_url, kept_resources).values())
    assert run(kept_resources, fhir_base_url, tmp_path, nct).removed == []


def test_conditional_updates_for_servers_without_client_ids(
    fhir_http: requests.Session, fhir_base_url: str, tmp_path: Path, nct: str
) -> None:
    resources = list(trial(nct, subjects=2, measurements=2))
    report = run(resources, fhir_base_url, tmp_path, nct, write_mode="conditional")
    assert report.ok, report.failures
    # The server chose its own ids; references were rewritten to them.
    study = fhir_http.get(
        f"{fhir_base_url}/ResearchStudy", params={"identifier": f"https://clinicaltrials.gov|{nct}"}
    ).json()
    assert study["total"] == 1
    study_id = study["entry"][0]["resource"]["id"]
    subjects = fhir_http.get(f"{fhir_base_url}/ResearchSubject", params={"study": f"ResearchStudy/{study_id}"}).json()
    assert subjects["total"] == 2
    patient_ref = subjects["entry"][0]["resource"]["individual"]["reference"]
    assert fhir_http.get(f"{fhir_base_url}/{patient_ref}").status_code == 200
    again = run(resources, fhir_base_url, tmp_path, nct, write_mode="conditional", full=True)
    assert again.ok and again.total("written") == len(resources)
    assert (
        fhir_http.get(f"{fhir_base_url}/ResearchSubject", params={"study": f"ResearchStudy/{study_id}"}).json()["total"]
        == 2
    )


def interleaved(resources: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The same resources, observations first: levels come from references, not from input order by type."""
    yield from (r for r in resources if r["resourceType"] in ("Organization", "ResearchStudy", "Patient"))
    yield from (r for r in resources if r["resourceType"] == "Observation")
    yield from (r for r in resources if r["resourceType"] == "ResearchSubject")


def test_levels_follow_references(fhir_http: requests.Session, fhir_base_url: str, tmp_path: Path, nct: str) -> None:
    resources = list(trial(nct, subjects=5, measurements=4))
    report = run(list(interleaved(resources)), fhir_base_url, tmp_path, nct)
    assert report.ok, report.failures
    assert search_counts(fhir_http, fhir_base_url, resources) == Counter(counts(5, 4))


def test_a_write_the_journal_missed_is_resent_without_changing_the_server(
    fhir_http: requests.Session, fhir_base_url: str, tmp_path: Path, nct: str
) -> None:
    """The window a kill can hit: the server committed a bundle, the journal never recorded it."""
    resources = list(trial(nct, subjects=2, measurements=3))
    run(resources, fhir_base_url, tmp_path, nct)
    before = server_state(fhir_http, fhir_base_url, resources)
    lost = [f"Observation/{r['id']}" for r in resources if r["resourceType"] == "Observation"][:4]
    with Journal(journal_path(tmp_path, fhir_base_url, nct), base_url=fhir_base_url, study=nct) as journal:
        journal.forget(lost)
    again = run(resources, fhir_base_url, tmp_path, nct)
    assert again.total("written") == 4 and again.types["Observation"].create == 4
    assert server_state(fhir_http, fhir_base_url, resources) == before  # same content, same versions


def test_a_server_that_lost_the_data_gets_everything_again(
    fhir_http: requests.Session, fhir_base_url: str, tmp_path: Path, nct: str
) -> None:
    resources = list(trial(nct))
    first = run(resources, fhir_base_url, tmp_path, nct)
    assert first.ok and first.total("written") == len(resources)
    # As a reset server would: everything this run wrote is gone, the journal still remembers it.
    for resource in reversed(resources):
        fhir_http.delete(f"{fhir_base_url}/{resource['resourceType']}/{resource['id']}", timeout=60).raise_for_status()
    again = run(resources, fhir_base_url, tmp_path, nct)
    assert again.ok and again.total("written") == len(resources)
    assert search_counts(fhir_http, fhir_base_url, resources) == Counter(counts(3, 2))
