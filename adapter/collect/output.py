"""The output folder of a collect run: package-format CSV files, rejects, report, reconciliation, changes.

- ``measurements.csv``: the visits' values, in the package format (``map package`` and
  ``push`` take it), value and unit in the trial's unit, plus the source columns
  (``reported_value``, ``reported_unit``, ``source_server``, ``source_type``,
  ``source_id``, ``source_version``, ``source_updated``, ``derived_from``).
- ``measurements-other.csv``: the same columns plus ``row`` (unscheduled, not-done) and
  ``reason``: values within participation that are not a visit's value, and results the
  hospital marked as not done. The package format has no place for them.
- ``administrations.csv``: the package format plus the source columns.
- ``rejects.ndjson``: one JSON object per rejected (or retracted) value with its reason.
- ``reconciliation.csv``: subject, visit and test: the EDC's value beside the EHR's, with the
  EHR value's versioned source (``ehr_source``).
- ``changes.csv``: on a later run, every value that changed since the last (old and new).

``Folder`` writes them a subject at a time, subjects in order: each file comes out sorted
as a whole while only one subject's rows are in memory (``changes.csv`` is sorted by
source, so its rows wait for the end: they are only what changed).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from adapter.collect.facts import NOT_DONE, Fact
from adapter.collect.schedule import VISIT, Placed

SOURCE_COLUMNS = ["reported_value", "reported_unit", "source_server", "source_type", "source_id", "source_version",
                  "source_updated", "derived_from"]
MEASUREMENT_COLUMNS = ["subject_id", "visit", "test_code", "value", "unit", "collected_at", *SOURCE_COLUMNS]
ADMINISTRATION_COLUMNS = ["subject_id", "product_code", "dose", "dose_unit", "start", "status", "not_given_reason",
                          *SOURCE_COLUMNS]
RECONCILIATION_COLUMNS = ["subject_id", "visit", "test_code", "unit", "edc_value", "ehr_value", "result",
                          "ehr_source"]
CHANGE_COLUMNS = ["subject_id", "code", "source_type", "source_id", "change", "old_state", "old_value",
                  "new_state", "new_value", "unit"]
MATCH, MISMATCH, MISSING_IN_EDC, MISSING_IN_EHR = "match", "mismatch", "missing-in-edc", "missing-in-ehr"


def _source(fact: Fact, server: str) -> dict[str, str]:
    return {"reported_value": fact.reported_value, "reported_unit": fact.reported_unit, "source_server": server,
            "source_type": fact.source_type, "source_id": fact.source_id, "source_version": fact.source_version,
            "source_updated": fact.source_updated, "derived_from": " ".join(fact.derived_from)}


def _write(path: Path, columns: list[str], rows: Iterable[Mapping[str, str]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def _order(placed: Placed) -> tuple[str, ...]:
    return (placed.fact.subject_id, placed.visit, placed.fact.code, placed.fact.effective, placed.fact.source_id)


class Folder:
    """The output files, written a subject at a time: call ``add`` for each subject in subject-id order."""

    def __init__(self, out: Path, server: str) -> None:
        self.server = server
        self._files = ExitStack()
        self._writers: dict[str, csv.DictWriter[str]] = {}
        for name, columns in (("measurements.csv", MEASUREMENT_COLUMNS),
                              ("measurements-other.csv", [*MEASUREMENT_COLUMNS, "row", "reason"]),
                              ("administrations.csv", ADMINISTRATION_COLUMNS),
                              ("reconciliation.csv", RECONCILIATION_COLUMNS)):
            stream = self._files.enter_context((out / name).open("w", encoding="utf-8", newline=""))
            self._writers[name] = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
            self._writers[name].writeheader()
        self._rejects: IO[str] = self._files.enter_context((out / "rejects.ndjson").open("w", encoding="utf-8"))

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._files.close()

    def add(self, placed: list[Placed], rejected: Iterable[Fact], reconciliation: list[dict[str, str]]) -> None:
        """One subject's placed facts, rejected (and retracted) facts and reconciliation rows."""
        for item in sorted((p for p in placed if p.placement != "out-of-window"), key=_order):
            if item.fact.kind == "measurement":
                name, row = self._measurement(item)
            else:
                name, row = "administrations.csv", self._administration(item.fact)
            self._writers[name].writerow(row)
        for fact in sorted(rejected, key=lambda f: (f.subject_id, f.code, f.source_id)):
            record = {"subject_id": fact.subject_id, "code": fact.code, "state": fact.state,
                      "source_type": fact.source_type, "source_id": fact.source_id,
                      "source_version": fact.source_version, "reported_unit": fact.reported_unit,
                      "reason": fact.reason}
            self._rejects.write(json.dumps(record, sort_keys=True) + "\n")
        self._writers["reconciliation.csv"].writerows(reconciliation)

    def _measurement(self, item: Placed) -> tuple[str, dict[str, str]]:
        fact = item.fact
        row = {"subject_id": fact.subject_id, "visit": item.visit, "test_code": fact.code, "value": fact.value,
               "unit": fact.unit, "collected_at": fact.effective, **_source(fact, self.server)}
        if item.placement == VISIT and fact.state != NOT_DONE:
            return "measurements.csv", row
        return "measurements-other.csv", {**row, "row": "not-done" if fact.state == NOT_DONE else "unscheduled",
                                          "reason": fact.reason}

    def _administration(self, fact: Fact) -> dict[str, str]:
        return {"subject_id": fact.subject_id, "product_code": fact.code, "dose": fact.value,
                "dose_unit": fact.unit, "start": fact.effective, "status": fact.status,
                "not_given_reason": fact.reason if fact.state == NOT_DONE else "", **_source(fact, self.server)}


