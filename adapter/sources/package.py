"""Read a trial package: ``package.yaml`` and three CSV files, streamed row by row.

The format is documented in ``docs/trial-package.md``; each file has a JSON Schema in
``schemas/`` (``trial-package*.schema.json``). ``load_package`` reads the descriptor,
the study's arm labels (from its ClinicalTrials.gov record, through
``adapter.sources.ctgov``) and the code tables. ``read_subjects``,
``read_measurements`` and ``read_administrations`` then yield, for every row, either
a record (``adapter.records``) or a ``Reject`` naming the file, line, column and a
reason a person can act on. Nothing is skipped silently: blank lines are not rows,
everything else is one or the other.

Whole-file problems (a missing file, a missing or unknown column, UTF-16 text) are
``InputError``: no row of such a file can be read reliably.

Memory stays flat in the number of measurements: the reader keeps one entry per
subject (its site) and the natural keys of the subject it is reading, to catch
duplicates. That is why the rows of one subject must be contiguous in
measurements.csv and administrations.csv (a subject that comes back after another
one's rows is rejected with a reason that says so).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Context, Decimal, InvalidOperation
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema

from adapter.errors import ConfigError, InputError
from adapter.paths import mappings_dir
from adapter.records import Administration, Code, Measurement, Study, Subject, Visit
from adapter.sources.codetables import KINDS, CodeTables, load_code_tables, load_yaml

DESCRIPTOR = "package.yaml"
SUBJECTS, MEASUREMENTS, ADMINISTRATIONS = "subjects.csv", "measurements.csv", "administrations.csv"
CSV_SCHEMAS = {
    SUBJECTS: "trial-package-subjects.schema.json",
    MEASUREMENTS: "trial-package-measurements.schema.json",
    ADMINISTRATIONS: "trial-package-administrations.schema.json",
}
# The JSON Schema keywords a CSV column schema may use: the reader compiles exactly these.
COLUMN_KEYWORDS = frozenset({"type", "pattern", "enum", "maxLength", "description"})
FHIR_INTEGER = range(-(2**31), 2**31)
MAX_DIGITS = 32  # more digits than any measurement has; keeps JSON numbers finite
_DECIMAL = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")
_INTEGER = re.compile(r"^[+-]?[0-9]{1,10}$")
# Enrollment states after which a subject has an arm and has begun the study.
_RANDOMIZED = frozenset({"enrolled", "on-intervention", "follow-up", "completed", "withdrawn"})


@dataclass(frozen=True)
class Reject:
    """A row that could not be mapped: where it is and why, in words a person can act on."""

    file: str
    line: int
    column: str | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column, "reason": self.reason}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" + (f": {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


class _RowError(Exception):
    """A problem with one cell; becomes a Reject for that row."""

    def __init__(self, column: str | None, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


@dataclass(frozen=True)
class Site:
    """A study site of the package; ``zone`` reads local times that carry no offset."""

    id: str
    name: str
    zone: ZoneInfo | None


@dataclass(frozen=True)
class Package:
    """A loaded package descriptor with everything the row readers need."""

    root: Path
    nct_id: str
    arms: tuple[str, ...]
    local_system: str
    sites: Mapping[str, Site]
    visits: Mapping[str, Visit]
    tables: CodeTables
    # The study's ClinicalTrials.gov record when package.yaml names one (push maps it too).
    record: Study | None = None

    def csv_path(self, name: str) -> Path:
        return self.root / name


@dataclass(frozen=True)
class _Column:
    name: str
    required: bool
    pattern: re.Pattern[str] | None
    enum: frozenset[str] | None
    max_length: int | None


# --- descriptor -------------------------------------------------------------------


@cache
def schema(name: str) -> dict[str, Any]:
    """One of the package JSON Schemas shipped in ``adapter/sources/schemas``."""
    text = resources.files("adapter.sources").joinpath("schemas", name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def load_package(path: str | Path) -> Package:
    """Read ``package.yaml`` in the folder ``path``, the study's arms and the code tables."""
    root = Path(path)
    descriptor = root / DESCRIPTOR
    if not root.is_dir():
        raise InputError("not a folder; a trial package is a folder holding package.yaml", source=str(root))
    if not descriptor.is_file():
        raise InputError("missing; a trial package folder needs a package.yaml", source=str(descriptor))
    try:
        data = load_yaml(descriptor)
    except ConfigError as error:
        raise InputError(str(error), source=str(descriptor)) from error
    errors = sorted(
        jsonschema.Draft202012Validator(schema("trial-package.schema.json")).iter_errors(data),
        key=lambda e: list(e.path),
    )
    if errors:
        first = errors[0]
        field = "/".join(str(p) for p in first.path) or None
        raise InputError(first.message, source=str(descriptor), field=field)

    study = data["study"]
    nct_id = study["nct_id"]
    if ("record" in study) == ("arms" in study):
        raise InputError("give either record (the study's ClinicalTrials.gov record) or arms (its arm labels), "
                         "exactly one of them", source=str(descriptor), field="study")
    record = _record(root, study["record"], nct_id, descriptor) if "record" in study else None
    arms = tuple(study["arms"]) if record is None else record.arm_labels()

    sites: dict[str, Site] = {}
    for index, site in enumerate(data["sites"]):
        if site["id"] in sites:
            raise InputError(f"site id {site['id']!r} is listed twice", source=str(descriptor), field=f"sites/{index}")
        sites[site["id"]] = Site(site["id"], site["name"], _zone(site.get("time_zone"), descriptor, index))
    visits: dict[str, Visit] = {}
    for index, visit in enumerate(data["visits"]):
        if visit["code"] in visits:
            raise InputError(f"visit {visit['code']!r} is listed twice",
                             source=str(descriptor), field=f"visits/{index}")
        visits[visit["code"]] = Visit(visit["code"], visit["name"], visit.get("day"))

    tables = load_code_tables(_mapping_paths(root, data.get("mappings", {})))
    return Package(
        root=root,
        nct_id=nct_id,
        arms=arms,
        local_system=data["local_code_system"],
        sites=MappingProxyType(sites),
        visits=MappingProxyType(visits),
        tables=tables,
        record=record,
    )


