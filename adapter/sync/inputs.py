"""What ``trialfhir push`` reads: a study record, a trial package, or a folder of mapped NDJSON.

Each gives the study's key (its NCT number, which names the journal) and the
mapped resources in dependency order (referenced resources first).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapter.errors import InputError
from adapter.export.ndjson import read_file, read_resources, resource_files
from adapter.records import Study

log = logging.getLogger(__name__)

# Referenced types before the types that refer to them (the cross-team Bundle order).
TYPE_ORDER = (
    "Organization",
    "Location",
    "Practitioner",
    "Group",
    "ResearchStudy",
    "Patient",
    "ResearchSubject",
    "Observation",
    "MedicationAdministration",
)
NCT_SYSTEM = "https://clinicaltrials.gov"


@dataclass
class PushInput:
    """The study key (which names the journal), its mapped resources, and what kind of input it was."""

    study: str
    resources: Iterator[dict[str, Any]]
    kind: str
    # Source rows the mapper rejected so far; final once ``resources`` is exhausted.
    rejected: Callable[[], int] = lambda: 0


def open_input(path: str | Path) -> PushInput:
    """Recognise ``path``: a trial package folder, a folder of ``<Type>.ndjson`` files, or a study record file."""
    path = Path(path)
    if path.is_dir():
        if (path / "package.yaml").is_file():
            return _package(path)
        if any(path.glob("*.ndjson")):
            return _ndjson_folder(path)
        raise InputError("not a trial package (no package.yaml) nor a folder of mapped NDJSON", source=str(path))
    if path.is_file():
        return _study_record(path)
    raise InputError("no such file or folder", source=str(path))


def _study_record(path: Path) -> PushInput:
    from adapter.sources.ctgov import read_study

    study = read_study(path)
    return PushInput(study.nct_id, _study_resources(study), "study record")


def _study_resources(study: Study) -> Iterator[dict[str, Any]]:
    from adapter.studybundle import study_bundle

    return (entry["resource"] for entry in study_bundle(study)["entry"])


def _package(path: Path) -> PushInput:
    """A trial package: its study's resources (when it names the record) then its subjects' data, mapped as it streams.

    A package that lists only its arms has no record to map: its ResearchStudy must be on the server already
    (push the record first), or the server refuses the ResearchSubjects that refer to it.
    """
    from adapter.package import map_package

    rejected = [0]

    def on_reject(reject: Any) -> None:
        rejected[0] += 1
        log.warning("rejected: %s", reject)

    mapping = map_package(path, on_reject=on_reject)
    record = mapping.package.record
    study = _study_resources(record) if record else iter(())
    return PushInput(mapping.nct_id, itertools.chain(study, mapping), "trial package", lambda: rejected[0])


def _ndjson_folder(path: Path) -> PushInput:
    files = resource_files(path)
    order = sorted(files, key=lambda kind: (_rank(kind), kind))
    resources = (resource for kind in order for file in files[kind] for resource in read_file(file, kind))
    return PushInput(_study_of(path), resources, "mapped NDJSON")


def _rank(resource_type: str) -> int:
    return TYPE_ORDER.index(resource_type) if resource_type in TYPE_ORDER else len(TYPE_ORDER)


def _study_of(folder: Path) -> str:
    """The NCT number of the folder's ResearchStudy, which names the journal."""
    for resource in read_resources(folder, "ResearchStudy"):
        for identifier in resource.get("identifier") or []:
            if identifier.get("system") == NCT_SYSTEM and identifier.get("value"):
                return str(identifier["value"])
        raise InputError("the ResearchStudy has no ClinicalTrials.gov identifier", source=str(folder),
                         field="ResearchStudy.identifier")  # fmt: skip
    raise InputError("a folder of mapped NDJSON needs a ResearchStudy (ResearchStudy.ndjson) to name the study",
                     source=str(folder))  # fmt: skip
