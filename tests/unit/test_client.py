"""Fault paths of the FHIR client that a real server will not produce on demand (HTTP stubbed with ``responses``)."""

from __future__ import annotations

import email.utils
import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses

from adapter.client import USER_AGENT, FhirClient, retry_after_seconds
from adapter.errors import AuthFailed, ConfigError, Conflict, NotFound, Rejected, ServerError
from tests.unit.conftest import Sleeps

BASE = "https://fhir.test/r4"
OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "processing", "diagnostics": "Observation.status: value is required"}],
}


@pytest.fixture
def client(sleeps: Sleeps) -> FhirClient:
    return FhirClient(BASE, sleep=sleeps, max_retries=3, backoff=1.0, backoff_cap=4.0, retry_after_cap=60.0)


@responses.activate
def test_429_with_retry_after_seconds_waits_that_long(client: FhirClient, sleeps: Sleeps) -> None:
    responses.get(f"{BASE}/Patient/p1", status=429, headers={"Retry-After": "7"})
    responses.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    assert client.read("Patient", "p1")["id"] == "p1"
    assert sleeps == [7.0]
    assert len(responses.calls) == 2


@responses.activate
def test_429_with_retry_after_http_date_waits_until_then_capped(client: FhirClient, sleeps: Sleeps) -> None:
    soon = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    much_later = email.utils.format_datetime(datetime.now(UTC) + timedelta(hours=2), usegmt=True)
    responses.get(f"{BASE}/Patient/p1", status=429, headers={"Retry-After": soon})
    responses.get(f"{BASE}/Patient/p1", status=429, headers={"Retry-After": much_later})
    responses.get(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    client.read("Patient", "p1")
    assert 25 <= sleeps[0] <= 30
    assert sleeps[1] == 60.0  # the cap, not two hours


def test_retry_after_forms() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Wed, 01 May 2024 12:00:45 GMT", now) == 45
    assert retry_after_seconds("Wed, 01 May 2024 11:00:00 GMT", now) == 0  # already past
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


@responses.activate
def test_503_backs_off_exponentially_with_jitter_then_succeeds(client: FhirClient, sleeps: Sleeps) -> None:
    for _ in range(3):
        responses.get(f"{BASE}/metadata", status=503)
    responses.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"})
    assert client.capabilities().fhir_version == "4.0.1"
    assert len(sleeps) == 3
    # base 1 s doubling, capped at 4 s; jitter keeps each wait within [ceiling/2, ceiling]
    for wait, ceiling in zip(sleeps, [1.0, 2.0, 4.0], strict=True):
        assert ceiling / 2 <= wait <= ceiling


@responses.activate
def test_503_past_the_retry_limit_raises_with_status_and_outcome(client: FhirClient) -> None:
    responses.get(f"{BASE}/Patient/p1", status=503, json=OUTCOME)
    with pytest.raises(ServerError) as raised:
        client.read("Patient", "p1")
    assert raised.value.status == 503 and raised.value.retryable
    assert raised.value.outcome == OUTCOME
    assert "Observation.status: value is required" in str(raised.value)
    assert len(responses.calls) == 4  # the first try and three retries


@responses.activate
def test_connection_reset_is_retried_for_idempotent_requests(client: FhirClient, sleeps: Sleeps) -> None:
    responses.put(f"{BASE}/Patient/p1", body=requests.ConnectionError("Connection reset by peer"))
    responses.put(f"{BASE}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    client.update("Patient/p1", {"resourceType": "Patient", "id": "p1"})
    assert len(responses.calls) == 2 and len(sleeps) == 1


@responses.activate
def test_connection_reset_on_a_non_idempotent_post_is_not_retried(client: FhirClient, sleeps: Sleeps) -> None:
    responses.post(BASE, body=requests.ConnectionError("Connection reset by peer"))
    with pytest.raises(ServerError) as raised:
        client.post_bundle({"resourceType": "Bundle", "type": "batch", "entry": []}, idempotent=False)
    assert raised.value.status == 0 and "Connection reset" in str(raised.value)
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_a_rejected_write_is_not_retried_and_carries_the_outcome(client: FhirClient, sleeps: Sleeps) -> None:
    responses.put(f"{BASE}/Observation/o1", status=422, json=OUTCOME)
    with pytest.raises(ServerError) as raised:
        client.update("Observation/o1", {"resourceType": "Observation", "id": "o1"})
    assert raised.value.status == 422 and not raised.value.retryable
    assert raised.value.outcome == OUTCOME
    assert sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_every_request_has_timeout_user_agent_and_fhir_json(client: FhirClient) -> None:
    seen: list[requests.PreparedRequest] = []
    responses.add_callback(
        responses.POST, BASE, callback=lambda r: (seen.append(r), (200, {}, '{"resourceType":"Bundle"}'))[1]
    )
    client.post_bundle({"resourceType": "Bundle", "type": "transaction", "entry": []}, idempotent=True)
    request = seen[0]
    assert request.headers["User-Agent"] == USER_AGENT and USER_AGENT.startswith("trialfhir/")
    assert request.headers["Content-Type"] == "application/fhir+json"
    assert "gzip" in request.headers["Accept-Encoding"]
    assert responses.calls[0].request.req_kwargs["timeout"] == (10.0, 120.0)


@responses.activate
def test_gzip_request_bodies_when_asked(sleeps: Sleeps) -> None:
    responses.post(BASE, json={"resourceType": "Bundle"})
    with FhirClient(BASE, gzip_requests=True, sleep=sleeps) as client:
        client.post_bundle({"resourceType": "Bundle", "type": "batch"}, idempotent=True)
    request = responses.calls[0].request
    assert request.headers["Content-Encoding"] == "gzip"
    assert isinstance(request.body, bytes)
    assert json.loads(gzip.decompress(request.body)) == {"resourceType": "Bundle", "type": "batch"}


@responses.activate
def test_a_server_that_is_not_r4_gets_a_clear_error(client: FhirClient) -> None:
    responses.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement", "fhirVersion": "5.0.0"})
    with pytest.raises(ConfigError, match=r"speaks FHIR 5\.0\.0; .* needs a 4\.0\.x server"):
        client.capabilities()


def test_backoff_never_exceeds_its_cap() -> None:
    client = FhirClient(BASE, backoff=0.5, backoff_cap=3.0)
    waits = [client._backoff(attempt) for attempt in range(20)]
    assert all(1.5 <= wait <= 3.0 for wait in waits[3:]) and waits[0] <= 0.5


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, Rejected), (401, AuthFailed), (403, AuthFailed), (404, NotFound), (409, Conflict), (410, NotFound),
     (412, Conflict), (422, Rejected), (501, ServerError)],
)  # fmt: skip
@responses.activate
def test_an_error_status_raises_the_server_error_of_its_kind(
    client: FhirClient, status: int, kind: type[ServerError]
) -> None:
    responses.get(f"{BASE}/Patient/p1", status=status, json=OUTCOME)
    with pytest.raises(ServerError) as raised:
        client.read("Patient", "p1")
    assert type(raised.value) is kind
    assert raised.value.status == status and raised.value.outcome == OUTCOME