def _record(root: Path, record: str, nct_id: str, descriptor: Path) -> Study:
    # The one ClinicalTrials.gov reader is the study engineer's; imported here so a
    # package that lists its arms never needs it.
    from adapter.sources.ctgov import read_study

    study = read_study(root / record)
    if study.nct_id != nct_id:
        raise InputError(
            f"study/nct_id is {nct_id} but {record} is the record of {study.nct_id}",
            source=str(descriptor),
            field="study/record",
        )
    if not study.arm_labels():
        raise InputError(f"{record} lists no arms; list them in study/arms instead", source=str(descriptor))
    return study


def _zone(name: str | None, descriptor: Path, index: int) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InputError(f"unknown time zone {name!r} (use an IANA name such as Asia/Jakarta)",
                         source=str(descriptor), field=f"sites/{index}/time_zone") from error


def _mapping_paths(root: Path, chosen: Mapping[str, str]) -> dict[str, Path]:
    paths = {}
    for kind in KINDS:
        name = chosen.get(kind, f"{kind}.yaml")
        paths[kind] = root / name if name.startswith("./") else mappings_dir() / name
    return paths


# --- CSV rows --------------------------------------------------------------------


@cache
def columns(file_name: str) -> Mapping[str, _Column]:
    """The columns of a package CSV file, compiled from its JSON Schema."""
    row_schema = schema(CSV_SCHEMAS[file_name])
    required = set(row_schema["required"])
    compiled = {}
    for name, spec in row_schema["properties"].items():
        if unknown := set(spec) - COLUMN_KEYWORDS:
            raise ConfigError(f"{CSV_SCHEMAS[file_name]}: column {name} uses unsupported keywords {sorted(unknown)}")
        compiled[name] = _Column(
            name=name,
            required=name in required,
            pattern=re.compile(spec["pattern"]) if "pattern" in spec else None,
            enum=frozenset(spec["enum"]) if "enum" in spec else None,
            max_length=spec.get("maxLength"),
        )
    return MappingProxyType(compiled)


