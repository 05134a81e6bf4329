"""Deterministic resource ids: the same natural key always gives the same id.

A re-run of a push writes to the same ids (PUT), so it never duplicates. Ids are
UUID v5 of a project namespace, the resource type and the natural key.
"""

from __future__ import annotations

import uuid

# Fixed forever: changing it would give every resource a new id on every server.
PROJECT_NAMESPACE = uuid.UUID("5a1f3c2e-8b0d-5e7a-9c4f-7e2d1b6a0c93")


def resource_id(resource_type: str, *natural_key: str) -> str:
    """The id of the ``resource_type`` resource whose natural key is ``natural_key``."""
    if not natural_key or any(part == "" for part in natural_key):
        raise ValueError(f"{resource_type}: a natural key needs non-empty parts, got {natural_key!r}")
    name = "|".join((resource_type, *natural_key))
    return str(uuid.uuid5(PROJECT_NAMESPACE, name))
