"""The query plan against a server that lacks a search parameter (HAPI always has them, so stubbed), and LINKS.csv."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import pytest
import requests
import responses

from adapter.client import FhirClient
from adapter.collect.fetch import check_plan, groups, search_query, tokens, url_length
from adapter.collect.links import HospitalId, read_links
from adapter.errors import ConfigError, InputError

BASE = "http://hospital.example/fhir"


def statement(observation_params: list[str]) -> dict[str, object]:
    def resource(kind: str, names: list[str]) -> dict[str, object]:
        return {"type": kind, "searchParam": [{"name": n, "type": "token"} for n in names]}

    return {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "rest": [{"mode": "server", "resource": [
        resource("Patient", ["identifier"]),
        resource("Observation", observation_params),
        resource("MedicationAdministration", ["patient", "code", "effective-time", "_lastUpdated"]),
    ]}]}


@responses.activate
def test_a_server_without_a_needed_search_parameter_is_refused_naming_it() -> None:
    responses.get(f"{BASE}/metadata", json=statement(["patient", "code", "_lastUpdated"]))
    with FhirClient(BASE) as client, pytest.raises(ConfigError, match="search parameter Observation:date"):
        check_plan(client, since=False)
    assert [call.request.url for call in responses.calls] == [f"{BASE}/metadata"]  # no patient data asked for


@responses.activate
def test_a_later_run_needs_last_updated() -> None:
    responses.get(f"{BASE}/metadata", json=statement(["patient", "code", "date"]))
    with FhirClient(BASE) as client:
        check_plan(client, since=False)
        with pytest.raises(ConfigError, match="Observation:_lastUpdated"):
            check_plan(client, since=True)


def test_links_are_read_per_subject(tmp_path: Path) -> None:
    path = tmp_path / "LINKS.csv"
    path.write_text("subject_id,identifier_system,identifier_value\n01-0001,urn:oid:1.2.3,MRN1\n"
                    "01-0001,http://national.example/id,N9\n01-0002,urn:oid:1.2.3,MRN2\n")
    assert read_links(path) == {
        "01-0001": (HospitalId("urn:oid:1.2.3", "MRN1"), HospitalId("http://national.example/id", "N9")),
        "01-0002": (HospitalId("urn:oid:1.2.3", "MRN2"),),
    }


def test_a_bad_link_row_names_line_and_column_but_not_the_identifier(tmp_path: Path) -> None:
    path = tmp_path / "LINKS.csv"
    path.write_text("subject_id,identifier_system,identifier_value\n01-0001,not a uri,SECRET-MRN\n")
    with pytest.raises(InputError) as caught:
        read_links(path)
    assert ":2: identifier_system" in str(caught.value) and "SECRET-MRN" not in str(caught.value)


def test_search_tokens_escape_what_fhir_search_escapes() -> None:
    assert HospitalId("urn:oid:1", "a,b|c").token() == "urn:oid:1|a\\,b\\|c"


def test_patients_are_grouped_within_the_url_limit_and_the_count() -> None:
    codes = tokens([("http://loinc.org", f"{n}-{n % 10}") for n in range(1000, 1060)])
    since = "2026-01-01T00:00:00.000+00:00"
    patients = [f"p{n:03d}-{'x' * (n % 40)}" for n in range(300)]

    def url(group: list[str]) -> str:
        query = search_query("Observation", group, codes, first=date(2021, 3, 1), last=date(2021, 3, 29), since=since)
        return str(requests.Request("GET", f"{BASE}/Observation", params=query).prepare().url)

    found = list(groups(patients, most=40, fixed=url_length(BASE, "Observation", codes, since), max_url=3500))
    assert [p for group in found for p in group] == patients
    assert all(len(url(group)) <= 3500 and len(group) <= 40 for group in found)
    # Each group but the last is full: one more patient would break the URL length or the count.
    assert all(len(url([*group, nxt[0]])) > 3500 or len(group) == 40 for group, nxt in itertools.pairwise(found))
    assert any(len(group) < 40 for group in found[:-1])  # the URL length, not only the count, cut groups
