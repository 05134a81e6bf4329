"""The query plan against a server that lacks a search parameter (HAPI always has them, so stubbed), and LINKS.csv."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses

from adapter.client import FhirClient
from adapter.collect.fetch import check_plan
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
