"""The enrollment Group: eligibility and enrollment count."""

from __future__ import annotations

import pytest

from adapter.mappers.group import age_value, enrollment_group, sex_concept
from adapter.records import Eligibility, Study
from adapter.sources.ctgov_tables import default_tables

TABLES = default_tables()


def test_group_carries_criteria_count_and_characteristics() -> None:
    study = Study(
        nct_id="NCT00000001",
        source_format="ctgov-v2-json",
        enrollment_count=31,
        enrollment_type="ACTUAL",
        eligibility=Eligibility(
            criteria="Inclusion Criteria:\n\n* Adults",
            sex="FEMALE",
            minimum_age="18 Years",
            maximum_age="80 Years",
            healthy_volunteers=False,
        ),
    )
    group = enrollment_group(study, TABLES)
    assert (group["type"], group["actual"], group["quantity"]) == ("person", False, 31)
    assert group["extension"][0]["valueMarkdown"] == "Inclusion Criteria:\n\n* Adults"
    assert group["extension"][1]["valueCodeableConcept"]["coding"][0]["code"] == "ACTUAL"
    sex, age, healthy = group["characteristic"]
    assert sex["valueCodeableConcept"]["coding"][0] == {
        "system": "http://hl7.org/fhir/administrative-gender",
        "code": "female",
        "display": "Female",
    }
    assert age["valueRange"]["low"] == {
        "value": 18,
        "unit": "years",
        "system": "http://unitsofmeasure.org",
        "code": "a",
    }
    assert age["valueRange"]["high"]["value"] == 80
    assert healthy == {"code": healthy["code"], "valueBoolean": False, "exclude": False}


@pytest.mark.parametrize(
    ("minimum", "maximum", "value"),
    [
        (
            "18 Years",
            None,
            {"valueRange": {"low": {"value": 18, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"}}},
        ),
        (
            None,
            "1 Month",
            {
                "valueRange": {
                    "high": {"value": 1, "unit": "months", "system": "http://unitsofmeasure.org", "code": "mo"}
                }
            },
        ),
        (
            "6 Weeks",
            "12 Hours",
            {
                "valueRange": {
                    "low": {
                        "extension": [{"url": "https://trialfhir.dev/fhir/StructureDefinition/ctgov-age-as-given",
                                       "valueString": "6 Weeks"}],
                        "value": 1008, "unit": "hours", "system": "http://unitsofmeasure.org", "code": "h",
                    },
                    "high": {"value": 12, "unit": "hours", "system": "http://unitsofmeasure.org", "code": "h"},
                }
            },
        ),
        ("18 Fortnights", None, {"valueCodeableConcept": {"text": "minimum 18 Fortnights"}}),
    ],
)
def test_age_limits(minimum: str | None, maximum: str | None, value: dict[str, object]) -> None:
    assert age_value(minimum, maximum, TABLES) == value


def test_all_sexes_has_no_administrative_gender() -> None:
    assert [c["system"] for c in sex_concept("ALL", TABLES)["coding"]] == [
        "https://trialfhir.dev/fhir/CodeSystem/ctgov-sex"
    ]
    assert sex_concept("INTERSEX", TABLES) == {"text": "INTERSEX"}


def _range(minimum: str | None, maximum: str | None) -> tuple[tuple[object, str], tuple[object, str]]:
    value = age_value(minimum, maximum, TABLES)["valueRange"]
    return (value["low"]["value"], value["low"]["code"]), (value["high"]["value"], value["high"]["code"])


def test_an_age_range_is_written_in_one_unit() -> None:
    # rng-2 compares low and high: the coarser end moves to the finer unit when it is whole there, else to days.
    assert _range("3 Months", "17 Years") == ((3, "mo"), (204, "mo"))
    assert _range("28 Days", "17 Years") == ((28, "d"), (6209.25, "d"))
    assert _range("5 Weeks", "3 Years") == ((35, "d"), (1095.75, "d"))
    assert _range("1 Hour", "2 Days") == ((1, "h"), (48, "h"))
    assert _range("18 Years", "80 Years") == ((18, "a"), (80, "a"))


def test_a_converted_age_keeps_what_the_registry_wrote() -> None:
    value = age_value("3 Months", "17 Years", TABLES)["valueRange"]
    assert "extension" not in value["low"]
    assert value["high"]["extension"] == [
        {"url": "https://trialfhir.dev/fhir/StructureDefinition/ctgov-age-as-given", "valueString": "17 Years"}
    ]


def test_age_groups_are_one_extension_each() -> None:
    study = Study(nct_id="NCT00000001", source_format="ctgov-v2-json",
                  eligibility=Eligibility(minimum_age="3 Months", std_ages=("CHILD", "ADULT")))  # fmt: skip
    groups = [e["valueCodeableConcept"]["coding"][0]["code"] for e in enrollment_group(study, TABLES)["extension"]
              if e["url"].endswith("/ctgov-standard-age")]  # fmt: skip
    assert groups == ["CHILD", "ADULT"]
