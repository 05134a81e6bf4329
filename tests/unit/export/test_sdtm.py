"""SDTM DM, LB, VS, EX: variables, codes, --SEQ, keys, ISO 8601 dates, CSV = XPT (read by a second reader)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from adapter.errors import InputError, MappingError
from adapter.export.exporter import export
from adapter.export.sdtm.build import build_sdtm
from adapter.export.sdtm.check import check
from adapter.export.sdtm.study import arm_codes
from tests.unit.export.trial import NCT, resources, write_folder


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture()
def exported(tmp_path: Path) -> Path:
    export(write_folder(tmp_path / "in"), tmp_path / "sdtm", "sdtm")
    return tmp_path / "sdtm"


def test_dm_has_one_record_per_subject_with_arms_sex_site_and_reference_dates(exported: Path) -> None:
    dm = _csv(exported / "dm.csv")
    assert [r["USUBJID"] for r in dm] == [f"{NCT}-01-001", f"{NCT}-01-002", f"{NCT}-01-003"]
    first = dm[0]
    assert (first["STUDYID"], first["DOMAIN"], first["SUBJID"], first["SITEID"]) == (NCT, "DM", "001", "01")
    assert (first["ARM"], first["ARMCD"], first["ACTARMCD"]) == ("Secretome-MSCs", "SECRETOMEMSCS", "SECRETOMEMSCS")
    assert dm[1]["ARMCD"] == "CONTROL"
    assert (first["SEX"], dm[1]["SEX"]) == ("F", "M")
    assert first["COUNTRY"] == "IDN"
    assert first["RFXSTDTC"] == first["RFSTDTC"] == "2020-06-11T09:00:00+07:00"
    assert first["RFXENDTC"] == "2020-06-11T09:05:00+07:00"
    assert first["BRTHDTC"] == "1951"


def test_lb_and_vs_split_by_test_with_cdisc_codes_and_units(exported: Path) -> None:
    lb, vs = _csv(exported / "lb.csv"), _csv(exported / "vs.csv")
    assert {r["LBTESTCD"] for r in lb} == {"INTLK6"} and len(lb) == 6
    assert {r["VSTESTCD"] for r in vs} == {"HR"} and len(vs) == 6
    row = lb[0]
    # pg/mL is a synonym of the CDISC unit ng/L (same quantity, same number)
    assert (row["LBLOINC"], row["LBORRESU"], row["LBSTRESU"], row["LBNRIND"]) == ("26881-3", "ng/L", "ng/L", "HIGH")
    assert (row["LBORNRLO"], row["LBORNRHI"], row["VISIT"], row["VISITNUM"]) == ("0", "7", "Day 1", "1")
    assert float(row["LBSTRESN"]) == float(row["LBORRES"]) == 11.5
    assert vs[0]["VSORRESU"] == "beats/min", "the HR test turns /min into beats/min"


def test_ex_takes_dose_route_and_period(exported: Path) -> None:
    ex = _csv(exported / "ex.csv")
    assert len(ex) == 3
    assert (ex[0]["EXTRT"], ex[0]["EXDOSE"], ex[0]["EXDOSU"], ex[0]["EXROUTE"]) == ("SECRETOME-MSCS", "1.5", "mL",
                                                                                 "INTRAMUSCULAR")
    assert (ex[0]["EXSTDTC"], ex[0]["EXENDTC"]) == ("2020-06-11T09:00:00+07:00", "2020-06-11T09:05:00+07:00")


def test_scores_go_to_rs_and_unmapped_tests_are_counted(tmp_path: Path) -> None:
    items = resources(1)
    unmapped = dict(next(r for r in items if r.get("valueInteger") == 0))
    unmapped.update(id="unmapped", code={"coding": [{"system": "http://loinc.org", "code": "0000-0"}]})
    export(write_folder(tmp_path / "in", [*items, unmapped]), tmp_path / "sdtm", "sdtm")
    rs = _csv(tmp_path / "sdtm" / "rs.csv")
    assert [(r["RSTESTCD"], r["RSCAT"], r["RSORRES"]) for r in rs] == [("SOFATS", "SOFA", "0")]
    metadata = json.loads((tmp_path / "sdtm" / "metadata.json").read_text(encoding="utf-8"))
    assert {"reason": "Observation http://loinc.org|0000-0: no SDTM test mapped", "count": 1} in metadata["excluded"]


def test_checks_pass_and_seq_restarts_per_subject(tmp_path: Path) -> None:
    result = build_sdtm(write_folder(tmp_path / "in"))
    assert check(result.datasets) == []
    seqs = [(r["USUBJID"], r["LBSEQ"]) for r in result.datasets["LB"].rows]
    assert seqs[:3] == [(f"{NCT}-01-001", 1.0), (f"{NCT}-01-001", 2.0), (f"{NCT}-01-002", 1.0)]


def test_checks_catch_duplicates_bad_dates_and_missing_required(tmp_path: Path) -> None:
    result = build_sdtm(write_folder(tmp_path / "in"))
    lb = result.datasets["LB"].rows
    lb.append(dict(lb[0]))
    lb[1]["LBDTC"] = "11/06/2020"
    lb[2]["LBTESTCD"] = ""
    problems = "\n".join(check(result.datasets))
    assert "same key" in problems
    assert "LBSEQ 1.0 repeats" in problems
    assert "'11/06/2020' is not ISO 8601" in problems
    assert "required LBTESTCD is empty" in problems


def test_export_refuses_datasets_that_fail_the_checks(tmp_path: Path) -> None:
    items = resources(1)
    duplicate = dict(next(r for r in items if r.get("code", {}).get("coding", [{}])[0].get("code") == "8867-4"))
    duplicate["id"] = "another-id"
    with pytest.raises(MappingError, match="same key"):
        export(write_folder(tmp_path / "in", [*items, duplicate]), tmp_path / "out", "sdtm")


def test_a_folder_without_the_study_is_an_input_error(tmp_path: Path) -> None:
    items = [r for r in resources(1) if r["resourceType"] != "ResearchStudy"]
    with pytest.raises(InputError, match="exactly one ResearchStudy"):
        build_sdtm(write_folder(tmp_path / "in", items))


def _pandas_number(value: float) -> float:
    # pandas 3.1 decodes the IBM zero (eight 0x00 bytes, as the SAS spec writes it and as pyreadstat
    # reads it back) as 16**-65, the smallest IBM magnitude; every other value is exact.
    return 16.0**-65 if value == 0 else value


@pytest.mark.parametrize("name", ["dm", "lb", "vs", "ex"])
def test_xpt_read_back_by_pandas_equals_the_csv(exported: Path, name: str) -> None:
    """pyreadstat writes the .xpt; pandas' own XPORT reader (a second implementation) reads it back."""
    from_csv = _csv(exported / f"{name}.csv")
    frame = pd.read_sas(exported / f"{name}.xpt", format="xport", encoding="utf-8")
    metadata = json.loads((exported / "metadata.json").read_text(encoding="utf-8"))
    variables = next(d for d in metadata["datasets"] if d["name"] == name.upper())["variables"]
    assert list(frame.columns) == [v["name"] for v in variables] == list(from_csv[0])
    assert len(frame) == len(from_csv)
    for text_row, xpt_row in zip(from_csv, frame.to_dict("records"), strict=True):
        for variable in variables:
            value, text = xpt_row[variable["name"]], text_row[variable["name"]]
            if variable["type"] == "Num":
                assert (math.isnan(value) and text == "") or value == _pandas_number(float(text)), variable["name"]
            else:
                assert value == text, variable["name"]


def test_xpt_carries_dataset_and_variable_labels(exported: Path) -> None:
    import pyreadstat

    _, meta = pyreadstat.read_xport(str(exported / "lb.xpt"))
    assert meta.table_name == "LB"
    assert meta.file_label == "Laboratory Test Results"
    assert meta.column_names_to_labels["LBSTRESN"] == "Numeric Result/Finding in Standard Units"


def test_arm_codes_are_unique_and_short() -> None:
    codes = arm_codes(["Arm A: high dose (2 mg)", "ARM A high dose 2mg", "x" * 40])
    assert len(set(codes.values())) == 3
    assert all(len(code) <= 20 for code in codes.values())
