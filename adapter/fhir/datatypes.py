"""Builders for FHIR R4 datatypes: the one place mappers get their dicts from.

Each builder leaves out empty elements, because FHIR forbids empty strings,
empty arrays and empty objects on the wire. Numbers are Decimals, written with their
digits (``adapter.fhir.json``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from adapter.fhir.constants import REPORTED_PRECISION_EXTENSION

JSON = dict[str, Any]


def compact(element: JSON) -> JSON:
    """Drop keys whose value is None, '' or an empty list/dict (FHIR forbids them)."""
    return {k: v for k, v in element.items() if v is not None and v != "" and v != [] and v != {}}


def coding(system: str, code: str, display: str | None = None, version: str | None = None) -> JSON:
    return compact({"system": system, "version": version, "code": code, "display": display})


def codeable_concept(*codings: JSON, text: str | None = None) -> JSON:
    return compact({"coding": list(codings), "text": text})


def identifier(system: str, value: str, *, use: str | None = None, type_: JSON | None = None) -> JSON:
    return compact({"use": use, "type": type_, "system": system, "value": value})


def reference(resource_type: str, resource_id: str, display: str | None = None) -> JSON:
    return compact({"reference": f"{resource_type}/{resource_id}", "display": display})


def period(
    start: str | None = None,
    end: str | None = None,
    *,
    start_precision: str | None = None,
    end_precision: str | None = None,
) -> JSON:
    """A Period; a ``*_precision`` (``minute``) goes on its dateTime as ``reported_precision`` says."""
    return compact({"start": start, "_start": reported_precision(start_precision),
                    "end": end, "_end": reported_precision(end_precision)})


def reported_precision(precision: str | None) -> JSON | None:
    """The ``_element`` of a dateTime the source gave at a precision FHIR cannot hold (``minute``), or None.

    FHIR needs seconds once a time is given, so a time collected to the minute is written with
    ``:00`` and this primitive extension says the seconds were not reported.
    """
    if precision is None:
        return None
    return {"extension": [extension(REPORTED_PRECISION_EXTENSION, valueCode=precision)]}


def quantity(
    value: Decimal | int | float,
    unit: str,
    *,
    system: str = "http://unitsofmeasure.org",
    code: str | None = None,
    comparator: str | None = None,
) -> JSON:
    """A Quantity; ``unit`` is shown to people, ``code`` (default: the unit) is the UCUM code.

    A measured ``value`` is a Decimal, so its digits reach the wire (a float is for exact values only).
    ``comparator`` (<, <=, >=, >) marks a censored value: the real value is below or above ``value``.
    """
    return compact({"value": value, "comparator": comparator, "unit": unit, "system": system,
                    "code": code if code is not None else unit})


def extension(url: str, **value: Any) -> JSON:
    """An extension with one ``value[x]``, given as e.g. ``valueString="..."``."""
    if len(value) != 1:
        raise ValueError("an extension carries exactly one value[x]")
    return {"url": url, **value}
