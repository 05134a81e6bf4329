"""``trialfhir map package``: files written, report printed, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapter.cli import main
from tests.conftest import REPO
from tests.unit.sources.trialpackage import measurements, write_package

SEED = REPO / "fixtures" / "NCT04753476"


def test_the_seed_package_maps_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map", "package", str(SEED), "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "measurements.csv: read 4640, mapped 4640, rejected 0" in out
    names = {p.name for p in tmp_path.iterdir()}
    # The study's own resources too (its record is in the package), so 'push' of this folder has its ResearchStudy.
    assert {"ResearchStudy.ndjson", "Organization.ndjson", "Location.ndjson", "Patient.ndjson",
            "ResearchSubject.ndjson", "Observation.ndjson", "MedicationAdministration.ndjson",
            "rejects.ndjson", "report.json"} <= names
    assert not [name for name in names if name.startswith(".")]  # no temporary folder left behind
    assert json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))["reconciles"] is True


def test_rejected_rows_go_to_the_rejects_file_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = write_package(tmp_path / "p", measurements=measurements(
        "S1,SCR,IL6,12.5,pg/mL,2020-07-01T08:30,,,", "S1,D7,IL6,lots,pg/mL,2020-07-08T08:30,,,"))
    out = tmp_path / "out"
    assert main(["map", "package", str(package), "-o", str(out)]) == 1
    assert "1 row(s) rejected" in capsys.readouterr().err
    [reject] = [json.loads(line) for line in (out / "rejects.ndjson").read_text(encoding="utf-8").splitlines()]
    assert reject == {"file": "measurements.csv", "line": 3, "column": "value", "kind": "not a number",
                      "reason": "'lots' is not a number (use digits and a decimal point, e.g. 12.5)"}
    assert len((out / "Observation.ndjson").read_text(encoding="utf-8").splitlines()) == 1


def test_strict_stops_with_the_place_of_the_first_bad_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = write_package(tmp_path / "p", measurements=measurements("S1,SCR,IL6,12.5,furlong,2020-07-01T08:30,,,"))
    assert main(["map", "package", str(package), "-o", str(tmp_path / "out"), "--strict"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trialfhir: error: measurements.csv:2: unit: unknown unit 'furlong'")
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_failed_run_leaves_the_previous_output_as_it_was(tmp_path: Path) -> None:
    package = write_package(tmp_path / "p", measurements=measurements("S1,SCR,IL6,12.5,pg/mL,2020-07-01T08:30,,,"))
    out = tmp_path / "out"
    assert main(["map", "package", str(package), "-o", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (package / "measurements.csv").write_text(measurements("S1,SCR,IL6,12.5,furlong,2020-07-01T08:30,,,"))
    assert main(["map", "package", str(package), "-o", str(out), "--strict"]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "p"]  # the temporary folder is gone


def test_a_folder_without_package_yaml_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map", "package", str(tmp_path), "-o", str(tmp_path / "out")]) == 2
    assert "missing; a trial package folder needs a package.yaml" in capsys.readouterr().err


def test_the_run_ends_with_rejects_counted_by_cause_without_their_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = write_package(tmp_path / "p", measurements=measurements(
        "S1,SCR,IL6,lots,pg/mL,2020-07-01T08:30,,,", "S1,D7,IL6,many,pg/mL,2020-07-08T08:30,,,",
        "S1,D7,IL6,1.5,furlong,2020-07-08T09:30,,,", "S1,D7,ZZTOP,1,pg/mL,2020-07-08T08:30,,,"))
    out = tmp_path / "out"
    assert main(["map", "package", str(package), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    summary = err[err.index("by cause:"):].splitlines()[1:]
    assert [line.split() for line in summary] == [
        ["2", "measurements.csv:", "value:", "not", "a", "number"],
        ["1", "measurements.csv:", "test_code:", "unknown", "test", "code"],
        ["1", "measurements.csv:", "unit:", "unknown", "unit"],
    ]
    assert not any(value in err for value in ("lots", "many", "furlong", "ZZTOP"))
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["rejected_by_cause"] == {"measurements.csv: test_code: unknown test code": 1,
                                           "measurements.csv: unit: unknown unit": 1,
                                           "measurements.csv: value: not a number": 2}