def check_cell(column: _Column, value: str) -> str | None:
    """Why ``value`` does not fit ``column``'s schema, or None when it does."""
    if column.max_length is not None and len(value) > column.max_length:
        return f"is {len(value)} characters long; at most {column.max_length} are allowed"
    if column.enum is not None and value not in column.enum:
        return f"{value!r} is not one of {', '.join(sorted(column.enum))}"
    if column.pattern is not None and not column.pattern.search(value):
        return f"{_shown(value)} does not have the expected form ({column.pattern.pattern})"
    return None


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def read_header(path: Path, file_name: str) -> list[str]:
    """Check a CSV file's header against its schema; the columns in file order."""
    with _open_text(path) as stream:
        header = next(csv.reader(stream), None)
    if header is None:
        raise InputError("is empty; its first line must name the columns", source=str(path), line=1)
    names = [name.strip() for name in header]
    known = columns(file_name)
    for name in names:
        if _bad_text(name):
            raise InputError(f"column name {_shown(name)} is not valid UTF-8 text; save the file as UTF-8",
                             source=str(path), line=1)
    if duplicated := sorted({n for n in names if names.count(n) > 1}):
        raise InputError(f"column(s) named twice: {', '.join(duplicated)}", source=str(path), line=1)
    if unknown := [n for n in names if n not in known]:
        raise InputError(f"unknown column(s) {', '.join(map(repr, unknown))}; the columns are {', '.join(known)}",
                         source=str(path), line=1)
    if missing := [n for n, c in known.items() if c.required and n not in names]:
        raise InputError(f"required column(s) missing: {', '.join(missing)}", source=str(path), line=1)
    return names


def _open_text(path: Path) -> Any:
    try:
        with path.open("rb") as raw:
            start = raw.read(4)
    except FileNotFoundError as error:
        raise InputError(f"missing; a trial package needs {path.name}", source=str(path)) from error
    except OSError as error:
        raise InputError(f"cannot be read: {error.strerror}", source=str(path)) from error
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError("is UTF-16 text; save it as UTF-8", source=str(path))
    # A UTF-8 byte-order mark is dropped; other bytes that are not UTF-8 are kept as
    # surrogates, so the row that holds them can be rejected instead of the whole file.
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")


_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, kept by surrogateescape


def _bad_text(value: str) -> bool:
    return _UNDECODED.search(value) is not None


def csv_rows(path: Path, file_name: str) -> Iterator[tuple[int, dict[str, str]] | Reject]:
    """Each row of a CSV file as (line, {column: stripped non-empty value}), or a Reject."""
    names = read_header(path, file_name)
    known = columns(file_name)
    with _open_text(path) as stream:
        reader = csv.reader(stream)
        next(reader)
        last_line = reader.line_num
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield Reject(file_name, last_line + 1, None, f"cannot be read as CSV: {error}")
                last_line = reader.line_num
                continue
            line, last_line = last_line + 1, reader.line_num
            if not fields:
                continue  # a blank line is not a row
            try:
                yield line, _cells(fields, names, known)
            except _RowError as error:
                yield Reject(file_name, line, error.column, error.reason)


def _cells(fields: list[str], names: list[str], known: Mapping[str, _Column]) -> dict[str, str]:
    if len(fields) < len(names):
        missing = names[len(fields):]
        raise _RowError(missing[0], f"has {len(fields)} fields but the header has {len(names)}; "
                        f"missing: {', '.join(missing)}")
    if len(fields) > len(names):
        raise _RowError(None, f"has {len(fields)} fields but the header has {len(names)}; "
                        f"remove the extra values after column {names[-1]} (or quote values that hold commas)")
    row = {}
    for name, raw in zip(names, fields, strict=True):
        value = raw.strip()
        if _bad_text(value):
            bad = _UNDECODED.search(value)
            assert bad is not None
            raise _RowError(name, f"is not valid UTF-8 (byte 0x{ord(bad.group()) - 0xDC00:02X}); "
                            "save the file as UTF-8")
        if "\x00" in value:
            raise _RowError(name, "contains a NUL byte")
        if value:
            if (problem := check_cell(known[name], value)) is not None:
                raise _RowError(name, problem)
            row[name] = value
    for name, column in known.items():
        if column.required and name not in row:
            raise _RowError(name, "is empty; a value is required")
    return row


# --- values ------------------------------------------------------------------------


def _date(row: Mapping[str, str], column: str) -> str | None:
    value = row.get(column)
    if value is not None:
        try:
            date.fromisoformat(value)
        except ValueError as error:
            raise _RowError(column, f"{value!r} is not a calendar date") from error
    return value


