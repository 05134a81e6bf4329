"""Trial design datasets (SDTMIG 3.4 section 7): TS, TA, TE, TV and TI from the study record.

TS takes the ResearchStudy, its enrollment Group and sponsor Organization; coded
parameters (phase, type, randomization, model, blinding, sex of participants) come
from ``sdtm-terms.yaml`` (trial_summary) and carry their NCI code from the CT subset.
TA/TE draw two epochs per arm: SCREENING (element SCRN) and TREATMENT (one element
per arm), since the record gives arms but not their element structure. TV lists the
visits the data names (study-visit extensions), in planned-day order; SDTM has no
study day 0, so a visit planned on day 0 or before gets VISITDY one less (day 0 = -1).
TI parses the record's eligibility criteria text, when the record has it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from adapter.export.sdtm.model import Row, SdtmResult, Study, planned_study_day
from adapter.export.sdtm.terms import ControlledTerms, Terms
from adapter.fhir import elements
from adapter.fhir.constants import EXTENSION_BASE
from adapter.fhir.ndjson import read_resources
from adapter.fhir.references import ref_id

SDTMIG_VERSION, SDTM_VERSION = "3.4", "2.0"
CRITERIA_EXTENSION = EXTENSION_BASE + "eligibility-criteria"
STUDY_DATE_EXTENSION = EXTENSION_BASE + "ctgov-study-date"
ARM_INTERVENTION_EXTENSION = EXTENSION_BASE + "arm-intervention"
IETEST_MAX = 200
SCREENING_ETCD = "SCRN"  # SDTMIG 3.4 section 7.4.1 (TI): IETEST holds at most 200 characters


def investigational(study: Study) -> list[str]:
    """The interventions some arms get and others do not (the study treatments), "Type: " prefix removed.

    With one arm every intervention counts; an intervention every arm gets (standard of
    care) is background therapy, not study treatment.
    """
    per_arm = [
        [_intervention_name(e) for e in elements.extensions(arm, ARM_INTERVENTION_EXTENSION)]
        for arm in study.resource.get("arm", [])
    ]
    if not per_arm:
        return []
    shared = set.intersection(*(set(names) for names in per_arm)) if len(per_arm) > 1 else set()
    return sorted({name for names in per_arm for name in names if name not in shared and name})


def _intervention_name(extension: Mapping[str, Any]) -> str:
    text = elements.concept_text(extension.get("valueCodeableConcept")) or ""
    return text.split(": ", 1)[1] if ": " in text else text


def trial_design(
    folder: Path, study: Study, subjects: int, terms: Terms, ct: ControlledTerms, result: SdtmResult
) -> None:
    """TS, TA, TE, TV and TI rows for the study; ``subjects`` is the number who entered it (ACTSUB)."""
    group = next((g for g in read_resources(folder, "Group") if g.get("id") == _enrollment_id(study)), {})
    result.datasets["TS"].rows.extend(_summary(folder, study, group, subjects, terms, ct, result))
    _arms(study, result)
    _visits(study, result)
    _criteria(study, group, result)


def _enrollment_id(study: Study) -> str | None:
    return next((ref_id(e, "Group") for e in study.resource.get("enrollment", [])), None)


def _summary(
    folder: Path, study: Study, group: Mapping[str, Any], subjects: int, terms: Terms, ct: ControlledTerms,
    result: SdtmResult,
) -> Iterator[Row]:
    resource = study.resource
    values: list[tuple[str, str, str, str]] = []  # TSPARMCD, TSVAL, TSVALCD, TSVCDREF

    def add(parmcd: str, value: Any, code: str = "", ref: str = "") -> None:
        if value not in (None, ""):
            values.append((parmcd, str(value), code, ref))

    add("TITLE", resource.get("title"))
    add("REGID", study.studyid, study.studyid, "ClinicalTrials.gov")
    sponsor_id = ref_id(resource.get("sponsor"), "Organization")
    for organization in read_resources(folder, "Organization"):
        if organization.get("id") == sponsor_id:
            add("SPONSOR", organization.get("name"))
    for parmcd, value in _coded(resource, group, terms):
        add(parmcd, value, ct.term(ct.ts_responses[parmcd], value)[1] or "", "CDISC CT")
    if group and not group.get("actual", False):
        add("PLANSUB", elements.number_text(group["quantity"]) if "quantity" in group else None)
    add("ACTSUB", str(subjects))
    add("NARMS", str(len(resource.get("arm", []))))
    for condition in resource.get("condition", []):
        add("INDIC", elements.concept_text(condition))
    for name in investigational(study):
        add("TRT", name)
    for kind, parmcd in (("start", "SSTDTC"), ("completion", "SENDTC")):
        date, actual = _study_date(resource, kind)
        if date and actual:
            add(parmcd, date, "", "ISO 8601")
        elif date:
            result.excluded[f"TS {parmcd}: the record's {kind} date is not actual"] += 1
    for objective in resource.get("objective", []):
        level = elements.first_coding(objective.get("type")).get("code")
        add({"primary": "OUTMSPRI", "secondary": "OUTMSSEC"}.get(str(level), ""), objective.get("name"))
    add("FCNTRY", terms.countries.get(study.country.casefold(), ""), "", "ISO 3166-1 alpha-3")
    add("SDTIGVER", SDTMIG_VERSION)
    add("SDTMVER", SDTM_VERSION)
    decodes = ct.codelists["C66738"].decodes
    seq: dict[str, int] = {}
    for parmcd, value, code, ref in values:
        if not parmcd:
            continue
        seq[parmcd] = seq.get(parmcd, 0) + 1
        yield {
            "STUDYID": study.studyid, "DOMAIN": "TS", "TSSEQ": float(seq[parmcd]), "TSPARMCD": parmcd,
            "TSPARM": decodes[parmcd], "TSVAL": value[:200], "TSVALCD": code, "TSVCDREF": ref,
            "TSVCDVER": ct.version if ref == "CDISC CT" else "",
        }  # fmt: skip
        if len(value) > 200:
            result.excluded[f"TS {parmcd}: value shortened to 200 characters (SDTMIG 3.4 section 7.6.1)"] += 1


def _coded(resource: Mapping[str, Any], group: Mapping[str, Any], terms: Terms) -> Iterator[tuple[str, str]]:
    concepts = [resource.get("phase"), resource.get("primaryPurposeType"), *resource.get("category", [])]
    concepts += [c.get("valueCodeableConcept") for c in group.get("characteristic", [])]
    for concept in concepts:
        for coding in (concept or {}).get("coding", []):
            found = terms.trial_summary.get((str(coding.get("system")), str(coding.get("code"))))
            if found:
                yield found


def _study_date(resource: Mapping[str, Any], kind: str) -> tuple[str | None, bool]:
    for ext in elements.extensions(resource, STUDY_DATE_EXTENSION):
        parts = {p.get("url"): p for p in ext.get("extension", [])}
        if (parts.get("kind") or {}).get("valueCode") == kind:
            date = (parts.get("date") or {}).get("valueDate")
            date_type = elements.first_coding((parts.get("type") or {}).get("valueCodeableConcept")).get("code")
            return date, date_type == "ACTUAL"
    return None, False


def element_code(armcd: str, taken: set[str]) -> str:
    """ETCD (at most 8 characters) of an arm's treatment element, unique among ``taken``."""
    code, n = armcd[:8] or "TRT", 1
    while code in taken:
        n += 1
        code = f"{armcd[: 8 - len(str(n))]}{n}"
    taken.add(code)
    return code


