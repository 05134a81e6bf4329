"""The element readers the exports and the pull use."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from adapter.fhir import elements
from adapter.fhir.constants import (
    NCT_SYSTEM,
    NCT_SYSTEMS,
    REPORTED_PRECISION_EXTENSION,
    REPORTED_VALUE_EXTENSION,
    RESEARCH_STUDY_EXTENSION,
)


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


def test_number_text_keeps_a_decimals_digits() -> None:
    assert [elements.number_text(Decimal(v)) for v in ("2.40", "38.0", "0.0000001", "1.2E+3")] == [
        "2.40", "38.0", "0.0000001", "1200"]
    assert elements.number_text(Decimal("NaN")) == ""


def _minute(value: str) -> dict[str, Any]:
    return {"value": value, "_value": {"extension": [{"url": REPORTED_PRECISION_EXTENSION, "valueCode": "minute"}]}}


def test_reported_datetime_gives_back_the_precision_the_site_reported() -> None:
    assert elements.reported_datetime(_minute("2020-06-11T09:15:00+07:00"), "value") == "2020-06-11T09:15+07:00"
    assert elements.reported_datetime(_minute("2020-06-11T09:15:00Z"), "value") == "2020-06-11T09:15Z"
    assert elements.reported_datetime(_minute("2020-06-11T09:15:00"), "value") == "2020-06-11T09:15"
    assert elements.reported_datetime({"value": "2020-06-11T09:15:30+07:00"}, "value") == "2020-06-11T09:15:30+07:00"
    assert elements.reported_datetime({"value": "2020-06-11"}, "value") == "2020-06-11"
    assert elements.reported_datetime({}, "value") is None
    administration = {"effectivePeriod": {"start": "2020-06-12T10:00:00+07:00", "_start": _minute("")["_value"]}}
    assert elements.reported_datetime(administration["effectivePeriod"], "start") == "2020-06-12T10:00+07:00"


def test_reported_quantity_is_the_extensions_else_the_standard_one() -> None:
    standard = {"value": Decimal("156.10"), "unit": "mg/L", "code": "mg/L"}
    as_written = {"value": Decimal("15.610"), "unit": "mg/dL", "code": "mg/dL"}
    converted = {"extension": [{"url": REPORTED_VALUE_EXTENSION, "valueQuantity": as_written}],
                 "valueQuantity": standard}
    assert elements.reported_quantity(converted, "valueQuantity") == as_written
    assert elements.reported_quantity({"valueQuantity": standard}, "valueQuantity") == standard
    low = {"extension": [{"url": REPORTED_VALUE_EXTENSION, "valueQuantity": as_written}], **standard}
    assert elements.reported_quantity(low) == as_written
    assert elements.reported_quantity(standard) == standard
    assert elements.reported_quantity({"valueString": "x"}, "valueQuantity") == {}
