"""Special-purpose domains: DM from Patient and ResearchSubject."""

from __future__ import annotations

import re
from collections.abc import Mapping

from adapter.export.sdtm.model import SdtmResult, Study, Subject
from adapter.export.sdtm.terms import Terms


def demographics(subjects: Mapping[str, Subject], study: Study, terms: Terms, result: SdtmResult) -> None:
    """One DM row per subject."""
    for subject in subjects.values():
        research, patient = subject.subject, subject.patient
        arm, actual = research.get("assignedArm") or "", research.get("actualArm") or ""
        period = research.get("period") or {}
        country = study.country
        deceased = patient.get("deceasedDateTime")
        result.datasets["DM"].rows.append({
            "STUDYID": study.studyid, "DOMAIN": "DM", "USUBJID": subject.usubjid, "SUBJID": subject.subjid,
            "RFSTDTC": subject.first_dose or period.get("start") or "",
            "RFENDTC": subject.last_dose or period.get("end") or "",
            "RFXSTDTC": subject.first_dose or "", "RFXENDTC": subject.last_dose or "",
            "RFICDTC": "", "RFPENDTC": period.get("end") or "",
            "DTHDTC": deceased or "", "DTHFL": "Y" if deceased or patient.get("deceasedBoolean") else "",
            "SITEID": subject.siteid, "BRTHDTC": patient.get("birthDate") or "",
            "AGE": None, "AGEU": "", "SEX": terms.sex.get(str(patient.get("gender")), "U"), "RACE": "",
            "ARMCD": study.arm_codes.get(arm, _unplanned(arm)), "ARM": arm or "Not Assigned",
            "ACTARMCD": study.arm_codes.get(actual, _unplanned(actual)), "ACTARM": actual or "Not Assigned",
            "COUNTRY": terms.countries.get(country.casefold(), country),
        })  # fmt: skip


def _unplanned(name: str) -> str:
    # SDTMIG 3.2 section 5.2 (DM assumptions): subjects not assigned to an arm get ARMCD NOTASSGN.
    return "NOTASSGN" if not name else re.sub(r"[^A-Z0-9]", "", name.upper())[:20]
