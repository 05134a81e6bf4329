"""The ClinicalTrials.gov code tables (``mappings/ctgov-*.yaml``), loaded strictly.

Each table lists one registry enum: its API v2 codes, the other spellings the
readers accept (legacy XML texts), a display, and where the table has a target,
the FHIR code each value maps to and why. Every file is checked against
``mappings/ctgov-table.schema.json``; unknown keys, duplicate codes and missing
tables are configuration errors, never ignored.

Readers use the tables to turn legacy XML texts into API v2 codes and to warn about
values no table knows; mappers use them to write codings. Both get them from
``default_tables()`` unless a caller passes its own.

Two lookups that are not registry enums load with them: ``conditions.yaml`` (condition
texts to SNOMED CT / ICD-10 codings) and ``countries.yaml`` (country names to ISO
3166-1 alpha-2), each checked against its own schema.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from adapter.errors import ConfigError
from adapter.fhir.constants import EXTENSION_BASE, PROJECT_BASE, PROJECT_BASE_TOKEN
from adapter.fhir.datatypes import JSON, codeable_concept, coding, extension
from adapter.paths import mappings_dir
from adapter.sources.loader import load_checked, load_schema

SCHEMA_FILE = "ctgov-table.schema.json"

# HL7 Terminology's MeSH CodeSystem url (terminology.hl7.org CodeSystem-MeSH).
MESH_SYSTEM = "https://www.nlm.nih.gov/mesh"

# The tables the readers and mappers use; loading fails if one is missing.
REQUIRED_TABLES = (
    "ctgov-status",
    "ctgov-phase",
    "ctgov-primary-purpose",
    "ctgov-arm-type",
    "ctgov-study-type",
    "ctgov-objective-type",
    "ctgov-sex",
    "ctgov-age-unit",
    "ctgov-allocation",
    "ctgov-intervention-model",
    "ctgov-masking",
    "ctgov-who-masked",
    "ctgov-observational-model",
    "ctgov-time-perspective",
    "ctgov-date-type",
    "ctgov-intervention-type",
    "ctgov-agency-class",
    "ctgov-official-role",
    "ctgov-contact-role",
    "ctgov-reference-type",
    "ctgov-secondary-id-type",
    "ctgov-sampling-method",
    "ctgov-recruitment-status",
    "ctgov-standard-age",
    "ctgov-eligibility-characteristic",
)


@dataclass(frozen=True)
class Row:
    """One registry value (a tuple, because a combined phase is two values) and its target."""

    codes: tuple[str, ...]
    display: str
    aliases: tuple[str, ...]
    target: str | None
    target_display: str | None
    reason: str | None

    @property
    def code(self) -> str:
        """The registry code as one string (``PHASE1,PHASE2`` for a combined phase)."""
        return ",".join(self.codes)


@dataclass(frozen=True)
class CodeTable:
    """One enum table: look rows up by registry code or by alias, build codings."""

    name: str
    enum: str
    registry_system: str
    target_system: str | None
    rows: tuple[Row, ...]
    _by_codes: Mapping[tuple[str, ...], Row]
    _by_alias: Mapping[str, Row]

    def row(self, *codes: str) -> Row | None:
        """The row for these registry codes, or None if the table does not know them."""
        return self._by_codes.get(tuple(codes))

    def knows(self, code: str) -> bool:
        """Whether ``code`` is one of this enum's values (alone or as part of a combination)."""
        return any(code in row.codes for row in self.rows)

    def from_alias(self, text: str) -> Row | None:
        """The row whose alias (e.g. a legacy XML text) is ``text``, ignoring case and outer spaces."""
        return self._by_alias.get(text.strip().casefold())

    def registry_coding(self, row: Row) -> JSON:
        """The coding of ``row`` in the project's code system for this registry enum."""
        return coding(self.registry_system, row.code, row.display)

    def target_coding(self, row: Row) -> JSON | None:
        """The coding of ``row``'s target in the table's FHIR code system, if it has one."""
        if self.target_system is None or row.target is None:
            return None
        return coding(self.target_system, row.target, row.target_display)

    def concept(self, *codes: str, text: str | None = None) -> JSON:
        """A CodeableConcept for a registry value; a value the table does not know is kept as text."""
        row = self.row(*codes)
        if row is None:
            return codeable_concept(text=text or ", ".join(codes))
        return codeable_concept(self.registry_coding(row), text=text or row.display)

    def target_concept(self, *codes: str) -> JSON:
        """Like ``concept``, with the row's FHIR target coding (when it has one) before the registry coding."""
        row = self.row(*codes)
        if row is None:
            return codeable_concept(text=", ".join(codes))
        standard = self.target_coding(row)
        return codeable_concept(*([standard] if standard else []), self.registry_coding(row), text=row.display)


