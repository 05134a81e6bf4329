"""A wheel install (not the checkout) finds its mapping files from any folder."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_installed_wheel_finds_mappings_from_any_folder(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, REPO],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("trialfhir-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", venv], check=True)  # type: ignore[attr-defined]
    python = venv / "bin" / "python"
    site = Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip())
    # Dependencies come from the project's venv; the package itself only from the wheel.
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel],
        check=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = "import adapter, adapter.paths as p; print(adapter.__file__); print(p.mappings_dir())"
    result = subprocess.run([python, "-c", probe], cwd=elsewhere, capture_output=True, text=True, check=True)
    package_file, found = result.stdout.splitlines()
    assert Path(package_file).is_relative_to(venv), "the wheel's package, not the checkout, must be imported"
    assert Path(found) == venv / "share" / "trialfhir" / "mappings"
    shipped = files_under(Path(found))
    assert shipped == files_under(REPO / "mappings"), "every mapping file, views and CDISC CT included"
    assert shipped, "the mapping files must travel with the wheel"
