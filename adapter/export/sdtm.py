"""CDISC SDTM datasets DM, LB, VS and EX from a study's FHIR NDJSON folder.

DM, LB and VS follow the HL7/CDISC "FHIR to CDISC Joint Mapping" guide
(hl7.fhir.uv.cdisc-mapping 1.0.0); EX, which it does not cover, is our mapping by
analogy with its CM rows for MedicationAdministration. docs/export.md lists each
variable's source and every choice made where the guide leaves one open. Codes come
from ``mappings/sdtm-terms.yaml``; variable names, labels, types and Core from
``mappings/sdtm-datasets.yaml``.

The study is the folder's ResearchStudy with an NCT identifier (STUDYID); its
subjects are the ResearchSubjects that point to it. USUBJID is STUDYID-SITEID-SUBJID
because subject ids are unique only within a site. --SEQ numbers each subject's
records from 1 in dataset sort order (the keys in sdtm-datasets.yaml).

Memory grows with the datasets (the SAS XPORT writer takes whole tables); the
subject index is the only join kept while reading observations.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapter.errors import InputError, MappingError
from adapter.export.sdtm_terms import DatasetSpec, Terms, load_specs, load_terms
from adapter.fhir import elements
from adapter.fhir.constants import LOINC, NCT_SYSTEM, VISIT_EXTENSION
from adapter.fhir.ndjson import read_resources
from adapter.fhir.references import ref_id

Value = str | float | None
Row = dict[str, Value]

ISO_8601 = re.compile(
    r"^\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


# --- reading the study ------------------------------------------------------------------------


@dataclass
class Subject:
    """One ResearchSubject of the study with what DM needs from its Patient."""

    usubjid: str
    subjid: str
    siteid: str
    subject: Mapping[str, Any]
    patient: Mapping[str, Any]
    first_dose: str | None = None
    last_dose: str | None = None


@dataclass
class Study:
    resource: Mapping[str, Any]
    studyid: str
    arm_codes: dict[str, str]
    country: str = ""


@dataclass
class Dataset:
    spec: DatasetSpec
    rows: list[Row]


@dataclass
class SdtmResult:
    """The datasets and what did not go into them (counts by reason), for the metadata file."""

    datasets: dict[str, Dataset]
    excluded: Counter[str] = field(default_factory=Counter)


def _find_study(folder: Path, nct_id: str | None) -> Study:
    studies = [s for s in read_resources(folder, "ResearchStudy") if elements.identifier_value(s, NCT_SYSTEM)]
    if nct_id:
        studies = [s for s in studies if elements.identifier_value(s, NCT_SYSTEM) == nct_id]
    if len(studies) != 1:
        found = ", ".join(str(elements.identifier_value(s, NCT_SYSTEM)) for s in studies) or "none"
        raise InputError(
            f"needs exactly one ResearchStudy with an NCT identifier{f' {nct_id}' if nct_id else ''}; found {found}",
            source=str(folder),
            field="ResearchStudy.identifier",
        )
    resource = studies[0]
    studyid = str(elements.identifier_value(resource, NCT_SYSTEM))
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


def arm_codes(names: Iterator[str] | list[str]) -> dict[str, str]:
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


def _subjects(folder: Path, study: Study) -> dict[str, Subject]:
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


# --- the domains ------------------------------------------------------------------------------


def _visit(resource: Mapping[str, Any]) -> tuple[str, float | None]:
    """VISIT and VISITNUM from the project's study-visit extension (name, plannedDay).

    The schedule numbers visits by planned study day (screening is day 0), so VISITNUM
    is that day: numeric, unique per visit and in visit order (docs/export.md).
    """
    for ext in elements.extensions(resource, VISIT_EXTENSION):
        parts = {part.get("url"): part for part in ext.get("extension", [])}
        name = (parts.get("name") or {}).get("valueString") or (parts.get("code") or {}).get("valueCode") or ""
        return str(name), _float((parts.get("plannedDay") or {}).get("valueInteger"))
    return "", None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _findings(folder: Path, subjects: Mapping[str, Subject], study: Study, terms: Terms, result: SdtmResult) -> None:
    lb, vs = result.datasets["LB"].rows, result.datasets["VS"].rows
    for observation in read_resources(folder, "Observation"):
        subject = subjects.get(ref_id(observation.get("subject"), "Patient") or "")
        if subject is None:
            continue
        loinc = elements.first_coding(observation.get("code"), LOINC).get("code")
        test = terms.tests.get(str(loinc))
        if test is None:
            code = elements.first_coding(observation.get("code"))
            result.excluded[f"Observation {code.get('system')}|{code.get('code')}: not an LB or VS test"] += 1
            continue
        if observation.get("status") in ("cancelled", "entered-in-error"):
            result.excluded[f"Observation status {observation['status']}"] += 1
            continue
        p = test.domain
        quantity = observation.get("valueQuantity") or {}
        value = quantity.get("value", observation.get("valueInteger"))
        text = elements.number_text(value) if value is not None else (
            elements.concept_text(observation.get("valueCodeableConcept")) or observation.get("valueString") or ""
        )
        unit = terms.unit(quantity.get("code"), test)
        visit, visitnum = _visit(observation)
        row: Row = {
            "STUDYID": study.studyid, "DOMAIN": p, "USUBJID": subject.usubjid,
            f"{p}TESTCD": test.testcd, f"{p}TEST": test.test,
            f"{p}ORRES": text, f"{p}ORRESU": unit, f"{p}STRESC": text,
            f"{p}STRESN": float(value) if isinstance(value, int | float) else None, f"{p}STRESU": unit,
            f"{p}BLFL": None, "VISITNUM": visitnum, "VISIT": visit, "VISITDY": visitnum,
            f"{p}DTC": elements.effective(observation)[0] or "",
        }  # fmt: skip
        if p == "LB":
            reference = (observation.get("referenceRange") or [{}])[0]
            low, high = (reference.get("low") or {}).get("value"), (reference.get("high") or {}).get("value")
            interpretation = elements.first_coding((observation.get("interpretation") or [None])[0]).get("code")
            row.update(
                LBCAT=None, LBLOINC=str(loinc),
                LBORNRLO=elements.number_text(low) if low is not None else "",
                LBORNRHI=elements.number_text(high) if high is not None else "",
                LBSTNRLO=_float(low), LBSTNRHI=_float(high),
                LBNRIND=terms.nrind.get(str(interpretation), "") if interpretation else "",
            )  # fmt: skip
            lb.append(row)
        else:
            vs.append(row)


def _exposure(folder: Path, subjects: Mapping[str, Subject], study: Study, terms: Terms, result: SdtmResult) -> None:
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
        visit, visitnum = _visit(administration)
        ex.append({
            "STUDYID": study.studyid, "DOMAIN": "EX", "USUBJID": subject.usubjid,
            "EXTRT": treatment.upper(), "EXDOSE": _float(dose),
            "EXDOSU": terms.unit((dosage.get("dose") or {}).get("code")), "EXDOSFRM": "",
            "EXROUTE": terms.routes.get((str(route.get("system")), str(route.get("code"))), "") if route else "",
            "VISITNUM": visitnum, "VISIT": visit, "VISITDY": visitnum,
            "EXSTDTC": start or "", "EXENDTC": end or start or "",
        })  # fmt: skip
        if start:
            # ISO 8601 texts of one study share a form and offset, so they order as text.
            subject.first_dose = min(filter(None, (subject.first_dose, start)))
            subject.last_dose = max(filter(None, (subject.last_dose, end or start)))


def _demographics(subjects: Mapping[str, Subject], study: Study, terms: Terms, result: SdtmResult) -> None:
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


def _sequence(dataset: Dataset) -> None:
    """Sort by the dataset's keys and number --SEQ from 1 within each subject."""
    keys = dataset.spec.keys
    dataset.rows.sort(key=lambda row: tuple(_sort_value(row.get(k)) for k in keys))
    seq_name = f"{dataset.spec.name}SEQ"
    if seq_name not in dataset.spec.names:
        return
    counts: Counter[str] = Counter()
    for row in dataset.rows:
        counts[str(row["USUBJID"])] += 1
        row[seq_name] = float(counts[str(row["USUBJID"])])


