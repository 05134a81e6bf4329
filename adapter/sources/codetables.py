"""The code tables a trial package maps through: measurements, products, routes, units.

Each table is a YAML file in ``mappings/`` checked against its JSON Schema in
``mappings/<kind>.schema.json`` when loaded. A package may bring its own file of a
kind (``own``): same format, and its entries are added to the project's, replacing
an entry with the same key, so a trial needs to list only what it adds or changes.
Loading is strict: unknown keys, duplicate keys, a unit no table lists, a LOINC code
whose check digit is wrong and a unit conversion the UCUM library cannot do are all
configuration errors.

Unit conversions belong to a test, never to a unit pair: a test lists the units it
accepts besides its own (``convert_from``) and, for mass to amount of substance
(mg/dL to mmol/L), its analyte's molar mass. Glucose's factor applied to cholesterol
would be wrong by half, silently; a pair no test declares is a rejected row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from adapter.errors import ConfigError, ConversionError
from adapter.fhir.ucum import conversion
from adapter.paths import mappings_dir
from adapter.records import Code
from adapter.sources.loader import load_checked

KINDS = ("measurements", "products", "routes", "units")
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"


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
    # UCUM units converted to ``unit`` for this test, and its analyte's molar mass (g/mol) if it has one.
    convert_from: frozenset[str] = frozenset()
    molar_mass: Decimal | None = None
    # What trialfhir collect takes from a hospital: (system, code, unit annotation the code implies);
    # empty means the test's own codes. ``derived`` computes it from two other tests.
    accepts: tuple[tuple[str, str, str | None], ...] = ()
    derived: Derivation | None = None


@dataclass(frozen=True)
class Derivation:
    """A test computed as test ``ratio_of`` / test ``per`` (in ``per_unit``), taken within ``within_minutes``."""

    ratio_of: str
    per: str
    per_unit: str
    within_minutes: int


@dataclass(frozen=True)
class ProductDef:
    """One product or route table entry: the codings for a source code."""

    display: str
    codes: tuple[Code, ...]
    # The (system, code) pairs collect takes from a MedicationAdministration; empty means ``codes``.
    accepts: tuple[tuple[str, str], ...] = ()
    # A route's codings for a dose given over a period (IV infusion, not injection); empty means ``codes``.
    over_period: tuple[Code, ...] = ()
    # A product's dose form (Medication.form), when the table gives one.
    form: Code | None = None


@dataclass(frozen=True)
class Units:
    """UCUM units by every spelling the table accepts."""

    spellings: Mapping[str, str]

    def ucum(self, spelling: str) -> str | None:
        """The UCUM code written as ``spelling``, or None when no table lists it."""
        return self.spellings.get(spelling)


@dataclass(frozen=True)
class CodeTables:
    """All four tables, as the package reader uses them; ``own`` are the package's own files by kind."""

    tests: Mapping[str, TestDef]
    interpretations: Mapping[str, Code]
    products: Mapping[str, ProductDef]
    routes: Mapping[str, ProductDef]
    units: Units
    own: Mapping[str, str] = field(default_factory=dict)
    # The code systems of tests with no standard code (each measurements file's project_system: any
    # absolute URI, a site's own included); codes in them are the trial's, never an EHR's.
    project_systems: frozenset[str] = frozenset()

    def where_to_add(self, kind: str) -> str:
        """Where a user adds an entry of ``kind``: the package's own file, or how to declare one."""
        if kind in self.own:
            return self.own[kind]
        return f"a {kind} file of the package (package.yaml: mappings: {kind}: ./{kind}.yaml)"


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


# Verhoeff's tables (dihedral group D5 and its position permutations): SNOMED CT identifiers end with
# the Verhoeff check digit of the rest, so a mistyped concept id is caught when the mapping loads.
_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5), (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7), (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3), (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4), (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7), (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def snomed_check_digit_ok(code: str) -> bool:
    """True when a SNOMED CT identifier (6 to 18 digits) ends with the Verhoeff check digit of the rest."""
    if not (code.isdigit() and 6 <= len(code) <= 18 and code[0] != "0"):
        return False
    check = 0
    for position, char in enumerate(reversed(code)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(char)]]
    return check == 0


def _code(entry: Mapping[str, str], where: str) -> Code:
    code = Code(entry["system"], entry["code"], entry.get("display"))
    if code.system == LOINC and not loinc_check_digit_ok(code.code):
        raise ConfigError(f"{where}: {code.code} is not a valid LOINC code (check digit)")
    if code.system == SNOMED and not snomed_check_digit_ok(code.code):
        raise ConfigError(f"{where}: {code.code} is not a valid SNOMED CT identifier (Verhoeff check digit)")
    return code


