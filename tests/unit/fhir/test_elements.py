"""The element readers the exports and the pull use."""

from __future__ import annotations

from adapter.fhir import elements
from adapter.fhir.constants import NCT_SYSTEM, NCT_SYSTEMS, RESEARCH_STUDY_EXTENSION


def test_study_id_reads_the_workflow_extension() -> None:
    linked = {"extension": [{"url": RESEARCH_STUDY_EXTENSION, "valueReference": {"reference": "ResearchStudy/s1"}}]}
    assert elements.study_id(linked) == "s1"
    unlinked = {"extension": [{"url": "other", "valueReference": {"reference": "ResearchStudy/s1"}}]}
    assert elements.study_id(unlinked) is None


def test_identifier_coding_and_effective_readers() -> None:
    study = {"identifier": [{"system": "x", "value": "1"}, {"system": NCT_SYSTEM, "value": "NCT00000001"}]}
    assert elements.identifier_value(study, NCT_SYSTEM) == "NCT00000001"
    assert elements.identifier_value(study) == "1"
    concept = {"coding": [{"system": "a", "code": "1", "display": "One"}, {"system": "b", "code": "2"}]}
    assert elements.first_coding(concept, "b") == {"system": "b", "code": "2"}
    assert elements.concept_text(concept) == "One"
    assert elements.effective({"effectivePeriod": {"start": "2021"}}) == ("2021", None)
    assert elements.effective({"effectiveDateTime": "2021-02"}) == ("2021-02", None)


def test_number_text() -> None:
    assert [elements.number_text(v) for v in (12.0, 12.5, 3, True, None)] == ["12", "12.5", "3", "", ""]


def test_nct_id_reads_every_clinicaltrials_gov_spelling_official_first() -> None:
    for system in NCT_SYSTEMS:
        assert elements.nct_id({"identifier": [{"system": system, "value": "NCT00000001"}]}) == "NCT00000001"
    study = {"identifier": [{"system": "https://clinicaltrials.gov/", "value": "NCT00000002", "use": "old"},
                            {"system": NCT_SYSTEM, "value": "NCT00000001", "use": "official"}]}  # fmt: skip
    assert elements.nct_id(study) == "NCT00000001"
    assert elements.nct_id({"identifier": [{"system": "https://example.org", "value": "NCT00000001"}]}) is None
    assert NCT_SYSTEM == "http://clinicaltrials.gov"


def test_nct_search_ors_every_spelling() -> None:
    assert elements.nct_search("NCT00000001").split(",") == [f"{s}|NCT00000001" for s in NCT_SYSTEMS]