def _sort_value(value: Value) -> tuple[int, float, str]:
    if value is None or value == "":
        return (0, 0.0, "")
    if isinstance(value, float):
        return (1, value, "")
    return (2, 0.0, value)


def build_sdtm(
    folder: str | Path, *, nct_id: str | None = None, mappings: Path | None = None
) -> SdtmResult:
    """DM, LB, VS and EX for the study in an NDJSON folder, sorted and with --SEQ assigned."""
    root = Path(folder)
    specs, terms = load_specs(mappings), load_terms(mappings)
    study = _find_study(root, nct_id)
    subjects = _subjects(root, study)
    result = SdtmResult({name: Dataset(spec, []) for name, spec in specs.items()})
    _exposure(root, subjects, study, terms, result)
    _findings(root, subjects, study, terms, result)
    _demographics(subjects, study, terms, result)
    for dataset in result.datasets.values():
        for row in dataset.rows:
            for name in dataset.spec.names:
                row.setdefault(name, None)
        _sequence(dataset)
    return result


# --- checks -----------------------------------------------------------------------------------


def check(datasets: Mapping[str, Dataset]) -> list[str]:
    """What breaks SDTM rules we enforce: Req variables missing or null, non-ISO 8601 --DTC,
    duplicate keys, --SEQ not unique within a subject. Empty when all is well."""
    problems: list[str] = []
    for name, dataset in datasets.items():
        spec = dataset.spec
        required = [v.name for v in spec.variables if v.core == "Req"]
        dates = [v for v in spec.names if v.endswith("DTC")]
        seen: dict[tuple[Value, ...], int] = {}
        seq_seen: set[tuple[Value, Value]] = set()
        for n, row in enumerate(dataset.rows, start=1):
            missing = [v for v in spec.names if v not in row]
            if missing:
                problems.append(f"{name} row {n}: variables missing: {', '.join(missing)}")
            for variable in required:
                if row.get(variable) in (None, ""):
                    problems.append(f"{name} row {n}: required {variable} is empty")
            for variable in dates:
                value = row.get(variable)
                if value and not (isinstance(value, str) and ISO_8601.match(value)):
                    problems.append(f"{name} row {n}: {variable} {value!r} is not ISO 8601")
            key = tuple(row.get(k) for k in spec.keys)
            if key in seen:
                problems.append(f"{name} rows {seen[key]} and {n}: same key {dict(zip(spec.keys, key, strict=True))}")
            seen.setdefault(key, n)
            seq_name = f"{name}SEQ"
            if seq_name in spec.names:
                pair = (row.get("USUBJID"), row.get(seq_name))
                if pair in seq_seen:
                    problems.append(f"{name} row {n}: {seq_name} {pair[1]} repeats for {pair[0]}")
                seq_seen.add(pair)
    return problems
