"""What the SDTM domain modules share: rows, datasets, the study and its subjects."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapter.export.sdtm.terms import DatasetSpec
from adapter.fhir import elements
from adapter.fhir.constants import VISIT_EXTENSION

Value = str | float | None
Row = dict[str, Value]

ISO_8601 = re.compile(
    r"^\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


@dataclass
class Subject:
    """One ResearchSubject of the study with what DM needs from its Patient."""

    usubjid: str
    subjid: str
    siteid: str
    subject: Mapping[str, Any]
    patient: Mapping[str, Any]
    first_dose: str | None = None
    last_dose: str | None = None


@dataclass
class Study:
    resource: Mapping[str, Any]
    studyid: str
    arm_codes: dict[str, str]
    country: str = ""
    visits: dict[float, str] = field(default_factory=dict)  # VISITNUM -> VISIT, as the data names them


@dataclass
class Dataset:
    spec: DatasetSpec
    rows: list[Row]


@dataclass
class SdtmResult:
    """The datasets and what did not go into them (counts by reason), for the metadata file."""

    datasets: dict[str, Dataset]
    excluded: Counter[str] = field(default_factory=Counter)


def to_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def visit_of(resource: Mapping[str, Any]) -> tuple[str, float | None]:
    """VISIT and VISITNUM from the project's study-visit extension (name, plannedDay).

    The schedule numbers visits by planned study day (screening is day 0), so VISITNUM
    is that day: numeric, unique per visit and in visit order (docs/export.md).
    """
    for ext in elements.extensions(resource, VISIT_EXTENSION):
        parts = {part.get("url"): part for part in ext.get("extension", [])}
        name = (parts.get("name") or {}).get("valueString") or (parts.get("code") or {}).get("valueCode") or ""
        return str(name), to_float((parts.get("plannedDay") or {}).get("valueInteger"))
    return "", None


def planned_study_day(day: float | None) -> float | None:
    """SDTM study day of a planned day counted from 0 before day 1: days 1.. stay, 0 becomes -1.

    SDTM has no study day 0 (SDTMIG 3.4 section 4.4.4); the trial package numbers the
    screening visit 0, the day before day 1.
    """
    if day is None:
        return None
    return day if day >= 1 else day - 1
