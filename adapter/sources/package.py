"""Read a trial package: ``package.yaml`` and three CSV files, streamed row by row.

The format is documented in ``docs/trial-package.md``; each file has a JSON Schema in
``schemas/`` (``trial-package*.schema.json``). ``load_package``
(``adapter.sources.package_descriptor``) reads the descriptor, the study's arm labels
and the code tables. ``read_subjects``, ``read_measurements`` and
``read_administrations`` (here) then yield, for every row, either a record
(``adapter.records``) or a ``Reject`` naming the file, line, column and a reason a
person can act on; the CSV reading and cell checks they share are in
``adapter.sources.package_csv``, what a date, time or decimal cell says in
``adapter.sources.package_values``. Nothing is skipped silently: blank lines are not
rows, everything else is one or the other.

Memory stays flat in the number of measurements: the reader keeps one entry per
subject (its site) and the natural keys of the subject it is reading, to catch
duplicates. That is why the rows of one subject must be contiguous in
measurements.csv and administrations.csv (a subject that comes back after another
one's rows is rejected with a reason that says so).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Generic, Protocol, TypeVar

from adapter.errors import ConversionError
from adapter.fhir.ucum import convert
from adapter.records import Administration, Code, Measurement, Reported, Subject
from adapter.sources.codetables import TestDef
from adapter.sources.package_csv import Reject, RowError, read_records, shown
from adapter.sources.package_descriptor import (
    ADMINISTRATIONS,
    MEASUREMENTS,
    SUBJECTS,
    Package,
    Site,
)
from adapter.sources.package_values import (
    FHIR_INTEGER,
    INTEGER,
    date_value,
    decimal_value,
    instant,
    moment_value,
    time_precision,
)

# A censored result as labs write it: a comparator, then the limit (<0.3, >1000, <= 5).
_CENSORED = re.compile(r"^(<=|>=|<|>)\s*(.*)$")
# Enrollment states after which a subject has an arm and has begun the study.
_RANDOMIZED = frozenset({"enrolled", "on-intervention", "follow-up", "completed", "withdrawn"})


# --- rows to records -----------------------------------------------------------------


def read_subjects(package: Package, index: dict[str, str]) -> Iterator[tuple[int, Subject] | Reject]:
    """Each subjects.csv row as (line, Subject) or a Reject; fills ``index`` (subject id to site id)."""
    first_line: dict[str, int] = {}

    def admit(subject: Subject, line: int) -> None:
        if subject.subject_id in first_line:
            first = first_line[subject.subject_id]
            raise RowError("subject_id", f"duplicate subject {subject.subject_id!r} (first at line {first}); "
                           "subject ids are unique in a package", kind="duplicate subject")
        first_line[subject.subject_id] = line
        index[subject.subject_id] = subject.site_id

    return read_records(package.csv_path(SUBJECTS), SUBJECTS, lambda row: _subject(package, row), admit,
                        package.dialect)


def _subject(package: Package, row: Mapping[str, str]) -> Subject:
    if row["site_id"] not in package.sites:
        raise RowError("site_id", f"unknown site {row['site_id']!r}; package.yaml lists {', '.join(package.sites)}",
                       kind="unknown site")
    for column in ("arm_assigned", "arm_actual"):
        if column in row and row[column] not in package.arms:
            raise RowError(column, f"{row[column]!r} is not an arm of {package.nct_id}; "
                           f"the arms are {', '.join(map(repr, package.arms))}", kind="unknown arm")
    status = row["status"]
    if status in _RANDOMIZED and "arm_assigned" not in row:
        raise RowError("arm_assigned", f"is empty; a subject with status {status} has an assigned arm",
                       kind="missing arm")
    consent = date_value(row, "consent_date")
    start, end = date_value(row, "start_date"), date_value(row, "end_date")
    if start is not None and consent is not None and start < consent:
        raise RowError("start_date", f"{start} is before the consent date {consent}", kind="dates out of order")
    if end is not None and end < (start or consent or end):
        raise RowError("end_date", f"{end} is before the start of participation {start or consent}",
                       kind="dates out of order")
    if status in ("completed", "withdrawn") and end is None:
        raise RowError("end_date", f"is empty; a subject with status {status} has an end date", kind="missing end date")
    if "withdrawal_reason" in row and status != "withdrawn":
        raise RowError("withdrawal_reason", f"is given but the status is {status}, not withdrawn",
                       kind="contradicts the status")
    birth_year = int(row["birth_year"]) if "birth_year" in row else None
    if birth_year is not None and not 1900 <= birth_year <= int(row["consent_date"][:4]):
        raise RowError("birth_year", f"{birth_year} is not between 1900 and the consent year",
                       kind="implausible birth year")
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


class _OfSubject(Protocol):
    @property
    def subject_id(self) -> str: ...


R = TypeVar("R", bound=_OfSubject)


class _SubjectBlocks(Generic[R]):
    """Admits the rows of a file whose subjects' rows are contiguous: no duplicate key within a subject's block,
    and no subject whose block has ended coming back."""

    def __init__(self, file_name: str, key: Callable[[R], tuple[str, ...]], named: str) -> None:
        self.file_name = file_name
        self.key = key
        self.named = named  # what the key is, in words: "visit, test and time"
        self.current: str | None = None
        # The current subject's rows by natural key: their line and record, to tell a repeated row from a conflict.
        self.keys: dict[tuple[str, ...], tuple[int, R]] = {}
        self.closed: set[str] = set()

    def admit(self, record: R, line: int) -> None:
        subject_id, key = record.subject_id, self.key(record)
        if subject_id != self.current:
            if subject_id in self.closed:
                raise RowError("subject_id", f"rows of subject {subject_id!r} must be contiguous in "
                               f"{self.file_name}, but its rows stopped earlier; sort the file by subject_id",
                               kind="rows of a subject not contiguous")
            if self.current is not None:
                self.closed.add(self.current)
            self.current, self.keys = subject_id, {}
        if key in self.keys:
            first, earlier = self.keys[key]
            if earlier == record:
                raise RowError(None, f"duplicate of line {first} (same {self.named}, same values)",
                               kind="duplicate row")
            # The values are not shown: they are patient data; the lines say where to look.
            raise RowError(None, f"same {self.named} as line {first}, different values; keep the right one",
                           kind="same key, different values")
        self.keys[key] = (line, record)


def _site_of(package: Package, index: Mapping[str, str], subject_id: str) -> Site:
    site_id = index.get(subject_id)
    if site_id is None:
        raise RowError("subject_id", f"no subject {subject_id!r} in subjects.csv (or its row was rejected)",
                       kind="unknown subject")
    return package.sites[site_id]


def read_measurements(package: Package, index: Mapping[str, str]) -> Iterator[tuple[int, Measurement] | Reject]:
    """Each measurements.csv row as (line, Measurement) or a Reject."""
    blocks = _SubjectBlocks[Measurement](MEASUREMENTS, lambda m: (m.visit.code, m.test_code, m.collected_at),
                                         "visit, test and time")
    return read_records(
        package.csv_path(MEASUREMENTS), MEASUREMENTS, lambda row: _measurement(package, index, row), blocks.admit,
        package.dialect,
    )


def _measurement(package: Package, index: Mapping[str, str], row: Mapping[str, str]) -> Measurement:
    site = _site_of(package, index, row["subject_id"])
    visit = package.visits.get(row["visit"])
    if visit is None:
        raise RowError("visit", f"unknown visit {row['visit']!r}; package.yaml lists {', '.join(package.visits)}",
                       kind="unknown visit")
    test = package.tables.tests.get(row["test_code"])
    if test is None:
        raise RowError("test_code", f"unknown test code {row['test_code']!r}; "
                       f"add it to {package.tables.where_to_add('measurements')}", kind="unknown test code")
    collected_at = moment_value(row, "collected_at", site)
    assert collected_at is not None  # a required column
    text = row["value"]
    unit: str | None = None
    low = high = None
    reported = None
    value: Decimal | int | Code | str
    comparator = None
    if test.value_type == "quantity":
        source_unit, target = _unit(package, row, test)
        unit = target

        def converted(number: Decimal) -> Decimal:
            try:
                return convert(number, source_unit, target, molar_mass=test.molar_mass)
            except ConversionError as error:  # the table's rules are checked when loaded; kept for safety
                raise RowError("unit", f"cannot be converted for test {test.code}: {error}",
                               kind="unit cannot be converted") from error

        censored = _CENSORED.match(text)
        comparator = censored.group(1) if censored else None
        number = decimal_value({"value": censored.group(2)} if censored else row, "value")
        assert number is not None
        value = converted(number)
        reported = Reported(number, row["unit"], source_unit,
                            decimal_value(row, "ref_low"), decimal_value(row, "ref_high"))
        if "reported_value" in row:  # collected: the hospital's own value and UCUM unit, before collect converted
            hospital = decimal_value(row, "reported_value")
            assert hospital is not None
            reported = Reported(hospital, row.get("reported_unit", row["unit"]),
                                row.get("reported_unit", source_unit), reported.low, reported.high)
        low = None if reported.low is None else converted(reported.low)
        high = None if reported.high is None else converted(reported.high)
        if low is not None and high is not None and low > high:
            raise RowError("ref_low", f"reference range low {row['ref_low']} is above high {row['ref_high']}",
                           kind="reference range low above high")
    else:
        for column in ("unit", "ref_low", "ref_high"):
            if column in row:
                raise RowError(column, f"is given but test {test.code} takes "
                               f"a {test.value_type} value, not a quantity", kind="not a quantity test")
        if test.value_type == "integer":
            if not INTEGER.match(text) or int(text) not in FHIR_INTEGER:
                raise RowError("value", f"{shown(text)} is not a whole number; test {test.code} takes an integer",
                               kind="not a whole number")
            value = int(text)
        elif test.value_type == "codeable":
            answer = test.answers.get(text)
            if answer is None:
                raise RowError("value", f"{shown(text)} is not an answer of test {test.code}; "
                               f"expected one of {', '.join(test.answers)}", kind="not an answer of the test")
            value = answer
        else:
            value = text
    interpretation = None
    if "flag" in row:
        interpretation = package.tables.interpretations.get(row["flag"])
        if interpretation is None:
            raise RowError("flag", f"unknown flag {row['flag']!r}; expected one of "
                           f"{', '.join(package.tables.interpretations)}", kind="unknown flag")
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
        collected_precision=time_precision(row, "collected_at"),
        unit=unit,
        low=low,
        high=high,
        reported=reported,
        interpretation=interpretation,
        comparator=comparator,
        derived_from=_lineage(row),
    )


def _lineage(row: Mapping[str, str]) -> tuple[str, ...]:
    """Where a row written by collect came from: its source's absolute, versioned URL, or a derived row's sources."""
    if "derived_from" in row:
        return tuple(row["derived_from"].split())
    if "source_id" not in row:
        return ()
    for column in ("source_server", "source_type", "source_version"):
        if column not in row:
            raise RowError(column, "is empty; a row with a source_id names its server, type and version",
                           kind="incomplete source")
    return (f"{row['source_server'].rstrip('/')}/{row['source_type']}/{row['source_id']}"
            f"/_history/{row['source_version']}",)


def _unit(package: Package, row: Mapping[str, str], test: TestDef) -> tuple[str, str]:
    """The UCUM codes of the row's unit and the test's: the same, or one the test converts from."""
    target = test.unit
    assert target is not None  # the table schema requires a unit for quantity tests
    spelled = row.get("unit")
    if spelled is None:
        raise RowError("unit", f"is empty; test {test.code} needs its unit ({target})", kind="missing unit")
    ucum = package.tables.units.ucum(spelled)
    if ucum is None:
        raise RowError("unit", f"unknown unit {spelled!r}; add it (or its spelling) to "
                       f"{package.tables.where_to_add('units')}", kind="unknown unit")
    if ucum != target and ucum not in test.convert_from:
        raise RowError("unit", f"{spelled!r} has no conversion to {target} for test {test.code}; add {ucum} to "
                       f"the test's convert_from (and its molar_mass for mass to mmol) in "
                       f"{package.tables.where_to_add('measurements')}", kind="no conversion for the test")
    return ucum, target


def read_administrations(
    package: Package, index: Mapping[str, str]
) -> Iterator[tuple[int, Administration] | Reject]:
    """Each administrations.csv row as (line, Administration) or a Reject."""
    blocks = _SubjectBlocks[Administration](ADMINISTRATIONS, lambda a: (a.product_code, a.start), "product and start")
    return read_records(
        package.csv_path(ADMINISTRATIONS), ADMINISTRATIONS, lambda row: _administration(package, index, row),
        blocks.admit, package.dialect,
    )


def _administration(package: Package, index: Mapping[str, str], row: Mapping[str, str]) -> Administration:
    site = _site_of(package, index, row["subject_id"])
    product = package.tables.products.get(row["product_code"])
    if product is None:
        raise RowError("product_code", f"unknown product {row['product_code']!r}; "
                       f"add it to {package.tables.where_to_add('products')}", kind="unknown product")
    route = None
    if "route" in row:
        route = package.tables.routes.get(row["route"])
        if route is None:
            known = ", ".join(package.tables.routes)
            raise RowError("route", f"unknown route {row['route']!r}; expected one of {known}", kind="unknown route")
    dose = decimal_value(row, "dose")
    dose_unit = None
    if dose is not None:
        if "dose_unit" not in row:
            raise RowError("dose_unit", "is empty; a dose needs its unit", kind="missing dose unit")
        dose_unit = package.tables.units.ucum(row["dose_unit"])
        if dose_unit is None:
            raise RowError("dose_unit", f"unknown unit {row['dose_unit']!r}; "
                           f"add it to {package.tables.where_to_add('units')}", kind="unknown unit")
    elif "dose_unit" in row:
        raise RowError("dose", f"is empty but dose_unit is {row['dose_unit']!r}", kind="dose unit without a dose")
    start = moment_value(row, "start", site)
    end = moment_value(row, "end", site)
    assert start is not None  # a required column
    if end is not None and instant(end) < instant(start):
        raise RowError("end", f"{row['end']} is before the start {row['start']}", kind="dates out of order")
    status = row["status"]
    if status == "not-done" and "not_given_reason" not in row:
        raise RowError("not_given_reason", "is empty; say why the dose was not given (status not-done)",
                       kind="missing reason not given")
    if status not in ("not-done", "stopped") and "not_given_reason" in row:
        raise RowError("not_given_reason", f"is given but the status is {status}, not not-done or stopped",
                       kind="contradicts the status")
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
        start_precision=time_precision(row, "start"),
        end_precision=time_precision(row, "end"),
        dose=dose,
        dose_unit=dose_unit,
        dose_unit_text=row.get("dose_unit") if dose_unit else None,
        route_display=route.display if route else None,
        route_codes=(route.over_period if end and route.over_period else route.codes) if route else (),
        not_given_reason=row.get("not_given_reason"),
        product_form=product.form,
        lot=row.get("lot"),
    )
