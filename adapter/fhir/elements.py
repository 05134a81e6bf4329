"""Small readers for the FHIR R4 elements the exports and the pull pick out of resources.

Not a FHIRPath engine: each function reads one well-known element shape and
returns a plain value or None, so the table and SDTM code stays declarative.
References are read in ``adapter.fhir.references``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from adapter.fhir.constants import (
    NCT_SYSTEMS,
    REPORTED_PRECISION_EXTENSION,
    REPORTED_VALUE_EXTENSION,
    RESEARCH_STUDY_EXTENSION,
)
from adapter.fhir.references import ref_id

Resource = Mapping[str, Any]


def codings(concept: Any) -> Iterator[Mapping[str, Any]]:
    """The codings of a CodeableConcept (none when it is absent)."""
    if isinstance(concept, Mapping):
        yield from (c for c in concept.get("coding", []) if isinstance(c, Mapping))


def first_coding(concept: Any, system: str | None = None) -> Mapping[str, Any]:
    """The first coding (of ``system`` if given), or an empty mapping."""
    return next((c for c in codings(concept) if system is None or c.get("system") == system), {})


def concept_text(concept: Any) -> str | None:
    """A CodeableConcept's text, else its first coding's display."""
    if not isinstance(concept, Mapping):
        return None
    return concept.get("text") or first_coding(concept).get("display")


def extensions(resource: Resource, url: str) -> Iterator[Mapping[str, Any]]:
    yield from (e for e in resource.get("extension", []) if isinstance(e, Mapping) and e.get("url") == url)


def extension_value(resource: Resource, url: str) -> Any:
    """The value[x] of the first extension with ``url``, or None."""
    for found in extensions(resource, url):
        return next((v for k, v in found.items() if k.startswith("value")), None)
    return None


def identifier_value(resource: Resource, system: str | None = None) -> str | None:
    """The value of the first identifier (of ``system`` when given)."""
    for ident in resource.get("identifier", []):
        if system is None or ident.get("system") == system:
            value = ident.get("value")
            return str(value) if value is not None else None
    return None


def nct_id(resource: Resource) -> str | None:
    """The NCT number of a ResearchStudy, under any ClinicalTrials.gov system spelling (the official one first)."""
    found = [i for i in resource.get("identifier", []) if i.get("system") in NCT_SYSTEMS and i.get("value")]
    found.sort(key=lambda i: i.get("use") != "official")
    return str(found[0]["value"]) if found else None


def nct_search(nct: str) -> str:
    """The token search value that finds ``nct`` under every ClinicalTrials.gov system (comma is OR)."""
    return ",".join(f"{system}|{nct}" for system in NCT_SYSTEMS)


def with_medication_code(administration: Resource, medications: Mapping[str, Resource]) -> Resource:
    """A MedicationAdministration with its Medication's code as medicationCodeableConcept (reference resolved).

    Readers that look for the medication's codes need not know which medication[x] the
    writer chose; an administration already coded, or whose Medication is missing, is returned as it is.
    """
    medication = medications.get(ref_id(administration.get("medicationReference"), "Medication") or "")
    if "medicationCodeableConcept" in administration or medication is None or "code" not in medication:
        return administration
    return {**administration, "medicationCodeableConcept": medication["code"]}


def effective(resource: Resource) -> tuple[str | None, str | None]:
    """effective[x] as (start, end): a dateTime or instant gives (value, None)."""
    if "effectiveDateTime" in resource:
        return resource["effectiveDateTime"], None
    if "effectiveInstant" in resource:
        return resource["effectiveInstant"], None
    span = resource.get("effectivePeriod") or {}
    return span.get("start"), span.get("end")


# How many characters of a FHIR dateTime each reported precision keeps (before the UTC offset).
_PRECISION_LENGTH = {"year": 4, "month": 7, "day": 10, "hour": 13, "minute": 16, "second": 19}
_OFFSET = re.compile(r"(Z|[+-][0-9]{2}:[0-9]{2})$")


def reported_datetime(holder: Mapping[str, Any], element: str) -> str | None:
    """The dateTime ``holder[element]`` at the precision the source reported it, offset kept.

    FHIR needs seconds once a time is given, so a time collected to the minute is written
    ``2020-06-11T09:15:00+07:00`` with the reported-precision extension (``minute``) on the
    element (``_element``); this gives back ``2020-06-11T09:15+07:00``. Without the
    extension the value is returned as it is. ``holder`` is the resource for
    ``effectiveDateTime``, or the Period for ``start`` and ``end``.
    """
    value = holder.get(element)
    if not isinstance(value, str):
        return None
    keep = _PRECISION_LENGTH.get(str(extension_value(holder.get(f"_{element}") or {}, REPORTED_PRECISION_EXTENSION)))
    if keep is None or len(value) <= keep:
        return value
    offset = _OFFSET.search(value)
    return value[:keep] + (offset.group(1) if offset and keep > 10 else "")


def reported_quantity(holder: Mapping[str, Any], element: str | None = None) -> Mapping[str, Any]:
    """A Quantity as the source reported it: the reported-value extension's, else the standard one.

    The extension is where a value was converted or its unit spelled otherwise: on the
    Observation for ``valueQuantity`` (``reported_quantity(observation, "valueQuantity")``),
    on the Quantity itself for a reference range's ``low`` and ``high``
    (``reported_quantity(range["low"])``). Empty when there is no quantity.
    """
    reported = extension_value(holder, REPORTED_VALUE_EXTENSION)
    if isinstance(reported, Mapping):
        return reported
    standard = holder.get(element) if element else holder
    return standard if isinstance(standard, Mapping) else {}


def study_id(resource: Resource) -> str | None:
    """The ResearchStudy id an Observation or MedicationAdministration is linked to (R4 workflow extension)."""
    return ref_id(extension_value(resource, RESEARCH_STUDY_EXTENSION), "ResearchStudy")


def number_text(value: Any) -> str:
    """A JSON number as text: a Decimal with its digits (``2.40``), integers without a decimal point,
    floats as Python writes them."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)
