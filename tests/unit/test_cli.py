"""The command line's entry points work from any folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adapter import __version__
from adapter.cli import main
from adapter.paths import mappings_dir

REPO = Path(__file__).resolve().parents[2]


def test_version_and_help_from_another_folder(tmp_path: Path) -> None:
    trialfhir = Path(sys.executable).parent / "trialfhir"
    version = subprocess.run([trialfhir, "--version"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"trialfhir {__version__}"
    help_text = subprocess.run([trialfhir, "--help"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "examples:" in help_text.stdout and "map" in help_text.stdout


def test_python_dash_m_adapter(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "adapter", "--version"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"trialfhir {__version__}"


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_mappings_found_from_another_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ADAPTER_MAPPINGS_DIR", raising=False)
    assert mappings_dir() == REPO / "mappings"
