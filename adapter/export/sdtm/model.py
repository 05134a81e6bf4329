"""What the SDTM domain modules share: rows, datasets, the study and its subjects."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
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
    first_dose: str | None = None  # of any treatment the study records (RFSTDTC)
    last_dose: str | None = None
    first_exposure: str | None = None  # of study treatment, EX alone (RFXSTDTC)
    last_exposure: str | None = None
    consent: str | None = None  # Consent.dateTime (RFICDTC)
    visit_dates: dict[float, tuple[str, str]] = field(default_factory=dict)  # VISITNUM -> first, last --DTC

    @property
    def rfstdtc(self) -> str:
        """Reference start: the first dose of any treatment the study records, else the subject's period start."""
        return self.first_dose or str((self.subject.get("period") or {}).get("start") or "")

    def saw(self, visitnum: float | None, dtc: str | None) -> None:
        """Note a record of a visit on ``dtc``, for SV's first and last dates."""
        if visitnum is None or not dtc:
            return
        first, last = self.visit_dates.get(visitnum, (dtc, dtc))
        self.visit_dates[visitnum] = (min(first, dtc), max(last, dtc))


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


def study_day(dtc: Value, reference: str) -> float | None:
    """--DY: days from the reference start date, day 1 on it and no day 0 (SDTMIG 3.4 section 4.4.4).

    Only the dates count (the first 10 characters); a partial date has no study day.
    """
    if not isinstance(dtc, str) or len(dtc) < 10 or len(reference) < 10:
        return None
    try:
        days = (date.fromisoformat(dtc[:10]) - date.fromisoformat(reference[:10])).days
    except ValueError:
        return None
    return float(days + 1 if days >= 0 else days)


def epoch(dtc: Value, subject: Subject) -> str:
    """EPOCH of a record: SCREENING before the reference start, TREATMENT from it on (design.py draws these)."""
    start = subject.rfstdtc
    if not isinstance(dtc, str) or not dtc or not start:
        return ""
    # ISO 8601 texts of one study share a form and offset, so they compare as text at the shorter precision.
    n = min(len(dtc), len(start))
    return "SCREENING" if dtc[:n] < start[:n] else "TREATMENT"