def _moment(row: Mapping[str, str], column: str, site: Site) -> str | None:
    """A FHIR dateTime: a date as given, or a time with its UTC offset (the site's zone if none)."""
    value = row.get(column)
    if value is None:
        return None
    if len(value) == 10:
        return _date(row, column)
    try:
        moment = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError as error:
        raise _RowError(column, f"{value!r} is not a valid date and time") from error
    if moment.tzinfo is None:
        if site.zone is None:
            raise _RowError(column, f"{value!r} has no UTC offset and site {site.id} has no time_zone in "
                            "package.yaml; add the offset (e.g. +07:00) or the site's time zone")
        local = moment
        moment = local.replace(tzinfo=site.zone)
        if moment.astimezone(UTC).astimezone(site.zone).replace(tzinfo=None) != local:
            raise _RowError(column, f"{value!r} does not exist in {site.zone.key} (clocks skipped it); give the offset")
        if moment.utcoffset() != moment.replace(fold=1).utcoffset():
            raise _RowError(column, f"{value!r} happens twice in {site.zone.key} (clocks went back); give the offset")
    return moment.isoformat()


def _decimal(row: Mapping[str, str], column: str) -> Decimal | None:
    value = row.get(column)
    if value is None:
        return None
    if not _DECIMAL.match(value):
        raise _RowError(column, f"{_shown(value)} is not a number (use digits and a decimal point, e.g. 12.5)")
    if len(value.lstrip("+-0.")) > MAX_DIGITS:
        raise _RowError(column, f"{_shown(value)} has more than {MAX_DIGITS} digits; no measurement is that precise")
    try:
        return Decimal(value)
    except InvalidOperation as error:  # pragma: no cover - the pattern admits only valid decimals
        raise _RowError(column, f"{_shown(value)} is not a number") from error


def _convert(value: Decimal, factor: Decimal) -> Decimal:
    """``value`` times ``factor``, keeping the source's significant digits (no invented precision)."""
    if factor == 1:
        return value
    digits = max(len(value.as_tuple().digits), 1)
    return Context(prec=digits).multiply(value, factor)


# --- rows to records -----------------------------------------------------------------


def read_subjects(package: Package, index: dict[str, str]) -> Iterator[tuple[int, Subject] | Reject]:
    """Each subjects.csv row as (line, Subject) or a Reject; fills ``index`` (subject id to site id)."""
    first_line: dict[str, int] = {}
    for item in csv_rows(package.csv_path(SUBJECTS), SUBJECTS):
        if isinstance(item, Reject):
            yield item
            continue
        line, row = item
        try:
            subject = _subject(package, row)
            if subject.subject_id in first_line:
                first = first_line[subject.subject_id]
                raise _RowError("subject_id", f"duplicate subject {subject.subject_id!r} (first at line {first}); "
                                "subject ids are unique in a package")
        except _RowError as error:
            yield Reject(SUBJECTS, line, error.column, error.reason)
            continue
        first_line[subject.subject_id] = line
        index[subject.subject_id] = subject.site_id
        yield line, subject


def _subject(package: Package, row: Mapping[str, str]) -> Subject:
    if row["site_id"] not in package.sites:
        raise _RowError("site_id", f"unknown site {row['site_id']!r}; package.yaml lists {', '.join(package.sites)}")
    for column in ("arm_assigned", "arm_actual"):
        if column in row and row[column] not in package.arms:
            raise _RowError(column, f"{row[column]!r} is not an arm of {package.nct_id}; "
                            f"the arms are {', '.join(map(repr, package.arms))}")
    status = row["status"]
    if status in _RANDOMIZED and "arm_assigned" not in row:
        raise _RowError("arm_assigned", f"is empty; a subject with status {status} has an assigned arm")
    consent = _date(row, "consent_date")
    start, end = _date(row, "start_date"), _date(row, "end_date")
    if start is not None and consent is not None and start < consent:
        raise _RowError("start_date", f"{start} is before the consent date {consent}")
    if end is not None and end < (start or consent or end):
        raise _RowError("end_date", f"{end} is before the start of participation {start or consent}")
    if status in ("completed", "withdrawn") and end is None:
        raise _RowError("end_date", f"is empty; a subject with status {status} has an end date")
    if "withdrawal_reason" in row and status != "withdrawn":
        raise _RowError("withdrawal_reason", f"is given but the status is {status}, not withdrawn")
    birth_year = int(row["birth_year"]) if "birth_year" in row else None
    if birth_year is not None and not 1900 <= birth_year <= int(row["consent_date"][:4]):
        raise _RowError("birth_year", f"{birth_year} is not between 1900 and the consent year")
    return Subject(
        nct_id=package.nct_id,
        site_id=row["site_id"],
        subject_id=row["subject_id"],
        sex=row["sex"],
        consent_date=row["consent_date"],
        status=status,
        birth_year=birth_year,
        assigned_arm=row.get("arm_assigned"),
        actual_arm=row.get("arm_actual"),
        start_date=start,
        end_date=end,
        withdrawal_reason=row.get("withdrawal_reason"),
    )


