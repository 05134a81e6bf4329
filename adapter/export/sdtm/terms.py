"""The SDTM mapping files: dataset metadata (``sdtm-datasets.yaml``) and FHIR-to-CDISC terms (``sdtm-terms.yaml``)."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapter.errors import ConfigError
from adapter.paths import mappings_dir
from adapter.sources.loader import load_checked

SCHEMA_FILE = "sdtm.schema.json"
UNIT_CODELIST = "C71620"  # CDISC CT Unit



@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    type: str  # Char | Num
    core: str  # Req | Exp | Perm


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    label: str
    keys: tuple[str, ...]
    variables: tuple[Variable, ...]

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]


@dataclass(frozen=True)
class Test:
    domain: str
    testcd: str
    test: str
    units: Mapping[str, str]
    cat: str = ""  # --CAT
    spec: str = ""  # --SPEC
    detail: str = ""  # --TSTDTL
    method: str = ""  # --METHOD
    loc: str = ""  # --LOC


@dataclass(frozen=True)
class Terms:
    tests: Mapping[str, Test]  # by LOINC code, or by project code for tests without one
    units: Mapping[str, str]
    routes: Mapping[tuple[str, str], str]
    sex: Mapping[str, str]
    nrind: Mapping[str, str]
    countries: Mapping[str, str]
    trial_summary: Mapping[tuple[str, str], tuple[str, str]]  # (system, code) -> (TSPARMCD, TSVAL)
    race: Mapping[str, str]  # US Core ombCategory code -> RACE
    ethnicity: Mapping[str, str]

    def unit(self, ucum: str | None, test: Test | None = None) -> str:
        """The CDISC unit for a UCUM code (a test may override it); unknown units are a ConfigError."""
        if not ucum:
            return ""
        if test and ucum in test.units:
            return test.units[ucum]
        if ucum not in self.units:
            raise ConfigError(f"UCUM unit {ucum!r} has no CDISC unit in mappings/sdtm-terms.yaml (units)")
        return self.units[ucum]


def _load(name: str, folder: Path | None) -> dict[str, Any]:
    root = folder or mappings_dir()
    return dict(load_checked(root / f"{name}.yaml", root / SCHEMA_FILE))


@functools.cache
def load_specs(folder: Path | None = None) -> dict[str, DatasetSpec]:
    """The dataset metadata of ``sdtm-datasets.yaml``, by dataset name."""
    document = _load("sdtm-datasets", folder)
    return {
        d["name"]: DatasetSpec(d["name"], d["label"], tuple(d["keys"]), tuple(Variable(**v) for v in d["variables"]))
        for d in document["datasets"]
    }


@functools.cache
def load_terms(folder: Path | None = None, package_terms: Path | None = None) -> Terms:
    """The FHIR-to-CDISC code tables of ``sdtm-terms.yaml``; a package's own file adds to or replaces its
    tests (by LOINC or project code) and units."""
    d = _load("sdtm-terms", folder)
    tests, units = _tests(d["tests"]), {u["ucum"]: u["cdisc"] for u in d["units"]}
    if package_terms is not None:
        own = load_package_terms(package_terms, folder)
        tests |= _tests(own["tests"])
        units |= {u["ucum"]: u["cdisc"] for u in own.get("units", [])}
    return Terms(
        tests=tests,
        units=units,
        routes={(r["system"], r["code"]): r["cdisc"] for r in d["routes"]},
        sex={s["gender"]: s["cdisc"] for s in d["sex"]},
        nrind={n["code"]: n["cdisc"] for n in d["nrind"]},
        countries={name.casefold(): c["cdisc"] for c in d["countries"] for name in c["names"]},
        trial_summary={(t["system"], t["code"]): (t["tsparmcd"], t["cdisc"]) for t in d.get("trial_summary", [])},
        race={r["code"]: r["cdisc"] for r in d.get("race", [])},
        ethnicity={e["code"]: e["cdisc"] for e in d.get("ethnicity", [])},
    )


@functools.cache  # read once for the terms and once for the CT of the same export
def load_package_terms(path: Path, folder: Path | None = None) -> dict[str, Any]:
    """A trial package's own ``sdtm-terms.yaml``: ``tests`` (and optional ``units``) in the project file's format."""
    root = folder or mappings_dir()
    schema = json.loads((root / SCHEMA_FILE).read_text(encoding="utf-8"))
    schema["oneOf"] = [{"$ref": "#/$defs/packageTermsFile"}]
    return dict(load_checked(path, schema))


def _tests(entries: list[dict[str, Any]]) -> dict[str, Test]:
    return {
        t.get("loinc") or t["code"]: Test(
            t["domain"], t["testcd"], t["test"], t.get("units", {}), t.get("cat", ""), t.get("spec", ""),
            t.get("detail", ""), t.get("method", ""), t.get("loc", ""),
        )
        for t in entries
    }


@dataclass(frozen=True)
class Codelist:
    code: str
    name: str
    extensible: bool
    terms: Mapping[str, str | None]  # submission value -> NCI code, when known
    decodes: Mapping[str, str]
    extended: frozenset[str] = frozenset()  # sponsor-extended values: not terms of the release


@dataclass(frozen=True)
class ControlledTerms:
    """The CDISC CT subset of ``cdisc-ct/sdtm-ct.yaml``: codelists, variable bindings, TS responses."""

    release: str  # e.g. "SDTM CT 2025-03-28"
    codelists: Mapping[str, Codelist]
    variables: Mapping[str, str]  # variable name -> codelist code
    ts_responses: Mapping[str, str]  # TSPARMCD -> codelist code of its TSVAL

    @property
    def version(self) -> str:
        """The release date, the version Define-XML and TSVCDVER give CDISC CT (e.g. ``2025-03-28``)."""
        return self.release.rsplit(" ", 1)[-1]

    def term(self, codelist: str, value: str) -> tuple[str, str | None]:
        """(value, NCI code) of a term; a ConfigError when the codelist does not hold it."""
        terms = self.codelists[codelist].terms
        if value not in terms:
            raise ConfigError(f"{value!r} is not in CDISC codelist {codelist} in mappings/cdisc-ct/sdtm-ct.yaml")
        return value, terms[value]


@functools.cache
def load_ct(folder: Path | None = None, package_terms: Path | None = None) -> ControlledTerms:
    """The CDISC Controlled Terminology subset the export emits. A package's own test codes and units that the
    subset lacks are added to their codelists (LBTESTCD, VSTESTCD, UNIT: all extensible) as sponsor-extended
    terms, which define.xml declares."""
    root = (folder or mappings_dir()) / "cdisc-ct"
    d = load_checked(root / "sdtm-ct.yaml", root / "cdisc-ct.schema.json")
    variables = dict(d["variables"])
    extra: dict[str, dict[str, str]] = {}  # codelist -> value -> decode
    if package_terms is not None:
        own = load_package_terms(package_terms, folder)
        for test in own["tests"]:
            if codelist := variables.get(f"{test['domain']}TESTCD"):  # a domain whose test codes the subset binds
                extra.setdefault(codelist, {})[test["testcd"]] = test["test"]
        for unit in own.get("units", []):
            extra.setdefault(UNIT_CODELIST, {})[unit["cdisc"]] = unit["cdisc"]
    codelists = {}
    for c in d["codelists"]:
        known = {t["value"] for t in c["terms"]}
        added = {value: decode for value, decode in extra.get(c["code"], {}).items() if value not in known}
        codelists[c["code"]] = Codelist(
            c["code"], c["name"], c["extensible"],
            {t["value"]: t.get("code") for t in c["terms"]} | dict.fromkeys(added),
            {t["value"]: t["decode"] for t in c["terms"] if "decode" in t} | added,
            frozenset(t["value"] for t in c["terms"] if t.get("extended")) | frozenset(added),
        )
    return ControlledTerms(d["release"], codelists, variables, dict(d["ts_responses"]))
