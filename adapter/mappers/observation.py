"""Observation from one measurements.csv row: a lab value, vital sign, score or finding.

Natural key: (NCT id, site id, subject id, visit code, source test code, collected-at
as a FHIR dateTime). Two rows with the same key are duplicates and the second is
rejected by the reader, so two different rows never share an id.

Choices that are not obvious:

- ``code`` carries the mapping file's codings (LOINC, or the project code system
  when no LOINC code exists) and then the sponsor's own code in the package's local
  code system; ``code.text`` is the test's display.
- ``category`` is the table's (laboratory, vital-signs, survey for scores, ...).
- The visit is the project extension ``study-visit`` with ``code``, ``name`` and
  ``plannedDay``: R4 would need an Encounter per visit, which the sites do not send.
- The study link is the R4 extension ``workflow-researchStudy``.
- ``referenceRange`` and ``interpretation`` only when the row gives them.
- Values as reported: ``valueQuantity`` is the standard value, in the test's unit, with
  the digits the site gave (or, converted, as many significant digits as it gave). When
  the site wrote another number or unit (``15.610 mg/dL`` for ``156.10 mg/L``, or
  ``mmHg`` for ``mm[Hg]``) the project extension ``reported-value`` carries it as a
  Quantity (digits, unit as spelled, UCUM code): on the Observation for the value, on
  ``low`` and ``high`` for the reference range. An extension, not a component: components
  are the parts of a panel (blood pressure's two), and a validator reads an extension
  it does not know as information it may ignore, which is what this is (no modifier).
- ``effectiveDateTime`` has seconds (FHIR needs them with a time); a time the site gave
  to the minute has the ``reported-precision`` extension (``minute``) on the element.
- ``status`` is always ``final``: a package holds reported results.
- A row collected from a hospital (``trialfhir collect``) carries its lineage in
  ``derivedFrom``: the absolute, versioned URL of the hospital's Observation (both
  sources for a derived PaO2/FiO2). ``derivedFrom`` rather than a Provenance: it travels
  inside the resource, so a re-push replaces it with the value it explains and no second
  resource can fall out of step. The URL is a logical reference (``type`` and an
  ``identifier`` whose system ``urn:ietf:rfc:3986`` says the value is a URI), not
  ``reference``: HAPI, like many servers, refuses a resource with an external
  ``reference`` unless configured otherwise (HAPI-0507), and the hospital's server is
  another server (docs/collect.md).
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from adapter.fhir.constants import REPORTED_VALUE_EXTENSION, RESEARCH_STUDY_EXTENSION, VISIT_EXTENSION
from adapter.fhir.datatypes import (
    JSON,
    codeable_concept,
    coding,
    compact,
    extension,
    identifier,
    quantity,
    reference,
    reported_precision,
)
from adapter.fhir.ids import resource_id
from adapter.mappers.patient import patient_id
from adapter.records import Code, Measurement, Reported, Visit

# RFC 3986: the identifier's value is a URI (FHIR R4 identifier-registry, "urn:ietf:rfc:3986").
URI_SYSTEM = "urn:ietf:rfc:3986"

CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
CATEGORY_DISPLAY = {
    "laboratory": "Laboratory",
    "vital-signs": "Vital Signs",
    "survey": "Survey",
    "exam": "Exam",
    "imaging": "Imaging",
    "procedure": "Procedure",
    "therapy": "Therapy",
    "activity": "Activity",
    "social-history": "Social History",
}


def observation_id(measurement: Measurement) -> str:
    m = measurement
    return resource_id("Observation", m.nct_id, m.site_id, m.subject_id, m.visit.code, m.test_code, m.collected_at)


@lru_cache(maxsize=64)
def _research_study_id(nct_id: str) -> str:
    return resource_id("ResearchStudy", nct_id)


def study_link(nct_id: str) -> JSON:
    """The R4 workflow-researchStudy extension pointing at the study's ResearchStudy."""
    study = reference("ResearchStudy", _research_study_id(nct_id))
    return extension(RESEARCH_STUDY_EXTENSION, valueReference=study)


def visit_extension(visit: Visit) -> JSON:
    parts = [extension("code", valueCode=visit.code), extension("name", valueString=visit.name)]
    if visit.day is not None:
        parts.append(extension("plannedDay", valueInteger=visit.day))
    return {"url": VISIT_EXTENSION, "extension": parts}


def _as_reported(
    standard: Decimal, unit: str, number: Decimal | None, reported: Reported | None, comparator: str | None = None
) -> JSON | None:
    """The reported-value extension when the site wrote ``number`` in ``reported.unit`` otherwise than
    the standard Quantity (``standard`` in ``unit``) shows it; None when they are the same digits and unit."""
    if number is None or reported is None:
        return None
    if reported.unit == unit and number.as_tuple() == standard.as_tuple():
        return None
    as_written = quantity(number, reported.unit, code=reported.ucum, comparator=comparator)
    return extension(REPORTED_VALUE_EXTENSION, valueQuantity=as_written)


def _bound(standard: Decimal | None, number: Decimal | None, measurement: Measurement) -> JSON | None:
    """A reference range's low or high in the test's unit, with the bound as reported when it differs."""
    if standard is None:
        return None
    assert measurement.unit is not None
    bound = quantity(standard, measurement.unit)
    written = _as_reported(standard, measurement.unit, number, measurement.reported)
    return {"extension": [written], **bound} if written else bound


def _source(url: str) -> JSON:
    """A logical reference to a hospital's resource by its absolute, versioned URL (``.../Type/id/_history/v``)."""
    resource_type = url.split("/_history/")[0].rsplit("/", 2)[-2]
    return {"type": resource_type, "identifier": identifier(URI_SYSTEM, url)}


def as_coding(code: Code) -> JSON:
    return coding(code.system, code.code, code.display)


def observation(measurement: Measurement) -> JSON:
    """The Observation resource for one measurement."""
    m = measurement
    value: dict[str, object]
    written = None
    if isinstance(m.value, Decimal):
        assert m.unit is not None
        value = {"valueQuantity": quantity(m.value, m.unit, comparator=m.comparator)}
        written = _as_reported(m.value, m.unit, m.reported.value if m.reported else None, m.reported, m.comparator)
    elif isinstance(m.value, Code):
        value = {"valueCodeableConcept": codeable_concept(as_coding(m.value))}
    elif isinstance(m.value, int):
        value = {"valueInteger": m.value}
    else:
        value = {"valueString": m.value}
    reference_range = None
    if m.low is not None or m.high is not None:
        low, high = (m.reported.low, m.reported.high) if m.reported else (None, None)
        reference_range = [compact({"low": _bound(m.low, low, m), "high": _bound(m.high, high, m)})]
    return compact(
        {
            "resourceType": "Observation",
            "id": observation_id(m),
            "extension": [study_link(m.nct_id), visit_extension(m.visit), *([written] if written else [])],
            "status": "final",
            "category": [codeable_concept(coding(CATEGORY_SYSTEM, m.category, CATEGORY_DISPLAY[m.category]))],
            "code": codeable_concept(
                *(as_coding(c) for c in m.codes), coding(m.local_system, m.test_code), text=m.display
            ),
            "subject": reference("Patient", patient_id(m.nct_id, m.site_id, m.subject_id)),
            "effectiveDateTime": m.collected_at,
            "_effectiveDateTime": reported_precision(m.collected_precision),
            **value,
            "interpretation": [codeable_concept(as_coding(m.interpretation))] if m.interpretation else None,
            "referenceRange": reference_range,
            "derivedFrom": [_source(url) for url in m.derived_from],
        }
    )