class _SubjectBlocks:
    """Duplicate keys within the current subject's block, and subjects whose block has ended."""

    def __init__(self, file_name: str) -> None:
        self.file_name = file_name
        self.current: str | None = None
        self.keys: dict[tuple[str, ...], int] = {}
        self.closed: set[str] = set()

    def check(self, subject_id: str, key: tuple[str, ...], line: int) -> None:
        if subject_id != self.current:
            if subject_id in self.closed:
                raise _RowError("subject_id", f"rows of subject {subject_id!r} must be contiguous in "
                                f"{self.file_name}, but its rows stopped earlier; sort the file by subject_id")
            if self.current is not None:
                self.closed.add(self.current)
            self.current, self.keys = subject_id, {}
        if key in self.keys:
            raise _RowError(None, f"duplicate of line {self.keys[key]} (same {', '.join(key)})")

    def accept(self, key: tuple[str, ...], line: int) -> None:
        self.keys[key] = line


def _site_of(package: Package, index: Mapping[str, str], subject_id: str, file_name: str) -> Site:
    site_id = index.get(subject_id)
    if site_id is None:
        raise _RowError("subject_id", f"no subject {subject_id!r} in subjects.csv (or its row was rejected)")
    return package.sites[site_id]


def read_measurements(package: Package, index: Mapping[str, str]) -> Iterator[tuple[int, Measurement] | Reject]:
    """Each measurements.csv row as (line, Measurement) or a Reject."""
    blocks = _SubjectBlocks(MEASUREMENTS)
    for item in csv_rows(package.csv_path(MEASUREMENTS), MEASUREMENTS):
        if isinstance(item, Reject):
            yield item
            continue
        line, row = item
        try:
            measurement = _measurement(package, index, row)
            key = (measurement.visit.code, measurement.test_code, measurement.collected_at)
            blocks.check(measurement.subject_id, key, line)
        except _RowError as error:
            yield Reject(MEASUREMENTS, line, error.column, error.reason)
            continue
        blocks.accept(key, line)
        yield line, measurement


def _measurement(package: Package, index: Mapping[str, str], row: Mapping[str, str]) -> Measurement:
    site = _site_of(package, index, row["subject_id"], MEASUREMENTS)
    visit = package.visits.get(row["visit"])
    if visit is None:
        raise _RowError("visit", f"unknown visit {row['visit']!r}; package.yaml lists {', '.join(package.visits)}")
    test = package.tables.tests.get(row["test_code"])
    if test is None:
        raise _RowError("test_code", f"unknown test code {row['test_code']!r}; add it to mappings/measurements.yaml")
    collected_at = _moment(row, "collected_at", site)
    assert collected_at is not None  # a required column
    text = row["value"]
    unit: str | None = None
    low = high = None
    value: Decimal | int | Code | str
    if test.value_type == "quantity":
        unit, factor = _unit(package, row, test.code, test.unit)
        number = _decimal(row, "value")
        assert number is not None
        value = _convert(number, factor)
        low, high = _decimal(row, "ref_low"), _decimal(row, "ref_high")
        low = None if low is None else _convert(low, factor)
        high = None if high is None else _convert(high, factor)
        if low is not None and high is not None and low > high:
            raise _RowError("ref_low", f"reference range low {row['ref_low']} is above high {row['ref_high']}")
    else:
        for column in ("unit", "ref_low", "ref_high"):
            if column in row:
                raise _RowError(column, f"is given but test {test.code} takes "
                                f"a {test.value_type} value, not a quantity")
        if test.value_type == "integer":
            if not _INTEGER.match(text) or int(text) not in FHIR_INTEGER:
                raise _RowError("value", f"{_shown(text)} is not a whole number; test {test.code} takes an integer")
            value = int(text)
        elif test.value_type == "codeable":
            answer = test.answers.get(text)
            if answer is None:
                raise _RowError("value", f"{_shown(text)} is not an answer of test {test.code}; "
                                f"expected one of {', '.join(test.answers)}")
            value = answer
        else:
            value = text
    interpretation = None
    if "flag" in row:
        interpretation = package.tables.interpretations.get(row["flag"])
        if interpretation is None:
            raise _RowError("flag", f"unknown flag {row['flag']!r}; expected one of "
                            f"{', '.join(package.tables.interpretations)}")
    return Measurement(
        nct_id=package.nct_id,
        site_id=site.id,
        subject_id=row["subject_id"],
        visit=visit,
        test_code=test.code,
        local_system=package.local_system,
        display=test.display,
        category=test.category,
        codes=test.codes,
        value=value,
        collected_at=collected_at,
        unit=unit,
        low=low,
        high=high,
        interpretation=interpretation,
    )


