"""ADAPTER_PROJECT_BASE: with another base, no output names trialfhir.dev, and the base is all that changes.

The base is read once when the package loads, so the runs with another base are separate
processes of the installed CLI, as a user would start them. The default output is held by
the golden files (tests/unit/test_studybundle.py, tests/unit/test_package.py): here the
other base's output, with the base swapped back, must equal those same golden bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapter.cli import main
from adapter.fhir.constants import DEFAULT_PROJECT_BASE, PROJECT_BASE_ENV
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

TRIALFHIR = Path(sys.executable).parent / "trialfhir"
SEED = REPO / "fixtures" / "NCT04753476"
GOLDEN_PACKAGE = REPO / "tests" / "golden" / "package-NCT04753476" / "digests.json"
OTHER_BASE = "https://fhir.example.org/trial/"
DEFAULT_HOST = "trialfhir.dev"


def run_with_other_base(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, PROJECT_BASE_ENV: OTHER_BASE}
    return subprocess.run([TRIALFHIR, *args], env=env, capture_output=True, check=True, timeout=300)


def back_to_default(data: bytes) -> bytes:
    return data.replace(OTHER_BASE.encode(), DEFAULT_PROJECT_BASE.encode())


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("other-base")
    run_with_other_base("map", "package", str(SEED), "-o", str(out / "mapped"))
    (out / "study.bundle.json").write_bytes(run_with_other_base("map", "study", str(SEED / "study.json")).stdout)
    run_with_other_base("export", str(out / "mapped"), "--format", "sdtm", "-o", str(out / "sdtm"))
    return out


def test_no_output_names_the_default_host(other: Path) -> None:
    files = [path for path in other.rglob("*") if path.is_file()]
    assert len(files) > 20
    assert [path.name for path in files if DEFAULT_HOST.encode() in path.read_bytes()] == []
    bundle = (other / "study.bundle.json").read_text(encoding="utf-8")
    assert f"{OTHER_BASE}CodeSystem/ctgov-masking" in bundle
    assert f"{OTHER_BASE}StructureDefinition/" in bundle
    patients = (other / "mapped" / "Patient.ndjson").read_text(encoding="utf-8")
    assert f'"system":"{OTHER_BASE}sid/trial-subject"' in patients


def test_the_base_is_all_that_changes(other: Path) -> None:
    study = back_to_default((other / "study.bundle.json").read_bytes())
    assert study == (SEED / "study.bundle.json").read_bytes()
    golden = json.loads(GOLDEN_PACKAGE.read_text(encoding="utf-8"))
    digests = {name: hashlib.sha256(back_to_default((other / "mapped" / name).read_bytes())).hexdigest()
               for name in golden}
    assert digests == golden


def test_sdtm_reads_the_base_it_was_written_with(other: Path, tmp_path: Path) -> None:
    # Tests without a LOINC code (oxygen support, chest X-ray) are found by their project code:
    # the SDTM export of the other base's resources equals the default one, dataset by dataset.
    assert main(["map", "package", str(SEED), "-o", str(tmp_path / "mapped")]) == 0
    assert main(["export", str(tmp_path / "mapped"), "--format", "sdtm", "-o", str(tmp_path / "sdtm")]) == 0
    written = sorted(path.name for path in (tmp_path / "sdtm").glob("*.csv"))
    assert {"pr.csv", "re.csv", "lb.csv"} <= set(written)
    for name in written:
        assert (other / "sdtm" / name).read_bytes() == (tmp_path / "sdtm" / name).read_bytes(), name


def test_a_base_that_is_no_base_url_is_a_one_line_error(tmp_path: Path) -> None:
    env = {**os.environ, PROJECT_BASE_ENV: "https://fhir.example.org/trial"}  # no final "/"
    result = subprocess.run([TRIALFHIR, "map", "study", str(SEED / "study.json")], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"trialfhir: error: {PROJECT_BASE_ENV}='https://fhir.example.org/trial' is not a base URL: give an absolute "
        f"http(s) URL with a host that ends in '/' and has no query or fragment, such as {DEFAULT_PROJECT_BASE}"
    ]
