"""Transaction and batch Bundle assembly, and chunking by entry count and bytes.

Entries are serialized once, as bytes, and a Bundle body is those bytes joined:
a push of a million resources never builds a million-entry dict or serializes a
resource twice. Chunks keep the order they are given, so a resource placed
before the ones that refer to it stays before them, in the same bundle or an
earlier one; ``references`` finds what a resource refers to, so the push can put
referenced resources in an earlier dependency level.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# A relative literal reference "Type/id" (optionally with _history); contained (#x), urn: and absolute ones are not.
_REFERENCE_IN_JSON = re.compile(rb'"reference":"([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})(?:/_history/[^"/]+)?"')
_ENVELOPE = len(b'{"resourceType":"Bundle","type":"transaction","entry":[]}')


def dumps(resource: Mapping[str, Any]) -> bytes:
    """The project's stable serialization: compact, UTF-8, keys in the order the mapper wrote them."""
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":"), sort_keys=False).encode("utf-8")


def resource_key(resource: Mapping[str, Any]) -> str:
    """``Type/id`` of a resource: its key in plans, journals and reports."""
    return f"{resource['resourceType']}/{resource['id']}"


def put_entry(resource_type: str, resource_id: str, resource_json: bytes) -> bytes:
    """A PUT-to-id entry (update as create) for an already serialized resource."""
    url = f"{resource_type}/{resource_id}".encode()
    return b'{"fullUrl":"urn:uuid:%s","resource":%s,"request":{"method":"PUT","url":"%s"}}' % (
        resource_id.encode(),
        resource_json,
        url,
    )


def conditional_put_entry(resource: Mapping[str, Any], condition: str) -> bytes:
    """A conditional update entry, for servers that refuse client-assigned ids; the server keeps its own id."""
    body = {key: value for key, value in resource.items() if key != "id"}
    request = {"method": "PUT", "url": f"{resource['resourceType']}?{condition}"}
    return dumps({"resource": body, "request": request})


def delete_entry(resource_type: str, resource_id: str) -> bytes:
    return dumps({"request": {"method": "DELETE", "url": f"{resource_type}/{resource_id}"}})


def bundle_body(entries: Iterable[bytes], bundle_type: str = "transaction") -> bytes:
    """A transaction or batch Bundle around serialized entries."""
    if bundle_type not in ("transaction", "batch"):
        raise ValueError(f"bundle type must be transaction or batch, not {bundle_type}")
    return b'{"resourceType":"Bundle","type":"%s","entry":[%s]}' % (bundle_type.encode(), b",".join(entries))


def chunks(items: Iterable[T], *, max_entries: int, max_bytes: int, size: Callable[[T], int]) -> Iterator[list[T]]:
    """Consecutive runs of ``items``, each at most ``max_entries`` long and ``max_bytes`` big once in a Bundle.

    ``size(item)`` is the item's serialized size in bytes.

    Order is kept. An item too big for any bundle goes alone into its own, with a warning: the server decides.
    """
    if max_entries < 1 or max_bytes < 1:
        raise ValueError("bundle limits must be positive")
    chunk: list[T] = []
    used = _ENVELOPE
    for item in items:
        cost = size(item) + 1  # the comma between entries
        if chunk and (len(chunk) >= max_entries or used + cost > max_bytes):
            yield chunk
            chunk, used = [], _ENVELOPE
        if not chunk and _ENVELOPE + cost > max_bytes:
            log.warning("one entry of %d bytes exceeds the bundle limit of %d bytes; sending it alone", cost, max_bytes)
        chunk.append(item)
        used += cost
    if chunk:
        yield chunk


def references(resource: Mapping[str, Any] | bytes) -> set[str]:
    """Every ``Type/id`` a resource (a dict, or its serialization) refers to with a relative literal reference.

    Works on the serialized bytes, which is several times faster than walking the dict: a push looks at
    every resource. A quoted ``"reference":"..."`` inside a string value is escaped in JSON and cannot match.
    """
    body = resource if isinstance(resource, bytes) else dumps(resource)
    return {match.decode() for match in _REFERENCE_IN_JSON.findall(body)}
