"""Where a pull writes: each resource once, counted, and only what changed since a given instant."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapter.errors import InputError
from adapter.fhir import elements
from adapter.fhir.ndjson import NdjsonWriter
from adapter.fhir.references import referenced_ids
from adapter.progress import Progress

# Subject-level resources that refer to resources outside the Patient compartment, which
# neither a patient search nor a Patient/Group $export brings: the pull fetches those by id.
FOLLOWED = {"Patient": "Organization", "MedicationAdministration": "Medication"}


@dataclass
class PullReport:
    """What a pull wrote: resources per type, how, duplicates dropped, and any count mismatch."""

    output: Path
    mode: str
    counts: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)
    transaction_time: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"output": str(self.output), "mode": self.mode, "ok": self.ok,
                "counts": dict(sorted(self.counts.items())), "duplicates": self.duplicates,
                "problems": list(self.problems)}

    def lines(self) -> list[str]:
        found = [f"{kind}: {count}" for kind, count in sorted(self.counts.items())]
        return [f"pulled by {self.mode} into {self.output}", *found, *self.problems]


class Sink:
    """The output folder: writes each resource once (by type and id) and counts."""

    def __init__(self, writer: NdjsonWriter, since: str | None, report: PullReport,
                 progress: Progress | None = None) -> None:
        self.writer = writer
        self.progress = progress
        self.since = instant(since) if since else None
        self.report = report
        self._seen: set[int] = set()
        # The ids FOLLOWED references point at, by type: a site per Patient, a product per dose (few).
        self.referenced: dict[str, set[str]] = {kind: set() for kind in FOLLOWED.values()}

    def add(self, resource: Mapping[str, Any], line: str | None = None) -> bool:
        """Write the resource unless it was written already; True when it is new."""
        kind, rid = str(resource.get("resourceType")), str(resource.get("id"))
        if kind in FOLLOWED:
            self.referenced[FOLLOWED[kind]] |= referenced_ids(resource, FOLLOWED[kind])
        key = int.from_bytes(hashlib.blake2b(f"{kind}/{rid}".encode(), digest_size=8).digest(), "big")
        if key in self._seen:
            self.report.duplicates += 1
            return False
        self._seen.add(key)
        if self.since and not changed_after(resource, self.since):
            return True
        if line is None:
            self.writer.write(resource)
        else:
            self.writer.write_line(kind, line)
        if self.progress is not None:
            self.progress.advance()
        return True


def belongs(resource: Mapping[str, Any], study_id: str) -> bool:
    """A resource with no study link belongs to its patient's study; one linked elsewhere does not."""
    linked = elements.study_id(resource)
    return linked is None or linked == study_id


def instant(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError("not a FHIR instant (e.g. 2024-05-01T00:00:00Z)", field="since") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def changed_after(resource: Mapping[str, Any], since: datetime) -> bool:
    updated = (resource.get("meta") or {}).get("lastUpdated")
    return updated is None or instant(updated) > since
