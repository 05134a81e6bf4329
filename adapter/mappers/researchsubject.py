"""ResearchSubject from a trial package subject: the subject's place in the study.

Natural key: (NCT id, site id, subject id), the same as its Patient. ``study`` points
at the ResearchStudy of the NCT id (id from the same natural key the study mapper
uses), ``individual`` at the Patient. The package's enrollment state becomes the R4
status (table below). ``period`` runs from the enrollment date (the consent date for
a subject not yet enrolled) to the end date. The arm labels are the study's own, so
``assignedArm``/``actualArm`` match ``ResearchStudy.arm.name``. R4 has no element for
a withdrawal reason: it goes to the project extension ``withdrawal-reason``. ``consent``
points at the subject's Consent (the consent date).
"""

from __future__ import annotations

from adapter.fhir.constants import EXTENSION_BASE
from adapter.fhir.datatypes import JSON, compact, extension, period, reference
from adapter.fhir.ids import resource_id
from adapter.mappers.consent import consent_id
from adapter.mappers.patient import patient_id, subject_identifier
from adapter.records import Subject

WITHDRAWAL_REASON = EXTENSION_BASE + "withdrawal-reason"
# Package enrollment state -> R4 research-subject-status (required binding).
STATUS = {
    "screening": "screening",
    "screen-failed": "ineligible",
    "enrolled": "on-study",
    "on-intervention": "on-study-intervention",
    "follow-up": "follow-up",
    "completed": "off-study",
    "withdrawn": "withdrawn",
}


def research_subject(subject: Subject) -> JSON:
    """The ResearchSubject resource for one subject."""
    key = (subject.nct_id, subject.site_id, subject.subject_id)
    reason = subject.withdrawal_reason
    return compact(
        {
            "resourceType": "ResearchSubject",
            "id": resource_id("ResearchSubject", *key),
            "extension": [extension(WITHDRAWAL_REASON, valueString=reason)] if reason else None,
            "identifier": [subject_identifier(*key)],
            "status": STATUS[subject.status],
            "period": period(subject.start_date or subject.consent_date, subject.end_date),
            "study": reference("ResearchStudy", resource_id("ResearchStudy", subject.nct_id)),
            "individual": reference("Patient", patient_id(*key)),
            "assignedArm": subject.assigned_arm,
            "actualArm": subject.actual_arm,
            "consent": reference("Consent", consent_id(*key)),
        }
    )
