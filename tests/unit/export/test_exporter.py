"""export refuses an incomplete pull unless told, then says so in the output; an empty folder is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter.cli import main
from adapter.errors import InputError
from adapter.export.exporter import METADATA, export
from adapter.fhir.ndjson import MANIFEST, write_manifest
from tests.unit.export.trial import resources, write_folder


def pulled(folder: Path, *, problems: list[str] | None = None, counts: dict[str, int] | None = None) -> Path:
    """A folder as pull writes it: the NDJSON files and a manifest with their counts (or the ones given)."""
    write_folder(folder)
    found: dict[str, int] = {}
    for resource in resources():
        found[resource["resourceType"]] = found.get(resource["resourceType"], 0) + 1
    write_manifest(folder, counts or found, transaction_time="2026-01-01T00:00:00Z", request="test",
                   extension={"trialfhir": {"study": "NCT04753476", "mode": "search", "problems": problems or []}})
    return folder


def test_a_complete_pull_exports_and_says_it_was_complete(tmp_path: Path) -> None:
    report = export(pulled(tmp_path / "in"), tmp_path / "out", "ndjson")
    assert report.incomplete == []
    metadata = json.loads((tmp_path / "out" / METADATA).read_text(encoding="utf-8"))
    assert metadata["complete"] is True and metadata["problems"] == []


def test_a_pull_with_problems_is_refused(tmp_path: Path) -> None:
    folder = pulled(tmp_path / "in", problems=["Observation search: the server said 2000 matches, 103 arrived"])
    with pytest.raises(InputError, match=r"the pull is incomplete.*2000 matches, 103 arrived.*--allow-incomplete"):
        export(folder, tmp_path / "out", "csv")
    assert not (tmp_path / "out").exists()


def test_counts_that_do_not_match_the_files_are_refused(tmp_path: Path) -> None:
    folder = pulled(tmp_path / "in")
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    observations = next(o for o in manifest["output"] if o["type"] == "Observation")
    observations["count"] += 5
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(InputError, match="Observation: the manifest counts"):
        export(folder, tmp_path / "out", "ndjson")


def test_allow_incomplete_exports_and_the_metadata_says_so(tmp_path: Path) -> None:
    folder = pulled(tmp_path / "in", problems=["the export reported errors in errors.ndjson"])
    report = export(folder, tmp_path / "out", "ndjson", allow_incomplete=True)
    assert report.incomplete == ["the export reported errors in errors.ndjson"]
    assert any(line.startswith("INCOMPLETE source:") for line in report.lines())
    metadata = json.loads((tmp_path / "out" / METADATA).read_text(encoding="utf-8"))
    assert metadata["complete"] is False and metadata["problems"] == report.incomplete


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    with pytest.raises(InputError, match="holds no FHIR NDJSON files"):
        export(tmp_path / "in", tmp_path / "out", "ndjson")


def test_the_cli_refuses_then_allows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = pulled(tmp_path / "in", problems=["Observation search: the server said 9 matches, 3 arrived"])
    assert main(["export", str(folder), "--format", "ndjson", "-o", str(tmp_path / "out")]) != 0
    assert "--allow-incomplete" in capsys.readouterr().err
    assert main(["export", str(folder), "--format", "ndjson", "-o", str(tmp_path / "out"), "--allow-incomplete"]) == 0
    assert "INCOMPLETE source" in capsys.readouterr().out
