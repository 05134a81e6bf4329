"""What a resource refers to: find its references, read their ids, rewrite them.

A push orders resources by what they reference and, where the server chose its
own ids, rewrites references to them; a pull follows a study's references to the
resources it needs. All of them walk references here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from adapter.fhir.json import dumpb

# A relative literal reference "Type/id" (optionally with _history); contained (#x), urn: and absolute ones are not.
_RELATIVE_IN_JSON = re.compile(rb'"reference":"([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})(?:/_history/[^"/]+)?"')


def references(resource: Mapping[str, Any] | bytes) -> set[str]:
    """Every ``Type/id`` a resource (a dict, or its serialization) refers to with a relative literal reference.

    Works on the serialized bytes, which is several times faster than walking the dict: a push looks at
    every resource. A quoted ``"reference":"..."`` inside a string value is escaped in JSON and cannot match.
    """
    body = resource if isinstance(resource, bytes) else dumpb(resource)
    return {match.decode() for match in _RELATIVE_IN_JSON.findall(body)}


def ref_id(reference: Any, resource_type: str | None = None) -> str | None:
    """The id in a Reference (``Type/id``, an absolute URL or ``Type/id/_history/n``), optionally of one type."""
    if not isinstance(reference, Mapping) or not isinstance(reference.get("reference"), str):
        return None
    parts = reference["reference"].split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) < 2 or (resource_type and parts[-2] != resource_type):
        return None
    return str(parts[-1])


def reference_elements(node: Any) -> Iterator[Mapping[str, Any]]:
    """Every Reference (an object with a string ``reference``) anywhere in ``node``, in document order."""
    if isinstance(node, Mapping):
        if isinstance(node.get("reference"), str):
            yield node
        for value in node.values():
            yield from reference_elements(value)
    elif isinstance(node, list):
        for item in node:
            yield from reference_elements(item)


def referenced_ids(node: Any, resource_type: str) -> set[str]:
    """Ids of every ``resource_type`` reference anywhere in ``node`` (relative, absolute or versioned)."""
    return {rid for element in reference_elements(node) if (rid := ref_id(element, resource_type))}


def rewrite_references(node: Any, server_ids: Mapping[str, str]) -> Any:
    """``node`` with each reference to one of ``server_ids``' keys (``Type/id``) pointing at the server's id instead.

    A copy where anything changes; ``node`` itself when ``server_ids`` is empty.
    """
    if not server_ids:
        return node
    if isinstance(node, dict):
        rewritten = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in server_ids:
                value = f"{value.split('/', 1)[0]}/{server_ids[value]}"
            rewritten[key] = rewrite_references(value, server_ids)
        return rewritten
    if isinstance(node, list):
        return [rewrite_references(item, server_ids) for item in node]
    return node
