"""Interventions: EX from MedicationAdministrations (by analogy with the joint mapping guide's CM rows)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from adapter.export.sdtm.model import SdtmResult, Study, Subject, planned_study_day, to_float, visit_of
from adapter.export.sdtm.terms import Terms
from adapter.fhir import elements
from adapter.fhir.ndjson import read_resources
from adapter.fhir.references import ref_id


def exposure(folder: Path, subjects: Mapping[str, Subject], study: Study, terms: Terms, result: SdtmResult) -> None:
    """EX rows for the subjects' administrations; sets each subject's first and last dose."""
    ex = result.datasets["EX"].rows
    for administration in read_resources(folder, "MedicationAdministration"):
        subject = subjects.get(ref_id(administration.get("subject"), "Patient") or "")
        if subject is None:
            continue
        if administration.get("status") in ("not-done", "entered-in-error"):
            # EX holds what was given; a dose not given belongs in EC (exposure as collected), not here.
            result.excluded[f"MedicationAdministration status {administration['status']}"] += 1
            continue
        medication = administration.get("medicationCodeableConcept")
        treatment = elements.concept_text(medication) or elements.first_coding(medication).get("code") or ""
        dosage = administration.get("dosage") or {}
        dose = (dosage.get("dose") or {}).get("value")
        route = elements.first_coding(dosage.get("route"))
        start, end = elements.effective(administration)
        visit, visitnum = visit_of(administration)
        if visitnum is not None:
            study.visits[visitnum] = visit
        subject.saw(visitnum, start)
        ex.append({
            "STUDYID": study.studyid, "DOMAIN": "EX", "USUBJID": subject.usubjid,
            "EXTRT": treatment.upper(), "EXDOSE": to_float(dose),
            "EXDOSU": terms.unit((dosage.get("dose") or {}).get("code")), "EXDOSFRM": "",
            "EXROUTE": terms.routes.get((str(route.get("system")), str(route.get("code"))), "") if route else "",
            "VISITNUM": visitnum, "VISIT": visit, "VISITDY": planned_study_day(visitnum),
            "EXSTDTC": start or "", "EXENDTC": end or start or "",
        })  # fmt: skip
        if start:
            # ISO 8601 texts of one study share a form and offset, so they order as text.
            subject.first_dose = min(filter(None, (subject.first_dose, start)))
            subject.last_dose = max(filter(None, (subject.last_dose, end or start)))
            subject.first_exposure, subject.last_exposure = subject.first_dose, subject.last_dose
