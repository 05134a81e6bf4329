"""``--json`` on every command that reports (results and errors alike), and progress drawn only on a terminal.

Offline: the second fixture trial (NCT00711542) is mapped, exported and checked; pull and push
have their JSON tested against a server elsewhere (tests/unit/sync/test_pull_faults.py, docs/push.md).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from adapter.cli import main
from adapter.progress import terminal_progress
from tests.conftest import REPO

TRIAL = REPO / "fixtures" / "NCT00711542"


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli-json") / "mapped"
    assert main(["map", "package", str(TRIAL), "-o", str(out)]) == 0
    return out


def test_map_package_prints_its_report_as_json_and_draws_no_progress_off_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, err = run_json(["map", "package", str(TRIAL), "-o", str(tmp_path / "out"), "--json"], capsys)
    assert code == 0 and err == ""  # no bar, no carriage returns: standard error is not a terminal here
    assert report["rejected"] == 0 and report["files"]["measurements.csv"]["mapped"] > 0
    assert report["reconciles"] is True and report["rejected_by_cause"] == {}
    assert report == {**json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8")),
                      "output": str(tmp_path / "out")}


def test_map_study_json_needs_a_file_for_the_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, summary, _ = run_json(["map", "study", str(TRIAL / "study.json"), "-o", str(tmp_path / "b.json"),
                                 "--json"], capsys)
    bundle = json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))
    assert code == 0 and summary == {"studies": ["NCT00711542"], "entries": len(bundle["entry"]),
                                     "output": str(tmp_path / "b.json")}
    code, error, err = run_json(["map", "study", str(TRIAL / "study.json"), "--json"], capsys)
    assert code == 2 and error["exit"] == 2 and "add -o FILE" in error["error"] and "add -o FILE" in err


def test_export_and_check_sdtm_print_json(mapped: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "pulled"
    source.mkdir()
    for path in mapped.glob("*.ndjson"):
        if path.name != "rejects.ndjson":
            (source / path.name).write_bytes(path.read_bytes())
    code, report, err = run_json(["export", str(source), "--format", "sdtm", "-o", str(tmp_path / "sdtm"), "--json"],
                                 capsys)
    assert code == 0 and err == ""
    assert report["format"] == "sdtm" and report["files"]["lb.xpt"] > 0 and report["complete"] is True
    code, check, _ = run_json(["check-sdtm", str(tmp_path / "sdtm"), "--json"], capsys)
    assert code == (1 if check["findings"] else 0) and check["folder"] == str(tmp_path / "sdtm")
    assert set(check["rules"]) == {finding[1:finding.index("]")] for finding in check["findings"]}
    assert main(["check-sdtm", str(tmp_path / "sdtm")]) == code
    assert capsys.readouterr().out.splitlines()[: len(check["findings"])] == check["findings"]  # the same findings


def test_an_error_is_a_json_object_with_its_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, error, err = run_json(["export", str(tmp_path), "--format", "csv", "-o", str(tmp_path / "x"), "--json"],
                                capsys)
    assert code == 2
    assert error == {"error": f"{tmp_path}: holds no FHIR NDJSON files (<Type>.ndjson); nothing to export",
                     "kind": "error", "exit": 2}
    assert err == f"trialfhir: error: {error['error']}\n"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_only() -> None:
    for stream, enabled, drawn in ((Terminal(), True, True), (io.StringIO(), True, False), (Terminal(), False, False)):
        with terminal_progress(stream, "pull NCT00711542", enabled=enabled) as progress:
            progress.note("searching Observation")
            progress.advance(3)
        assert progress.shown is drawn
        assert ("pull NCT00711542" in stream.getvalue() and "searching Observation" in stream.getvalue()) is drawn
        assert (stream.getvalue() == "") is not drawn


def test_a_job_without_a_count_shows_its_note_and_no_zero_count() -> None:
    stream = Terminal()
    with terminal_progress(stream, "export sdtm", unit=None) as progress:
        progress.note("checking the datasets")
    assert "export sdtm" in stream.getvalue() and "checking the datasets" in stream.getvalue()
    assert "0it" not in stream.getvalue()
