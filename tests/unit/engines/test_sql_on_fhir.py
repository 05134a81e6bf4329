"""The DuckDB view compiler on the official SQL on FHIR v2 test cases (tests/data/sql-on-fhir).

Every case of every shipped file runs. Rows are compared ignoring their order, as the
reference runner does. Cells are compared by value: the engine is text-first (a column
is text unless the view types it), so an expected JSON number matches the same number
as text, and an expected ``true`` the text ``true``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from adapter.engines.duckdb_sql import MACROS, compile_view, sources
from adapter.engines.views import check
from adapter.errors import ConfigError

CASES = Path(__file__).resolve().parents[2] / "data" / "sql-on-fhir"

# Whole files whose feature the compiler does not have, and why.
UNSUPPORTED_FILES = {
    "fn_boundary.json": "lowBoundary()/highBoundary() are not implemented (experimental; our views need none)",
    "repeat.json": "the select 'repeat' (recursive) is not implemented; our views need none",
    "row_index.json": "%rowIndex is not implemented; our views need none",
    "fhirpath_numbers.json": "FHIRPath arithmetic (+ - * /) is not implemented; our views need none",
}


def _cases() -> Iterator[Any]:
    for path in sorted(CASES.glob("*.json")):
        suite = json.loads(path.read_text(encoding="utf-8"))
        for number, case in enumerate(suite["tests"]):
            marks = []
            if path.name in UNSUPPORTED_FILES:
                marks.append(pytest.mark.xfail(strict=True, reason=UNSUPPORTED_FILES[path.name]))
            yield pytest.param(suite["resources"], case, marks=marks, id=f"{path.stem}[{number}] {case['title']}")


def test_every_case_file_is_shipped_with_its_licence() -> None:
    assert len(list(CASES.glob("*.json"))) == 22
    assert "MIT" in (CASES / "LICENSE.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def connection() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    con.execute(MACROS)
    yield con
    con.close()


def _run(con: duckdb.DuckDBPyConnection, resources: list[dict[str, Any]], view: dict[str, Any],
         folder: Path) -> tuple[list[str], list[dict[str, Any]]]:
    problems = check(view)
    if problems:
        raise ConfigError("; ".join(problems))
    path = folder / f"{view['resource']}.ndjson"
    with path.open("w", encoding="utf-8") as out:
        for resource in resources:
            if resource["resourceType"] == view["resource"]:
                out.write(json.dumps(resource) + "\n")
    compiled = compile_view(view, sources([str(path)]))
    rows = con.execute(compiled.sql).fetchall()
    return list(compiled.columns), [dict(zip(compiled.columns, row, strict=True)) for row in rows]


def _value(value: Any) -> Any:
    """A cell, expected or got, in one comparable form."""
    if isinstance(value, list | tuple):
        return tuple(_value(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _rows(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps({k: _value(v) for k, v in row.items()}, sort_keys=True) for row in rows)


@pytest.mark.parametrize(("resources", "case"), list(_cases()))
def test_official_case(connection: duckdb.DuckDBPyConnection, resources: list[dict[str, Any]],
                       case: dict[str, Any], tmp_path: Path) -> None:
    view = {"name": "case", **case["view"]}
    if case.get("expectError"):
        with pytest.raises((ConfigError, duckdb.Error)):
            _run(connection, resources, view, tmp_path)
        return
    columns, rows = _run(connection, resources, view, tmp_path)
    if "expectCount" in case:
        assert len(rows) == case["expectCount"]
        return
    assert _rows(rows) == _rows(case["expect"])
    if "expectColumns" in case:
        assert columns == case["expectColumns"]
