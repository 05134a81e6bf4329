"""Flat tables from FHIR NDJSON: one table per resource type, one row per resource.

Codes, values, units and times become columns (``code_system``, ``code``,
``value``, ``unit``, ``effective_start`` ...); references become the id they point
to. Types we know get their own columns; any other type gets ``id`` and
``last_updated`` only. Times are written exactly as the server gave them (offset
included). Tables stream: rows are written as resources are read, Parquet in row
groups, so memory does not grow with the trial.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from adapter.errors import ConfigError
from adapter.export.csvcell import safe_cell
from adapter.fhir import elements
from adapter.fhir.constants import LOINC
from adapter.fhir.ndjson import read_resources, resource_files
from adapter.fhir.references import ref_id

FORMATS = ("csv", "parquet")
ROW_GROUP = 10_000


@dataclass(frozen=True)
class Column:
    name: str
    read: Callable[[Mapping[str, Any]], Any]
    number: bool = False


def _path(*keys: str) -> Callable[[Mapping[str, Any]], Any]:
    def read(resource: Mapping[str, Any]) -> Any:
        value: Any = resource
        for key in keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        return value

    return read


def _coding(element: str, part: str, system: str | None = None) -> Callable[[Mapping[str, Any]], Any]:
    return lambda r: elements.first_coding(r.get(element), system).get(part)


def _first(element: str, *keys: str) -> Callable[[Mapping[str, Any]], Any]:
    """A key path inside the first item of a list element (e.g. the first dosage, the first category)."""

    def read(resource: Mapping[str, Any]) -> Any:
        items = resource.get(element) or [{}]
        return _path(*keys)(items[0] if isinstance(items, list) else items)

    return read


def _ref(element: str, kind: str | None = None) -> Callable[[Mapping[str, Any]], Any]:
    return lambda r: ref_id(r.get(element), kind)


def _joined(values: Callable[[Mapping[str, Any]], list[Any]]) -> Callable[[Mapping[str, Any]], Any]:
    return lambda r: "|".join(str(v) for v in values(r) if v is not None) or None


_COMMON = [Column("id", _path("id")), Column("last_updated", _path("meta", "lastUpdated"))]

COLUMNS: dict[str, list[Column]] = {
    "ResearchStudy": [
        Column("nct_id", elements.nct_id),
        Column("title", _path("title")),
        Column("status", _path("status")),
        Column("phase", _coding("phase", "code")),
        Column("primary_purpose", _coding("primaryPurposeType", "code")),
        Column("period_start", _path("period", "start")),
        Column("period_end", _path("period", "end")),
        Column("sponsor", _ref("sponsor", "Organization")),
        Column("enrollment", lambda r: ref_id((r.get("enrollment") or [None])[0], "Group")),
        Column("arms", _joined(lambda r: [a.get("name") for a in r.get("arm", [])])),
        Column("sites", _joined(lambda r: [ref_id(s, "Location") for s in r.get("site", [])])),
    ],
    "Group": [
        Column("identifier", lambda r: elements.identifier_value(r)),
        Column("name", _path("name")),
        Column("type", _path("type")),
        Column("actual", _path("actual")),
        Column("quantity", _path("quantity"), number=True),
    ],
    "Organization": [Column("identifier", lambda r: elements.identifier_value(r)), Column("name", _path("name"))],
    "Practitioner": [
        Column("identifier", lambda r: elements.identifier_value(r)),
        Column("name", _first("name", "text")),
    ],
    "Location": [
        Column("identifier", lambda r: elements.identifier_value(r)),
        Column("name", _path("name")),
        Column("city", _path("address", "city")),
        Column("state", _path("address", "state")),
        Column("country", _path("address", "country")),
    ],
    "Patient": [
        Column("identifier_system", _first("identifier", "system")),
        Column("identifier", lambda r: elements.identifier_value(r)),
        Column("gender", _path("gender")),
        Column("birth_date", _path("birthDate")),
        Column("deceased", lambda r: r.get("deceasedDateTime", r.get("deceasedBoolean"))),
    ],
    "ResearchSubject": [
        Column("identifier_system", _first("identifier", "system")),
        Column("identifier", lambda r: elements.identifier_value(r)),
        Column("status", _path("status")),
        Column("study", _ref("study", "ResearchStudy")),
        Column("patient", _ref("individual", "Patient")),
        Column("period_start", _path("period", "start")),
        Column("period_end", _path("period", "end")),
        Column("assigned_arm", _path("assignedArm")),
        Column("actual_arm", _path("actualArm")),
    ],
    "Observation": [
        Column("status", _path("status")),
        Column("category", lambda r: elements.first_coding((r.get("category") or [None])[0]).get("code")),
        Column("code_system", _coding("code", "system")),
        Column("code", _coding("code", "code")),
        Column("code_display", _coding("code", "display")),
        Column("loinc", _coding("code", "code", LOINC)),
        Column("patient", _ref("subject", "Patient")),
        Column("study", elements.study_id),
        Column("encounter", _ref("encounter", "Encounter")),
        Column("effective_start", lambda r: elements.effective(r)[0]),
        Column("effective_end", lambda r: elements.effective(r)[1]),
        Column("value", lambda r: _path("valueQuantity", "value")(r) if "valueQuantity" in r else r.get("valueInteger"),
               number=True),
        Column("unit", _path("valueQuantity", "unit")),
        Column("unit_code", _path("valueQuantity", "code")),
        Column("value_system", _coding("valueCodeableConcept", "system")),
        Column("value_code", _coding("valueCodeableConcept", "code")),
        Column("value_display", lambda r: elements.concept_text(r.get("valueCodeableConcept"))),
        Column("value_string", lambda r: r.get("valueString", r.get("valueBoolean"))),
        Column("reference_low", _first("referenceRange", "low", "value"), number=True),
        Column("reference_high", _first("referenceRange", "high", "value"), number=True),
        Column("reference_unit", lambda r: _first("referenceRange", "low", "code")(r)
               or _first("referenceRange", "high", "code")(r)),
        Column("interpretation", lambda r: elements.first_coding((r.get("interpretation") or [None])[0]).get("code")),
        Column("data_absent_reason", _coding("dataAbsentReason", "code")),
    ],
    "MedicationAdministration": [
        Column("status", _path("status")),
        Column("medication_system", _coding("medicationCodeableConcept", "system")),
        Column("medication_code", _coding("medicationCodeableConcept", "code")),
        Column("medication_display", lambda r: elements.concept_text(r.get("medicationCodeableConcept"))),
        Column("medication", _ref("medicationReference", "Medication")),
        Column("patient", _ref("subject", "Patient")),
        Column("study", elements.study_id),
        Column("effective_start", lambda r: elements.effective(r)[0]),
        Column("effective_end", lambda r: elements.effective(r)[1]),
        Column("dose", _path("dosage", "dose", "value"), number=True),
        Column("dose_unit", _path("dosage", "dose", "unit")),
        Column("dose_unit_code", _path("dosage", "dose", "code")),
        Column("route_system", lambda r: elements.first_coding(_path("dosage", "route")(r)).get("system")),
        Column("route_code", lambda r: elements.first_coding(_path("dosage", "route")(r)).get("code")),
        Column("route_display", lambda r: elements.concept_text(_path("dosage", "route")(r))),
        Column("status_reason", lambda r: elements.concept_text((r.get("statusReason") or [None])[0])),
    ],
}


def columns(resource_type: str) -> list[Column]:
    """The table columns of a resource type: id and last_updated first, then the type's own."""
    return _COMMON + COLUMNS.get(resource_type, [])


