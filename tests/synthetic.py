"""A small synthetic trial as mapped FHIR R4 resources, for push tests (ours, not the real mappers').

Ids are deterministic per ``nct`` so tests can use a fresh, unique study on a shared server
and still know every id. Order: referenced resources first, as the mappers emit them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from adapter.fhir.datatypes import codeable_concept, coding, extension, identifier, quantity, reference
from adapter.fhir.ids import resource_id

SID = "https://trialfhir.dev/fhir/sid"
GLUCOSE = "Glucose [Mass/volume] in Serum or Plasma"
STUDY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/workflow-researchStudy"


def trial(nct: str, subjects: int = 3, measurements: int = 2, *, glucose: float = 5.0) -> Iterator[dict[str, Any]]:
    """An Organization, a ResearchStudy, and per subject a Patient, a ResearchSubject and Observations."""
    org_id = resource_id("Organization", f"Sponsor of {nct}")
    study_id = resource_id("ResearchStudy", nct)
    yield {
        "resourceType": "Organization",
        "id": org_id,
        "identifier": [identifier(f"{SID}/test-organization", f"{nct}-sponsor")],
        "name": f"Sponsor of {nct}",
    }
    yield {
        "resourceType": "ResearchStudy",
        "id": study_id,
        "identifier": [identifier("https://clinicaltrials.gov", nct)],
        "title": f"Synthetic trial {nct}",
        "status": "active",
        "sponsor": reference("Organization", org_id),
    }
    for number in range(1, subjects + 1):
        subject = f"S{number:04d}"
        patient_id = resource_id("Patient", nct, "site-1", subject)
        yield {
            "resourceType": "Patient",
            "id": patient_id,
            "identifier": [identifier(f"{SID}/subject", f"{nct}|{subject}")],
            "gender": "female" if number % 2 else "male",
        }
        yield {
            "resourceType": "ResearchSubject",
            "id": resource_id("ResearchSubject", nct, "site-1", subject),
            "identifier": [identifier(f"{SID}/subject", f"{nct}|{subject}")],
            "status": "on-study",
            "study": reference("ResearchStudy", study_id),
            "individual": reference("Patient", patient_id),
        }
        for visit in range(1, measurements + 1):
            yield {
                "resourceType": "Observation",
                "id": resource_id("Observation", nct, subject, "GLUC", str(visit)),
                "extension": [extension(STUDY_EXTENSION, valueReference=reference("ResearchStudy", study_id))],
                "identifier": [identifier(f"{SID}/measurement", f"{nct}|{subject}|GLUC|{visit}")],
                "status": "final",
                "code": codeable_concept(coding("http://loinc.org", "2345-7", GLUCOSE)),
                "subject": reference("Patient", patient_id),
                "effectiveDateTime": f"2021-0{1 + visit % 9}-15",
                "valueQuantity": quantity(glucose + number / 10 + visit, "mmol/L"),
            }


def counts(subjects: int, measurements: int) -> dict[str, int]:
    """How many resources of each type ``trial`` yields."""
    return {
        "Organization": 1,
        "ResearchStudy": 1,
        "Patient": subjects,
        "ResearchSubject": subjects,
        "Observation": subjects * measurements,
    }
