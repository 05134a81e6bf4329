"""Findings (SDTMIG 3.4 section 6.3): LB, VS, RS, MB and RE from Observations, and PR for oxygen support.

Follows the HL7/CDISC FHIR to CDISC Joint Mapping IG 1.0.0 for LB and VS. The test's
code picks the domain and the CDISC test (``sdtm-terms.yaml``): clinical
classifications (ECOG, SOFA) go to RS, microorganism detection (SARS-CoV-2 PCR) to MB,
chest X-ray interpretations to RE; oxygen support, a treatment recorded as an
Observation, becomes a PR (procedure) record.
--ORRES/--ORRESU are the value as reported (the reported-value extension when the
Observation has one, else valueQuantity); --STRESC/--STRESN/--STRESU the standard value
(valueQuantity). --DTC keeps the collected precision (reported-precision extension).
--LOBXFL marks, per subject and test, the last non-missing result before the first
dose of study treatment (RFXSTDTC, else RFSTDTC); --DY counts from RFSTDTC with no day 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapter.export.sdtm.model import (
    Row,
    SdtmResult,
    Study,
    Subject,
    epoch,
    planned_study_day,
    study_day,
    to_float,
    visit_of,
)  # fmt: skip
from adapter.export.sdtm.terms import Terms, Test
from adapter.fhir import elements
from adapter.fhir.constants import LOINC, PROJECT_BASE, REPORTED_PRECISION_EXTENSION, REPORTED_VALUE_EXTENSION
from adapter.fhir.ndjson import read_resources
from adapter.fhir.references import ref_id

# How many characters of an ISO 8601 date/time each collected precision keeps.
PRECISION = {"year": 4, "month": 7, "day": 10, "hour": 13, "minute": 16, "second": 19}
DOMAINS = ("LB", "VS", "RS", "MB", "RE")
MEASUREMENT_SYSTEM = PROJECT_BASE + "CodeSystem/trial-measurement"  # tests without a LOINC code
NO_SUPPORT = "none"  # the oxygen-support answer for no supplemental oxygen
OFFSET = re.compile(r"(Z|[+-]\d{2}:\d{2})$")


def at_precision(dtc: str, element: Mapping[str, Any] | None) -> str:
    """``dtc`` cut to the precision it was collected at (the reported-precision extension of its element).

    A time keeps its offset: 2020-06-11T09:15:00+07:00 collected to the minute is 2020-06-11T09:15+07:00.
    """
    code = next((str(e.get("valueCode")) for e in elements.extensions(element or {}, REPORTED_PRECISION_EXTENSION)), "")
    keep = PRECISION.get(code)
    offset = OFFSET.search(dtc)
    stamp, zone = (dtc[: offset.start()], offset.group(0)) if offset and "T" in dtc else (dtc, "")
    if not keep or len(stamp) <= keep:
        return dtc
    return stamp[:keep] + (zone if keep > 10 else "")


def _test(observation: Mapping[str, Any], terms: Terms) -> tuple[str, Test | None]:
    """The LOINC code and the SDTM test of an Observation.

    The project's own code wins over a LOINC code when both are mapped: it is the more
    specific (a chest X-ray's impression, where LOINC 18782-3 is any radiology narrative).
    """
    concept = observation.get("code")
    loinc = str(elements.first_coding(concept, LOINC).get("code") or "")
    own = str(elements.first_coding(concept, MEASUREMENT_SYSTEM).get("code") or "")
    for code in (own, loinc):
        if code in terms.tests:
            return loinc, terms.tests[code]
    return loinc, None


def _reported(observation: Mapping[str, Any]) -> Mapping[str, Any]:
    for ext in elements.extensions(observation, REPORTED_VALUE_EXTENSION):
        return dict(ext.get("valueQuantity") or {})
    return dict(observation.get("valueQuantity") or {})


def _result_text(observation: Mapping[str, Any]) -> str:
    concept = observation.get("valueCodeableConcept")
    if concept:
        text = elements.concept_text(concept) or str(elements.first_coding(concept).get("code") or "")
        return text.removesuffix(" (qualifier value)")
    return str(observation.get("valueString") or "")


def findings(folder: Path, subjects: Mapping[str, Subject], study: Study, terms: Terms, result: SdtmResult) -> None:
    """Findings rows for the subjects' Observations; others are counted in ``result.excluded``."""
    for observation in read_resources(folder, "Observation"):
        subject = subjects.get(ref_id(observation.get("subject"), "Patient") or "")
        if subject is None:
            continue
        loinc, test = _test(observation, terms)
        if test is None:
            code = elements.first_coding(observation.get("code"))
            result.excluded[f"Observation {code.get('system')}|{code.get('code')}: no SDTM test mapped"] += 1
            continue
        if observation.get("status") in ("cancelled", "entered-in-error"):
            result.excluded[f"Observation status {observation['status']}"] += 1
            continue
        result.datasets[test.domain].rows.append(_row(observation, subject, study, terms, test, loinc))
    for domain in DOMAINS:
        _last_before_exposure(result.datasets[domain].rows, domain, subjects)


def _row(observation: Mapping[str, Any], subject: Subject, study: Study, terms: Terms, test: Test, loinc: str) -> Row:
    p = test.domain
    standard = observation.get("valueQuantity") or {}
    reported = _reported(observation)
    value = standard.get("value", observation.get("valueInteger"))
    reported_value = reported.get("value", value)
    # A censored result (<0.3) keeps its comparator in the text and has no numeric standard value.
    comparator = str(standard.get("comparator") or "")
    text = comparator + elements.number_text(value) if value is not None else _result_text(observation)
    numeric = None if comparator else to_float(value)
    visit, visitnum = visit_of(observation)
    if visitnum is not None:
        study.visits[visitnum] = visit
    dtc = at_precision(elements.effective(observation)[0] or "", observation.get("_effectiveDateTime"))
    subject.saw(visitnum, dtc)
    row: Row = {
        "STUDYID": study.studyid, "DOMAIN": p, "USUBJID": subject.usubjid,
        f"{p}TESTCD": test.testcd, f"{p}TEST": test.test,
        f"{p}ORRES": str(reported.get("comparator") or comparator) + elements.number_text(reported_value)
        if reported_value is not None else text,
        f"{p}STRESC": text, "VISITNUM": visitnum, "VISIT": visit, "VISITDY": planned_study_day(visitnum),
        "EPOCH": epoch(dtc, subject), f"{p}DTC": dtc, f"{p}DY": study_day(dtc, subject.rfstdtc),
    }  # fmt: skip
    if p in ("LB", "VS"):
        row.update({
            f"{p}ORRESU": terms.unit(reported.get("code"), test),
            f"{p}STRESN": numeric,
            f"{p}STRESU": terms.unit(standard.get("code"), test),
        })  # fmt: skip
    if p == "LB":
        reference = (observation.get("referenceRange") or [{}])[0]
        low, high = (reference.get("low") or {}).get("value"), (reference.get("high") or {}).get("value")
        row.update(
            LBCAT=test.cat, LBSPEC=test.spec, LBLOINC=loinc,
            LBORNRLO=elements.number_text(low) if low is not None else "",
            LBORNRHI=elements.number_text(high) if high is not None else "",
            LBSTNRLO=to_float(low), LBSTNRHI=to_float(high), LBNRIND=_nrind(observation, terms),
        )  # fmt: skip
    elif p == "RS":
        row.update(RSCAT=test.cat, RSSTRESN=numeric)
    elif p == "RE":
        row.update(REMETHOD=test.method, RELOC=test.loc)
    elif p == "PR":
        return _procedure(observation, row, test)
    elif p == "MB":
        row.update(MBTSTDTL=test.detail, MBSPEC=test.spec, MBLOINC=loinc, MBSTRESC=text.upper(),
                   MBNRIND=_nrind(observation, terms))
    return row


def _procedure(observation: Mapping[str, Any], finding: Row, test: Test) -> Row:
    """A PR record from a finding about a procedure (oxygen support): what was given at the visit, or none."""
    answer = elements.first_coding(observation.get("valueCodeableConcept"))
    given = answer.get("code") != NO_SUPPORT
    keep = ("STUDYID", "USUBJID", "VISITNUM", "VISIT", "EPOCH")
    return {
        **{k: finding[k] for k in keep}, "DOMAIN": "PR",
        "PRTRT": (str(answer.get("display") or answer.get("code")) if given else test.test)[:200],
        "PRCAT": test.cat, "PRPRESP": "Y", "PROCCUR": "Y" if given else "N",
        "PRSTDTC": finding["PRDTC"], "PRSTDY": finding["PRDY"],
    }  # fmt: skip


def _nrind(observation: Mapping[str, Any], terms: Terms) -> str:
    interpretation = elements.first_coding((observation.get("interpretation") or [None])[0]).get("code")
    return terms.nrind.get(str(interpretation), "") if interpretation else ""


def _last_before_exposure(rows: list[Row], p: str, subjects: Mapping[str, Subject]) -> None:
    """Flag --LOBXFL = Y on each subject's last non-missing result of a test before first exposure."""
    exposure = {s.usubjid: s.first_exposure or s.rfstdtc for s in subjects.values()}
    last: dict[tuple[str, str], Row] = {}
    for row in rows:
        dtc, start = str(row.get(f"{p}DTC") or ""), exposure.get(str(row["USUBJID"]), "")
        if not dtc or not start or row.get(f"{p}ORRES") in (None, ""):
            continue
        n = min(len(dtc), len(start))
        if dtc[:n] >= start[:n]:
            continue  # at or after the first dose, or not known to be before it
        key = (str(row["USUBJID"]), str(row[f"{p}TESTCD"]))
        if key not in last or dtc > str(last[key][f"{p}DTC"]):
            last[key] = row
    for row in last.values():
        row[f"{p}LOBXFL"] = "Y"
