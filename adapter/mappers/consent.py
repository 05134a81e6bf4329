"""Consent from a trial package subject: the dated informed consent to take part in the study.

Natural key: (NCT id, site id, subject id), the same as the subject's Patient and
ResearchSubject, which refers to it with ``consent``. R4 requires a scope, a category
and (ppc-1) a policy or policy rule:

- ``scope`` research (HL7 consentscope), ``status`` active: the package records
  consents given; a withdrawal is the ResearchSubject's status, not a revoked consent,
  because the package does not say the consent itself was revoked.
- ``category`` LOINC 59284-0 "Patient Consent", as HL7's R4 Consent examples use.
- ``policyRule`` v3-ActCode OPTIN: taking part in a study is opted into.
- ``dateTime`` the consent date as given (a date).
"""

from __future__ import annotations

from adapter.fhir.constants import LOINC
from adapter.fhir.datatypes import JSON, codeable_concept, coding, reference
from adapter.fhir.ids import resource_id
from adapter.mappers.patient import patient_id
from adapter.records import Subject

RESEARCH = codeable_concept(coding("http://terminology.hl7.org/CodeSystem/consentscope", "research", "Research"))
PATIENT_CONSENT = codeable_concept(coding(LOINC, "59284-0", "Patient Consent"))
OPT_IN = codeable_concept(coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN", "opt-in"))


def consent_id(nct_id: str, site_id: str, subject_id: str) -> str:
    """The Consent id of a subject."""
    return resource_id("Consent", nct_id, site_id, subject_id)


def consent(subject: Subject) -> JSON:
    """The Consent resource of one subject."""
    key = (subject.nct_id, subject.site_id, subject.subject_id)
    return {
        "resourceType": "Consent",
        "id": consent_id(*key),
        "status": "active",
        "scope": RESEARCH,
        "category": [PATIENT_CONSENT],
        "patient": reference("Patient", patient_id(*key)),
        "dateTime": subject.consent_date,
        "policyRule": OPT_IN,
    }
