"""Finding, reading and rewriting the references in a resource."""

from __future__ import annotations

from typing import Any

from adapter.fhir.json import dumpb
from adapter.fhir.references import ref_id, referenced_ids, references, rewrite_references

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "o1",
    "extension": [{"url": "u", "valueReference": {"reference": "ResearchStudy/s1"}}],
    "subject": {"reference": "Patient/p1/_history/2"},
    "performer": [{"reference": "#contained"}, {"reference": "urn:uuid:abc"}, {"reference": "https://x/Patient/9"}],
    "note": [{"text": "reference: Patient/p2"}],
}


def test_references_finds_relative_references_anywhere_and_nothing_else() -> None:
    assert references(OBSERVATION) == {"ResearchStudy/s1", "Patient/p1"}
    assert references(dumpb(OBSERVATION)) == {"ResearchStudy/s1", "Patient/p1"}


def test_ref_id_reads_relative_absolute_and_versioned_references_of_a_type() -> None:
    assert ref_id({"reference": "Patient/p1/_history/2"}, "Patient") == "p1"
    assert ref_id({"reference": "https://x/Patient/9"}) == "9"
    assert ref_id({"reference": "Patient/p1"}, "Group") is None
    assert ref_id({"reference": "#contained"}) is None
    assert ref_id("Patient/p1") is None


def test_referenced_ids_walks_the_whole_resource_for_one_type() -> None:
    assert referenced_ids(OBSERVATION, "Patient") == {"p1", "9"}
    assert referenced_ids(OBSERVATION, "ResearchStudy") == {"s1"}
    assert referenced_ids(OBSERVATION, "Group") == set()


def test_rewrite_references_points_known_references_at_server_ids_and_leaves_the_input_alone() -> None:
    resource = {"resourceType": "ResearchSubject", "individual": {"reference": "Patient/p1"},
                "study": {"reference": "ResearchStudy/s1"}}  # fmt: skip
    rewritten = rewrite_references(resource, {"Patient/p1": "42"})
    assert rewritten["individual"] == {"reference": "Patient/42"}
    assert rewritten["study"] == {"reference": "ResearchStudy/s1"}
    assert resource["individual"] == {"reference": "Patient/p1"}
    assert rewrite_references(resource, {}) is resource
