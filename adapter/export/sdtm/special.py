"""Special-purpose domains (SDTMIG 3.4 section 5): DM, SE, SV and DS from Patient, ResearchSubject and Consent.

DM: RFSTDTC is the first dose of any treatment the study records (else the subject's
period start); RFXSTDTC/RFXENDTC come from EX alone. AGE is derived in whole years from
BRTHDTC to RFSTDTC; with a birth year alone it is the age reached in the reference
year (so it may be one more than the exact age). ARMNRS follows SDTMIG 3.4 section
5.2 (DM assumption 4): a screen failure or a subject never assigned has null arm
variables and the reason; one assigned but not treated has null actual arm
variables; an actual arm the study does not plan goes to ACTARMUD. RACE and ETHNIC
come from the US Core extensions when the Patient has them, else stay null (not
collected). SE draws the screening element from consent (or the period start) to
RFSTDTC and the arm's element from RFSTDTC to the end of participation. SV takes each
visit's first and last record date. DS holds informed consent (protocol milestone)
and the end of participation (disposition event) from ResearchSubject.status.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from adapter.export.sdtm.design import SCREENING_ETCD, element_codes
from adapter.export.sdtm.model import Row, SdtmResult, Study, Subject, epoch, planned_study_day, study_day
from adapter.export.sdtm.terms import Terms
from adapter.fhir import elements
from adapter.fhir.constants import EXTENSION_BASE
from adapter.fhir.ndjson import read_resources
from adapter.fhir.references import ref_id

US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
WITHDRAWAL_EXTENSION = EXTENSION_BASE + "withdrawal-reason"
SCREEN_FAILED = ("ineligible", "not-registered")
# ResearchSubject.status at the end of participation -> DSDECOD (NCOMPLT, C66727).
DISPOSITION = {"off-study": "COMPLETED", "withdrawn": "WITHDRAWAL BY SUBJECT", "ineligible": "SCREEN FAILURE",
               "not-registered": "SCREEN FAILURE"}  # fmt: skip


def read_consents(folder: Path, subjects: Mapping[str, Subject]) -> None:
    """Each subject's consent date (RFICDTC) from the Consent its ResearchSubject points to, when there is one."""
    wanted: dict[str, Subject] = {}
    for subject in subjects.values():
        consent_id = ref_id(subject.subject.get("consent"), "Consent")  # R4: at most one
        if consent_id:
            wanted[consent_id] = subject
    for consent in read_resources(folder, "Consent") if wanted else []:
        consenting = wanted.get(str(consent.get("id")))
        if consenting is not None and consent.get("dateTime"):
            consenting.consent = str(consent["dateTime"])


def age(birth: str, reference: str) -> float | None:
    """Whole years from ``birth`` to ``reference``; with a birth year alone, the age reached in the reference year."""
    if len(birth) < 4 or len(reference) < 4:
        return None
    if len(birth) >= 10 and len(reference) >= 10:
        born, on = date.fromisoformat(birth[:10]), date.fromisoformat(reference[:10])
        return float(on.year - born.year - ((on.month, on.day) < (born.month, born.day)))
    return float(int(reference[:4]) - int(birth[:4]))


def _omb(patient: Mapping[str, Any], url: str, table: Mapping[str, str]) -> list[str]:
    found = [
        table.get(str((part.get("valueCoding") or {}).get("code")), "")
        for ext in elements.extensions(patient, url)
        for part in ext.get("extension", [])
        if part.get("url") == "ombCategory"
    ]
    return sorted(set(filter(None, found)))


def _one(values: list[str]) -> str:
    # SDTMIG 3.4 DM assumptions: more than one race is MULTIPLE in RACE, each race then in SUPPDM (RACE1, RACE2 ...).
    return values[0] if len(values) == 1 else ("MULTIPLE" if values else "")


