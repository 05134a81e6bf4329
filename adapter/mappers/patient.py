"""Patient from a trial package subject: pseudonymous, one per subject and site.

Natural key: (NCT id, site id, subject id). The only identifier is the trial's
subject identifier (system ``IDENTIFIER_BASE + "trial-subject"``, value
``<NCT id>/<site id>/<subject id>``); no name, contact data or full birth date is
ever written. ``birthDate`` holds the birth year alone, and only when the package
gives it. ``meta.security`` marks the record pseudonymized (HL7 v3 ObservationValue
PSEUDED) so a server's consumers know the identifier is not a hospital's.
``managingOrganization`` is the site's Organization (organization.site_organization).
"""

from __future__ import annotations

from functools import lru_cache

from adapter.fhir.constants import IDENTIFIER_BASE
from adapter.fhir.datatypes import JSON, coding, compact, identifier, reference
from adapter.fhir.ids import resource_id
from adapter.mappers.organization import site_organization_id
from adapter.records import Subject

SUBJECT_SYSTEM = IDENTIFIER_BASE + "trial-subject"
# CDISC SEX (the package's vocabulary) -> FHIR administrative-gender (required binding).
GENDER = {"M": "male", "F": "female", "U": "unknown", "UNDIFFERENTIATED": "other"}
PSEUDONYMIZED = coding("http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "PSEUDED", "pseudonymized")


# Cached: every Observation and dose of a subject refers to its Patient, and the rows
# of a subject come together.
@lru_cache(maxsize=4096)
def patient_id(nct_id: str, site_id: str, subject_id: str) -> str:
    """The Patient id of a subject (the same natural key as its ResearchSubject)."""
    return resource_id("Patient", nct_id, site_id, subject_id)


def subject_identifier(nct_id: str, site_id: str, subject_id: str) -> JSON:
    """The trial's identifier of a subject, shared by its Patient and ResearchSubject."""
    return identifier(SUBJECT_SYSTEM, f"{nct_id}/{site_id}/{subject_id}", use="official")


def patient(subject: Subject) -> JSON:
    """The Patient resource for one subject."""
    return compact(
        {
            "resourceType": "Patient",
            "id": patient_id(subject.nct_id, subject.site_id, subject.subject_id),
            "meta": {"security": [PSEUDONYMIZED]},
            "identifier": [subject_identifier(subject.nct_id, subject.site_id, subject.subject_id)],
            "gender": GENDER[subject.sex],
            "birthDate": str(subject.birth_year) if subject.birth_year is not None else None,
            "managingOrganization": reference("Organization", site_organization_id(subject.nct_id, subject.site_id)),
        }
    )
