"""Hospital resources to facts, visit placement and derived tests: pure functions, no server."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapter.collect import facts as F
from adapter.collect.schedule import OUT_OF_WINDOW, UNSCHEDULED, VISIT, Participation, derive, place
from adapter.records import Visit
from adapter.sources.codetables import load_code_tables

TABLES = load_code_tables()
INDEX = F.accepting_tests(TABLES.tests, TABLES.project_systems)
LOINC = "http://loinc.org"
SERVER = "http://hospital.example/fhir"


def observation(oid: str, codes: list[str], value: Any = None, unit: str | None = None, *,
                status: str = "final", when: str = "2020-07-01T08:00:00+00:00", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation", "id": oid, "meta": {"versionId": "1", "lastUpdated": "2020-07-02T00:00:00Z"},
        "status": status, "code": {"coding": [{"system": LOINC, "code": c} for c in codes]},
        "subject": {"reference": "Patient/p1"}, "effectiveDateTime": when, **extra,
    }
    if value is not None:
        resource["valueQuantity"] = {"value": value, "system": "http://unitsofmeasure.org", "code": unit}
    return resource


def facts(resource: dict[str, Any]) -> list[F.Fact]:
    return list(F.observation_facts(resource, "01-0001", TABLES.tests, INDEX))


def test_a_value_is_converted_to_the_trial_unit_and_kept_as_reported() -> None:
    # CRP: the trial's unit is mg/L; the hospital reports mg/dL.
    [fact] = facts(observation("o1", ["1988-5"], 1.56, "mg/dL"))
    assert (fact.state, fact.value, fact.unit) == (F.COLLECTED, "15.6", "mg/L")
    assert (fact.reported_value, fact.reported_unit) == ("1.56", "mg/dL")
    assert (fact.source_type, fact.source_id, fact.source_version) == ("Observation", "o1", "1")


def test_a_unit_that_cannot_be_converted_is_rejected_with_its_reason() -> None:
    [fact] = facts(observation("o1", ["1988-5"], 3.1, "mmol/L"))
    assert fact.state == F.REJECTED
    assert "mmol/L" in fact.reason and "3.1" not in fact.reason  # units named, the value never


def test_a_unit_the_code_implies_is_added_before_conversion() -> None:
    # 48065-7 is D-dimer FEU: plain ug/mL under it converts to the trial's ng/mL{FEU}.
    [fact] = facts(observation("o1", ["48065-7"], 1.2, "ug/mL"))
    assert (fact.state, fact.value, fact.unit, fact.reported_unit) == (F.COLLECTED, "1200", "ng/mL{FEU}", "ug/mL")


def test_two_accepted_codes_on_one_observation_give_one_value() -> None:
    [fact] = facts(observation("o1", ["2708-6", "59408-5"], 93, "%"))
    assert (fact.code, fact.value) == ("SPO2", "93")


def test_either_accepted_code_is_taken_for_the_test() -> None:
    assert [f.code for f in facts(observation("o1", ["19994-3"], 40, "%"))] == ["FIO2"]
    assert [f.code for f in facts(observation("o2", ["3150-0"], 40, "%"))] == ["FIO2"]


@pytest.mark.parametrize(("status", "state"), [
    ("final", F.COLLECTED), ("amended", F.COLLECTED), ("corrected", F.COLLECTED),
    ("preliminary", F.REJECTED), ("registered", F.REJECTED), ("entered-in-error", F.RETRACTED),
])
def test_only_results_are_collected(status: str, state: str) -> None:
    [fact] = facts(observation("o1", ["2703-7"], 80, "mm[Hg]", status=status))
    assert fact.state == state


def test_a_data_absent_reason_is_a_not_done_row() -> None:
    reason = {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-performed"}
    absent = {"coding": [reason]}
    [fact] = facts(observation("o1", ["2703-7"], dataAbsentReason=absent))
    assert (fact.state, fact.reason, fact.value) == (F.NOT_DONE, "not-performed", "")


def test_the_ratio_is_derived_when_not_reported_and_names_both_sources() -> None:
    pao2 = facts(observation("a", ["2703-7"], 82.7, "mm[Hg]", when="2020-07-01T08:00:00+00:00"))
    fio2 = facts(observation("b", ["19994-3"], 35, "%", when="2020-07-01T08:20:00+00:00"))
    far = facts(observation("c", ["19994-3"], 60, "%", when="2020-07-01T12:00:00+00:00"))
    [ratio] = derive(pao2 + fio2 + far, TABLES.tests, {"01-0001": ZoneInfo("UTC")}, SERVER)
    assert (ratio.code, ratio.value, ratio.unit, ratio.source_type) == ("PFRATIO", "240", "mm[Hg]", "derived")
    assert ratio.derived_from == (f"{SERVER}/Observation/a/_history/1", f"{SERVER}/Observation/b/_history/1")


def test_a_reported_ratio_is_not_derived_again() -> None:
    made = facts(observation("a", ["2703-7"], 82.7, "mm[Hg]")) + facts(observation("b", ["19994-3"], 35, "%"))
    reported = facts(observation("r", ["50984-4"], 236, "mm[Hg]"))
    assert derive(made + reported, TABLES.tests, {"01-0001": ZoneInfo("UTC")}, SERVER) == []


def test_the_value_closest_to_the_planned_time_is_the_visits_and_the_rest_unscheduled() -> None:
    who = {"01-0001": Participation(ZoneInfo("UTC"), date(2020, 7, 1), date(2020, 7, 1), date(2020, 7, 20))}
    visits = {"D1": Visit("D1", "Day 1", 1), "D3": Visit("D3", "Day 3", 3)}
    windows = {"D1": (-1, 1), "D3": (-1, 1)}
    made = [f for oid, when in [("early", "2020-07-02T06:00:00+00:00"), ("noon", "2020-07-02T13:00:00+00:00"),
                                ("d3", "2020-07-05T23:00:00+00:00"), ("late", "2020-07-25T08:00:00+00:00")]
            for f in facts(observation(oid, ["2703-7"], 80, "mm[Hg]", when=when))]
    placed = {p.fact.source_id: (p.placement, p.visit) for p in place(made, who, visits, windows)}
    assert placed == {"early": (UNSCHEDULED, ""), "noon": (VISIT, "D1"), "d3": (VISIT, "D3"),
                      "late": (OUT_OF_WINDOW, "")}
