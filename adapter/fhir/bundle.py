"""Transaction and batch Bundle entries and bodies, and chunking by entry count and bytes.

A push serializes each entry once, as bytes, and a Bundle body is those bytes
joined: a push of a million resources never builds a million-entry dict or
serializes a resource twice. ``put_entry`` is the one shape of a PUT-to-id
entry; ``put_entry_bytes`` gives the same entry around a resource already
serialized. Chunks keep the order they are given, so a resource placed before
the ones that refer to it stays before them, in the same bundle or an earlier one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from adapter.fhir.datatypes import JSON
from adapter.fhir.json import dumpb

log = logging.getLogger(__name__)

T = TypeVar("T")

_ENVELOPE = len(b'{"resourceType":"Bundle","type":"transaction","entry":[]}')


def put_entry(resource: Mapping[str, Any]) -> JSON:
    """A PUT-to-id entry (update as create): ``fullUrl`` ``urn:uuid:<id>``, ``request.url`` ``<Type>/<id>``."""
    kind, rid = resource["resourceType"], resource["id"]
    return {"fullUrl": f"urn:uuid:{rid}", "resource": resource, "request": {"method": "PUT", "url": f"{kind}/{rid}"}}


def put_entry_bytes(resource_type: str, resource_id: str, resource_json: bytes) -> bytes:
    """``put_entry`` around an already serialized resource, whose bytes are spliced in rather than parsed again.

    Type and id go in unescaped: FHIR ids and type names are ``[A-Za-z0-9\\-.]``, nothing JSON escapes.
    """
    fields = {b"type": resource_type.encode(), b"id": resource_id.encode(), b"resource": resource_json}
    return _PUT_ENTRY_TEMPLATE % fields


def _put_entry_template() -> bytes:
    """``put_entry``'s serialization as a %-template: derived from it, so the two shapes cannot drift apart."""
    stand_in = {"resourceType": "\0type", "id": "\0id"}
    template = dumpb(put_entry(stand_in)).replace(b"%", b"%%").replace(dumpb(stand_in), b"%(resource)s")
    return template.replace(b"\\u0000type", b"%(type)s").replace(b"\\u0000id", b"%(id)s")


_PUT_ENTRY_TEMPLATE = _put_entry_template()  # a plain %-format costs a push of a million entries nothing


def conditional_put_entry(resource: Mapping[str, Any], condition: str) -> bytes:
    """A conditional update entry, for servers that refuse client-assigned ids; the server keeps its own id."""
    body = {key: value for key, value in resource.items() if key != "id"}
    request = {"method": "PUT", "url": f"{resource['resourceType']}?{condition}"}
    return dumpb({"resource": body, "request": request})


def delete_entry(resource_type: str, resource_id: str) -> bytes:
    return dumpb({"request": {"method": "DELETE", "url": f"{resource_type}/{resource_id}"}})


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

