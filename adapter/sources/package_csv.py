"""The CSV files of a trial package: headers checked, cells checked, rows read into records.

Each file's columns are compiled from its JSON Schema (``schemas/trial-package-*.schema.json``).
``csv_rows`` yields every row as its line and its non-empty cells, or a ``Reject``;
``read_records`` is the one loop the row readers share: it turns each row into a
record with a per-file parser and lets the file's own check admit it (or reject it
as a duplicate). Whole-file problems (a missing file, a missing or unknown column,
UTF-16 text) are ``InputError``: no row of such a file can be read reliably.

A package may declare how its files are written (``Dialect``, package.yaml ``csv``):
delimiter, decimal comma, date and time formats, header case, renamed and ignored
columns. Cells are brought to the documented form (ISO 8601 dates, decimal point)
before they are checked, so the row parsers see one form whatever the export was.
Without a declaration the strict default holds; a header that looks semicolon-
separated gets a hint naming the setting.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from adapter.errors import ConfigError, InputError
from adapter.sources.package_descriptor import CSV_SCHEMAS, Dialect, schema

# The JSON Schema keywords a CSV column schema may use: the reader compiles exactly these.
COLUMN_KEYWORDS = frozenset({"type", "pattern", "enum", "maxLength", "description"})

# A header is read only this far: ours have a dozen columns, and a hostile one may have a million.
MAX_HEADER_CHARS = 16_384
MAX_HEADER_COLUMNS = 100
SHOWN_NAMES = 10  # an error lists at most this many column names

R = TypeVar("R")

STRICT = Dialect()
# The columns whose form a dialect changes: calendar dates, dates or times, numbers.
DATE_COLUMNS = frozenset({"consent_date", "start_date", "end_date"})
MOMENT_COLUMNS = frozenset({"collected_at", "start", "end"})
NUMBER_COLUMNS = frozenset({"value", "ref_low", "ref_high", "dose"})
# A number written with a decimal comma, possibly censored (<0,3): the one form rewritten to a decimal point.
_COMMA_NUMBER = re.compile(r"^([<>]=?\s*)?[+-]?([0-9]+(,[0-9]*)?|,[0-9]+)$")
_POINT_NUMBER = re.compile(r"^([<>]=?\s*)?[+-]?[0-9]*\.[0-9]+$")


@dataclass(frozen=True)
class Reject:
    """A row that could not be mapped: where it is and why, in words a person can act on."""

    file: str
    line: int
    column: str | None
    reason: str
    # The cause in a few words, never a value: what a summary may count rejects by.
    kind: str = "invalid value"

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "column": self.column, "reason": self.reason, "kind": self.kind}

    @property
    def cause(self) -> str:
        """``file: column: kind``, the same for every row rejected for the same reason; holds no value."""
        return f"{self.file}: " + (f"{self.column}: " if self.column else "") + self.kind

    @property
    def where(self) -> str:
        """``file:line: column``: what a log or a job record may say of a reject (the reason may quote a value)."""
        return f"{self.file}:{self.line}" + (f": {self.column}" if self.column else "")

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def reject_summary(causes: Mapping[str, int]) -> list[str]:
    """Rejected rows counted by cause, the most frequent first, one indented line each (no values)."""
    ranked = sorted(causes.items(), key=lambda item: (-item[1], item[0]))
    return [f"  {count:>7}  {cause}" for cause, count in ranked]


class RowError(Exception):
    """A problem with one cell; becomes a Reject for that row."""

    def __init__(self, column: str | None, reason: str, *, kind: str = "invalid value") -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    pattern: re.Pattern[str] | None
    enum: frozenset[str] | None
    max_length: int | None


@cache
def columns(file_name: str) -> Mapping[str, Column]:
    """The columns of a package CSV file, compiled from its JSON Schema."""
    row_schema = schema(CSV_SCHEMAS[file_name])
    required = set(row_schema["required"])
    compiled = {}
    for name, spec in row_schema["properties"].items():
        if unknown := set(spec) - COLUMN_KEYWORDS:
            raise ConfigError(f"{CSV_SCHEMAS[file_name]}: column {name} uses unsupported keywords {sorted(unknown)}")
        compiled[name] = Column(
            name=name,
            required=name in required,
            pattern=re.compile(spec["pattern"]) if "pattern" in spec else None,
            enum=frozenset(spec["enum"]) if "enum" in spec else None,
            max_length=spec.get("maxLength"),
        )
    return MappingProxyType(compiled)


def check_cell(column: Column, value: str) -> str | None:
    """Why ``value`` does not fit ``column``'s schema, or None when it does."""
    if column.max_length is not None and len(value) > column.max_length:
        return f"is {len(value)} characters long; at most {column.max_length} are allowed"
    if column.enum is not None and value not in column.enum:
        return f"{value!r} is not one of {', '.join(sorted(column.enum))}"
    if column.pattern is not None and not column.pattern.search(value):
        return f"{shown(value)} does not have the expected form ({column.pattern.pattern})"
    return None


def shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def read_header(path: Path, file_name: str, dialect: Dialect = STRICT) -> list[str | None]:
    """Check a CSV file's header against its schema; the columns in file order (None: a column to ignore).

    The header is bounded (``MAX_HEADER_CHARS``, ``MAX_HEADER_COLUMNS``) and every check is linear in it.
    """
    with _open_text(path) as stream:
        first = stream.readline(MAX_HEADER_CHARS + 1)
    if len(first) > MAX_HEADER_CHARS:
        raise InputError(f"its header line is longer than {MAX_HEADER_CHARS} characters", source=str(path), line=1)
    header = next(csv.reader([first], delimiter=dialect.delimiter), None) if first.strip() else None
    if header is None:
        raise InputError("is empty; its first line must name the columns", source=str(path), line=1)
    if len(header) > MAX_HEADER_COLUMNS:
        raise InputError(f"its header has {len(header)} columns; at most {MAX_HEADER_COLUMNS} are accepted",
                         source=str(path), line=1)
    written = [name.strip() for name in header]
    known = columns(file_name)
    for name in written:
        if _bad_text(name):
            raise InputError("a column name is not valid UTF-8 text; save the file as UTF-8", source=str(path), line=1)
    # The dialect's header case, renamed and ignored columns; None marks a column not read.
    names = [None if (key := dialect.key(n)) in dialect.ignore else dialect.rename.get(key, key) for n in written]
    read = [n for n in names if n is not None]
    if duplicated := sorted(name for name, count in Counter(read).items() if count > 1):
        raise InputError(f"column(s) named twice: {_names(duplicated, str)}", source=str(path), line=1)
    if unknown := [n for n in read if n not in known]:
        if dialect.delimiter != ";" and any(";" in n for n in unknown):
            hint = ("the header holds ';', so the file looks semicolon-separated: declare it in package.yaml "
                    "(csv: {delimiter: ';'}, and decimal: ',' if its numbers use a decimal comma)")
        else:
            hint = "an export's own columns can be renamed or ignored in package.yaml (csv: rename, ignore)"
        raise InputError(f"unknown column(s) {_names(unknown)}; the columns are {', '.join(known)}; {hint}",
                         source=str(path), line=1)
    if missing := [n for n, c in known.items() if c.required and n not in read]:
        raise InputError(f"required column(s) missing: {', '.join(missing)}", source=str(path), line=1)
    return names


def _names(names: list[str], show: Callable[[str], str] = shown) -> str:
    listed = ", ".join(show(name) for name in names[:SHOWN_NAMES])
    return listed + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


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


def csv_rows(
    path: Path, file_name: str, dialect: Dialect = STRICT
) -> Iterator[tuple[int, dict[str, str]] | Reject]:
    """Each row of a CSV file as (line, {column: stripped non-empty value in the documented form}), or a Reject."""
    names = read_header(path, file_name, dialect)
    known = columns(file_name)
    with _open_text(path) as stream:
        reader = csv.reader(stream, delimiter=dialect.delimiter)
        next(reader)
        last_line = reader.line_num
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield Reject(file_name, last_line + 1, None, f"cannot be read as CSV: {error}", "not CSV")
                last_line = reader.line_num
                continue
            line, last_line = last_line + 1, reader.line_num
            if not fields:
                continue  # a blank line is not a row
            try:
                yield line, _cells(fields, names, known, dialect)
            except RowError as error:
                yield Reject(file_name, line, error.column, error.reason, error.kind)