def _unit(package: Package, row: Mapping[str, str], test_code: str, target: str | None) -> tuple[str, Decimal]:
    assert target is not None  # the table schema requires a unit for quantity tests
    spelled = row.get("unit")
    if spelled is None:
        raise _RowError("unit", f"is empty; test {test_code} needs a unit convertible to {target}")
    ucum = package.tables.units.ucum(spelled)
    if ucum is None:
        raise _RowError("unit", f"unknown unit {spelled!r}; add it (or its spelling) to mappings/units.yaml")
    factor = package.tables.units.factor(ucum, target)
    if factor is None:
        raise _RowError("unit", f"{spelled!r} cannot be converted to {target} for test {test_code}; "
                        "add the conversion to mappings/units.yaml")
    return target, factor


def read_administrations(
    package: Package, index: Mapping[str, str]
) -> Iterator[tuple[int, Administration] | Reject]:
    """Each administrations.csv row as (line, Administration) or a Reject."""
    blocks = _SubjectBlocks(ADMINISTRATIONS)
    for item in csv_rows(package.csv_path(ADMINISTRATIONS), ADMINISTRATIONS):
        if isinstance(item, Reject):
            yield item
            continue
        line, row = item
        try:
            administration = _administration(package, index, row)
            key = (administration.product_code, administration.start)
            blocks.check(administration.subject_id, key, line)
        except _RowError as error:
            yield Reject(ADMINISTRATIONS, line, error.column, error.reason)
            continue
        blocks.accept(key, line)
        yield line, administration


def _administration(package: Package, index: Mapping[str, str], row: Mapping[str, str]) -> Administration:
    site = _site_of(package, index, row["subject_id"], ADMINISTRATIONS)
    product = package.tables.products.get(row["product_code"])
    if product is None:
        raise _RowError("product_code", f"unknown product {row['product_code']!r}; add it to mappings/products.yaml")
    route = None
    if "route" in row:
        route = package.tables.routes.get(row["route"])
        if route is None:
            known = ", ".join(package.tables.routes)
            raise _RowError("route", f"unknown route {row['route']!r}; expected one of {known}")
    dose = _decimal(row, "dose")
    dose_unit = None
    if dose is not None:
        if "dose_unit" not in row:
            raise _RowError("dose_unit", "is empty; a dose needs its unit")
        dose_unit = package.tables.units.ucum(row["dose_unit"])
        if dose_unit is None:
            raise _RowError("dose_unit", f"unknown unit {row['dose_unit']!r}; add it to mappings/units.yaml")
    elif "dose_unit" in row:
        raise _RowError("dose", f"is empty but dose_unit is {row['dose_unit']!r}")
    start = _moment(row, "start", site)
    end = _moment(row, "end", site)
    assert start is not None  # a required column
    if end is not None and _instant(end) < _instant(start):
        raise _RowError("end", f"{row['end']} is before the start {row['start']}")
    status = row["status"]
    if status == "not-done" and "not_given_reason" not in row:
        raise _RowError("not_given_reason", "is empty; say why the dose was not given (status not-done)")
    if status != "not-done" and "not_given_reason" in row:
        raise _RowError("not_given_reason", f"is given but the status is {status}, not not-done")
    return Administration(
        nct_id=package.nct_id,
        site_id=site.id,
        subject_id=row["subject_id"],
        product_code=row["product_code"],
        local_system=package.local_system,
        product_display=product.display,
        product_codes=product.codes,
        status=status,
        start=start,
        end=end,
        dose=dose,
        dose_unit=dose_unit,
        route_display=route.display if route else None,
        route_codes=route.codes if route else (),
        not_given_reason=row.get("not_given_reason"),
    )


def _instant(value: str) -> datetime:
    """A FHIR date or dateTime as a comparable UTC datetime (a date counts from its start, UTC)."""
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
