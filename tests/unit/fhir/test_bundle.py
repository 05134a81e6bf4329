"""Bundle entries and bodies, and chunking by entries and bytes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.fhir.bundle import bundle_body, chunks, conditional_put_entry, put_entry, put_entry_bytes
from adapter.fhir.json import dumpb


def test_put_entry_is_a_transaction_entry_with_urn_uuid_full_url() -> None:
    resource = {"resourceType": "Patient", "id": "0b8f1c7e-0000-5000-8000-000000000001", "gender": "female"}
    assert put_entry(resource) == {
        "fullUrl": f"urn:uuid:{resource['id']}",
        "resource": resource,
        "request": {"method": "PUT", "url": f"Patient/{resource['id']}"},
    }


@given(
    rid=st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True),
    text=st.text(),
)
def test_put_entry_bytes_are_put_entry_serialized(rid: str, text: str) -> None:
    resource = {"resourceType": "Observation", "id": rid, "note": [{"text": text}]}  # text may hold "%" or quotes
    assert put_entry_bytes("Observation", rid, dumpb(resource)) == dumpb(put_entry(resource))


def test_bundle_body_is_valid_json_in_entry_order() -> None:
    entries = [put_entry_bytes("Patient", f"p{i}", dumpb({"resourceType": "Patient", "id": f"p{i}"})) for i in range(3)]
    bundle = json.loads(bundle_body(entries, "batch"))
    assert bundle["type"] == "batch"
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["p0", "p1", "p2"]
    with pytest.raises(ValueError, match="transaction or batch"):
        bundle_body(entries, "collection")


def test_conditional_entry_drops_our_id_and_targets_the_identifier() -> None:
    resource = {"resourceType": "Patient", "id": "ours", "identifier": [{"system": "s", "value": "v"}]}
    entry = json.loads(conditional_put_entry(resource, "identifier=s|v"))
    assert "id" not in entry["resource"] and entry["request"] == {"method": "PUT", "url": "Patient?identifier=s|v"}


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=400), max_size=60),
    max_entries=st.integers(min_value=1, max_value=10),
    max_bytes=st.integers(min_value=100, max_value=2000),
)
def test_chunks_keep_order_and_respect_both_limits(sizes: list[int], max_entries: int, max_bytes: int) -> None:
    items = [b"x" * size for size in sizes]
    result = list(chunks(items, max_entries=max_entries, max_bytes=max_bytes, size=len))
    assert [item for chunk in result for item in chunk] == items
    for chunk in result:
        assert 1 <= len(chunk) <= max_entries
        body = bundle_body(chunk)
        assert len(body) <= max_bytes or len(chunk) == 1  # only a lone oversized entry may exceed it
