"""Every coded value the seed trial's SDTM export emits is in the shipped CDISC CT subset or marked sponsor-extended."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import yaml

from adapter.errors import ConfigError
from adapter.export.sdtm.terms import load_ct, load_specs, load_terms
from adapter.paths import mappings_dir

# Test codes of these domains come from per-instrument or per-domain codelists the subset does not bind
# (sdtm-terms.yaml records, per test, whether the release has it).
SPONSOR_TESTCD = {"RSTESTCD", "MBTESTCD"}
RELEASE = re.compile(r"SDTM CT (\d{4}-\d{2}-\d{2})")
# SDTMIG 3.4 DM: RACE is MULTIPLE when more than one race is collected, though Race (C74457) is not extensible.
IG_EXTENSIONS = {("C74457", "MULTIPLE")}


def _rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_coded_value_is_in_cdisc_ct_or_marked_extended(seed_sdtm: Path) -> None:
    ct = load_ct()
    outside: set[tuple[str, str, str]] = set()
    extended: set[tuple[str, str]] = set()
    checked = 0
    for path in sorted(seed_sdtm.glob("*.csv")):
        for row in _rows(seed_sdtm, path.stem):
            bound = {name: ct.variables[name] for name in row if name in ct.variables}
            if "TSPARMCD" in row and row["TSPARMCD"] in ct.ts_responses and row["TSVCDREF"] == "CDISC CT":
                bound["TSVAL"] = ct.ts_responses[row["TSPARMCD"]]
            if row.get("DSCAT") == "DISPOSITION EVENT":
                bound["DSDECOD"] = "C66727"
            elif row.get("DSCAT") == "PROTOCOL MILESTONE":
                bound["DSDECOD"] = "C114118"
            for name, codelist in bound.items():
                value = row[name]
                if not value:
                    continue
                checked += 1
                terms = ct.codelists[codelist]
                if value in terms.extended:
                    extended.add((name, value))
                elif value not in terms.terms:
                    outside.add((path.stem, name, value))
    assert outside == set(), "emitted values missing from mappings/cdisc-ct/sdtm-ct.yaml"
    assert checked > 10000
    assert ("MBSPEC", "RESPIRATORY SPECIMEN") in extended, "sponsor-extended values are marked, not silently accepted"


def test_sponsor_defined_tests_are_marked_in_the_terms_file(seed_sdtm: Path) -> None:
    marked = {t.testcd for t in load_terms().tests.values()}
    for name in ("rs", "mb"):
        for row in _rows(seed_sdtm, name):
            assert row[f"{name.upper()}TESTCD"] in marked


def test_established_tests_are_ct_terms_and_unestablished_ones_are_extended() -> None:
    ct = load_ct()
    document = yaml.safe_load((mappings_dir() / "sdtm-terms.yaml").read_text(encoding="utf-8"))
    for test in document["tests"]:
        if test["domain"] not in ("LB", "VS"):
            continue
        codelist = ct.codelists[ct.variables[f"{test['domain']}TESTCD"]]
        assert test["testcd"] in codelist.terms, test
        if test["established"]:  # a term of the release: its NCI code and test name were recorded from it
            assert test["testcd"] not in codelist.extended and codelist.terms[test["testcd"]], test
            assert codelist.decodes[test["testcd"]] == test["test"], test
        else:
            assert test["testcd"] in codelist.extended, test


def test_the_ct_subset_says_where_it_comes_from() -> None:
    ct = load_ct()
    match = RELEASE.fullmatch(ct.release)
    assert match and ct.version == match[1], "release names a dated CDISC CT release, e.g. 'SDTM CT 2025-03-28'"
    assert all(codelist.terms for codelist in ct.codelists.values())
    assert SPONSOR_TESTCD.isdisjoint(ct.variables)
    document = yaml.safe_load((mappings_dir() / "cdisc-ct" / "sdtm-ct.yaml").read_text(encoding="utf-8"))
    assert ct.version in " ".join(document["sources"]), "the sources name the release file that was compared"


def test_every_term_not_marked_extended_was_checked_against_the_release() -> None:
    # Each codelist records the release it was compared with, and each term its NCI code in that release;
    # a term the release lacks has no code and is marked extended. A term added without being checked (no
    # code) or a codelist not compared with the current release fails here.
    ct = load_ct()
    document = yaml.safe_load((mappings_dir() / "cdisc-ct" / "sdtm-ct.yaml").read_text(encoding="utf-8"))
    for codelist in document["codelists"]:
        assert codelist["checked"] == ct.version, codelist["code"]
        codes = [term["code"] for term in codelist["terms"] if "code" in term]
        assert len(codes) == len(set(codes)), codelist["code"]
        for term in codelist["terms"]:
            where = (codelist["code"], term["value"])
            if term.get("extended"):
                assert "code" not in term, f"{where}: a sponsor-extended term has no NCI code"
                assert codelist["extensible"] or where in IG_EXTENSIONS, f"{where}: the codelist is not extensible"
            else:
                assert "code" in term, f"{where}: not marked extended, so its NCI code in the release is recorded"


def test_docs_list_every_variable_written() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "export.md").read_text(encoding="utf-8")
    docs = docs[docs.index("### SDTM: sources and choices"):]
    missing = []
    for name, spec in load_specs().items():
        for variable in spec.names:
            generic = f"--{variable[2:]}" if variable.startswith(name) else variable
            if variable not in docs and generic not in docs:
                missing.append(f"{name}.{variable}")
    assert missing == [], "docs/export.md must name each variable's source"


def test_every_cdisc_unit_the_terms_file_writes_is_in_the_unit_codelist() -> None:
    # A unit added to sdtm-terms.yaml (for a lab the measurement table ships) must be in C71620 too, or every
    # trial that uses it fails check-sdtm; the seed trial alone does not use them all.
    terms = yaml.safe_load((mappings_dir() / "sdtm-terms.yaml").read_text(encoding="utf-8"))
    written = {unit["cdisc"] for unit in terms["units"] if unit["cdisc"]}
    written |= {unit for test in terms["tests"] for unit in (test.get("units") or {}).values()}
    assert written - set(load_ct().codelists["C71620"].terms) == set()


def test_a_package_terms_file_adds_and_replaces_tests_and_extends_the_codelists(tmp_path: Path) -> None:
    own = tmp_path / "sdtm-terms.yaml"
    own.write_text(yaml.safe_dump({
        "name": "sdtm-terms", "version": "1", "sources": ["a site's own table"],
        "tests": [
            {"loinc": "33762-6", "domain": "LB", "testcd": "NTPROBNP", "test": "NT-proBNP", "established": False,
             "source": "sponsor term"},
            {"loinc": "14749-6", "domain": "LB", "testcd": "GLUCFAST", "test": "Glucose, Fasting", "established": False,
             "source": "the site codes its glucose as fasting"},
        ],
        "units": [{"ucum": "mg/dL{fasting}", "cdisc": "mg/dL FASTING", "source": "sponsor unit"}],
    }), encoding="utf-8")
    project, terms = load_terms(), load_terms(None, own)
    assert "33762-6" not in project.tests and terms.tests["33762-6"].testcd == "NTPROBNP"
    assert project.tests["14749-6"].testcd == "GLUC" and terms.tests["14749-6"].testcd == "GLUCFAST"  # replaced
    assert terms.unit("mg/dL{fasting}") == "mg/dL FASTING" and terms.unit("mmol/L") == project.unit("mmol/L")
    ct = load_ct(None, own)
    lbtestcd, units = ct.codelists[ct.variables["LBTESTCD"]], ct.codelists["C71620"]
    assert {"NTPROBNP", "GLUCFAST"} <= lbtestcd.extended and lbtestcd.decodes["NTPROBNP"] == "NT-proBNP"
    assert "mg/dL FASTING" in units.extended and "mg/dL FASTING" not in load_ct().codelists["C71620"].terms
    assert "GLUC" in lbtestcd.terms and "GLUC" not in lbtestcd.extended  # the subset's own terms stay as they were


def test_a_package_terms_file_holds_only_tests_and_units(tmp_path: Path) -> None:
    own = tmp_path / "sdtm-terms.yaml"
    own.write_text("name: sdtm-terms\nversion: '1'\nsources: [x]\ntests: []\nroutes: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="routes"):
        load_terms(None, own)
