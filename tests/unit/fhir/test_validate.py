"""The R4B model check offered to mappers and tests."""

from __future__ import annotations

import pytest

from adapter.errors import MappingError
from adapter.fhir.validate import check_r4b, r4b_problems


def test_a_valid_resource_has_no_problems() -> None:
    assert r4b_problems({"resourceType": "Group", "id": "g", "type": "person", "actual": False}) == []


def test_wrong_types_and_unknown_elements_are_named() -> None:
    problems = r4b_problems({"resourceType": "ResearchStudy", "status": "active", "phase": {"text": 1}, "arms": []})
    assert problems == ["phase.text: Input should be a valid string", "arms: Extra inputs are not permitted"]


def test_unknown_resource_type() -> None:
    assert r4b_problems({"resourceType": "Trial"}) == ["resourceType: unknown resource type 'Trial'"]


def test_check_raises_a_mapping_error_naming_the_resource() -> None:
    with pytest.raises(MappingError, match=r"ResearchStudy/x: phase\.text: Input should be a valid string"):
        check_r4b({"resourceType": "ResearchStudy", "id": "x", "status": "active", "phase": {"text": 1}})
