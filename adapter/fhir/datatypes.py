"""Builders for FHIR R4 datatypes: the one place mappers get their dicts from.

Each builder leaves out empty elements, because FHIR forbids empty strings,
empty arrays and empty objects on the wire.
"""

from __future__ import annotations

from typing import Any

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


def period(start: str | None = None, end: str | None = None) -> JSON:
    return compact({"start": start, "end": end})


def quantity(
    value: float | int,
    unit: str,
    *,
    system: str = "http://unitsofmeasure.org",
    code: str | None = None,
    comparator: str | None = None,
) -> JSON:
    """A Quantity; ``unit`` is shown to people, ``code`` (default: the unit) is the UCUM code.

    ``comparator`` (<, <=, >=, >) marks a censored value: the real value is below or above ``value``.
    """
    return compact({"value": value, "comparator": comparator, "unit": unit, "system": system,
                    "code": code if code is not None else unit})


def extension(url: str, **value: Any) -> JSON:
    """An extension with one ``value[x]``, given as e.g. ``valueString="..."``."""
    if len(value) != 1:
        raise ValueError("an extension carries exactly one value[x]")
    return {"url": url, **value}