def rows(resource_type: str, resources: Iterator[Mapping[str, Any]]) -> Iterator[list[Any]]:
    """One row (list of cell values, column order) per resource."""
    spec = columns(resource_type)
    for resource in resources:
        yield [column.read(resource) for column in spec]


def write_tables(
    folder: str | Path, output: str | Path, fmt: str = "csv", *, raw_csv: bool = False
) -> dict[str, tuple[Path, int]]:
    """Write one table per resource type in ``folder`` to ``output``; returns {type: (file, rows)}.

    CSV text cells that a spreadsheet would run as formulas are neutralized (``csvcell``) unless ``raw_csv``.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown table format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, tuple[Path, int]] = {}
    for resource_type in resource_files(folder):
        target = out / f"{resource_type}.{fmt}"
        table_rows = rows(resource_type, read_resources(folder, resource_type))
        spec = columns(resource_type)
        if fmt == "csv":
            count = _write_csv(target, spec, table_rows, raw_csv)
        else:
            count = _write_parquet(target, spec, table_rows)
        written[resource_type] = (target, count)
    return written


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return elements.number_text(value)  # a Decimal with its digits: 38.0 stays 38.0
    return str(value)


def _write_csv(target: Path, spec: list[Column], table_rows: Iterator[list[Any]], raw: bool) -> int:
    count = 0
    cell = _cell if raw else (lambda value: safe_cell(_cell(value)))
    with target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([c.name for c in spec])
        for row in table_rows:
            writer.writerow([cell(v) for v in row])
            count += 1
    return count


def _write_parquet(target: Path, spec: list[Column], table_rows: Iterator[list[Any]]) -> int:
    schema = pa.schema([(c.name, pa.float64() if c.number else pa.string()) for c in spec])
    count = 0
    with pq.ParquetWriter(target, schema) as writer:
        batch: list[list[Any]] = []
        for row in table_rows:
            batch.append([_parquet_cell(v, c.number) for v, c in zip(row, spec, strict=True)])
            if len(batch) == ROW_GROUP:
                writer.write_table(_table(batch, schema))
                count += len(batch)
                batch = []
        if batch or count == 0:
            writer.write_table(_table(batch, schema))
            count += len(batch)
    return count


def _parquet_cell(value: Any, number: bool) -> Any:
    if value is None:
        return None
    if number:
        return float(value) if isinstance(value, int | float | Decimal) and not isinstance(value, bool) else None
    return _cell(value)


def _table(batch: list[list[Any]], schema: Any) -> Any:
    names = schema.names
    return pa.Table.from_pydict({name: [row[i] for row in batch] for i, name in enumerate(names)}, schema=schema)
