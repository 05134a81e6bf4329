"""The values of a trial package's cells: dates, times and decimals, as the site gave them.

A cell that does not hold what its column says is a ``RowError`` naming the column.
What a cell says is kept, not just what it means:

- a decimal keeps its digits (``Decimal("2.40")``, trailing zeros included), since
  FHIR says a decimal's precision is significant;
- a time keeps the fraction of a second the site wrote (``.5``, not ``.500000``);
  one written to the minute gets ``:00`` (FHIR needs seconds with a time) and
  ``time_precision`` says it was given to the minute, so the mapper can record it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from adapter.sources.package_csv import RowError, shown
from adapter.sources.package_descriptor import Site

FHIR_INTEGER = range(-(2**31), 2**31)
MAX_DIGITS = 32  # more digits than any measurement has; keeps JSON numbers finite
INTEGER = re.compile(r"^[+-]?[0-9]{1,10}$")
_DECIMAL = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")
# The time of a date and time as the schemas admit it: hh:mm, then optionally :ss and a fraction.
_TIME = re.compile(r"[T ][0-9]{2}:[0-9]{2}(?P<seconds>:[0-9]{2}(?P<fraction>\.[0-9]+)?)?")


def date_value(row: Mapping[str, str], column: str) -> str | None:
    """The cell as a calendar date ``yyyy-MM-dd``, or None when it is empty."""
    value = row.get(column)
    if value is not None:
        try:
            date.fromisoformat(value)
        except ValueError as error:
            raise RowError(column, f"{value!r} is not a calendar date", kind="not a date") from error
    return value


def moment_value(row: Mapping[str, str], column: str, site: Site) -> str | None:
    """A FHIR dateTime: a date as given, or a time with its UTC offset (the site's zone if none).

    Seconds are always written (``time_precision`` says when the site gave none) and a
    fraction of a second keeps the digits the site gave.
    """
    value = row.get(column)
    if value is None:
        return None
    if len(value) == 10:
        return date_value(row, column)
    try:
        moment = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError as error:
        raise RowError(column, f"{value!r} is not a valid date and time", kind="not a date and time") from error
    if moment.tzinfo is None:
        if site.zone is None:
            raise RowError(column, f"{value!r} has no UTC offset and site {site.id} has no time_zone in "
                           "package.yaml; add the offset (e.g. +07:00) or the site's time zone",
                           kind="no UTC offset nor time zone")
        local = moment
        moment = local.replace(tzinfo=site.zone)
        if moment.astimezone(UTC).astimezone(site.zone).replace(tzinfo=None) != local:
            raise RowError(column, f"{value!r} does not exist in {site.zone.key} (clocks skipped it); give the offset",
                           kind="local time that does not exist")
        if moment.utcoffset() != moment.replace(fold=1).utcoffset():
            raise RowError(column, f"{value!r} happens twice in {site.zone.key} (clocks went back); give the offset",
                           kind="ambiguous local time")
    time = _TIME.match(value, 10)
    fraction = time["fraction"] if time and time["fraction"] else ""
    written = moment.isoformat(timespec="seconds")
    return written[:19] + fraction + written[19:]


def time_precision(row: Mapping[str, str], column: str) -> str | None:
    """``minute`` for a time given without seconds, which FHIR cannot hold as such; else None (FHIR keeps it)."""
    value = row.get(column)
    time = _TIME.match(value, 10) if value else None
    return "minute" if time and not time["seconds"] else None


def decimal_value(row: Mapping[str, str], column: str) -> Decimal | None:
    """The cell as a Decimal with the digits written (``2.40`` stays ``2.40``), or None when it is empty."""
    value = row.get(column)
    if value is None:
        return None
    if not _DECIMAL.match(value):
        raise RowError(column, f"{shown(value)} is not a number (use digits and a decimal point, e.g. 12.5)",
                       kind="not a number")
    if len(value.lstrip("+-0.")) > MAX_DIGITS:
        raise RowError(column, f"{shown(value)} has more than {MAX_DIGITS} digits; no measurement is that precise",
                       kind="too many digits")
    try:
        return Decimal(value)
    except InvalidOperation as error:  # pragma: no cover - the pattern admits only valid decimals
        raise RowError(column, f"{shown(value)} is not a number", kind="not a number") from error


def instant(value: str) -> datetime:
    """A FHIR date or dateTime as a comparable UTC datetime (a date counts from its start, UTC)."""
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
