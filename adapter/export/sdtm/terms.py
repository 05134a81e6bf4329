"""The SDTM mapping files: dataset metadata (``sdtm-datasets.yaml``) and FHIR-to-CDISC terms (``sdtm-terms.yaml``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapter.errors import ConfigError
from adapter.paths import mappings_dir
from adapter.sources.loader import load_checked

SCHEMA_FILE = "sdtm.schema.json"



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
def load_terms(folder: Path | None = None) -> Terms:
    """The FHIR-to-CDISC code tables of ``sdtm-terms.yaml``."""
    d = _load("sdtm-terms", folder)
    return Terms(
        tests={
            t.get("loinc") or t["code"]: Test(
                t["domain"], t["testcd"], t["test"], t.get("units", {}), t.get("cat", ""), t.get("spec", ""),
                t.get("detail", ""), t.get("method", ""), t.get("loc", ""),
            )
            for t in d["tests"]
        },
        units={u["ucum"]: u["cdisc"] for u in d["units"]},
        routes={(r["system"], r["code"]): r["cdisc"] for r in d["routes"]},
        sex={s["gender"]: s["cdisc"] for s in d["sex"]},
        nrind={n["code"]: n["cdisc"] for n in d["nrind"]},
        countries={name.casefold(): c["cdisc"] for c in d["countries"] for name in c["names"]},
        trial_summary={(t["system"], t["code"]): (t["tsparmcd"], t["cdisc"]) for t in d.get("trial_summary", [])},
        race={r["code"]: r["cdisc"] for r in d.get("race", [])},
        ethnicity={e["code"]: e["cdisc"] for e in d.get("ethnicity", [])},
    )


@dataclass(frozen=True)
class Codelist:
    code: str
    name: str
    extensible: bool
    terms: Mapping[str, str | None]  # submission value -> NCI code, when known
    decodes: Mapping[str, str]
    extended: frozenset[str] = frozenset()  # sponsor-extended values (or not checked against a release)


@dataclass(frozen=True)
class ControlledTerms:
    """The CDISC CT subset of ``cdisc-ct/sdtm-ct.yaml``: codelists, variable bindings, TS responses."""

    release: str
    codelists: Mapping[str, Codelist]
    variables: Mapping[str, str]  # variable name -> codelist code
    ts_responses: Mapping[str, str]  # TSPARMCD -> codelist code of its TSVAL

    def term(self, codelist: str, value: str) -> tuple[str, str | None]:
        """(value, NCI code) of a term; a ConfigError when the codelist does not hold it."""
        terms = self.codelists[codelist].terms
        if value not in terms:
            raise ConfigError(f"{value!r} is not in CDISC codelist {codelist} in mappings/cdisc-ct/sdtm-ct.yaml")
        return value, terms[value]


@functools.cache
def load_ct(folder: Path | None = None) -> ControlledTerms:
    """The CDISC Controlled Terminology subset the export emits."""
    root = (folder or mappings_dir()) / "cdisc-ct"
    d = load_checked(root / "sdtm-ct.yaml", root / "cdisc-ct.schema.json")
    codelists = {
        c["code"]: Codelist(
            c["code"], c["name"], c["extensible"],
            {t["value"]: t.get("code") for t in c["terms"]},
            {t["value"]: t["decode"] for t in c["terms"] if "decode" in t},
            frozenset(t["value"] for t in c["terms"] if t.get("extended")),
        )
        for c in d["codelists"]
    }
    return ControlledTerms(d["release"], codelists, dict(d["variables"]), dict(d["ts_responses"]))
