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
