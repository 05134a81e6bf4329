"""What ``trialfhir push`` reads: a study record, a trial package, or a folder of mapped NDJSON.

Each gives the study's key (its NCT number, which names the journal) and the
mapped resources in dependency order (referenced resources first).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from adapter.errors import InputError

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
    from adapter.studybundle import study_bundle

    study = read_study(path)
    bundle = study_bundle(study)
    return PushInput(study.nct_id, (entry["resource"] for entry in bundle["entry"]), "study record")


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
    record = _package_record(path)
    study = _study_record(path / record).resources if record else iter(())
    return PushInput(mapping.nct_id, itertools.chain(study, mapping), "trial package", lambda: rejected[0])


def _package_record(path: Path) -> str | None:
    """The study record the package's descriptor names (map_package has checked the descriptor already)."""
    descriptor = yaml.safe_load((path / "package.yaml").read_text(encoding="utf-8"))
    record = descriptor.get("study", {}).get("record")
    return str(record) if record else None


def _ndjson_folder(path: Path) -> PushInput:
    files = sorted(path.glob("*.ndjson"), key=lambda f: (_rank(f.stem), f.name))
    study = _study_of(path / "ResearchStudy.ndjson")
    return PushInput(study, _read_ndjson(files), "mapped NDJSON")


def _rank(resource_type: str) -> int:
    return TYPE_ORDER.index(resource_type) if resource_type in TYPE_ORDER else len(TYPE_ORDER)


def _study_of(research_study_file: Path) -> str:
    if not research_study_file.is_file():
        raise InputError(
            "a folder of mapped NDJSON needs ResearchStudy.ndjson to name the study", source=str(research_study_file)
        )
    for number, resource in _lines(research_study_file):
        for identifier in resource.get("identifier") or []:
            if identifier.get("system") == NCT_SYSTEM and identifier.get("value"):
                return str(identifier["value"])
        raise InputError(
            "the ResearchStudy has no ClinicalTrials.gov identifier", source=str(research_study_file), line=number
        )
    raise InputError("no ResearchStudy in the file", source=str(research_study_file))


def _read_ndjson(files: list[Path]) -> Iterator[dict[str, Any]]:
    for file in files:
        for _, resource in _lines(file):
            yield resource


def _lines(file: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                resource = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"not JSON: {error.msg}", source=str(file), line=number) from error
            if not isinstance(resource, dict) or "resourceType" not in resource:
                raise InputError("not a FHIR resource", source=str(file), line=number, field="resourceType")
            yield number, resource
