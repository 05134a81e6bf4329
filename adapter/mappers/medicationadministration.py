"""MedicationAdministration from one administrations.csv row: a dose given, or not given.

Natural key: (NCT id, site id, subject id, source product code, start as a FHIR
dateTime); the reader rejects a second row with the same key.

- ``medicationReference``: the Medication of the product and lot (mappers/medication.py,
  which carries the codes); R4 allows one medication[x], and the Medication can also
  carry the dose form and lot.
- ``effectiveDateTime`` when the row has a start only, ``effectivePeriod`` with an
  end. A dose that was not given keeps its due time: R4 requires ``effective[x]``.
  A time given to the minute is written with seconds and the ``reported-precision``
  extension, as on Observation.
- ``dosage.dose``: the dose with the row's digits; its ``unit`` as the row spelled it,
  ``code`` the UCUM code.
- ``statusReason`` carries the reason not given, or stopped, as text (the R4 binding is
  an example).
- ``dosage.route`` carries the routes table's codings (HL7 v3 and SNOMED CT); the reader
  picks the route's over-period codings for a dose with an end (v3 IV 'Infusion,
  intravenous', not IVINJ).
- The study link is the R4 extension ``workflow-researchStudy``, as on Observation.
"""

from __future__ import annotations

from adapter.fhir.datatypes import JSON, codeable_concept, compact, period, quantity, reference, reported_precision
from adapter.fhir.ids import resource_id
from adapter.mappers.medication import medication_id
from adapter.mappers.observation import as_coding, study_link
from adapter.mappers.patient import patient_id
from adapter.records import Administration


def medication_administration_id(administration: Administration) -> str:
    a = administration
    return resource_id("MedicationAdministration", a.nct_id, a.site_id, a.subject_id, a.product_code, a.start)


def medication_administration(administration: Administration) -> JSON:
    """The MedicationAdministration resource for one administration."""
    a = administration
    effective = (
        {"effectivePeriod": period(a.start, a.end, start_precision=a.start_precision, end_precision=a.end_precision)}
        if a.end
        else {"effectiveDateTime": a.start, "_effectiveDateTime": reported_precision(a.start_precision)}
    )
    route = codeable_concept(*(as_coding(c) for c in a.route_codes), text=a.route_display) if a.route_codes else None
    dose = None
    if a.dose is not None and a.dose_unit:
        dose = quantity(a.dose, a.dose_unit_text or a.dose_unit, code=a.dose_unit)
    return compact(
        {
            "resourceType": "MedicationAdministration",
            "id": medication_administration_id(a),
            "extension": [study_link(a.nct_id)],
            "status": a.status,
            "statusReason": [codeable_concept(text=a.not_given_reason)] if a.not_given_reason else None,
            "medicationReference": reference("Medication", medication_id(a), a.product_display),
            "subject": reference("Patient", patient_id(a.nct_id, a.site_id, a.subject_id)),
            **effective,
            "dosage": compact({"route": route, "dose": dose}) or None,
        }
    )