def element_codes(study: Study) -> dict[str, str]:
    """ETCD of each arm's treatment element, by arm name (SCRN is the screening element)."""
    taken = {SCREENING_ETCD}
    return {name: element_code(armcd, taken) for name, armcd in study.arm_codes.items()}


def _arms(study: Study, result: SdtmResult) -> None:
    ta, te = result.datasets["TA"].rows, result.datasets["TE"].rows
    base = {"STUDYID": study.studyid}
    te.append({**base, "DOMAIN": "TE", "ETCD": SCREENING_ETCD, "ELEMENT": "Screening", "TESTRL": "Informed consent",
               "TEENRL": "Study day 1 (first dose of study treatment)"})  # fmt: skip
    codes = element_codes(study)
    for arm in study.resource.get("arm", []):
        name = str(arm.get("name", ""))
        armcd = study.arm_codes[name]
        etcd = codes[name]
        te.append({**base, "DOMAIN": "TE", "ETCD": etcd, "ELEMENT": name[:200],
                   "TESTRL": f"Study day 1, first dose in arm {name}"[:200], "TEENRL": "End of participation"})
        arm_row = {**base, "DOMAIN": "TA", "ARMCD": armcd, "ARM": name}
        ta.append({**arm_row, "TAETORD": 1.0, "ETCD": "SCRN", "ELEMENT": "Screening", "EPOCH": "SCREENING",
                   "TABRANCH": f"Randomized to {name}"[:200] if len(study.arm_codes) > 1 else ""})
        ta.append({**arm_row, "TAETORD": 2.0, "ETCD": etcd, "ELEMENT": name[:200], "EPOCH": "TREATMENT"})


def _visits(study: Study, result: SdtmResult) -> None:
    for visitnum, visit in sorted(study.visits.items()):
        day = planned_study_day(visitnum)
        result.datasets["TV"].rows.append({
            "STUDYID": study.studyid, "DOMAIN": "TV", "VISITNUM": visitnum, "VISIT": visit, "VISITDY": day,
            "ARMCD": "", "TVSTRL": f"Planned on study day {elements.number_text(day)}",
        })  # fmt: skip


_SECTION = re.compile(r"^\s*(inclusion|exclusion) criteria\s*:?\s*$", re.IGNORECASE)
_ITEM = re.compile(r"^\s*(?:[*\-\u2022]|\d+[.)])\s+(.*\S)\s*$")


def _criteria(study: Study, group: Mapping[str, Any], result: SdtmResult) -> None:
    text = next((str(e.get("valueMarkdown", "")) for e in elements.extensions(group, CRITERIA_EXTENSION)), "")
    category, counts = "", {"INCLUSION": 0, "EXCLUSION": 0}
    for line in text.splitlines():
        section = _SECTION.match(line)
        if section:
            category = section.group(1).upper()
            continue
        item = _ITEM.match(line)
        if not (item and category):
            continue
        counts[category] += 1
        criterion = item.group(1)
        if len(criterion) > IETEST_MAX:
            result.excluded[f"TI criterion text shortened to {IETEST_MAX} characters (SDTMIG 3.4 section 7.4.1)"] += 1
        result.datasets["TI"].rows.append({
            "STUDYID": study.studyid, "DOMAIN": "TI", "IETESTCD": f"{category[:4]}{counts[category]:02d}",
            "IETEST": criterion[:IETEST_MAX], "IECAT": category,
        })  # fmt: skip
