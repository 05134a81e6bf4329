"""The ClinicalTrials.gov code tables: every mapping row, and strict loading."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from adapter.errors import ConfigError
from adapter.paths import mappings_dir
from adapter.sources.ctgov_tables import REQUIRED_TABLES, default_tables, load_tables

TABLES = default_tables()

# The expected R4 code for each of the 14 registry statuses, as the table decides them.
STATUS_ROWS = {
    "ACTIVE_NOT_RECRUITING": "closed-to-accrual",
    "COMPLETED": "completed",
    "ENROLLING_BY_INVITATION": "active",
    "NOT_YET_RECRUITING": "approved",
    "RECRUITING": "active",
    "SUSPENDED": "temporarily-closed-to-accrual",
    "TERMINATED": "administratively-completed",
    "WITHDRAWN": "withdrawn",
    "AVAILABLE": "active",
    "NO_LONGER_AVAILABLE": "closed-to-accrual",
    "TEMPORARILY_NOT_AVAILABLE": "temporarily-closed-to-accrual",
    "APPROVED_FOR_MARKETING": "completed",
    "WITHHELD": "in-review",
    "UNKNOWN": "closed-to-accrual-and-intervention",
}
# The 11 codes of http://hl7.org/fhir/research-study-status in R4 (STANDARDS.md 1.3).
R4_STATUS_CODES = {
    "active",
    "administratively-completed",
    "approved",
    "closed-to-accrual",
    "closed-to-accrual-and-intervention",
    "completed",
    "disapproved",
    "in-review",
    "temporarily-closed-to-accrual",
    "temporarily-closed-to-accrual-and-intervention",
    "withdrawn",
}
PHASE_ROWS = {
    ("NA",): "n-a",
    ("EARLY_PHASE1",): "early-phase-1",
    ("PHASE1",): "phase-1",
    ("PHASE1", "PHASE2"): "phase-1-phase-2",
    ("PHASE2",): "phase-2",
    ("PHASE2", "PHASE3"): "phase-2-phase-3",
    ("PHASE3",): "phase-3",
    ("PHASE4",): "phase-4",
}
ARM_TYPE_ROWS = {
    "EXPERIMENTAL": "experimental",
    "ACTIVE_COMPARATOR": "active-comparator",
    "PLACEBO_COMPARATOR": "placebo-comparator",
    "SHAM_COMPARATOR": "sham-comparator",
    "NO_INTERVENTION": "no-intervention",
    "OTHER": "other-arm-type",
}


@pytest.mark.parametrize(("code", "expected"), sorted(STATUS_ROWS.items()))
def test_status_row(code: str, expected: str) -> None:
    row = TABLES["ctgov-status"].row(code)
    assert row is not None and row.target == expected and row.target in R4_STATUS_CODES
    assert row.reason


def test_status_table_has_exactly_the_14_registry_values() -> None:
    assert {row.code for row in TABLES["ctgov-status"].rows} == set(STATUS_ROWS)


@pytest.mark.parametrize(("codes", "expected"), sorted(PHASE_ROWS.items()))
def test_phase_row(codes: tuple[str, ...], expected: str) -> None:
    row = TABLES["ctgov-phase"].row(*codes)
    assert row is not None and row.target == expected and row.reason


def test_phase_combination_outside_the_table_is_not_mapped() -> None:
    assert TABLES["ctgov-phase"].row("PHASE1", "PHASE3") is None


@pytest.mark.parametrize(("code", "expected"), sorted(ARM_TYPE_ROWS.items()))
def test_arm_type_row(code: str, expected: str) -> None:
    table = TABLES["ctgov-arm-type"]
    row = table.row(code)
    assert row is not None and row.target == expected and row.reason
    assert table.registry_coding(row)["code"] == code


@pytest.mark.parametrize(
    ("code", "expected"),
    [("TREATMENT", "treatment"), ("SUPPORTIVE_CARE", "supportive-care"), ("ECT", None), ("OTHER", None)],
)
def test_primary_purpose_row(code: str, expected: str | None) -> None:
    row = TABLES["ctgov-primary-purpose"].row(code)
    assert row is not None and row.target == expected and row.reason


@pytest.mark.parametrize(
    ("table", "text", "code"),
    [
        ("ctgov-status", "Unknown status", "UNKNOWN"),
        ("ctgov-status", "active, NOT recruiting", "ACTIVE_NOT_RECRUITING"),
        ("ctgov-phase", "Phase 1/Phase 2", "PHASE1,PHASE2"),
        ("ctgov-date-type", "Anticipated", "ESTIMATED"),
        ("ctgov-date-type", "Estimate", "ESTIMATED"),
        ("ctgov-arm-type", "Placebo Comparator", "PLACEBO_COMPARATOR"),
        ("ctgov-agency-class", "U.S. Fed", "FED"),
    ],
)
def test_legacy_text_aliases(table: str, text: str, code: str) -> None:
    row = TABLES[table].from_alias(text)
    assert row is not None and row.code == code


def test_unknown_value_becomes_text_only_concept() -> None:
    assert TABLES["ctgov-status"].concept("PAUSED") == {"text": "PAUSED"}


def _copy_mappings(tmp_path: Path) -> Path:
    for pattern in ("ctgov-*", "conditions.*", "countries.*"):
        for path in mappings_dir().glob(pattern):
            shutil.copy(path, tmp_path / path.name)
    return tmp_path


def _edit(path: Path, change: object) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(document)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(document), encoding="utf-8")


def test_copy_of_the_tables_loads(tmp_path: Path) -> None:
    assert set(REQUIRED_TABLES) <= set(load_tables(_copy_mappings(tmp_path)).tables)


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    folder = _copy_mappings(tmp_path)
    _edit(folder / "ctgov-status.yaml", lambda d: d["rows"][0].update(colour="blue"))
    with pytest.raises(ConfigError, match=r"ctgov-status.yaml: rows\[0\]"):
        load_tables(folder)


def test_mapping_row_without_reason_is_an_error(tmp_path: Path) -> None:
    folder = _copy_mappings(tmp_path)
    _edit(folder / "ctgov-phase.yaml", lambda d: d["rows"][3].pop("reason"))
    with pytest.raises(ConfigError, match=r"ctgov-phase\.yaml"):
        load_tables(folder)


def test_duplicate_code_is_an_error(tmp_path: Path) -> None:
    folder = _copy_mappings(tmp_path)
    _edit(folder / "ctgov-status.yaml", lambda d: d["rows"].append(dict(d["rows"][0], aliases=[])))
    with pytest.raises(ConfigError, match="ACTIVE_NOT_RECRUITING appears twice"):
        load_tables(folder)


def test_a_registry_system_outside_the_project_base_is_an_error(tmp_path: Path) -> None:
    # The registry's enum values are no codes of a real system; they must stay in the project's own.
    folder = _copy_mappings(tmp_path)
    _edit(folder / "ctgov-sex.yaml", lambda d: d.update(registry_system="https://example.org/fhir/CodeSystem/ctgov-sex"))
    with pytest.raises(ConfigError, match=r"ctgov-sex\.yaml: ctgov-sex: registry_system is not under the project base"):
        load_tables(folder)


def test_missing_table_is_an_error(tmp_path: Path) -> None:
    folder = _copy_mappings(tmp_path)
    (folder / "ctgov-sex.yaml").unlink()
    with pytest.raises(ConfigError, match=r"missing ClinicalTrials\.gov code tables: ctgov-sex"):
        load_tables(folder)


def test_conditions_and_countries_load_with_the_tables(tmp_path: Path) -> None:
    tables = load_tables(_copy_mappings(tmp_path))
    assert [c["code"] for c in tables.condition_codings(" covid-19 ")] == ["840539006", "U07.1"]
    assert tables.condition_codings("Cytokine Storm") == ()
    assert [tables.country_code(n) for n in ("Indonesia", "Korea, Republic of", "Turkey", "Atlantis")] == [
        "ID", "KR", "TR", None]  # fmt: skip


def test_a_condition_name_listed_twice_is_an_error(tmp_path: Path) -> None:
    folder = _copy_mappings(tmp_path)
    _edit(folder / "conditions.yaml", lambda d: d["conditions"].append(copy.deepcopy(d["conditions"][0])))
    with pytest.raises(ConfigError, match="condition 'COVID-19' appears twice"):
        load_tables(folder)
