"""The measurement, product, route and unit tables: strict loading and checked contents."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from adapter.errors import ConfigError
from adapter.paths import mappings_dir
from adapter.sources.codetables import KINDS, load_code_tables, loinc_check_digit_ok

PREFIXES = {"p": Decimal("1e-12"), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
            "d": Decimal("1e-1"), "k": Decimal("1e3"), "": Decimal(1)}
# UCUM base units used by the table, in SI terms: (magnitude, dimension).
BASES = {"g": (Decimal(1), "mass"), "L": (Decimal(1), "volume"), "Pa": (Decimal(1), "pressure"),
         "m[Hg]": (Decimal("133.3220") * 1000, "pressure")}


def magnitude(unit: str) -> tuple[Decimal, str]:
    """An independent reading of the table's UCUM codes: value in SI terms and dimension."""
    unit = re.sub(r"\{[^}]*\}", "", unit)
    numerator, _, denominator = unit.partition("/")

    def term(text: str) -> tuple[Decimal, str]:
        if text == "":
            return Decimal(1), ""
        if match := re.fullmatch(r"10\*(\d+)", text):
            return Decimal(10) ** int(match.group(1)), ""
        for base, (size, dimension) in BASES.items():
            prefix = text[: len(text) - len(base)]
            if text.endswith(base) and prefix in PREFIXES:
                return PREFIXES[prefix] * size, dimension
        raise AssertionError(f"unit term {text!r} not understood")

    top, bottom = term(numerator), term(denominator)
    return top[0] / bottom[0], f"{top[1]}/{bottom[1]}"


def test_the_project_tables_load() -> None:
    tables = load_code_tables()
    assert {"IL6", "TNFA", "IL10", "CRP", "DDIMER", "SOFA", "ECOG", "SPO2", "PFRATIO"} <= set(tables.tests)
    assert tables.tests["IL6"].codes[0].code == "26881-3"
    assert tables.tests["PFRATIO"].codes[0].code == "50984-4"
    assert tables.products["SECRETOME"].codes[0].system == "https://trialfhir.dev/fhir/CodeSystem/trial-product"


def test_every_conversion_factor_matches_ucum_definitions() -> None:
    units = load_code_tables().units
    assert units.factors, "the table has conversions"
    for (source, target), factor in units.factors.items():
        (size_from, dim_from), (size_to, dim_to) = magnitude(source), magnitude(target)
        assert dim_from == dim_to, (source, target)
        assert abs(factor - size_from / size_to) <= Decimal("1e-9") * (size_from / size_to), (source, target)


def test_every_target_unit_of_a_quantity_test_is_a_ucum_code_the_table_knows() -> None:
    tables = load_code_tables()
    codes = set(tables.units.spellings.values())
    for test in tables.tests.values():
        assert (test.unit in codes) == (test.value_type == "quantity"), test.code


def test_codes_outside_loinc_are_in_the_project_system_or_a_real_one() -> None:
    tables = load_code_tables()
    data = yaml.safe_load((mappings_dir() / "measurements.yaml").read_text(encoding="utf-8"))
    for test in tables.tests.values():
        for code in test.codes:
            assert code.system in ("http://loinc.org", data["project_system"]), test.code
            if code.system == "http://loinc.org":
                assert loinc_check_digit_ok(code.code)


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
        ("units", '{from: "ng/L",', '{from: "ng/dL",', "uses a unit the table does not list"),
    ],
)
def test_broken_tables_are_config_errors(tmp_path: Path, kind: str, old: str, new: str, message: str) -> None:
    paths = copy_tables(tmp_path)
    text = paths[kind].read_text(encoding="utf-8")
    assert old in text
    paths[kind].write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_code_tables(paths)
