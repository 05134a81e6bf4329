"""Run the export views on DuckDB: NDJSON folder in, one CSV or Parquet table per view out.

DuckDB runs in process, streams the NDJSON files, and writes with its own CSV and
Parquet writers. Memory is bounded by ``memory_limit``; what does not fit spills
to ``temp_directory``. The tables match the Python writer's (adapter/export/tables.py)
cell for cell except where a value now leaves as it was written: a decimal keeps
its digits (``2.40`` stays ``2.40``, ``1.0`` stays ``1.0`` in CSV; Parquet stores
numbers as doubles, as before). CSV text cells a spreadsheet would run as formulas
get a leading quote (``SAFE_CELL``, the SQL of ``adapter.export.csvcell.safe_cell``)
unless ``raw_csv``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import duckdb

from adapter.engines.duckdb_sql import MACROS, compile_view, sources
from adapter.engines.sql import CompiledView, input_error, plan_tables, quote
from adapter.engines.views import NUMBER_TYPES
from adapter.errors import InputError

MEMORY_LIMIT = "2GB"
# adapter.export.csvcell.safe_cell in SQL (engines do not import export; a test holds the two to one rule):
# a cell starting with = + - @ tab or CR gets a leading quote, unless it is a number.
SAFE_CELL = r"""
CREATE OR REPLACE MACRO fp_safe_cell(v) AS CASE
    WHEN regexp_matches(v, '^[=+\-@\t\r]') AND NOT regexp_full_match(v, '[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?')
    THEN '''' || v ELSE v END;
"""


def connect(*, memory_limit: str = MEMORY_LIMIT, temp_directory: str | Path | None = None,
            threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with bounded memory, a spill folder and the FHIRPath macros."""
    config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": memory_limit}
    if threads:
        config["threads"] = threads
    connection = duckdb.connect(config=config)
    if temp_directory is not None:
        connection.execute(f"SET temp_directory = {quote(str(temp_directory))}")
    connection.execute(MACROS)
    connection.execute(SAFE_CELL)
    return connection


def write_tables(
    folder: str | Path,
    output: str | Path,
    fmt: str = "csv",
    *,
    views_folder: str | Path | None = None,
    memory_limit: str = MEMORY_LIMIT,
    threads: int | None = None,
    raw_csv: bool = False,
) -> dict[str, tuple[Path, int]]:
    """Write one table per view of the types in ``folder`` to ``output``; returns {view name: (file, rows)}."""
    files, views, out = plan_tables(folder, output, fmt, views_folder)
    written: dict[str, tuple[Path, int]] = {}
    with tempfile.TemporaryDirectory(prefix="duckdb-spill-", dir=out) as spill:
        connection = connect(memory_limit=memory_limit, temp_directory=spill, threads=threads)
        try:
            for view in views:
                paths = [str(p) for p in files[view["resource"]]]
                compiled = compile_view(view, sources(paths))
                target = out / f"{compiled.name}.{fmt}"
                try:
                    count = _copy(connection, compiled, target, fmt, raw_csv)
                except duckdb.Error as error:
                    raise _input_error(error, compiled, files[view["resource"]]) from None
                written[compiled.name] = (target, count)
        finally:
            connection.close()
    return written


def _copy(connection: duckdb.DuckDBPyConnection, compiled: CompiledView, target: Path, fmt: str,
          raw_csv: bool) -> int:
    if fmt == "csv":
        # CRLF as Python's csv module writes it, so both engines give the same bytes.
        options = "FORMAT csv, HEADER true, NEW_LINE '\r\n'"
        query = compiled.sql
        if not raw_csv:
            cells = [f"fp_safe_cell(CAST({_column(name)} AS VARCHAR)) AS {_column(name)}" for name in compiled.columns]
            query = f"SELECT {', '.join(cells)} FROM ({compiled.sql})"  # noqa: S608 - compiled from view files
    else:
        # Parquet types as the tables always had them: numbers as doubles, everything else text.
        cells = [_parquet_cell(name, kind) for name, kind in zip(compiled.columns, compiled.types, strict=True)]
        query = f"SELECT {', '.join(cells)} FROM ({compiled.sql})"  # noqa: S608 - compiled from view files
        options = "FORMAT parquet"
    row = connection.execute(f"COPY ({query}) TO {quote(str(target))} ({options})").fetchone()
    return int(row[0]) if row else 0


def _column(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _parquet_cell(name: str, kind: str | None) -> str:
    return f"CAST({_column(name)} AS {'DOUBLE' if kind in NUMBER_TYPES else 'VARCHAR'}) AS {_column(name)}"


def _input_error(error: duckdb.Error, compiled: CompiledView, paths: Sequence[Path]) -> InputError:
    return input_error(str(error), compiled, paths)
