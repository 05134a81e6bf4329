"""The study of an NDJSON folder and its subjects: STUDYID, USUBJID, arm codes, country.

The study is the folder's ResearchStudy with an NCT identifier (STUDYID); its
subjects are the ResearchSubjects that point to it. USUBJID is STUDYID-SITEID-SUBJID
because subject ids are unique only within a site.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from adapter.errors import InputError, MappingError
from adapter.export.sdtm.model import Study, Subject
from adapter.fhir import elements
from adapter.fhir.ndjson import read_resources
from adapter.fhir.references import ref_id


def find_study(folder: Path, nct_id: str | None) -> Study:
    """The one ResearchStudy with an NCT identifier (``nct_id`` when given); an InputError otherwise."""
    studies = [s for s in read_resources(folder, "ResearchStudy") if elements.nct_id(s)]
    if nct_id:
        studies = [s for s in studies if elements.nct_id(s) == nct_id]
    if len(studies) != 1:
        found = ", ".join(str(elements.nct_id(s)) for s in studies) or "none"
        raise InputError(
            f"needs exactly one ResearchStudy with an NCT identifier{f' {nct_id}' if nct_id else ''}; found {found}",
            source=str(folder),
            field="ResearchStudy.identifier",
        )
    resource = studies[0]
    studyid = str(elements.nct_id(resource))
    study = Study(resource, studyid, arm_codes(a.get("name", "") for a in resource.get("arm", [])))
    site_ids = {ref_id(site, "Location") for site in resource.get("site", [])}
    countries = {
        str((location.get("address") or {}).get("country") or "")
        for location in read_resources(folder, "Location")
        if location.get("id") in site_ids
    }
    # FHIR R4 links a subject to the study, not to a site Location: COUNTRY is known only
    # when all of the study's sites are in one country.
    study.country = countries.pop() if len(countries) == 1 else ""
    return study


def arm_codes(names: Iterable[str]) -> dict[str, str]:
    """ARMCD for each arm name: its letters and digits upper-cased, at most 20 characters, unique.

    The study record has no short arm codes, so we derive them (docs/export.md); two arms
    that would share a code get a numeric suffix.
    """
    codes: dict[str, str] = {}
    for name in names:
        base = re.sub(r"[^A-Z0-9]", "", name.upper())[:20] or "ARM"
        code, n = base, 1
        while code in codes.values():
            n += 1
            code = f"{base[: 20 - len(str(n))]}{n}"
        codes[name] = code
    return codes


def _subject_ids(subject: Mapping[str, Any], patient: Mapping[str, Any], study: Study) -> tuple[str, str]:
    """(SITEID, SUBJID) from the subject identifier.

    The trial package writes it as ``<NCT id>/<site id>/<subject id>``; any other value is
    taken whole as SUBJID, with no site.
    """
    value = elements.identifier_value(subject) or elements.identifier_value(patient)
    if not value:
        raise MappingError(
            "no identifier",
            record_id=f"ResearchSubject/{subject.get('id')}",
            element="ResearchSubject.identifier",
            value=None,
        )
    parts = value.split("/")
    if len(parts) == 3 and parts[0] == study.studyid:
        return parts[1], parts[2]
    return "", value


def read_subjects(folder: Path, study: Study) -> dict[str, Subject]:
    """The study's subjects by Patient id."""
    study_ref = str(study.resource["id"])
    wanted: dict[str, Mapping[str, Any]] = {}
    for subject in read_resources(folder, "ResearchSubject"):
        if ref_id(subject.get("study"), "ResearchStudy") == study_ref:
            patient_id = ref_id(subject.get("individual"), "Patient")
            if patient_id:
                wanted[patient_id] = subject
    subjects: dict[str, Subject] = {}
    for patient in read_resources(folder, "Patient"):
        research = wanted.get(str(patient.get("id")))
        if research is None:
            continue
        siteid, subjid = _subject_ids(research, patient, study)
        usubjid = "-".join(part for part in (study.studyid, siteid, subjid) if part)
        subjects[str(patient["id"])] = Subject(usubjid, subjid, siteid, research, patient)
    return subjects