def reconcile(edc: Mapping[tuple[str, str, str], tuple[Decimal | str, str]],
              ehr: Mapping[tuple[str, str, str], Fact]) -> list[dict[str, str]]:
    """EDC beside EHR per (subject, visit, test): both in the trial's unit."""
    rows = []
    for key in sorted(set(edc) | set(ehr)):
        subject, visit, test = key
        edc_value, unit = edc.get(key, ("", ""))
        fact = ehr.get(key)
        if fact is None:
            result = MISSING_IN_EHR
        elif key not in edc:
            result = MISSING_IN_EDC
        else:
            result = MATCH if _same(edc_value, fact.value) else MISMATCH
        rows.append({"subject_id": subject, "visit": visit, "test_code": test,
                     "unit": fact.unit if fact else unit, "edc_value": str(edc_value),
                     "ehr_value": fact.value if fact else "", "result": result,
                     "ehr_source": _versioned(fact) if fact else ""})
    return rows


def _versioned(fact: Fact) -> str:
    """The EHR value's source with its version (a derived value's: both sources' URLs)."""
    if fact.derived_from:
        return " ".join(fact.derived_from)
    return f"{fact.source_type}/{fact.source_id}/_history/{fact.source_version}"


def _same(edc_value: Decimal | str, ehr_value: str) -> bool:
    try:
        return Decimal(str(edc_value)) == Decimal(ehr_value)
    except InvalidOperation:
        return str(edc_value) == ehr_value


def changes(old: Mapping[tuple[str, str, str], Fact], new: Mapping[tuple[str, str, str], Fact]) -> list[dict[str, str]]:
    """What differs between the last run's facts and this run's: new, changed, retracted, gone."""
    rows = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before is not None and after is not None and (before.state, before.value) == (after.state, after.value):
            continue
        kind = "new" if before is None else "gone" if after is None else (
            "retracted" if after.state == "retracted" else "changed")
        some = after or before
        assert some is not None
        rows.append({"subject_id": some.subject_id, "code": some.code, "source_type": some.source_type,
                     "source_id": some.source_id, "change": kind,
                     "old_state": before.state if before else "", "old_value": before.value if before else "",
                     "new_state": after.state if after else "", "new_value": after.value if after else "",
                     "unit": some.unit})
    return rows


def write_changes(out: Path, rows: list[dict[str, str]]) -> None:
    _write(out / "changes.csv", CHANGE_COLUMNS, rows)


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