def _cells(
    fields: list[str], names: list[str | None], known: Mapping[str, Column], dialect: Dialect
) -> dict[str, str]:
    if len(fields) < len(names):
        missing = [n for n in names[len(fields):] if n is not None] or ["(an ignored column)"]
        raise RowError(missing[0], f"has {len(fields)} fields but the header has {len(names)}; "
                       f"missing: {', '.join(missing)}", kind="wrong number of fields")
    if len(fields) > len(names):
        raise RowError(None, f"has {len(fields)} fields but the header has {len(names)}; remove the extra values "
                       f"after the last column (or quote values that hold a '{dialect.delimiter}')",
                       kind="wrong number of fields")
    row = {}
    for name, raw in zip(names, fields, strict=True):
        if name is None:
            continue  # a column package.yaml says to ignore
        value = raw.strip()
        if _bad_text(value):
            bad = _UNDECODED.search(value)
            assert bad is not None
            raise RowError(name, f"is not valid UTF-8 (byte 0x{ord(bad.group()) - 0xDC00:02X}); "
                           "save the file as UTF-8", kind="not UTF-8")
        if "\x00" in value:
            raise RowError(name, "contains a NUL byte", kind="NUL byte")
        if value:
            if dialect is not STRICT:
                value = _standard_form(name, value, dialect)
            if (problem := check_cell(known[name], value)) is not None:
                raise RowError(name, problem, kind="does not fit its column")
            row[name] = value
    for name, column in known.items():
        if column.required and name not in row:
            raise RowError(name, "is empty; a value is required", kind="missing value")
    return row


def _standard_form(name: str, value: str, dialect: Dialect) -> str:
    """A cell written in the package's dialect, in the documented form (ISO 8601, decimal point)."""
    if name in NUMBER_COLUMNS and dialect.decimal == ",":
        if _COMMA_NUMBER.match(value):
            return value.replace(",", ".")
        if _POINT_NUMBER.match(value):
            raise RowError(name, "has a decimal point, but package.yaml declares a decimal comma (csv: decimal)",
                           kind="decimal point, not comma")
    if name in DATE_COLUMNS and dialect.date_format:
        return _parsed(name, value, dialect.date_format, "date_format").date().isoformat()
    if name in MOMENT_COLUMNS and (dialect.datetime_format or dialect.date_format):
        # A time column may hold a date alone (its precision is kept): the date format is tried first.
        if dialect.date_format and (not dialect.datetime_format or _fits(value, dialect.date_format)):
            return _parsed(name, value, dialect.date_format, "date_format").date().isoformat()
        form = dialect.datetime_format
        assert form is not None
        # Written to the precision of the format, so a time without seconds stays one (see package_values).
        spec = "microseconds" if "%f" in form else "seconds" if "%S" in form else "minutes"
        return _parsed(name, value, form, "datetime_format").isoformat(timespec=spec)
    return value


def _fits(value: str, form: str) -> bool:
    try:
        datetime.strptime(value, form)
    except ValueError:
        return False
    return True


def _parsed(name: str, value: str, form: str, setting: str) -> datetime:
    # A naive result is a local time: the row parser gives it the site's zone. %z reads an offset.
    try:
        return datetime.strptime(value, form)
    except ValueError as error:  # the value is not repeated: it is patient data
        raise RowError(name, f"does not have the form {form} (package.yaml csv: {setting})",
                       kind="not in the declared format") from error


def read_records(
    path: Path,
    file_name: str,
    parse: Callable[[Mapping[str, str]], R],
    admit: Callable[[R, int], None],
    dialect: Dialect = STRICT,
) -> Iterator[tuple[int, R] | Reject]:
    """Each row of a package CSV file as (line, record) or a Reject.

    ``parse`` makes a record of a row's cells; ``admit(record, line)`` checks it against the rows before it
    (duplicates) and remembers it. Either raises ``RowError`` to reject the row.
    """
    for item in csv_rows(path, file_name, dialect):
        if isinstance(item, Reject):
            yield item
            continue
        line, row = item
        try:
            record = parse(row)
            admit(record, line)
        except RowError as error:
            yield Reject(file_name, line, error.column, error.reason, error.kind)
            continue
        yield line, record
