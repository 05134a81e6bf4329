"""The export tables on Apache Spark (local[2]): the DuckDB engine's tables, byte for byte after sorting rows.

The seed trial's package is mapped once (``map package``) and exported by both engines; the
official SQL on FHIR v2 cases run on the Spark compiler as they do on DuckDB's.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from adapter.engines import duckdb_engine, spark_engine, spark_sql
from adapter.engines.views import check
from adapter.errors import ConfigError, InputError
from adapter.export.exporter import export
from adapter.package import write_mapped_package
from tests.unit.engines.test_duckdb_tables import TRICKY
from tests.unit.engines.test_sql_on_fhir import _cases, _rows
from tests.unit.export.trial import write_folder

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SEED = Path(__file__).resolve().parents[3] / "fixtures" / "NCT04753476"


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("seed") / "mapped"
    write_mapped_package(SEED, folder)
    return folder


def _sorted_lines(path: Path) -> list[bytes]:
    header, *rows = path.read_bytes().split(b"\r\n")
    return [header, *sorted(rows)]


def test_the_seed_trials_csv_is_duckdbs(spark: SparkSession, seed: Path, tmp_path: Path) -> None:
    duck = duckdb_engine.write_tables(seed, tmp_path / "duckdb", "csv")
    ours = spark_engine.write_tables(seed, tmp_path / "spark", "csv", spark=spark)
    assert {name: rows for name, (_, rows) in ours.items()} == {name: rows for name, (_, rows) in duck.items()}
    assert duck["Observation"][1] == 4640
    for name, (path, _) in duck.items():
        assert _sorted_lines(ours[name][0]) == _sorted_lines(path), name


def test_the_seed_trials_parquet_holds_duckdbs_rows_and_types(spark: SparkSession, seed: Path,
                                                               tmp_path: Path) -> None:
    duck = duckdb_engine.write_tables(seed, tmp_path / "duckdb", "parquet")
    ours = spark_engine.write_tables(seed, tmp_path / "spark", "parquet", spark=spark)
    assert {name: rows for name, (_, rows) in ours.items()} == {name: rows for name, (_, rows) in duck.items()}
    for name, (path, _) in duck.items():
        theirs, mine = pq.read_table(path), pq.read_table(ours[name][0])
        assert [(f.name, str(f.type)) for f in mine.schema] == [(f.name, str(f.type)) for f in theirs.schema], name
        key = [json.dumps(row, sort_keys=True) for row in mine.to_pylist()]
        assert sorted(key) == sorted(json.dumps(row, sort_keys=True) for row in theirs.to_pylist()), name


def test_cells_are_quoted_and_neutralized_as_duckdb_does(spark: SparkSession, tmp_path: Path) -> None:
    texts = [*TRICKY, 'say "hi"', "a,b", "line\nbreak", "cr\rhere", "#hash", "NULL", " padded "]
    patients = [{"resourceType": "Patient", "id": f"p{n}", "identifier": [{"system": "urn:x", "value": text}]}
                for n, text in enumerate(texts)]
    folder = write_folder(tmp_path / "in", patients)
    for raw_csv in (False, True):
        duck = duckdb_engine.write_tables(folder, tmp_path / f"duckdb{raw_csv}", "csv", raw_csv=raw_csv)
        ours = spark_engine.write_tables(folder, tmp_path / f"spark{raw_csv}", "csv", spark=spark, raw_csv=raw_csv)
        # Rows hold line breaks here, so they are compared as the CSV reader's rows.
        for name, (path, _) in duck.items():
            assert sorted(_records(ours[name][0])) == sorted(_records(path)), name
            assert ours[name][0].stat().st_size == path.stat().st_size, name


def _records(path: Path) -> list[bytes]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [json.dumps(row).encode() for row in csv.reader(handle)]


def test_export_runs_on_spark(spark: SparkSession, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "in")
    report = export(folder, tmp_path / "spark", "csv", engine="spark", spark_master="local[2]")
    duck = export(folder, tmp_path / "duckdb", "csv", engine="duckdb")
    assert report.as_json()["engine"] == "spark"
    assert report.files == duck.files
    for name in duck.files:
        assert _sorted_lines(tmp_path / "spark" / name) == _sorted_lines(tmp_path / "duckdb" / name), name


def test_a_bad_line_names_file_and_line(spark: SparkSession, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "in")
    with (folder / "Patient.ndjson").open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    with pytest.raises(InputError, match=r"Patient.ndjson:\d+: not JSON"):
        spark_engine.write_tables(folder, tmp_path / "out", "csv", spark=spark)


def test_several_values_where_one_is_expected_is_named(spark: SparkSession, tmp_path: Path) -> None:
    view = {"resourceType": "ViewDefinition", "name": "names", "status": "active", "resource": "Patient",
            "select": [{"column": [{"name": "given", "path": "name.given"}]}]}
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "names.json").write_text(json.dumps(view), encoding="utf-8")
    patient = {"resourceType": "Patient", "id": "p1", "name": [{"given": ["Ann", "Bo"]}]}
    folder = write_folder(tmp_path / "in", [patient])
    with pytest.raises(InputError, match="view names: column given: several values where the view expects one"):
        spark_engine.write_tables(folder, tmp_path / "out", "csv", spark=spark, views_folder=tmp_path / "views")


def _run(spark: SparkSession, resources: list[dict[str, Any]], view: dict[str, Any],
         folder: Path) -> tuple[list[str], list[dict[str, Any]]]:
    problems = check(view)
    if problems:
        raise ConfigError("; ".join(problems))
    path = folder / f"{view['resource']}.ndjson"
    with path.open("w", encoding="utf-8") as out:
        for resource in resources:
            if resource["resourceType"] == view["resource"]:
                out.write(json.dumps(resource) + "\n")
    compiled = spark_sql.compile_view(view, "case_resources")
    spark_engine.resources(spark, [path]).createOrReplaceTempView("case_resources")
    rows = spark.sql(compiled.sql).collect()
    return list(compiled.columns), [dict(zip(compiled.columns, row, strict=True)) for row in rows]


@pytest.mark.parametrize(("resources", "case"), list(_cases()))
def test_official_case(spark: SparkSession, resources: list[dict[str, Any]], case: dict[str, Any],
                       tmp_path: Path) -> None:
    from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException

    view = {"name": "case", **case["view"]}
    if case.get("expectError"):
        with pytest.raises((ConfigError, PySparkException, Py4JJavaError)):
            _run(spark, resources, view, tmp_path)
        return
    columns, rows = _run(spark, resources, view, tmp_path)
    if "expectCount" in case:
        assert len(rows) == case["expectCount"]
        return
    assert _rows(rows) == _rows(case["expect"])
    if "expectColumns" in case:
        assert columns == case["expectColumns"]


def test_without_java_spark_is_a_config_error(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "in")
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java")}
    done = subprocess.run([sys.executable, "-m", "adapter", "export", str(folder), "--format", "csv", "-o",
                           str(tmp_path / "out"), "--engine", "spark"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 2
    assert "trialfhir: error: Spark did not start (it needs Java 17; is JAVA_HOME right?)" in done.stderr
