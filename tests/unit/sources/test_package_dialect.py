"""A package's CSV dialect (package.yaml csv): delimiter, decimal comma, date formats, header case, renamed and
ignored columns; censored values; and the strict default with its semicolon hint."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapter.errors import InputError
from adapter.package import map_package
from tests.unit.sources.trialpackage import DESCRIPTOR, write_package

EUROPEAN = DESCRIPTOR + """csv:
  delimiter: ";"
  decimal: ","
  date_format: "%d/%m/%Y"
  datetime_format: "%d/%m/%Y %H:%M"
  header_case: any
  rename: {Patient: subject_id, Analyte: test_code, Result: value, Units: unit, Sampled: collected_at}
  ignore: [Comment]
"""
SUBJECTS = """Subject_ID;Site_ID;Sex;Birth_Year;Arm_Assigned;Arm_Actual;Consent_Date;Status;Start_Date;End_Date
S1;J;M;1970;Control;Control;01/07/2020;completed;01/07/2020;29/07/2020
"""
ADMINISTRATIONS = "subject_id;product_code;start;status\n"
HEADER = "Patient;Visit;Analyte;Result;Units;Sampled;Ref_Low;Ref_High;Flag;Comment\n"


def european(folder: Path, measurements: str) -> Path:
    return write_package(folder, descriptor=EUROPEAN, subjects=SUBJECTS, administrations=ADMINISTRATIONS,
                         measurements=measurements)


def mapped(folder: Path) -> tuple[list[dict[str, Any]], Any]:
    mapping = map_package(folder)
    resources = list(mapping)
    assert mapping.report.reconciles()
    return resources, mapping.report


def observations(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == "Observation"]


def test_a_european_export_maps_as_declared(tmp_path: Path) -> None:
    rows = HEADER + "S1;SCR;CHOL;200;mg/dL;02/07/2020 08:30;0;5,2;H;fasting\nS1;D7;GLUC;6,1;mmol/L;09/07/2020;;;;\n"
    resources, report = mapped(european(tmp_path, rows))
    assert report.rejects == []
    subject = next(r for r in resources if r["resourceType"] == "ResearchSubject")
    assert subject["period"]["start"] == "2020-07-01"
    chol, gluc = observations(resources)
    assert chol["effectiveDateTime"] == "2020-07-02T08:30:00+07:00"
    assert chol["_effectiveDateTime"]["extension"][0]["valueCode"] == "minute", "the format has no seconds"
    assert chol["valueQuantity"]["value"] == Decimal("5.17") and chol["valueQuantity"]["code"] == "mmol/L"
    assert gluc["effectiveDateTime"] == "2020-07-09"  # a date alone keeps its precision
    assert str(gluc["valueQuantity"]["value"]) == "6.1"


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("S1;SCR;GLUC;6.1;mmol/L;02/07/2020;;;;", "value", "declares a decimal comma"),
        ("S1;SCR;GLUC;6,1;mmol/L;2020-07-02;;;;", "collected_at", "does not have the form %d/%m/%Y %H:%M"),
    ],
)
def test_cells_that_do_not_fit_the_dialect_are_rejected_without_their_value(
    tmp_path: Path, row: str, column: str, reason: str
) -> None:
    _, report = mapped(european(tmp_path, HEADER + row))
    [reject] = report.rejects
    assert (reject.line, reject.column) == (2, column) and reason in reject.reason
    assert "6.1" not in reject.reason and "2020-07-02" not in reject.reason


@pytest.mark.parametrize(("cell", "comparator", "value"), [("<0,3", "<", "0.3"), (">1000", ">", "1000"),
                                                           ("<= 5", "<=", "5"), (">=2,5", ">=", "2.5")])
def test_censored_values_become_a_comparator(tmp_path: Path, cell: str, comparator: str, value: str) -> None:
    rows = HEADER + f"S1;SCR;CRP;{cell};mg/L;02/07/2020 08:30;;;;\n"
    resources, report = mapped(european(tmp_path, rows))
    assert report.rejects == []
    [obs] = observations(resources)
    assert obs["valueQuantity"]["comparator"] == comparator and str(obs["valueQuantity"]["value"]) == value


def test_a_censored_value_is_converted_with_its_comparator(tmp_path: Path) -> None:
    rows = HEADER + "S1;SCR;CRP;<0,03;mg/dL;02/07/2020 08:30;;;;\n"
    resources, _ = mapped(european(tmp_path, rows))
    [obs] = observations(resources)
    assert (obs["valueQuantity"]["comparator"], str(obs["valueQuantity"]["value"])) == ("<", "0.3")


def test_without_a_declaration_a_semicolon_file_gets_a_hint_naming_the_setting(tmp_path: Path) -> None:
    folder = write_package(tmp_path, measurements="subject_id;visit;test_code;value;unit;collected_at\n")
    with pytest.raises(InputError, match=re.escape("declare it in package.yaml (csv: {delimiter: ';'}")):
        list(map_package(folder))


def test_without_a_declaration_the_strict_rules_hold(tmp_path: Path) -> None:
    rows = "subject_id,visit,test_code,value,unit,collected_at\nS1,SCR,GLUC,\"6,1\",mmol/L,01/07/2020\n"
    _, report = mapped(write_package(tmp_path, measurements=rows))
    assert [r.column for r in report.rejects] == ["collected_at"]  # the ISO form is required, and then the number
