"""SDTM DM (age, consent, arm null reasons, race), SE, SV and DS from Patient, ResearchSubject and Consent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapter.export.sdtm.build import build_sdtm
from adapter.export.sdtm.check import check
from adapter.export.sdtm.model import SdtmResult, study_day
from adapter.export.sdtm.special import age
from tests.unit.export.trial import NCT, resources, write_folder

US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"


def _changed(**by_subject: dict[str, Any]) -> list[dict[str, Any]]:
    """The small trial with ResearchSubject (key 'rs<n>') or Patient (key 'pt<n>') elements replaced."""
    items = resources()
    subjects = [r for r in items if r["resourceType"] == "ResearchSubject"]
    patients = [r for r in items if r["resourceType"] == "Patient"]
    for key, change in by_subject.items():
        target = (subjects if key.startswith("rs") else patients)[int(key[2:]) - 1]
        target.update(change)
    return items


def _build(tmp_path: Path, items: list[dict[str, Any]]) -> SdtmResult:
    result = build_sdtm(write_folder(tmp_path / "in", items))
    assert check(result.datasets) == []
    return result


def _dm(result: SdtmResult) -> dict[str, dict[str, Any]]:
    return {str(r["SUBJID"]): r for r in result.datasets["DM"].rows}


def test_age_in_whole_years_from_what_is_known() -> None:
    assert age("1950-06-12", "2020-06-11") == 69.0
    assert age("1950-06-11", "2020-06-11") == 70.0
    assert age("1950", "2020-06-11T09:00:00+07:00") == 70.0, "a birth year alone: the age reached that year"
    assert age("", "2020-06-11") is None


def test_study_day_has_no_day_zero() -> None:
    assert [study_day(d, "2020-06-11T09:00") for d in ("2020-06-10", "2020-06-11T08:00", "2020-06-12", "2020")] == [
        -1.0, 1.0, 2.0, None]


def test_dm_derives_age_and_takes_consent_from_the_consent_resource(tmp_path: Path) -> None:
    items = _changed(rs1={"consent": {"reference": "Consent/c1"}})
    items.append({"resourceType": "Consent", "id": "c1", "status": "active", "dateTime": "2020-06-09"})
    dm = _dm(_build(tmp_path, items))
    assert (dm["001"]["RFICDTC"], dm["002"]["RFICDTC"]) == ("2020-06-09", "")
    assert (dm["001"]["AGE"], dm["001"]["AGEU"]) == (69.0, "YEARS")
    assert dm["001"]["RFXSTDTC"] == "2020-06-11T09:00:00+07:00"
    assert (dm["001"]["RACE"], dm["001"]["ETHNIC"]) == ("", ""), "not collected: null, not a guess"


def test_dm_arm_null_reasons_follow_sdtmig_3_4(tmp_path: Path) -> None:
    items = _changed(rs1={"status": "ineligible"}, rs2={"actualArm": None}, rs3={"actualArm": "Something else"})
    dm = _dm(_build(tmp_path, items))
    assert (dm["001"]["ARMCD"], dm["001"]["ARMNRS"], dm["001"]["RFSTDTC"]) == ("", "SCREEN FAILURE", "")
    result = build_sdtm(write_folder(tmp_path / "again", items))
    assert next(r["TSVAL"] for r in result.datasets["TS"].rows if r["TSPARMCD"] == "ACTSUB") == "2", (
        "a screen failure did not enter the trial")
    assert (dm["002"]["ARMCD"], dm["002"]["ACTARMCD"], dm["002"]["ARMNRS"]) == ("CONTROL", "", "ASSIGNED, NOT TREATED")
    assert (dm["003"]["ACTARM"], dm["003"]["ARMNRS"], dm["003"]["ACTARMUD"]) == (
        "", "UNPLANNED TREATMENT", "Something else")


def test_dm_race_from_us_core(tmp_path: Path) -> None:
    def race(*codes: str) -> dict[str, Any]:
        parts = [{"url": "ombCategory", "valueCoding": {"code": c}} for c in codes]
        return {"extension": [{"url": US_CORE_RACE, "extension": parts}]}

    result = _build(tmp_path, _changed(pt1=race("2028-9"), pt2=race("2028-9", "2106-3")))
    dm = _dm(result)
    assert (dm["001"]["RACE"], dm["002"]["RACE"]) == ("ASIAN", "MULTIPLE")
    supp = [(r["USUBJID"], r["QNAM"], r["QVAL"]) for r in result.datasets["SUPPDM"].rows]
    assert supp == [(f"{NCT}-01-002", "RACE1", "ASIAN"), (f"{NCT}-01-002", "RACE2", "WHITE")]


def test_se_sv_ds_follow_the_subject(tmp_path: Path) -> None:
    items = _changed(rs2={"status": "withdrawn", "period": {"start": "2020-06-10", "end": "2020-06-15"},
                          "extension": [{"url": "https://trialfhir.dev/fhir/StructureDefinition/withdrawal-reason",
                                         "valueString": "Withdrew consent"}]},
                     rs1={"status": "off-study", "period": {"start": "2020-06-10", "end": "2020-07-08"}})
    result = _build(tmp_path, items)
    se = [(r["USUBJID"], r["ETCD"], r["SESTDTC"], r["SEENDTC"]) for r in result.datasets["SE"].rows]
    first = f"{NCT}-01-001"
    assert se[:2] == [(first, "SCRN", "2020-06-10", "2020-06-11T09:00:00+07:00"),
                      (first, "SECRETOM", "2020-06-11T09:00:00+07:00", "2020-07-08")]
    sv = [(r["VISITNUM"], r["SVSTDTC"], r["SVSTDY"]) for r in result.datasets["SV"].rows if r["USUBJID"] == first]
    assert sv == [(1.0, "2020-06-11T08:30:00+07:00", 1.0), (7.0, "2020-06-17T08:30:00+07:00", 7.0)]
    ds = {(r["USUBJID"], r["DSDECOD"]): r for r in result.datasets["DS"].rows}
    assert ds[(first, "COMPLETED")]["DSSTDTC"] == "2020-07-08"
    withdrawn = ds[(f"{NCT}-01-002", "WITHDRAWAL BY SUBJECT")]
    assert (withdrawn["DSTERM"], withdrawn["DSCAT"]) == ("Withdrew consent", "DISPOSITION EVENT")
    assert result.excluded["DS: ResearchSubject status on-study has no disposition event yet"] == 1


def _administration(n: int, code: str, text: str, status: str = "completed", **more: Any) -> dict[str, Any]:
    return {"resourceType": "MedicationAdministration", "id": f"ma-{code}-{n}", "status": status,
            "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": code}],
                                          "text": text},
            "subject": {"reference": f"Patient/{next(r['id'] for r in resources() if r['resourceType'] == 'Patient')}"},
            "effectiveDateTime": f"2020-06-1{n}T10:00:00+07:00", **more}


def test_study_treatment_goes_to_ex_and_ec_other_medication_to_cm(tmp_path: Path) -> None:
    items = [*resources(), _administration(2, "H02AB02", "Dexamethasone"),
             _administration(3, "H02AB02", "Dexamethasone", status="not-done"),
             {**_administration(4, "X", "Secretome-MSCs", status="not-done"),
              "statusReason": [{"text": "Patient refused"}], "medicationCodeableConcept": {"text": "Secretome-MSCs"}}]
    result = _build(tmp_path, items)
    ex, cm = result.datasets["EX"].rows, result.datasets["CM"].rows
    assert [(r["CMTRT"], r["CMCLASCD"], r["CMSTDY"], r["EPOCH"]) for r in cm] == [
        ("DEXAMETHASONE", "H02AB02", 2.0, "TREATMENT")]
    assert {r["EXDOSFRQ"] for r in ex} == {"ONCE"} and len(ex) == 3, "a dose not given is not in EX"
    ec = result.datasets["EC"].rows
    assert len(ec) == 4, "EC holds every collected study-treatment record once one was not given"
    missed = [(r["ECOCCUR"], r["ECDOSE"], r["ECREASOC"]) for r in ec if r["ECOCCUR"] == "N"]
    assert missed == [("N", None, "Patient refused")], "never a dose of 0"
    assert result.excluded["MedicationAdministration not-done of a medication other than study treatment (CM)"] == 1
    dm = _dm(result)["001"]
    assert (dm["RFXSTDTC"], dm["RFXENDTC"]) == ("2020-06-11T09:00:00+07:00", "2020-06-11T09:05:00+07:00"), "EX alone"


def test_ec_is_left_empty_when_it_would_repeat_ex(tmp_path: Path) -> None:
    result = _build(tmp_path, resources())
    assert result.datasets["EC"].rows == [] and len(result.datasets["EX"].rows) == 3
