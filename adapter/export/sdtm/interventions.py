"""Interventions (SDTMIG 3.4 section 6.1): EX and EC for study treatment, CM for every other medication.

From MedicationAdministrations, by analogy with the joint mapping guide's CM rows. A
medication is study treatment when its name shares a distinctive word with an
intervention some arms get and others do not (design.investigational: standard of
care, given in every arm, is not study treatment); everything else goes to CM. Each
administration is one record given once (--DOSFRQ ONCE). EX holds the doses given; when
a study-treatment dose was not given, EC (exposure as collected) holds every collected
study-treatment record, the missed ones with ECOCCUR N and the reason in ECREASOC, never
a dose of 0 (SDTMIG 3.4 EX/EC assumptions). A medication not given is not in CM (CM
records what was taken). Dose form is null: the data carries none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from adapter.export.sdtm.design import investigational
from adapter.export.sdtm.model import (
    SdtmResult,
    Study,
    Subject,
    epoch,
    planned_study_day,
    study_day,
    to_float,
    visit_of,
)
from adapter.export.sdtm.terms import Terms
from adapter.fhir import elements
from adapter.fhir.ndjson import read_resources
from adapter.fhir.references import ref_id

ATC = "http://www.whocc.no/atc"
# Words that name how or why a product is given, not which product it is.
GENERIC_WORDS = frozenset({"injection", "infusion", "tablet", "tablets", "capsule", "oral", "intravenous",
                           "standard", "treatment", "therapy", "care", "drug", "dose", "with", "from", "plus"})


def _words(texts: Iterable[str | None]) -> set[str]:
    found = set()
    for text in texts:
        found |= {w for w in re.split(r"[\s(),;:/]+", (text or "").casefold()) if len(w) >= 4}
    return found - GENERIC_WORDS


def _names(medication: Mapping[str, Any] | None) -> list[str | None]:
    concept = medication or {}
    return [concept.get("text"), *(c.get("display") for c in concept.get("coding", [])),
            *(c.get("code") for c in concept.get("coding", []))]  # fmt: skip


def interventions(
    folder: Path, subjects: Mapping[str, Subject], study: Study, terms: Terms, result: SdtmResult
) -> None:
    """EX and CM rows; sets each subject's first and last dose (RFSTDTC) and exposure (RFXSTDTC, from EX)."""
    treatment_words = [_words([name]) for name in investigational(study)]
    medications = {str(m.get("id")): m for m in read_resources(folder, "Medication")}
    administrations = [
        elements.with_medication_code(a, medications) for a in read_resources(folder, "MedicationAdministration")
        if subjects.get(ref_id(a.get("subject"), "Patient") or "")
    ]  # fmt: skip
    for administration in administrations:
        start, end = elements.effective(administration)
        subject = subjects[ref_id(administration.get("subject"), "Patient") or ""]
        if start and administration.get("status") not in ("not-done", "entered-in-error"):
            # ISO 8601 texts of one study share a form and offset, so they order as text.
            subject.first_dose = min(filter(None, (subject.first_dose, start)))
            subject.last_dose = max(filter(None, (subject.last_dose, end or start)))
    for administration in administrations:
        subject = subjects[ref_id(administration.get("subject"), "Patient") or ""]
        status = administration.get("status")
        if status == "entered-in-error":
            result.excluded["MedicationAdministration status entered-in-error"] += 1
            continue
        medication = administration.get("medicationCodeableConcept")
        words = _words(_names(medication))
        if any(words & wanted for wanted in treatment_words if wanted):
            _exposure(administration, subject, study, terms, result)
        elif status == "not-done":
            result.excluded["MedicationAdministration not-done of a medication other than study treatment (CM)"] += 1
        else:
            _medication(administration, subject, study, terms, result)
    ec = result.datasets["EC"].rows
    if all(row["ECOCCUR"] == "Y" for row in ec):
        ec.clear()  # EC would only repeat EX: SDTMIG 3.4 wants it only when it holds more (doses not given)


def _common(administration: Mapping[str, Any], subject: Subject, study: Study, terms: Terms, p: str) -> dict[str, Any]:
    medication = administration.get("medicationCodeableConcept")
    treatment = elements.concept_text(medication) or elements.first_coding(medication).get("code") or ""
    dosage = administration.get("dosage") or {}
    route = elements.first_coding(dosage.get("route"))
    start, end = elements.effective(administration)
    visit, visitnum = visit_of(administration)
    if visitnum is not None:
        study.visits[visitnum] = visit
    subject.saw(visitnum, start)
    reference = subject.rfstdtc
    return {
        "STUDYID": study.studyid, "DOMAIN": p, "USUBJID": subject.usubjid, f"{p}TRT": treatment.upper()[:200],
        f"{p}DOSE": to_float((dosage.get("dose") or {}).get("value")),
        f"{p}DOSU": terms.unit((dosage.get("dose") or {}).get("code")), f"{p}DOSFRQ": "ONCE",
        f"{p}ROUTE": terms.routes.get((str(route.get("system")), str(route.get("code"))), "") if route else "",
        "VISITNUM": visitnum, "VISIT": visit, "EPOCH": epoch(start, subject),
        f"{p}STDTC": start or "", f"{p}ENDTC": end or start or "",
        f"{p}STDY": study_day(start, reference), f"{p}ENDY": study_day(end or start, reference),
    }  # fmt: skip


def _exposure(administration: Mapping[str, Any], subject: Subject, study: Study, terms: Terms,
              result: SdtmResult) -> None:  # fmt: skip
    """An EC record as collected, and an EX record when the dose was given."""
    given = administration.get("status") != "not-done"
    collected = _common(administration, subject, study, terms, "EC")
    reasons = [elements.concept_text(r) for r in administration.get("statusReason", [])]
    collected.update(ECMOOD="PERFORMED", ECOCCUR="Y" if given else "N",
                     VISITDY=planned_study_day(collected["VISITNUM"]))
    if not given:
        # CDASHIG/SDTMIG: a dose not given is ECOCCUR N with its reason, never a dose of 0.
        collected.update(ECDOSE=None, ECREASOC="; ".join(filter(None, reasons))[:200])
    result.datasets["EC"].rows.append(collected)
    if not given:
        return
    row = _common(administration, subject, study, terms, "EX")
    row.update(EXDOSFRM="", VISITDY=planned_study_day(row["VISITNUM"]))
    if administration.get("status") == "stopped":
        row.update(EXADJ="Administration stopped")
    start, end = row["EXSTDTC"], row["EXENDTC"]
    if start:
        subject.first_exposure = min(filter(None, (subject.first_exposure, start)))
        subject.last_exposure = max(filter(None, (subject.last_exposure, end)))
    result.datasets["EX"].rows.append(row)


def _medication(administration: Mapping[str, Any], subject: Subject, study: Study, terms: Terms,
                result: SdtmResult) -> None:  # fmt: skip
    row = _common(administration, subject, study, terms, "CM")
    atc = elements.first_coding(administration.get("medicationCodeableConcept"), ATC).get("code")
    # CMDECOD wants a WHODrug name the FHIR data does not carry; the ATC code is the class code.
    row.update(CMDECOD="", CMCLASCD=str(atc or ""))
    result.datasets["CM"].rows.append(row)
