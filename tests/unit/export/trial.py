"""A small mapped trial written as an NDJSON folder, shaped like the trial package mappers' output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapter.fhir.ids import resource_id

NCT = "NCT00000001"
STUDY = resource_id("ResearchStudy", NCT)
SITE = resource_id("Location", NCT, "Site One")
STUDY_EXT = "http://hl7.org/fhir/StructureDefinition/workflow-researchStudy"
VISIT_EXT = "https://trialfhir.dev/fhir/StructureDefinition/study-visit"
LOINC = "http://loinc.org"
GROUP = resource_id("Group", NCT)
SPONSOR = resource_id("Organization", "Sponsor One")
CRITERIA = "Inclusion Criteria:\n\n* Adults aged 18 or more\n* Severe COVID-19\n\nExclusion Criteria:\n\n* Pregnancy\n"
UCUM = "http://unitsofmeasure.org"


def _visit(day: int, name: str) -> dict[str, Any]:
    parts = [{"url": "code", "valueCode": f"D{day}"}, {"url": "name", "valueString": name},
             {"url": "plannedDay", "valueInteger": day}]
    return {"url": VISIT_EXT, "extension": parts}


def _intervention(text: str) -> dict[str, Any]:
    return {"url": "https://trialfhir.dev/fhir/StructureDefinition/arm-intervention",
            "valueCodeableConcept": {"text": text}}


def resources(subjects: int = 3) -> list[dict[str, Any]]:
    """A ResearchStudy with two arms, one site, and per subject a Patient, ResearchSubject, labs, vitals, doses."""
    found: list[dict[str, Any]] = [
        {
            "resourceType": "Location",
            "id": SITE,
            "identifier": [{"system": "https://trialfhir.dev/fhir/sid/site", "value": "01"}],
            "name": "Site One",
            "address": {"city": "Semarang", "country": "Indonesia"},
        },
        {
            "resourceType": "ResearchStudy",
            "id": STUDY,
            "identifier": [{"use": "official", "system": "https://clinicaltrials.gov", "value": NCT}],
            "status": "active",
            "title": "A small trial",
            "phase": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/research-study-phase",
                                  "code": "phase-2"}]},
            "category": [{"coding": [{"system": "https://trialfhir.dev/fhir/CodeSystem/ctgov-masking",
                                      "code": "DOUBLE"}]}],
            "arm": [{"name": "Secretome-MSCs", "extension": [_intervention("Biological: Secretome-MSCs"),
                                                             _intervention("Drug: Standard care")]},
                    {"name": "Control", "extension": [_intervention("Drug: Standard care")]}],
            "site": [{"reference": f"Location/{SITE}"}],
            "enrollment": [{"reference": f"Group/{GROUP}"}],
            "sponsor": {"reference": f"Organization/{SPONSOR}"},
        },
        {"resourceType": "Organization", "id": SPONSOR, "name": "Sponsor One"},
        {
            "resourceType": "Group",
            "id": GROUP,
            "type": "person",
            "actual": False,
            "quantity": 40,
            "extension": [{"url": "https://trialfhir.dev/fhir/StructureDefinition/eligibility-criteria",
                           "valueMarkdown": CRITERIA}],
        },
    ]
    for n in range(1, subjects + 1):
        subject_id = f"{n:03d}"
        patient = resource_id("Patient", NCT, "01", subject_id)
        arm = "Secretome-MSCs" if n % 2 else "Control"
        found.append({"resourceType": "Patient", "id": patient, "gender": "female" if n % 2 else "male",
                      "birthDate": f"{1950 + n}"})
        found.append({
            "resourceType": "ResearchSubject",
            "id": resource_id("ResearchSubject", NCT, "01", subject_id),
            "identifier": [{"system": "https://trialfhir.dev/fhir/sid/subject", "value": f"{NCT}/01/{subject_id}"}],
            "status": "on-study",
            "period": {"start": "2020-06-10"},
            "study": {"reference": f"ResearchStudy/{STUDY}"},
            "individual": {"reference": f"Patient/{patient}"},
            "assignedArm": arm,
            "actualArm": arm,
        })
        for day, name in ((1, "Day 1"), (7, "Day 7")):
            when = f"2020-06-{10 + day:02d}T08:30:00+07:00"
            found.append({
                "resourceType": "Observation",
                "id": resource_id("Observation", NCT, subject_id, "IL6", str(day)),
                "extension": [{"url": STUDY_EXT, "valueReference": {"reference": f"ResearchStudy/{STUDY}"}},
                              _visit(day, name)],
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                          "code": "laboratory"}]}],
                "code": {"coding": [{"system": LOINC, "code": "26881-3"}]},
                "subject": {"reference": f"Patient/{patient}"},
                "effectiveDateTime": when,
                "valueQuantity": {"value": 10.5 * n + day, "unit": "pg/mL", "system": UCUM, "code": "pg/mL"},
                "referenceRange": [{"low": {"value": 0, "code": "pg/mL"}, "high": {"value": 7, "code": "pg/mL"}}],
                "interpretation": [{"coding": [{"code": "H"}]}],
            })
            found.append({
                "resourceType": "Observation",
                "id": resource_id("Observation", NCT, subject_id, "HR", str(day)),
                "extension": [_visit(day, name)],
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
                "subject": {"reference": f"Patient/{patient}"},
                "effectiveDateTime": when,
                "valueQuantity": {"value": 80 + n, "unit": "/min", "system": UCUM, "code": "/min"},
            })
        found.append({
            "resourceType": "Observation",
            "id": resource_id("Observation", NCT, subject_id, "SOFA", "1"),
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "96790-1"}]},
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": "2020-06-11T08:30:00+07:00",
            "valueInteger": 0,
        })
        found.append({
            "resourceType": "MedicationAdministration",
            "id": resource_id("MedicationAdministration", NCT, subject_id, "secretome", "1"),
            "extension": [_visit(1, "Day 1")],
            "status": "completed",
            "medicationCodeableConcept": {"coding": [{"system": "https://trialfhir.dev/fhir/CodeSystem/trial-product",
                                                      "code": "secretome", "display": "Secretome-MSCs"}]},
            "subject": {"reference": f"Patient/{patient}"},
            "effectivePeriod": {"start": "2020-06-11T09:00:00+07:00", "end": "2020-06-11T09:05:00+07:00"},
            "dosage": {"route": {"coding": [{"system": "http://snomed.info/sct", "code": "78421000"}]},
                       "dose": {"value": 1.5, "unit": "mL", "system": UCUM, "code": "mL"}},
        })
    return found


def write_folder(folder: Path, items: list[dict[str, Any]] | None = None) -> Path:
    """Write resources as ``<Type>.ndjson`` files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[str]] = {}
    for resource in resources() if items is None else items:
        by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    for kind, lines in by_type.items():
        (folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
