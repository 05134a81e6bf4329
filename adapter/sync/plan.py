"""The plan of a push: what to write, and in which dependency level.

Every resource is serialized once and hashed; the journal says whether the server
has this exact content already (unchanged), an older one (update) or none
(create). Each resource to write gets a dependency level one above the highest
level among the resources of this run it refers to, so a level only refers to
earlier ones. The plan is spooled to the journal's SQLite file, not held in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from adapter.fhir.json import dumpb
from adapter.fhir.references import references
from adapter.sync.journal import Journal, content_hash
from adapter.sync.report import Failure, PushReport


def plan(
    resources: Iterable[Mapping[str, Any]], journal: Journal, report: PushReport, *, full: bool, keep_bodies: bool
) -> None:
    """Spool ``resources`` to the journal's plan with their level, counting each action in ``report``.

    ``full`` plans unchanged resources for writing too; ``keep_bodies`` keeps what is to be written (a dry
    run keeps none).
    """
    journal.plan_begin()
    try:
        for resource in resources:
            resource_type, resource_id = resource.get("resourceType"), resource.get("id")
            if not isinstance(resource_type, str) or not isinstance(resource_id, str):
                report.failures.append(Failure(f"{resource_type}/{resource_id}", 0, "resource has no type or id"))
                continue
            key = f"{resource_type}/{resource_id}"
            body = dumpb(resource)
            digest = content_hash(body)
            recorded = journal.recorded(key)
            action = "create" if recorded is None else "unchanged" if recorded.hash == digest else "update"
            write = full or action != "unchanged"
            # What is not written needs no level: it is on the server already, so nothing waits for it.
            tier = journal.plan_tier(references(body) - {key}) + 1 if write else -1
            if not journal.plan_add(key, tier, action, digest, body if write and keep_bodies else None):
                report.failures.append(Failure(key, 0, "the same resource id twice in the input; the first was kept"))
                report.count(resource_type).failed += 1
                continue
            setattr(report.count(resource_type), action, getattr(report.count(resource_type), action) + 1)
    finally:
        journal.plan_end()