def searchset(number: int, following: str | None = None) -> dict[str, object]:
    bundle: dict[str, object] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"id": number}}]}
    if following:
        bundle["link"] = [{"relation": "self", "url": f"{BASE}/self"}, {"relation": "next", "url": following}]
    return bundle


@responses.activate
def test_search_follows_next_links_exactly_as_the_server_wrote_them(client: FhirClient) -> None:
    # Opaque: not rebuilt from the first query (no _count added back, the odd encoding kept).
    second = f"{BASE}?_getpages=4f%2Fa&_getpagesoffset=2&_bundletype=searchset"
    responses.get(f"{BASE}/Observation", json=searchset(1, following=second))
    responses.get(second, json=searchset(2))
    pages = list(client.search("Observation", {"patient": "p1", "_count": "2"}))
    assert [page["entry"][0]["resource"]["id"] for page in pages] == [1, 2]
    assert [call.request.url for call in responses.calls] == [f"{BASE}/Observation?patient=p1&_count=2", second]


@responses.activate
def test_search_stops_at_a_next_link_it_already_followed(client: FhirClient) -> None:
    second, third = f"{BASE}?_getpages=a&offset=2", f"{BASE}?_getpages=a&offset=4"
    responses.get(f"{BASE}/Observation", json=searchset(1, following=second))
    responses.get(second, json=searchset(2, following=third))
    responses.get(third, json=searchset(3, following=second))  # back to the second page
    pages = client.search("Observation", {})
    with pytest.raises(ServerError, match="loop back to a page already read") as raised:
        for _ in range(10):
            next(pages)
    assert raised.value.status == 0 and raised.value.url == second
    assert len(responses.calls) == 3, "the looped page is not read again"


STATEMENT = {
    "resourceType": "CapabilityStatement",
    "fhirVersion": "4.0.1",
    "rest": [
        {"mode": "client", "operation": [{"name": "export"}]},
        {
            "mode": "server",
            "interaction": [{"code": "transaction"}],
            "operation": [{"name": "export"}],
            "resource": [
                {"type": "Patient", "updateCreate": True, "operation": [{"name": "export"}]},
                {"type": "Group", "operation": [{"name": "export"}, {"name": "member-add"}]},
                {"type": "Observation", "updateCreate": False, "operation": [{"name": "export"}]},
                {"type": "ResearchStudy"},
            ],
        },
    ],
}


@responses.activate
def test_capabilities_are_read_once_and_name_the_export_levels(client: FhirClient) -> None:
    responses.get(f"{BASE}/metadata", json=STATEMENT)
    capabilities = client.capabilities()
    assert client.capabilities(require_r4=False) is capabilities and len(responses.calls) == 1
    # Observation's $export is no Bulk Data level; only the server's own rest counts, not mode=client.
    assert capabilities.export_levels == {"system", "Patient", "Group"}
    assert capabilities.transaction and not capabilities.batch
    assert capabilities.update_create == {"Patient": True, "Group": None, "Observation": False, "ResearchStudy": None}


@responses.activate
def test_capabilities_without_export_have_no_levels(client: FhirClient) -> None:
    responses.get(f"{BASE}/metadata", json={"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"})
    assert client.capabilities().export_levels == frozenset()


@responses.activate
def test_a_server_that_is_not_r4_is_refused_only_where_r4_is_required(client: FhirClient) -> None:
    responses.get(f"{BASE}/metadata", json={**STATEMENT, "fhirVersion": "5.0.0"})
    assert client.capabilities(require_r4=False).export_levels == {"system", "Patient", "Group"}
    with pytest.raises(ConfigError, match=r"speaks FHIR 5\.0\.0"):
        client.capabilities()