def demographics(subjects: Mapping[str, Subject], study: Study, terms: Terms, result: SdtmResult) -> None:
    """One DM row per subject."""
    for subject in subjects.values():
        research, patient = subject.subject, subject.patient
        arm, actual = str(research.get("assignedArm") or ""), str(research.get("actualArm") or "")
        period = research.get("period") or {}
        screen_failed = research.get("status") in SCREEN_FAILED
        armnrs, actarmud = "", ""
        if screen_failed or not arm:
            armnrs, arm, actual = ("SCREEN FAILURE" if screen_failed else "NOT ASSIGNED"), "", ""
        elif not actual:
            armnrs = "ASSIGNED, NOT TREATED"
        elif actual not in study.arm_codes:
            armnrs, actarmud, actual = "UNPLANNED TREATMENT", actual, ""
        rfstdtc = "" if screen_failed else subject.rfstdtc
        deceased = patient.get("deceasedDateTime")
        birth = str(patient.get("birthDate") or "")
        years = age(birth, rfstdtc or subject.consent or str(period.get("start") or ""))
        races = _omb(patient, US_CORE_RACE, terms.race)
        if len(races) > 1:
            result.datasets["SUPPDM"].rows.extend(
                {"STUDYID": study.studyid, "RDOMAIN": "DM", "USUBJID": subject.usubjid, "IDVAR": "", "IDVARVAL": "",
                 "QNAM": f"RACE{n}", "QLABEL": f"Race {n}", "QVAL": race, "QORIG": "Collected", "QEVAL": ""}
                for n, race in enumerate(races, start=1)
            )  # fmt: skip
        result.datasets["DM"].rows.append({
            "STUDYID": study.studyid, "DOMAIN": "DM", "USUBJID": subject.usubjid, "SUBJID": subject.subjid,
            "RFSTDTC": rfstdtc, "RFENDTC": "" if screen_failed else subject.last_dose or period.get("end") or "",
            "RFXSTDTC": subject.first_exposure or "", "RFXENDTC": subject.last_exposure or "",
            "RFICDTC": subject.consent or "", "RFPENDTC": period.get("end") or "",
            "DTHDTC": deceased or "", "DTHFL": "Y" if deceased or patient.get("deceasedBoolean") else "",
            "SITEID": subject.siteid, "BRTHDTC": birth, "AGE": years, "AGEU": "YEARS" if years is not None else "",
            "SEX": terms.sex.get(str(patient.get("gender")), "U"),
            "RACE": _one(races), "ETHNIC": _one(_omb(patient, US_CORE_ETHNICITY, terms.ethnicity)),
            "ARMCD": study.arm_codes.get(arm, _code(arm)), "ARM": arm,
            "ACTARMCD": study.arm_codes.get(actual, _code(actual)), "ACTARM": actual,
            "ARMNRS": armnrs, "ACTARMUD": actarmud,
            "COUNTRY": terms.countries.get(study.country.casefold(), study.country),
        })  # fmt: skip


def _code(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", name.upper())[:20]


def elements_and_visits(subjects: Mapping[str, Subject], study: Study, result: SdtmResult) -> None:
    """SE (the elements each subject went through) and SV (the visits each subject had)."""
    codes = element_codes(study)
    for subject in subjects.values():
        research = subject.subject
        period = research.get("period") or {}
        start, end = subject.consent or str(period.get("start") or ""), str(period.get("end") or "")
        base: Row = {"STUDYID": study.studyid, "USUBJID": subject.usubjid}
        rfstdtc = "" if research.get("status") in SCREEN_FAILED else subject.rfstdtc
        actual = str(research.get("actualArm") or "")
        se = result.datasets["SE"].rows
        if start:
            # The screening element ends where the next begins (SDTMIG 3.4 section 5.3: no gaps).
            se.append({**base, "DOMAIN": "SE", "ETCD": SCREENING_ETCD, "ELEMENT": "Screening", "TAETORD": 1.0,
                       "EPOCH": "SCREENING", "SESTDTC": start, "SEENDTC": rfstdtc or end,
                       "SESTDY": study_day(start, rfstdtc), "SEENDY": study_day(rfstdtc or end, rfstdtc)})
        if rfstdtc and actual in codes:
            se.append({**base, "DOMAIN": "SE", "ETCD": codes[actual], "ELEMENT": actual, "TAETORD": 2.0,
                       "EPOCH": "TREATMENT", "SESTDTC": rfstdtc, "SEENDTC": end,
                       "SESTDY": study_day(rfstdtc, rfstdtc), "SEENDY": study_day(end, rfstdtc)})
        for visitnum, (first, last) in sorted(subject.visit_dates.items()):
            result.datasets["SV"].rows.append({
                **base, "DOMAIN": "SV", "VISITNUM": visitnum, "VISIT": study.visits.get(visitnum, ""),
                "VISITDY": planned_study_day(visitnum), "EPOCH": epoch(first, subject),
                "SVSTDTC": first, "SVENDTC": last,
                "SVSTDY": study_day(first, rfstdtc), "SVENDY": study_day(last, rfstdtc),
            })  # fmt: skip


def disposition(subjects: Mapping[str, Subject], study: Study, result: SdtmResult) -> None:
    """DS: informed consent, and how participation ended; a subject still on study has no end event yet."""
    for subject in subjects.values():
        research = subject.subject
        base: Row = {"STUDYID": study.studyid, "DOMAIN": "DS", "USUBJID": subject.usubjid}
        rfstdtc = subject.rfstdtc
        if subject.consent:
            result.datasets["DS"].rows.append({
                **base, "DSTERM": "INFORMED CONSENT OBTAINED", "DSDECOD": "INFORMED CONSENT OBTAINED",
                "DSCAT": "PROTOCOL MILESTONE", "EPOCH": "SCREENING", "DSSTDTC": subject.consent,
                "DSSTDY": study_day(subject.consent, rfstdtc),
            })  # fmt: skip
        status = str(research.get("status"))
        decod = DISPOSITION.get(status)
        if decod is None:
            result.excluded[f"DS: ResearchSubject status {status} has no disposition event yet"] += 1
            continue
        end = str((research.get("period") or {}).get("end") or "")
        reason = next((str(e.get("valueString")) for e in elements.extensions(research, WITHDRAWAL_EXTENSION)), "")
        result.datasets["DS"].rows.append({
            **base, "DSTERM": (reason or decod)[:200], "DSDECOD": decod, "DSCAT": "DISPOSITION EVENT",
            "EPOCH": "SCREENING" if decod == "SCREEN FAILURE" else epoch(end, subject), "DSSTDTC": end,
            "DSSTDY": study_day(end, rfstdtc),
        })  # fmt: skip
