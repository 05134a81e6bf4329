"""What push reads: a folder of mapped NDJSON gives its study and its resources, referenced ones first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter.errors import InputError
from adapter.sync.inputs import open_input


def _write(folder: Path, name: str, *resources: dict[str, object]) -> None:
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in resources), encoding="utf-8")


def test_ndjson_folder_names_its_study_and_orders_types(tmp_path: Path) -> None:
    study = {"resourceType": "ResearchStudy", "id": "s", "status": "active",
             "identifier": [{"system": "https://clinicaltrials.gov", "value": "NCT00000001"}]}  # fmt: skip
    _write(tmp_path, "Observation.ndjson", {"resourceType": "Observation", "id": "o"})
    _write(tmp_path, "ResearchStudy.ndjson", study)
    _write(tmp_path, "Patient.ndjson", {"resourceType": "Patient", "id": "p"})
    source = open_input(tmp_path)
    assert (source.study, source.kind) == ("NCT00000001", "mapped NDJSON")
    assert [r["resourceType"] for r in source.resources] == ["ResearchStudy", "Patient", "Observation"]


def test_ndjson_folder_without_a_study_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "Patient.ndjson", {"resourceType": "Patient", "id": "p"})
    with pytest.raises(InputError, match="needs a ResearchStudy"):
        open_input(tmp_path)


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    study = {"resourceType": "ResearchStudy", "identifier": [{"system": "https://clinicaltrials.gov", "value": "N"}]}
    _write(tmp_path, "ResearchStudy.ndjson", study)
    (tmp_path / "Patient.ndjson").write_text('{"resourceType": "Patient"}\n{oops\n', encoding="utf-8")
    source = open_input(tmp_path)
    with pytest.raises(InputError, match=r"Patient\.ndjson:2: not JSON"):
        list(source.resources)


def test_a_folder_of_no_known_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an input\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a trial package"):
        open_input(tmp_path)
    with pytest.raises(InputError, match="no such file or folder"):
        open_input(tmp_path / "missing")


def test_a_package_counts_its_rejects_by_cause_and_the_push_table_lists_them(tmp_path: Path) -> None:
    from adapter.sync.report import PushReport, format_report
    from tests.unit.sources.trialpackage import measurements, write_package

    package = write_package(tmp_path, measurements=measurements(
        "S1,SCR,IL6,lots,pg/mL,2020-07-01T08:30,,,", "S1,D7,IL6,1.5,furlong,2020-07-08T08:30,,,"))
    source = open_input(package)
    resources = list(source.resources)
    assert sum(r["resourceType"] == "Observation" for r in resources) == 0
    assert source.rejected() == 2
    assert source.causes == {"measurements.csv: value: not a number": 1, "measurements.csv: unit: unknown unit": 1}
    report = PushReport("http://fhir.test", source.study, source_rejects=source.rejected(),
                        source_reject_causes=source.causes)
    table = format_report(report)
    assert "rejected source rows (not pushed): 2" in table
    assert "1  measurements.csv: unit: unknown unit" in table and "furlong" not in table
    assert report.to_json()["sourceRejectsByCause"] == source.causes
