"""What ``trialfhir push`` reads: a study record, a trial package, or a folder of mapped NDJSON.

Each gives the study's key (its NCT number, which names the journal) and the
mapped resources in dependency order (referenced resources first).

``INPUT_KINDS`` is the registry: each kind says how it recognises a path and how
it opens one; ``open_input`` asks them in order. A new kind of input is one new
entry (and its opener).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapter.errors import InputError
from adapter.fhir import elements
from adapter.fhir.constants import TYPE_ORDER
from adapter.fhir.ndjson import read_file, read_resources, resource_files
from adapter.records import Study

log = logging.getLogger(__name__)

KEPT_REJECTS = 100


@dataclass
class PushInput:
    """The study key (which names the journal), its mapped resources, and what kind of input it was."""

    study: str
    resources: Iterator[dict[str, Any]]
    kind: str
    # Source rows the mapper rejected so far; final once ``resources`` is exhausted.
    rejected: Callable[[], int] = lambda: 0
    # The first KEPT_REJECTS of them (file, line, column, reason), for whoever reports the run.
    rejects: list[Any] = field(default_factory=list)
    # Every rejected row counted by its cause (file, column, kind of reason; no values), filled as it streams.
    causes: dict[str, int] = field(default_factory=dict)


def open_input(path: str | Path) -> PushInput:
    """Recognise ``path``: a trial package folder, a folder of ``<Type>.ndjson`` files, or a study record file."""
    path = Path(path)
    if not path.is_dir() and not path.is_file():
        raise InputError("no such file or folder", source=str(path))
    for name, kind in INPUT_KINDS.items():
        if kind.recognises(path):
            return kind.opens(path, name)
    raise InputError("not a trial package (no package.yaml) nor a folder of mapped NDJSON", source=str(path))


def _study_record(path: Path, name: str) -> PushInput:
    from adapter.sources.ctgov import read_study

    study = read_study(path)
    return PushInput(study.nct_id, _study_resources(study), name)


def _study_resources(study: Study) -> Iterator[dict[str, Any]]:
    from adapter.studybundle import study_bundle

    return (entry["resource"] for entry in study_bundle(study)["entry"])


def _package(path: Path, name: str) -> PushInput:
    """A trial package: its study's resources (when it names the record) then its subjects' data, mapped as it streams.

    A package that lists only its arms has no record to map: its ResearchStudy must be on the server already
    (push the record first), or the server refuses the ResearchSubjects that refer to it.
    """
    from adapter.package import map_package

    rejected, kept, causes = [0], list[Any](), dict[str, int]()

    def on_reject(reject: Any) -> None:
        rejected[0] += 1
        causes[reject.cause] = causes.get(reject.cause, 0) + 1
        if len(kept) < KEPT_REJECTS:
            kept.append(reject)
        # Where only: a reason may quote the cell, and logs must hold no values from patient records.
        log.warning("row rejected at %s (trialfhir map writes the reasons to its rejects file)", reject.where)

    mapping = map_package(path, on_reject=on_reject)
    record = mapping.package.record
    study = _study_resources(record) if record else iter(())
    return PushInput(mapping.nct_id, itertools.chain(study, mapping), name, lambda: rejected[0], kept, causes)


def _ndjson_folder(path: Path, name: str) -> PushInput:
    resources = (resource for kind, file in ordered_files(path) for resource in read_file(file, kind))
    return PushInput(study_of(path), resources, name)


def ordered_files(folder: Path) -> list[tuple[str, Path]]:
    """A folder's NDJSON files as (type, path), in the order a push reads them: referenced types first."""
    files = resource_files(folder)
    return [(kind, file) for kind in sorted(files, key=lambda kind: (_rank(kind), kind)) for file in files[kind]]


def _rank(resource_type: str) -> int:
    return TYPE_ORDER.index(resource_type) if resource_type in TYPE_ORDER else len(TYPE_ORDER)


def study_of(folder: Path) -> str:
    """The NCT number of the folder's ResearchStudy, which names the journal."""
    for resource in read_resources(folder, "ResearchStudy"):
        nct = elements.nct_id(resource)
        if nct:
            return nct
        raise InputError("the ResearchStudy has no ClinicalTrials.gov identifier", source=str(folder),
                         field="ResearchStudy.identifier")  # fmt: skip
    raise InputError("a folder of mapped NDJSON needs a ResearchStudy (ResearchStudy.ndjson) to name the study",
                     source=str(folder))  # fmt: skip


@dataclass(frozen=True)
class InputKind:
    """One kind of input: whether a path (an existing file or folder) is of this kind, and how to open it."""

    recognises: Callable[[Path], bool]
    opens: Callable[[Path, str], PushInput]  # (path, the kind's name) -> the opened input


# Asked in this order: a trial package may hold NDJSON files too, and any file left is a study record.
INPUT_KINDS: dict[str, InputKind] = {
    "trial package": InputKind(lambda path: (path / "package.yaml").is_file(), _package),
    "mapped NDJSON": InputKind(lambda path: path.is_dir() and any(path.glob("*.ndjson")), _ndjson_folder),
    "study record": InputKind(Path.is_file, _study_record),
}
