"""define.xml: valid Define-XML 2.1 (odmlib's bundled schema), with datasets, code lists, value level, methods."""

from __future__ import annotations

from pathlib import Path

import pytest
from defusedxml import ElementTree as ET
from odmlib.odm_parser import ODMSchemaValidator

from adapter.export.sdtm.define import origin

NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1"}


@pytest.fixture(scope="module")
def validator() -> ODMSchemaValidator:
    return ODMSchemaValidator(standard="define", version="2.1")


def test_define_xml_is_valid_define_xml_2_1(seed_sdtm: Path, validator: ODMSchemaValidator) -> None:
    validator.validate_file(str(seed_sdtm / "define.xml"))  # raises on the first schema error


def test_a_broken_define_xml_fails_the_schema(seed_sdtm: Path, tmp_path: Path, validator: ODMSchemaValidator) -> None:
    broken = tmp_path / "define.xml"
    broken.write_text((seed_sdtm / "define.xml").read_text(encoding="utf-8").replace("def:Structure=", "def:Shape="),
                      encoding="utf-8")
    assert not validator.validate_tree(str(broken))


def test_define_describes_every_dataset_written_with_its_variables(seed_sdtm: Path) -> None:
    root = ET.parse(seed_sdtm / "define.xml").getroot()
    groups = {g.get("Name"): g for g in root.iter(f"{{{NS['odm']}}}ItemGroupDef")}
    assert set(groups) == {p.stem.upper() for p in seed_sdtm.glob("*.xpt")}
    leaf = groups["LB"].find("def:leaf", NS)
    assert leaf is not None and leaf.get("{http://www.w3.org/1999/xlink}href") == "lb.xpt"
    items = {i.get("OID"): i for i in root.iter(f"{{{NS['odm']}}}ItemDef")}
    with (seed_sdtm / "lb.csv").open(encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    assert [r.get("ItemOID") for r in groups["LB"].findall("odm:ItemRef", NS)] == [f"IT.LB.{v}" for v in header]
    age = items["IT.DM.AGE"]
    origin_element = age.find("def:Origin", NS)
    assert origin_element is not None and origin_element.get("Type") == "Derived"
    methods = {m.get("OID") for m in root.iter(f"{{{NS['odm']}}}MethodDef")}
    assert {"MT.AGE", "MT.DY", "MT.LOBXFL"} <= methods


def test_value_level_metadata_has_one_entry_per_lab_and_vital_test(seed_sdtm: Path) -> None:
    root = ET.parse(seed_sdtm / "define.xml").getroot()
    lists = {v.get("OID"): v for v in root.iter(f"{{{NS['def']}}}ValueListDef")}
    with (seed_sdtm / "lb.csv").open(encoding="utf-8") as handle:
        tests = {line.split(",")[4] for line in list(handle)[1:]}
    assert len(lists["VL.LB.LBORRES"].findall("odm:ItemRef", NS)) == len(tests) > 5
    assert "VL.VS.VSORRES" in lists
    clauses = {w.get("OID") for w in root.iter(f"{{{NS['def']}}}WhereClauseDef")}
    assert "WC.LB.LBTESTCD.CRP" in clauses
    items = {i.get("OID"): i for i in root.iter(f"{{{NS['odm']}}}ItemDef")}
    phase = items["IT.TS.TSVAL.TPHASE"].find("odm:CodeListRef", NS)
    assert phase is not None and phase.get("CodeListOID") == "CL.C66737", "TSVAL of TPHASE takes its response codelist"


def test_code_lists_carry_nci_codes_and_mark_extended_values(seed_sdtm: Path) -> None:
    root = ET.parse(seed_sdtm / "define.xml").getroot()
    lists = {c.get("OID"): c for c in root.iter(f"{{{NS['odm']}}}CodeList")}
    sex = lists["CL.C66731"]
    assert any(a.get("Name") == "C66731" for a in sex.findall("odm:Alias", NS))
    lab = {i.get("CodedValue"): i for i in lists["CL.C65047"].findall("odm:EnumeratedItem", NS)}
    assert lab["INTLK6"].get(f"{{{NS['def']}}}ExtendedValue") is None
    assert [a.get("Name") for a in lab["INTLK6"].findall("odm:Alias", NS)] == ["C74834"]
    specimen = {i.get("CodedValue"): i for i in lists["CL.C78734"].findall("odm:EnumeratedItem", NS)}
    assert specimen["RESPIRATORY SPECIMEN"].get(f"{{{NS['def']}}}ExtendedValue") == "Yes"
    assert specimen["RESPIRATORY SPECIMEN"].findall("odm:Alias", NS) == [], "a sponsor term has no NCI code"
    ct = next(s for s in root.iter(f"{{{NS['def']}}}Standard") if s.get("Type") == "CT")
    assert (ct.get("Name"), ct.get("Version"), ct.get("Status")) == ("CDISC/NCI", "2025-03-28", "Final")


def test_origins() -> None:
    assert origin("LB", "LBORRES") == ("Collected", "Investigator", None)
    assert origin("LB", "LBDY") == ("Derived", "Sponsor", "DY")
    assert origin("LB", "LBTESTCD") == ("Assigned", "Sponsor", None)
    assert origin("TS", "TSVAL") == ("Protocol", "Sponsor", None)
