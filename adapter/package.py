"""Map a trial package to FHIR R4 resources, streaming, with every row accounted for.

``map_package(path)`` returns a ``PackageMapping``: iterate it for the resources in
dependency order (the sites' Organizations; each subject's Patient, Consent and
ResearchSubject; the Observations; each product's Medication before the first
MedicationAdministration that gives it), and read its ``report`` after the
iteration for rows read, mapped and rejected per file (read = mapped + rejected, in
every file) and the resources per type. Rejects go to ``on_reject`` as they happen,
or are kept in ``report.rejects`` when no callback is given.

With ``strict=True`` the first rejected row stops the run with an ``InputError``
naming its file, line and column.

All three CSV headers are checked before the first resource is yielded, so a
package with a broken file fails before anything is written anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from adapter.errors import InputError, MappingError
from adapter.fhir.constants import PACKAGE_TYPES
from adapter.fhir.datatypes import JSON
from adapter.fhir.json import dumps
from adapter.mappers.consent import consent
from adapter.mappers.medication import medication, medication_id
from adapter.mappers.medicationadministration import medication_administration
from adapter.mappers.observation import observation
from adapter.mappers.organization import site_organization
from adapter.mappers.patient import patient
from adapter.mappers.researchsubject import research_subject
from adapter.progress import Progress
from adapter.sources.package import read_administrations, read_measurements, read_subjects
from adapter.sources.package_csv import Reject, read_header
from adapter.sources.package_descriptor import ADMINISTRATIONS, MEASUREMENTS, SUBJECTS, Package, load_package

R = TypeVar("R")


@dataclass
class FileCount:
    """Rows of one CSV file: read always equals mapped plus rejected."""

    read: int = 0
    mapped: int = 0
    rejected: int = 0


@dataclass
class Report:
    """What a package mapping did, per file and per resource type."""

    nct_id: str
    files: dict[str, FileCount] = field(
        default_factory=lambda: {name: FileCount() for name in (SUBJECTS, MEASUREMENTS, ADMINISTRATIONS)}
    )
    resources: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PACKAGE_TYPES, 0))
    rejects: list[Reject] = field(default_factory=list)
    # Rejected rows by cause (file, column, kind of reason): counts a summary may show, with no values.
    causes: dict[str, int] = field(default_factory=dict)
    complete: bool = False

    @property
    def rejected(self) -> int:
        return sum(count.rejected for count in self.files.values())

    def reconciles(self) -> bool:
        """True when every row read was either mapped or rejected, in every file."""
        return all(c.read == c.mapped + c.rejected for c in self.files.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "nct_id": self.nct_id,
            "complete": self.complete,
            "files": {name: vars(count) for name, count in self.files.items()},
            "resources": dict(self.resources),
            "rejected": self.rejected,
            "rejected_by_cause": dict(sorted(self.causes.items())),
            "reconciles": self.reconciles(),
        }


class PackageMapping:
    """The resources of one trial package, produced as they are iterated."""

    def __init__(
        self,
        package: Package,
        *,
        strict: bool = False,
        on_reject: Callable[[Reject], object] | None = None,
    ) -> None:
        self.package = package
        self.strict = strict
        self.on_reject = on_reject
        self.report = Report(package.nct_id)

    @property
    def nct_id(self) -> str:
        return self.package.nct_id

    @property
    def resources(self) -> Iterator[JSON]:
        """The resources, in dependency order (the same as iterating the mapping)."""
        return iter(self)

    def __iter__(self) -> Iterator[JSON]:
        package = self.package
        for name in (SUBJECTS, MEASUREMENTS, ADMINISTRATIONS):
            read_header(package.csv_path(name), name, package.dialect)
        for site in package.sites.values():
            yield self._counted(site_organization(package.nct_id, site.id, site.name))
        index: dict[str, str] = {}
        for line, subject in self._rows(SUBJECTS, read_subjects(package, index)):
            yield from self._mapped(SUBJECTS, line, subject, patient, consent, research_subject)
        for line, measurement in self._rows(MEASUREMENTS, read_measurements(package, index)):
            yield from self._mapped(MEASUREMENTS, line, measurement, observation)
        given: set[str] = set()  # the Medications written so far: a handful of products and lots
        for line, administration in self._rows(ADMINISTRATIONS, read_administrations(package, index)):
            if medication_id(administration) in given:
                yield from self._mapped(ADMINISTRATIONS, line, administration, medication_administration)
                continue
            mapped = list(self._mapped(ADMINISTRATIONS, line, administration, medication, medication_administration))
            given.update(r["id"] for r in mapped if r["resourceType"] == "Medication")
            yield from mapped
        self.report.complete = True

    def _counted(self, resource: JSON) -> JSON:
        self.report.resources[resource["resourceType"]] += 1
        return resource

    def _rows(self, name: str, items: Iterator[tuple[int, R] | Reject]) -> Iterator[tuple[int, R]]:
        count = self.report.files[name]
        for item in items:
            count.read += 1
            if isinstance(item, Reject):
                self._reject(item)
            else:
                yield item

    def _mapped(self, name: str, line: int, record: R, *mappers: Callable[[R], JSON]) -> Iterator[JSON]:
        try:
            resources = [mapper(record) for mapper in mappers]
        except MappingError as error:
            # The reader checks every value the mappers use, so this means a bug; the
            # row is still accounted for, not lost.
            self._reject(Reject(name, line, None, str(error), "mapping error"))
            return
        self.report.files[name].mapped += 1
        for resource in resources:
            yield self._counted(resource)

    def _reject(self, reject: Reject) -> None:
        self.report.files[reject.file].rejected += 1
        self.report.causes[reject.cause] = self.report.causes.get(reject.cause, 0) + 1
        if self.strict:
            raise InputError(reject.reason, source=reject.file, line=reject.line, field=reject.column)
        if self.on_reject is not None:
            self.on_reject(reject)
        else:
            self.report.rejects.append(reject)


def map_package(
    path: str | Path,
    *,
    strict: bool = False,
    on_reject: Callable[[Reject], object] | None = None,
) -> PackageMapping:
    """Load the package at ``path`` (InputError when its descriptor is wrong) for mapping.

    Iterate the result for the resources; read ``.report`` afterwards.
    """
    return PackageMapping(load_package(path), strict=strict, on_reject=on_reject)


def write_mapped_package(
    path: str | Path, out: str | Path, *, strict: bool = False, progress: Progress | None = None
) -> Report:
    """Map the package at ``path`` into ``out``: ``<Type>.ndjson``, ``rejects.ndjson``, ``report.json``.

    The study's own resources (ResearchStudy, its Organizations, Locations, ...) are written too
    when the package names its ClinicalTrials.gov record, so ``trialfhir push out/`` has all it needs.
    Streams: one resource in memory at a time. Everything is written to a temporary folder
    beside ``out`` that replaces ``out`` only when the run completes: a failed run (a bad
    descriptor, ``strict`` stopping at a reject, a full disk) leaves the previous output as it was.
    ``progress`` is told of every resource written.
    """
    from adapter.studybundle import study_resources  # a peer at this layer; only map package needs it

    with replacing_folder(out) as work:
        with ExitStack() as stack:
            streams: dict[str, Any] = {}

            def write(name: str, line: str) -> None:
                if name not in streams:
                    streams[name] = stack.enter_context((work / f"{name}.ndjson").open("w", encoding="utf-8",
                                                                                        newline="\n"))
                streams[name].write(line + "\n")

            (work / "rejects.ndjson").touch()
            mapping = map_package(path, strict=strict, on_reject=lambda r: write("rejects", dumps(r.as_json())))
            record = mapping.package.record
            written: set[tuple[str, str]] = set()
            for resource in study_resources(record) if record else ():
                key = (resource["resourceType"], resource["id"])
                if key not in written:  # a sponsor may also be a collaborator: one Organization
                    written.add(key)
                    write(resource["resourceType"], dumps(resource))
            for resource in mapping:
                write(resource["resourceType"], dumps(resource))
                if progress is not None:
                    progress.advance()
        report = mapping.report
        (work / "report.json").write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")
    return report


@contextmanager
def replacing_folder(out: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``out`` to write into. It takes the place of ``out`` when the block ends
    normally and is removed when the block raises, so a failed run leaves the previous output as it was."""
    folder = Path(out)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _replace(folder, work)


def _replace(folder: Path, work: Path) -> None:
    """Put the completed ``work`` folder in the place of ``folder`` (moved aside first, removed after)."""
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        folder.rename(old)
    work.rename(folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
