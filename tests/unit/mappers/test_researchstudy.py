"""ResearchStudy from a Study: status, phase, dates, arms, conditions, people."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from adapter.fhir.constants import EXTENSION_BASE
from adapter.mappers.researchstudy import principal_investigator, research_study, study_status
from adapter.records import Arm, Intervention, MeshTerm, Official, Study, StudyDate
from adapter.sources.ctgov import read_study
from adapter.sources.ctgov_tables import default_tables
from tests.conftest import SHARED_SAMPLES

TABLES = default_tables()
BASE = Study(nct_id="NCT00000001", source_format="ctgov-v2-json")


def _map(**fields: Any) -> dict[str, Any]:
    return research_study(dataclasses.replace(BASE, **fields), TABLES)


def _extensions(resource: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in resource.get("extension", []) if e["url"] == EXTENSION_BASE + name]


@pytest.mark.parametrize(
    ("overall", "last_known", "expected"),
    [
        ("RECRUITING", None, "active"),
        ("TERMINATED", None, "administratively-completed"),
        ("UNKNOWN", "RECRUITING", "active"),  # no completion date: not known to have ended
        ("UNKNOWN", "ACTIVE_NOT_RECRUITING", "closed-to-accrual"),
        ("UNKNOWN", None, "in-review"),
        ("PAUSED", None, "in-review"),  # a value the registry adds tomorrow
        (None, None, "in-review"),
    ],
)
def test_status(overall: str | None, last_known: str | None, expected: str) -> None:
    study = dataclasses.replace(BASE, overall_status=overall, last_known_status=last_known)
    assert study_status(study, TABLES) == expected


def test_an_unknown_study_past_its_completion_date_is_not_active() -> None:
    for last_known in ("RECRUITING", "ACTIVE_NOT_RECRUITING", None):
        study = dataclasses.replace(BASE, overall_status="UNKNOWN", last_known_status=last_known,
                                    completion_date=StudyDate("2019-12", "ESTIMATED"))  # fmt: skip
        assert study_status(study, TABLES) == "closed-to-accrual-and-intervention"


def test_registry_status_values_are_kept() -> None:
    resource = _map(overall_status="UNKNOWN", last_known_status="RECRUITING")
    [overall] = _extensions(resource, "ctgov-overall-status")
    [last] = _extensions(resource, "ctgov-last-known-status")
    assert overall["valueCodeableConcept"]["coding"][0]["code"] == "UNKNOWN"
    assert last["valueCodeableConcept"]["coding"][0]["code"] == "RECRUITING"


def test_unknown_status_value_is_kept_as_text() -> None:
    [overall] = _extensions(_map(overall_status="PAUSED"), "ctgov-overall-status")
    assert overall["valueCodeableConcept"] == {"text": "PAUSED"}


@pytest.mark.parametrize(
    ("phases", "phase"),
    [
        (("PHASE1", "PHASE2"), {"code": "phase-1-phase-2", "text": "Phase 1/Phase 2"}),
        (("PHASE2", "PHASE3"), {"code": "phase-2-phase-3", "text": "Phase 2/Phase 3"}),
        (("NA",), {"code": "n-a", "text": "Not Applicable"}),
        (("PHASE5",), {"text": "PHASE5"}),
        (("PHASE1", "PHASE3"), {"text": "PHASE1, PHASE3"}),
    ],
)
def test_phase(phases: tuple[str, ...], phase: dict[str, str]) -> None:
    written = _map(phases=phases)["phase"]
    assert written.get("coding", [{}])[0].get("code") == phase.get("code")
    assert written["text"] == phase["text"]


def test_no_phase_for_observational_studies() -> None:
    assert "phase" not in _map(study_type="OBSERVATIONAL")


@pytest.mark.parametrize("date", ["2020", "2020-06", "2020-06-08"])
def test_date_precision_is_kept(date: str) -> None:
    resource = _map(start_date=StudyDate(date, "ACTUAL"), completion_date=StudyDate("2022-03", "ESTIMATED"))
    assert resource["period"] == {"start": date, "end": "2022-03"}
    start, end = _extensions(resource, "ctgov-study-date")
    assert start["extension"][1] == {"url": "date", "valueDate": date}
    assert end["extension"][2]["valueCodeableConcept"]["coding"][0]["code"] == "ESTIMATED"


def test_arms_name_their_interventions() -> None:
    resource = _map(
        interventions=(Intervention("Remdesivir", "DRUG"), Intervention("Placebo", "OTHER")),
        arms=(Arm("A", "EXPERIMENTAL", "first", ("Remdesivir",)), Arm("B", None, None, ("Placebo", "Unlisted"))),
        intervention_meshes=(MeshTerm("Remdesivir", "C000606551"),),
    )
    first, second = resource["arm"]
    assert first["name"] == "A" and first["description"] == "first"
    assert [c["code"] for c in first["type"]["coding"]] == ["experimental", "EXPERIMENTAL"]
    assert "type" not in second
    assert [e["valueCodeableConcept"]["text"] for e in second["extension"]] == ["Other: Placebo", "Unlisted"]
    assert first["extension"][0]["valueCodeableConcept"] == resource["focus"][0]
    assert resource["focus"][0]["coding"][0]["code"] == "C000606551"


def test_conditions_get_mesh_codings_and_unmatched_mesh_terms_follow() -> None:
    resource = _map(
        conditions=("Coronary Artery Disease", "Acute Myocardial Infarction"),
        condition_meshes=(MeshTerm("Coronary Artery Disease", "D003324"), MeshTerm("Myocardial Infarction", "D009203")),
    )
    first, second, third = resource["condition"]
    assert first["coding"][0]["code"] == "D003324" and first["text"] == "Coronary Artery Disease"
    assert second == {"text": "Acute Myocardial Infarction"}
    assert third["coding"][0]["code"] == "D009203"


def test_principal_investigator_prefers_the_pi_role() -> None:
    director, pi = Official("Dr Director", role="STUDY_DIRECTOR"), Official("Dr PI", "Uni", "PRINCIPAL_INVESTIGATOR")
    assert principal_investigator(dataclasses.replace(BASE, officials=(director, pi))) == pi
    assert principal_investigator(dataclasses.replace(BASE, officials=(director,))) == director
    resource = _map(officials=(director, pi))
    assert len(_extensions(resource, "study-official")) == 2


def test_identifiers() -> None:
    study = read_study(SHARED_SAMPLES / "v2" / "NCT04431453.json")
    identifiers = research_study(study, TABLES)["identifier"]
    assert identifiers[0] == {"use": "official", "system": "http://clinicaltrials.gov", "value": "NCT04431453"}
    assert identifiers[1]["value"] == "GS-US-540-5823" and identifiers[1]["assigner"] == {"display": "Gilead Sciences"}
    assert identifiers[2]["type"]["coding"][0]["code"] == "EUDRACT_NUMBER"


def test_why_stopped_title_and_description() -> None:
    resource = research_study(read_study(SHARED_SAMPLES / "v2" / "NCT00711542.json"), TABLES)
    assert resource["reasonStopped"] == {"text": "Slow recruitment"}
    assert resource["title"].startswith("Effects of Intracoronary Progenitor Cell Therapy")
    assert resource["description"].startswith("## Brief Summary\n\nCoronary flow reserve")
    assert "## Detailed Description\n\nImprovement of neovascularization" in resource["description"]
    assert [o["type"]["coding"][0]["code"] for o in resource["objective"]] == ["primary"] + ["secondary"] * 4


def test_a_condition_with_a_standard_code_keeps_its_text_and_mesh() -> None:
    resource = _map(conditions=("Covid-19", "Cytokine Storm"),
                    condition_meshes=(MeshTerm("COVID-19", "D000086382"),))  # fmt: skip
    covid, storm = resource["condition"][:2]
    assert covid["text"] == "Covid-19"
    assert [(c["system"], c["code"]) for c in covid["coding"]] == [
        ("http://snomed.info/sct", "840539006"), ("http://hl7.org/fhir/sid/icd-10", "U07.1"),
        ("https://www.nlm.nih.gov/mesh", "D000086382")]  # fmt: skip
    assert storm == {"text": "Cytokine Storm"}


def test_first_posted_and_last_update_dates_travel_in_ctgov_study_date() -> None:
    resource = _map(first_posted_date=StudyDate("2021-02-15", "ACTUAL"),
                    last_update_posted_date=StudyDate("2021-05-24", "ACTUAL"))  # fmt: skip
    kinds = {e["extension"][0]["valueCode"]: e["extension"][1]["valueDate"]
             for e in _extensions(resource, "ctgov-study-date")}  # fmt: skip
    assert kinds == {"first-posted": "2021-02-15", "last-update-posted": "2021-05-24"}
