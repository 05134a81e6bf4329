"""The code tables a trial package maps through: measurements, products, routes, units.

Each table is a YAML file in ``mappings/`` (or a package's own copy) checked against
its JSON Schema in ``mappings/<kind>.schema.json`` when loaded. Loading is strict:
unknown keys, duplicate keys, a unit no table lists, a conversion between unknown
units and a LOINC code whose check digit is wrong are all configuration errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from adapter.errors import ConfigError
from adapter.paths import mappings_dir
from adapter.records import Code
from adapter.sources.loader import load_checked

KINDS = ("measurements", "products", "routes", "units")
LOINC = "http://loinc.org"


@dataclass(frozen=True)
class TestDef:
    """One measurement table entry: how a source test code becomes an Observation."""

    code: str
    display: str
    category: str
    codes: tuple[Code, ...]
    value_type: str
    unit: str | None
    answers: Mapping[str, Code]


@dataclass(frozen=True)
class ProductDef:
    """One product or route table entry: the codings for a source code."""

    display: str
    codes: tuple[Code, ...]


@dataclass(frozen=True)
class Units:
    """UCUM units by every spelling the table accepts, and exact conversion factors."""

    spellings: Mapping[str, str]
    factors: Mapping[tuple[str, str], Decimal]

    def ucum(self, spelling: str) -> str | None:
        """The UCUM code written as ``spelling``, or None when no table lists it."""
        return self.spellings.get(spelling)

    def factor(self, source: str, target: str) -> Decimal | None:
        """The factor from UCUM unit ``source`` to ``target`` (1 when equal), None when none is known."""
        return Decimal(1) if source == target else self.factors.get((source, target))


@dataclass(frozen=True)
class CodeTables:
    """All four tables, as the package reader uses them."""

    tests: Mapping[str, TestDef]
    interpretations: Mapping[str, Code]
    products: Mapping[str, ProductDef]
    routes: Mapping[str, ProductDef]
    units: Units


def loinc_check_digit_ok(code: str) -> bool:
    """True when a LOINC code's last digit is the mod-10 (Luhn) check digit of the rest."""
    body, _, check = code.partition("-")
    if not (body.isdigit() and check.isdigit() and len(check) == 1):
        return False
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit // 10 + digit % 10
    return (10 - total % 10) % 10 == int(check)


def _code(entry: Mapping[str, str], where: str) -> Code:
    code = Code(entry["system"], entry["code"], entry.get("display"))
    if code.system == LOINC and not loinc_check_digit_ok(code.code):
        raise ConfigError(f"{where}: {code.code} is not a valid LOINC code (check digit)")
    return code


def _units(data: Mapping[str, Any], path: Path) -> Units:
    spellings: dict[str, str] = {}
    for unit in data["units"]:
        for spelling in (unit["code"], *unit["aliases"]):
            if spellings.setdefault(spelling, unit["code"]) != unit["code"]:
                raise ConfigError(f"{path}: '{spelling}' names two units ({spellings[spelling]}, {unit['code']})")
    codes = set(spellings.values())
    factors: dict[tuple[str, str], Decimal] = {}
    for conversion in data["conversions"]:
        pair = (conversion["from"], conversion["to"])
        if not set(pair) <= codes:
            raise ConfigError(f"{path}: conversion {pair[0]} -> {pair[1]} uses a unit the table does not list")
        if pair in factors:
            raise ConfigError(f"{path}: conversion {pair[0]} -> {pair[1]} is listed twice")
        factors[pair] = Decimal(conversion["factor"])
    return Units(MappingProxyType(spellings), MappingProxyType(factors))


def load_code_tables(paths: Mapping[str, Path] | None = None) -> CodeTables:
    """Load the four tables; ``paths`` overrides where each kind is read from."""
    chosen = {kind: mappings_dir() / f"{kind}.yaml" for kind in KINDS}
    chosen.update(paths or {})
    data = {kind: load_checked(chosen[kind], mappings_dir() / f"{kind}.schema.json") for kind in KINDS}
    units = _units(data["units"], chosen["units"])

    tests: dict[str, TestDef] = {}
    for source_code, entry in data["measurements"]["tests"].items():
        where = f"{chosen['measurements']}: tests/{source_code}"
        unit = entry.get("unit")
        if unit is not None and unit not in set(units.spellings.values()):
            raise ConfigError(f"{where}: unit {unit} is not in {chosen['units'].name}")
        tests[source_code] = TestDef(
            code=source_code,
            display=entry["display"],
            category=entry["category"],
            codes=tuple(_code(c, where) for c in entry["codes"]),
            value_type=entry["value_type"],
            unit=unit,
            answers=MappingProxyType({k: _code(v, where) for k, v in entry.get("answers", {}).items()}),
        )
    interpretations = {
        flag: _code(c, f"{chosen['measurements']}: interpretations/{flag}")
        for flag, c in data["measurements"]["interpretations"]["codes"].items()
    }

    def definitions(kind: str, key: str) -> Mapping[str, ProductDef]:
        found = {}
        for code, entry in data[kind][key].items():
            found[code] = ProductDef(entry["display"], tuple(_code(c, f"{kind}/{code}") for c in entry["codes"]))
        return MappingProxyType(found)

    return CodeTables(
        tests=MappingProxyType(tests),
        interpretations=MappingProxyType(interpretations),
        products=definitions("products", "products"),
        routes=definitions("routes", "routes"),
        units=units,
    )
