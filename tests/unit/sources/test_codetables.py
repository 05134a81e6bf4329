"""The measurement, product, route and unit tables: strict loading and checked contents."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from adapter.errors import ConfigError
from adapter.fhir.constants import PROJECT_BASE
from adapter.paths import mappings_dir
from adapter.sources.codetables import KINDS, load_code_tables, loinc_check_digit_ok, snomed_check_digit_ok
from adapter.sources.loader import load_yaml


def test_the_project_tables_load() -> None:
    tables = load_code_tables()
    assert {"IL6", "TNFA", "IL10", "CRP", "DDIMER", "SOFA", "ECOG", "SPO2", "PFRATIO"} <= set(tables.tests)
    assert tables.tests["IL6"].codes[0].code == "26881-3"
    assert tables.tests["PFRATIO"].codes[0].code == "50984-4"
    assert tables.products["SECRETOME"].codes[0].system == "https://trialfhir.dev/fhir/CodeSystem/trial-product"


def test_the_table_covers_common_labs_and_vital_signs_of_any_trial() -> None:
    tests = load_code_tables().tests
    common = {"GLUC", "HBA1C", "CHOL", "HDL", "LDL", "TRIG", "CREAT", "BUN", "SODIUM", "K", "ALT", "AST", "BILI",
              "ALB", "HGB", "WBC", "PLAT", "SYSBP", "DIABP", "HR", "TEMP", "RR", "WEIGHT", "HEIGHT", "BMI", "SPO2"}
    assert common <= set(tests)
    assert tests["SYSBP"].category == tests["WEIGHT"].category == "vital-signs"


def test_conversions_belong_to_tests_and_mass_to_moles_carries_a_molar_mass() -> None:
    tests = load_code_tables().tests
    assert tests["GLUC"].molar_mass == Decimal("180.156")
    assert tests["CHOL"].molar_mass == Decimal("386.65")
    assert "mg/dL" in tests["CHOL"].convert_from
    # % and mmol/mol are two HbA1c scales, not one quantity in two units: no rule, so refused.
    assert not tests["HBA1C"].convert_from


def write_own(folder: Path, text: str) -> Path:
    path = folder / "own-measurements.yaml"
    path.write_text('name: measurements\nversion: "1"\ntests:\n' + text, encoding="utf-8")
    return path


def test_a_package_file_adds_and_replaces_tests(tmp_path: Path) -> None:
    own = write_own(tmp_path, """
  GLUC:
    display: Glucose (mass)
    category: laboratory
    codes: [{system: http://loinc.org, code: 2345-7, display: "Glucose [Mass/volume] in Serum or Plasma"}]
    value_type: quantity
    unit: mg/dL
    convert_from: ["mmol/L"]
    molar_mass: {g_per_mol: "180.156", source: "C6H12O6"}
    source: "LOINC 2345-7"
  MYSCORE:
    display: Site score
    category: survey
    codes: [{system: "urn:oid:1.2.3.4", code: site-score, display: "Site score"}]
    value_type: integer
    source: "the site's own code system"
""")
    tables = load_code_tables(own={"measurements": own})
    assert tables.tests["GLUC"].unit == "mg/dL" and tables.tests["GLUC"].codes[0].code == "2345-7"
    assert tables.tests["MYSCORE"].codes[0].system == "urn:oid:1.2.3.4"
    assert "CHOL" in tables.tests  # the project's other tests stay
    assert tables.where_to_add("measurements") == str(own)


def test_mass_to_moles_without_a_molar_mass_is_a_config_error(tmp_path: Path) -> None:
    own = write_own(tmp_path, """
  CHOL:
    display: Cholesterol
    category: laboratory
    codes: [{system: http://loinc.org, code: 14647-2, display: "Cholesterol [Moles/volume] in Serum or Plasma"}]
    value_type: quantity
    unit: mmol/L
    convert_from: ["mg/dL"]
    source: "LOINC 14647-2"
""")
    with pytest.raises(ConfigError, match=r"tests/CHOL: convert_from: mg/dL -> mmol/L: .*molar mass"):
        load_code_tables(own={"measurements": own})


def test_every_target_unit_of_a_quantity_test_is_a_ucum_code_the_table_knows() -> None:
    tables = load_code_tables()
    codes = set(tables.units.spellings.values())
    for test in tables.tests.values():
        assert (test.unit in codes) == (test.value_type == "quantity"), test.code


def test_codes_outside_loinc_are_in_the_project_system_or_a_real_one() -> None:
    tables = load_code_tables()
    data = load_yaml(mappings_dir() / "measurements.yaml")  # the project base put in, as the tables have it
    for test in tables.tests.values():
        for code in test.codes:
            assert code.system in ("http://loinc.org", "http://snomed.info/sct", data["project_system"]), test.code
            if code.system == "http://loinc.org":
                assert loinc_check_digit_ok(code.code)
            if code.system == "http://snomed.info/sct":
                assert snomed_check_digit_ok(code.code)


@pytest.mark.parametrize(("code", "ok"), [("57485005", True), ("57485006", False), ("840539006", True),
                                          ("0840539006", False), ("12345", False), ("5748500x", False)])
def test_snomed_check_digits(code: str, ok: bool) -> None:
    assert snomed_check_digit_ok(code) is ok


@pytest.mark.parametrize(("code", "ok"), [("26881-3", True), ("26881-4", False), ("2708-6", True),
                                          ("96790-1", True), ("1988-5", True), ("1988", False), ("x-1", False)])
def test_loinc_check_digits(code: str, ok: bool) -> None:
    assert loinc_check_digit_ok(code) is ok


def copy_tables(folder: Path) -> dict[str, Path]:
    paths = {}
    for kind in KINDS:
        paths[kind] = folder / f"{kind}.yaml"
        shutil.copy(mappings_dir() / f"{kind}.yaml", paths[kind])
    return paths


@pytest.mark.parametrize(
    ("kind", "old", "new", "message"),
    [
        ("measurements", "    category: laboratory\n", "    category: laboratory\n    colour: red\n",
         "Additional properties are not allowed"),
        ("measurements", "code: 26881-3,", "code: 26881-4,", "26881-4 is not a valid LOINC code"),
        ("measurements", "    unit: pg/mL\n", "    unit: pg/dL\n", "unit pg/dL is not in units.yaml"),
        ("measurements", "  IL10:\n", "  IL6:\n", "duplicate key 'IL6'"),
        ("products", "source: \"ATC H02AB02", "sauce: \"ATC H02AB02", "('sauce' was unexpected)"),
        ("routes", "  IV:\n", "  IM:\n", "duplicate key 'IM'"),
        ("units", '{code: "ng/L", aliases: ["ng/l"]}', '{code: "ng/L", aliases: ["pg/ml"]}', "names two units"),
        ("measurements", '    convert_from: ["mg/dL"]\n', '    convert_from: ["ng/dL"]\n', "unit ng/dL is not in"),
        ("measurements", '    convert_from: ["ng/L"]\n', '    convert_from: ["mg"]\n', "cannot be expressed"),
    ],
)
def test_broken_tables_are_config_errors(tmp_path: Path, kind: str, old: str, new: str, message: str) -> None:
    paths = copy_tables(tmp_path)
    text = paths[kind].read_text(encoding="utf-8")
    assert old in text
    paths[kind].write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_code_tables(paths)


@pytest.mark.parametrize("system", ["https://hospital.example.org/fhir/CodeSystem/labs", "urn:oid:2.16.840.1.1"])
def test_a_site_may_use_its_own_code_system_uri(tmp_path: Path, system: str) -> None:
    own = tmp_path / "own.yaml"
    own.write_text(f'name: measurements\nversion: "1"\nproject_system: "{system}"\ntests:\n'
                   f'  SITE1:\n    display: Site test\n    category: laboratory\n'
                   f'    codes: [{{system: "{system}", code: site-1, display: Site test}}]\n'
                   f'    value_type: string\n    source: the site\'s catalogue\n', encoding="utf-8")
    tables = load_code_tables(own={"measurements": own})
    assert tables.tests["SITE1"].codes[0].system == system
    # Known as the trial's own system (beside the project's), so collect never asks a hospital for its codes.
    assert tables.project_systems == {system, f"{PROJECT_BASE}CodeSystem/trial-measurement"}
    from adapter.collect.facts import accepting_tests

    assert not [key for key in accepting_tests(tables.tests, tables.project_systems) if key[0] == system]
