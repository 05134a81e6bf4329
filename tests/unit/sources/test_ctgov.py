"""Reading ClinicalTrials.gov API v2 JSON (studies and search pages) and detecting the format."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from adapter.errors import InputError
from adapter.sources.ctgov import parse_studies, read_studies, read_study
from tests.conftest import REPO, SHARED_SAMPLES

SEED = REPO / "fixtures" / "NCT04753476" / "study.json"


def _study(**design: Any) -> dict[str, Any]:
    return {"protocolSection": {"identificationModule": {"nctId": "NCT00000001"}, **design}}


def _parse(document: Any) -> list[Any]:
    return parse_studies(json.dumps(document).encode(), "in.json")


def test_seed_trial() -> None:
    study = read_study(SEED)
    assert study.nct_id == "NCT04753476"
    assert (study.overall_status, study.last_known_status) == ("UNKNOWN", "RECRUITING")
    assert study.phases == ("PHASE2",)
    assert study.arm_labels() == ("Secretome-MSCs", "Control")
    assert study.arms[0].interventions == ("Injection of Secretome-MSCs", "Standard treatment of Covid-19")
    assert study.arms[1].interventions == ("Standard treatment of Covid-19",)
    assert len(study.facilities) == 6
    assert study.enrollment_count == 48 and study.enrollment_type == "ESTIMATED"


def test_combined_phase_and_partial_dates() -> None:
    study = read_study(SHARED_SAMPLES / "v2" / "NCT00711542.json")
    assert study.phases == ("PHASE1", "PHASE2")
    assert study.start_date is not None and (study.start_date.date, study.start_date.type) == ("2008-09", None)
    assert study.why_stopped == "Slow recruitment"


def test_arm_without_type_and_last_known_status() -> None:
    study = read_study(SHARED_SAMPLES / "v2" / "NCT03475563.json")
    assert study.arms[0].type is None
    assert (study.overall_status, study.last_known_status) == ("UNKNOWN", "RECRUITING")


def test_search_page_reads_every_study(tmp_path: Path) -> None:
    studies = [
        json.loads((SHARED_SAMPLES / "v2" / name).read_text()) for name in ("NCT00711542.json", "NCT00973089.json")
    ]
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"studies": studies, "nextPageToken": "abc"}))
    assert [s.nct_id for s in read_studies(page)] == ["NCT00711542", "NCT00973089"]
    with pytest.raises(InputError, match="holds 2 studies"):
        read_study(page)


def test_fields_the_registry_adds_later_are_tolerated() -> None:
    document = _study(futureModule={"anything": [1, 2]})
    document["protocolSection"]["identificationModule"]["newField"] = True
    assert _parse(document)[0].nct_id == "NCT00000001"


@pytest.mark.parametrize(
    ("document", "field", "reason"),
    [
        (
            {"protocolSection": {"identificationModule": {}}},
            "protocolSection.identificationModule",
            "'nctId' is a required",
        ),
        (
            _study(designModule={"enrollmentInfo": {"count": "48"}}),
            "protocolSection.designModule.enrollmentInfo.count",
            "not of type 'integer'",
        ),
        (_study(designModule={"phases": "PHASE2"}), "protocolSection.designModule.phases", "not of type 'array'"),
        (
            _study(statusModule={"startDateStruct": {"date": "8 June 2020"}}),
            "protocolSection.statusModule.startDateStruct.date",
            "does not match",
        ),
        (
            {"studies": [_study(), {"protocolSection": {}}]},
            "studies[1].protocolSection",
            "'identificationModule' is a required",
        ),
        ({"studies": {}}, "studies", "expected an array"),
    ],
)
def test_wrong_shape_names_the_path(document: Any, field: str, reason: str) -> None:
    with pytest.raises(InputError) as caught:
        _parse(document)
    assert caught.value.source == "in.json" and caught.value.field == field
    assert reason in caught.value.reason


def test_malformed_json_names_the_line() -> None:
    with pytest.raises(InputError) as caught:
        parse_studies(b'{\n  "protocolSection": {,\n}', "bad.json")
    assert caught.value.line == 2 and str(caught.value).startswith("bad.json:2: malformed JSON")


@pytest.mark.parametrize(("data", "reason"), [(b"", "is empty"), (b"NCT00000001", "neither")])
def test_content_that_is_neither_json_nor_xml(data: bytes, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        parse_studies(data, "x")


def test_unknown_enum_value_is_kept_and_warned(caplog: pytest.LogCaptureFixture) -> None:
    document = _study(statusModule={"overallStatus": "PAUSED"}, designModule={"phases": ["PHASE1", "PHASE5"]})
    with caplog.at_level(logging.WARNING):
        study = _parse(document)[0]
    assert study.overall_status == "PAUSED" and study.phases == ("PHASE1", "PHASE5")
    messages = [r.getMessage() for r in caplog.records]
    assert (
        "in.json: protocolSection.statusModule.overallStatus: unknown Status value 'PAUSED', kept as text" in messages
    )
    assert any("protocolSection.designModule.phases[1]: unknown Phase value 'PHASE5'" in m for m in messages)


def test_unknown_phase_combination_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        _parse(_study(designModule={"phases": ["PHASE1", "PHASE3"]}))
    assert any("unknown combination PHASE1,PHASE3" in r.getMessage() for r in caplog.records)


def test_intervention_name_that_matches_nothing_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    arms = {"armGroups": [{"label": "A", "interventionNames": ["Drug: Ghost"]}], "interventions": []}
    with caplog.at_level(logging.WARNING):
        study = _parse(_study(armsInterventionsModule=arms))[0]
    assert study.arms[0].interventions == ("Drug: Ghost",)
    assert any("armGroups[0].interventionNames[0]" in r.getMessage() for r in caplog.records)