def _units(entries: list[tuple[dict[str, Any], Path]]) -> Units:
    spellings: dict[str, str] = {}
    # A package's entry for a unit replaces the project's (its spellings with it).
    last = {unit["code"]: (unit, path) for unit, path in entries}
    for unit, path in last.values():
        for spelling in (unit["code"], *unit["aliases"]):
            if spellings.setdefault(spelling, unit["code"]) != unit["code"]:
                raise ConfigError(f"{path}: '{spelling}' names two units ({spellings[spelling]}, {unit['code']})")
    return Units(MappingProxyType(spellings))


def _test(source_code: str, entry: Mapping[str, Any], where: str, units: Units) -> TestDef:
    unit = entry.get("unit")
    known = set(units.spellings.values())
    for named in (unit, *entry.get("convert_from", ())):
        if named is not None and named not in known:
            raise ConfigError(f"{where}: unit {named} is not in units.yaml (nor the package's units file)")
    molar_mass = Decimal(entry["molar_mass"]["g_per_mol"]) if "molar_mass" in entry else None
    for source in entry.get("convert_from", ()):
        assert unit is not None  # the schema allows convert_from on quantity tests only, which have a unit
        try:
            conversion(source, unit, molar_mass=molar_mass)
        except ConversionError as error:
            raise ConfigError(f"{where}: convert_from: {error}") from error
    return TestDef(
        code=source_code,
        display=entry["display"],
        category=entry["category"],
        codes=tuple(_code(c, where) for c in entry["codes"]),
        value_type=entry["value_type"],
        unit=unit,
        answers=MappingProxyType({k: _code(v, where) for k, v in entry.get("answers", {}).items()}),
        convert_from=frozenset(entry.get("convert_from", ())),
        molar_mass=molar_mass,
        accepts=tuple((a["system"], a["code"], a.get("unit_annotation")) for a in entry.get("accepts", ())),
        derived=Derivation(**entry["derived"]) if "derived" in entry else None,
    )


# The key of each kind's entries, the mapping a package's own file adds to (units are a list: see _units).
_ENTRIES = {"measurements": "tests", "products": "products", "routes": "routes"}


def _entries(documents: list[tuple[Any, Path]], kind: str) -> dict[str, tuple[Any, Path]]:
    """Each entry of ``kind`` by key with the file it comes from, later files replacing earlier ones."""
    found: dict[str, tuple[Any, Path]] = {}
    for document, path in documents:
        for code, entry in document.get(_ENTRIES[kind], {}).items():
            found[code] = (entry, path)
    return found


def load_code_tables(paths: Mapping[str, Path] | None = None, own: Mapping[str, Path] | None = None) -> CodeTables:
    """Load the four tables; ``paths`` overrides where each kind is read from, ``own`` adds a package's entries.

    ``own`` files have the format of the project's (``mappings/<kind>.schema.json``); their
    entries are added to those of ``paths`` (or the project's files), replacing the ones
    with the same key (test code, product, route, unit code).
    """
    chosen = {kind: mappings_dir() / f"{kind}.yaml" for kind in KINDS}
    chosen.update(paths or {})
    documents = {kind: [(load_checked(chosen[kind], mappings_dir() / f"{kind}.schema.json"), chosen[kind])]
                 for kind in KINDS}
    for kind, path in (own or {}).items():
        documents[kind].append((load_checked(path, mappings_dir() / f"{kind}.schema.json"), path))
    units = _units([(unit, path) for document, path in documents["units"] for unit in document.get("units", [])])

    tests = {
        code: _test(code, entry, f"{path}: tests/{code}", units)
        for code, (entry, path) in _entries(documents["measurements"], "measurements").items()
    }
    interpretations = {
        flag: _code(c, f"{path}: interpretations/{flag}")
        for document, path in documents["measurements"]
        for flag, c in document.get("interpretations", {}).get("codes", {}).items()
    }

    def definitions(kind: str) -> Mapping[str, ProductDef]:
        found = {}
        for code, (entry, path) in _entries(documents[kind], kind).items():
            codes = tuple(_code(c, f"{path}: {kind}/{code}") for c in entry["codes"])
            accepts = tuple((a["system"], a["code"]) for a in entry.get("accepts", ()))
            over_period = tuple(_code(c, f"{path}: {kind}/{code}/over_period") for c in entry.get("over_period", ()))
            form = _code(entry["form"], f"{path}: {kind}/{code}/form") if "form" in entry else None
            found[code] = ProductDef(entry["display"], codes, accepts, over_period, form)
        return MappingProxyType(found)

    return CodeTables(
        tests=MappingProxyType(tests),
        interpretations=MappingProxyType(interpretations),
        products=definitions("products"),
        routes=definitions("routes"),
        units=units,
        own=MappingProxyType({kind: str(path) for kind, path in (own or {}).items()}),
        project_systems=frozenset(str(document["project_system"]) for document, _ in documents["measurements"]
                                  if "project_system" in document),
    )
