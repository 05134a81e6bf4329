"""Findings: LB and VS from Observations (HL7/CDISC FHIR to CDISC Joint Mapping IG 1.0.0)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from adapter.export.sdtm.model import Row, SdtmResult, Study, Subject, planned_study_day, to_float, visit_of
from adapter.export.sdtm.terms import Terms
from adapter.fhir import elements
from adapter.fhir.constants import LOINC
from adapter.fhir.ndjson import read_resources
from adapter.fhir.references import ref_id


def findings(folder: Path, subjects: Mapping[str, Subject], study: Study, terms: Terms, result: SdtmResult) -> None:
    """LB and VS rows for the subjects' Observations; others are counted in ``result.excluded``."""
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
        visit, visitnum = visit_of(observation)
        if visitnum is not None:
            study.visits[visitnum] = visit
        subject.saw(visitnum, elements.effective(observation)[0])
        row: Row = {
            "STUDYID": study.studyid, "DOMAIN": p, "USUBJID": subject.usubjid,
            f"{p}TESTCD": test.testcd, f"{p}TEST": test.test,
            f"{p}ORRES": text, f"{p}ORRESU": unit, f"{p}STRESC": text,
            f"{p}STRESN": float(value) if isinstance(value, int | float) else None, f"{p}STRESU": unit,
            f"{p}BLFL": None, "VISITNUM": visitnum, "VISIT": visit, "VISITDY": planned_study_day(visitnum),
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
                LBSTNRLO=to_float(low), LBSTNRHI=to_float(high),
                LBNRIND=terms.nrind.get(str(interpretation), "") if interpretation else "",
            )  # fmt: skip
            lb.append(row)
        else:
            vs.append(row)