@dataclass(frozen=True)
class CtgovTables:
    """All ClinicalTrials.gov code tables by name (``tables["ctgov-status"]``), plus conditions and countries."""

    tables: Mapping[str, CodeTable]
    conditions: Mapping[str, tuple[JSON, ...]] = field(default_factory=lambda: MappingProxyType({}))
    countries: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __getitem__(self, name: str) -> CodeTable:
        return self.tables[name]

    def condition_codings(self, text: str) -> tuple[JSON, ...]:
        """The standard codings of a condition text (none when conditions.yaml does not list it)."""
        return self.conditions.get(text.strip().casefold(), ())

    def country_code(self, name: str) -> str | None:
        """The ISO 3166-1 alpha-2 code of a country name as the registry writes it, or None."""
        return self.countries.get(name.strip().casefold())


def load_tables(folder: Path | None = None) -> CtgovTables:
    """Load and check every ``ctgov-*.yaml`` in ``folder`` (default: the mappings folder)."""
    folder = folder or mappings_dir()
    schema = load_schema(folder / SCHEMA_FILE)
    tables: dict[str, CodeTable] = {}
    for path in sorted(folder.glob("ctgov-*.yaml")):
        document = load_checked(path, schema)
        for raw in document.get("tables", [document]):
            table = _table(raw, path)
            if table.name in tables:
                raise ConfigError(f"{path}: table {table.name} is defined twice")
            tables[table.name] = table
    missing = [name for name in REQUIRED_TABLES if name not in tables]
    if missing:
        raise ConfigError(f"{folder}: missing ClinicalTrials.gov code tables: {', '.join(missing)}")
    return CtgovTables(MappingProxyType(tables), _conditions(folder), _countries(folder))


def _conditions(folder: Path) -> Mapping[str, tuple[JSON, ...]]:
    path = folder / "conditions.yaml"
    found: dict[str, tuple[JSON, ...]] = {}
    for entry in load_checked(path, folder / "conditions.schema.json")["conditions"]:
        codings = tuple(coding(c["system"], c["code"], c["display"]) for c in entry["codes"])
        for name in entry["names"]:
            if name.strip().casefold() in found:
                raise ConfigError(f"{path}: condition {name!r} appears twice")
            found[name.strip().casefold()] = codings
    return MappingProxyType(found)


def _countries(folder: Path) -> Mapping[str, str]:
    path = folder / "countries.yaml"
    found: dict[str, str] = {}
    for entry in load_checked(path, folder / "countries.schema.json")["countries"]:
        for name in (entry["name"], *entry.get("aliases", ()), *entry.get("registry_aliases", ())):
            if name.strip().casefold() in found:
                raise ConfigError(f"{path}: country name {name!r} appears twice")
            found[name.strip().casefold()] = entry["code"]
    return MappingProxyType(found)


def project_extension(name: str, **value: Any) -> JSON:
    """A project extension ``EXTENSION_BASE + name`` with one value[x] (``valueString=...``)."""
    return extension(EXTENSION_BASE + name, **value)


def complex_extension(name: str, *parts: JSON | None) -> JSON:
    """A project extension made of sub-extensions; parts that are None are left out."""
    return {"url": EXTENSION_BASE + name, "extension": [part for part in parts if part is not None]}


@functools.cache
def default_tables() -> CtgovTables:
    """The tables from the default mappings folder, loaded once per process."""
    return load_tables()


def _table(raw: dict[str, Any], path: Path) -> CodeTable:
    rows: list[Row] = []
    by_codes: dict[tuple[str, ...], Row] = {}
    by_alias: dict[str, Row] = {}
    for raw_row in raw["rows"]:
        codes = tuple(raw_row["code"]) if isinstance(raw_row["code"], list) else (raw_row["code"],)
        row = Row(
            codes=codes,
            display=raw_row["display"],
            aliases=tuple(raw_row.get("aliases", ())),
            target=raw_row.get("target"),
            target_display=raw_row.get("target_display"),
            reason=raw_row.get("reason"),
        )
        if codes in by_codes:
            raise ConfigError(f"{path}: {raw['name']}: code {row.code} appears twice")
        by_codes[codes] = row
        for alias in row.aliases:
            key = alias.strip().casefold()
            if key in by_alias:
                raise ConfigError(f"{path}: {raw['name']}: alias {alias!r} appears twice")
            by_alias[key] = row
        rows.append(row)
    if not raw["registry_system"].startswith(PROJECT_BASE):
        # The registry's enum values are no codes of a real system: they belong to the project's own.
        raise ConfigError(f"{path}: {raw['name']}: registry_system is not under the project base; "
                          f"write it as {PROJECT_BASE_TOKEN}CodeSystem/{raw['name']}")
    target = raw.get("target")
    return CodeTable(
        name=raw["name"],
        enum=raw["enum"],
        registry_system=raw["registry_system"],
        target_system=target["system"] if target else None,
        rows=tuple(rows),
        _by_codes=MappingProxyType(by_codes),
        _by_alias=MappingProxyType(by_alias),
    )
