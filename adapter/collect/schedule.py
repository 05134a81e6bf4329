"""When a collected value counts for the trial: participation, visit windows, derived tests.

The rule (docs/collect.md):

- A value counts only within the subject's participation: from ``consent_date`` to
  ``end_date`` (or without an end), in local dates of the subject's site. Outside it
  the value is *out of window* and written nowhere but the report.
- Study day 0 is ``start_date`` (``consent_date`` when there is none). A visit planned on
  day *d* with ``window: [a, b]`` takes values whose local date lies from *d+a* to *d+b*.
- Per subject, visit and test, the value taken closest to the planned time (noon, local,
  of the planned day) is the visit's value; ties go to the earlier value, then the
  source id. Every other value within participation is an *unscheduled* row.
- A derived test (PaO2/FiO2) is computed from a value of ``ratio_of`` and the value of
  ``per`` closest in time to it within ``within_minutes``, unless the hospital reported
  the test itself within that time. It is rounded to the significant digits of the less
  precise input, and marked derived, with the URLs of both sources.

Pure functions: facts in, placed facts out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Context, Decimal
from zoneinfo import ZoneInfo

from adapter.collect.facts import COLLECTED, NOT_DONE, Fact
from adapter.errors import ConversionError
from adapter.fhir.ucum import convert
from adapter.records import Visit
from adapter.sources.codetables import TestDef

VISIT, UNSCHEDULED, OUT_OF_WINDOW = "visit", "unscheduled", "out-of-window"
DERIVED = "derived"
NOON = time(12)


@dataclass(frozen=True)
class Participation:
    """One subject's time in the study, in local dates of the site's zone."""

    zone: ZoneInfo
    first: date
    day0: date
    last: date | None


@dataclass(frozen=True)
class Placed:
    """A fact and where it goes: a visit's value, an unscheduled row or out of window."""

    fact: Fact
    placement: str
    visit: str = ""


def moment(effective: str, zone: ZoneInfo) -> datetime:
    """A FHIR date or dateTime as an aware datetime (a date, or a time without offset, read in ``zone``)."""
    if len(effective) == 10:
        return datetime.combine(date.fromisoformat(effective), NOON, zone)
    parsed = datetime.fromisoformat(effective.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def place(
    facts: Iterable[Fact], who: Mapping[str, Participation], visits: Mapping[str, Visit],
    windows: Mapping[str, tuple[int, int]],
) -> list[Placed]:
    """Every collected or not-done fact placed by the rule of the module docstring."""
    placed: list[Placed] = []
    candidates: dict[tuple[str, str, str], list[tuple[timedelta, str, str, Fact]]] = {}
    for fact in facts:
        if fact.state not in (COLLECTED, NOT_DONE):
            continue
        person = who[fact.subject_id]
        when = moment(fact.effective, person.zone)
        local = when.astimezone(person.zone).date()
        if local < person.first or (person.last is not None and local > person.last):
            placed.append(Placed(fact, OUT_OF_WINDOW))
            continue
        for visit in visits.values():
            if visit.day is None or fact.kind != "measurement":
                continue
            planned = person.day0 + timedelta(days=visit.day)
            before, after = windows.get(visit.code, (0, 0))
            if planned + timedelta(days=before) <= local <= planned + timedelta(days=after):
                distance = abs(when - datetime.combine(planned, NOON, person.zone))
                candidates.setdefault((fact.subject_id, fact.code, visit.code), []).append(
                    (distance, when.isoformat(), fact.source_id, fact))
        placed.append(Placed(fact, UNSCHEDULED))
    won: dict[tuple[str, str, str], str] = {}
    # Visits in planned order, so a value in two overlapping windows goes to the earlier visit.
    order = {code: index for index, code in enumerate(sorted(visits, key=lambda c: visits[c].day or 0))}
    for key in sorted(candidates, key=lambda k: (k[0], k[1], order[k[2]])):
        for _, _, _, fact in sorted(candidates[key], key=lambda c: c[:3]):
            if fact.key not in won:
                won[fact.key] = key[2]
                break
    return [Placed(p.fact, VISIT, won[p.fact.key]) if p.placement == UNSCHEDULED and p.fact.key in won else p
            for p in placed]


def derive(facts: list[Fact], tests: Mapping[str, TestDef], zones: Mapping[str, ZoneInfo], server: str) -> list[Fact]:
    """Derived facts for the tests that have a ``derived`` rule and were not reported at that time."""
    derived: list[Fact] = []
    collected = [f for f in facts if f.state == COLLECTED and f.kind == "measurement"]
    for test in tests.values():
        if test.derived is None:
            continue
        rule = test.derived
        window = timedelta(minutes=rule.within_minutes)
        for subject in sorted({f.subject_id for f in collected}):
            zone = zones[subject]
            mine = [f for f in collected if f.subject_id == subject]
            reported = [moment(f.effective, zone) for f in mine if f.code == test.code]
            pers = [(moment(f.effective, zone), f) for f in mine if f.code == rule.per]
            for top in (f for f in mine if f.code == rule.ratio_of):
                when = moment(top.effective, zone)
                if any(abs(when - t) <= window for t in reported):
                    continue
                near = [(abs(when - t), f.source_id, f) for t, f in pers if abs(when - t) <= window]
                if not near:
                    continue
                bottom = min(near, key=lambda n: n[:2])[2]
                value = _ratio(top, bottom, rule.per_unit)
                if value is None:
                    continue
                derived.append(replace(
                    top, code=test.code, state=COLLECTED, source_type=DERIVED, source_version="",
                    source_updated=max(top.source_updated, bottom.source_updated),
                    value=str(value), unit=test.unit or "", reported_value="", reported_unit="", reason="",
                    derived_from=(_url(server, top), _url(server, bottom)),
                ))
    return derived


def _ratio(top: Fact, bottom: Fact, per_unit: str) -> Decimal | None:
    try:
        divisor = convert(Decimal(bottom.value), bottom.unit, per_unit)
    except ConversionError:
        return None
    if divisor == 0:
        return None
    digits = min(len(Decimal(top.reported_value or top.value).as_tuple().digits),
                 len(Decimal(bottom.reported_value or bottom.value).as_tuple().digits))
    result = Context(prec=max(digits, 1)).divide(Decimal(top.value), divisor)
    return result.quantize(Decimal(1)) if result.as_tuple().exponent > 0 else result  # type: ignore[operator]


def _url(server: str, fact: Fact) -> str:
    """The absolute, versioned URL of a fact's source: what lineage points at."""
    version = f"/_history/{fact.source_version}" if fact.source_version else ""
    return f"{server.rstrip('/')}/{fact.source_type}/{fact.source_id}{version}"
