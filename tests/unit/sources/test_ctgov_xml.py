"""Reading legacy ClinicalTrials.gov XML into the same Study records as API v2."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from adapter.errors import InputError
from adapter.sources.ctgov import parse_studies, read_study
from adapter.sources.ctgov_common import standard_ages
from tests.conftest import REPO, SHARED_SAMPLES

SEED = REPO / "fixtures" / "NCT04753476"


def _xml(body: str) -> bytes:
    return f"<clinical_study><id_info><nct_id>NCT00000001</nct_id></id_info>{body}</clinical_study>".encode()


def test_unknown_status_with_last_known_status() -> None:
    study = read_study(SHARED_SAMPLES / "xml" / "NCT02591940.xml")
    assert (study.overall_status, study.last_known_status) == ("UNKNOWN", "ENROLLING_BY_INVITATION")
    assert study.study_type == "OBSERVATIONAL"
    assert study.start_date is not None and (study.start_date.date, study.start_date.type) == ("2013-11", None)
    assert study.completion_date is not None and study.completion_date.type == "ESTIMATED"
    assert study.eligibility is not None and study.eligibility.minimum_age is None  # N/A means no limit


def test_design_text_becomes_v2_codes() -> None:
    study = read_study(SHARED_SAMPLES / "xml" / "NCT04349592.xml")
    assert study.phases == ("NA",)
    assert (study.allocation, study.intervention_model, study.masking) == ("RANDOMIZED", "PARALLEL", "QUADRUPLE")
    assert study.who_masked == ("PARTICIPANT", "CARE_PROVIDER", "INVESTIGATOR", "OUTCOMES_ASSESSOR")
    assert study.start_date == study.start_date.__class__("2020-04-14", "ACTUAL")  # type: ignore[union-attr]
    assert study.arms[2].interventions == ("Placebo Tablet", "Placebo capsules")


def test_text_blocks_lose_their_xml_indentation() -> None:
    study = read_study(SHARED_SAMPLES / "xml" / "NCT02591940.xml")
    assert study.brief_summary is not None and study.brief_summary.startswith("CARDIOPROOF is a proof-of-concept")
    assert study.eligibility is not None and study.eligibility.criteria is not None
    assert study.eligibility.criteria.startswith("Inclusion Criteria:\n\n  -  patients")


def test_withheld_minimal_record() -> None:
    study = read_study(SHARED_SAMPLES / "xml" / "NCT03182660.xml")
    assert study.overall_status == "WITHHELD" and study.study_type is None and study.arms == ()


def test_twin_reads_like_the_v2_record() -> None:
    v2, xml = read_study(SEED / "study.json"), read_study(SEED / "study.legacy.xml")
    differing = {f.name for f in dataclasses.fields(v2) if getattr(v2, f.name) != getattr(xml, f.name)}
    # What the legacy format cannot say: the format itself and the registering organization's
    # class. The standard age groups it lacks are computed from the age limits, as the registry does.
    assert differing == {"source_format", "organization"}
    assert xml.eligibility is not None and xml.eligibility.std_ages == ("CHILD", "ADULT", "OLDER_ADULT")


@pytest.mark.parametrize(
    ("minimum", "maximum", "groups"),
    [
        ("3 Months", "17 Years", ("CHILD",)),
        (None, "18 Years", ("CHILD", "ADULT")),
        ("18 Years", "64 Years", ("ADULT",)),
        ("18 Years", "65 Years", ("ADULT", "OLDER_ADULT")),
        ("216 Months", None, ("ADULT", "OLDER_ADULT")),
        ("65 Years", None, ("OLDER_ADULT",)),
        ("18 Fortnights", None, ()),
    ],
)
def test_standard_ages_follow_the_registry_groups(
    minimum: str | None, maximum: str | None, groups: tuple[str, ...]
) -> None:
    assert standard_ages(minimum, maximum) == groups


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (b"<clinical_study/>", "clinical_study/id_info/nct_id", "missing NCT id"),
        (_xml("<enrollment>4x</enrollment>"), "clinical_study/enrollment", "not a whole number"),
        (_xml("<start_date>Juin 2020</start_date>"), "clinical_study/start_date", "is not a date"),
        (_xml("<arm_group><description>x</description></arm_group>"), "clinical_study/arm_group[1]", "missing"),
    ],
)
def test_wrong_values_name_the_path(data: bytes, field: str, reason: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_studies(data, "in.xml")
    assert caught.value.field == field and reason in caught.value.reason


def test_malformed_xml_names_the_line() -> None:
    with pytest.raises(InputError) as caught:
        parse_studies(b"<clinical_study>\n<id_info>\n</clinical_study>", "bad.xml")
    assert caught.value.line == 3 and "malformed XML" in caught.value.reason


def test_entity_expansion_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
        b"<clinical_study>&b;</clinical_study>"
    )
    with pytest.raises(InputError, match="refused unsafe XML"):
        parse_studies(bomb, "bomb.xml")


def test_unknown_legacy_text_is_kept_and_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        study = parse_studies(_xml("<phase>Phase 5</phase><overall_status>Paused</overall_status>"), "in.xml")[0]
    assert study.phases == ("Phase 5",) and study.overall_status == "Paused"
    messages = [r.getMessage() for r in caplog.records]
    assert "in.xml: clinical_study/overall_status: unknown Status value 'Paused', kept as text" in messages
