"""The export tables from the shipped views on DuckDB: the same tables as the Python writer, values as written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from adapter.engines import duckdb_engine
from adapter.engines.views import column_names, load_views
from adapter.errors import ConfigError, InputError
from adapter.export import tables
from adapter.export.csvcell import safe_cell
from adapter.export.exporter import ENGINES, export
from tests.unit.export.trial import resources, write_folder


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_views_have_the_columns_of_the_tables() -> None:
    views = load_views()
    assert set(views) == set(tables.COLUMNS)
    for name, view in views.items():
        assert view["resource"] == name
        assert column_names(view) == [column.name for column in tables.columns(name)], name


def test_csv_is_the_python_writers_table(tmp_path: Path) -> None:
    """Byte for byte, but for numbers: a decimal keeps the digits it was written with (22.0 stays 22.0)."""
    folder = write_folder(tmp_path / "in")
    python = tables.write_tables(folder, tmp_path / "python", "csv")
    duck = duckdb_engine.write_tables(folder, tmp_path / "duckdb", "csv")
    assert {kind: count for kind, (_, count) in duck.items()} == {kind: count for kind, (_, count) in python.items()}
    for kind, (path, _) in python.items():
        numbers = {c.name for c in tables.columns(kind) if c.number}
        if not numbers:
            assert duck[kind][0].read_bytes() == path.read_bytes(), kind
        for ours, theirs in zip(_csv(duck[kind][0]), _csv(path), strict=True):
            assert {k: v for k, v in ours.items() if k not in numbers} == {
                k: v for k, v in theirs.items() if k not in numbers}, kind
            assert [float(ours[n]) if ours[n] else None for n in numbers] == [
                float(theirs[n]) if theirs[n] else None for n in numbers], kind


def test_parquet_holds_the_csv_values_with_numbers_as_doubles(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "in")
    duckdb_engine.write_tables(folder, tmp_path / "csv", "csv")
    duckdb_engine.write_tables(folder, tmp_path / "pq", "parquet")
    for kind in ("Observation", "MedicationAdministration", "ResearchStudy", "Patient"):
        table = pq.read_table(tmp_path / "pq" / f"{kind}.parquet")
        number_columns = {c.name for c in tables.columns(kind) if c.number}
        assert {f.name for f in table.schema if str(f.type) == "double"} == number_columns
        for text_row, typed_row in zip(_csv(tmp_path / "csv" / f"{kind}.csv"), table.to_pylist(), strict=True):
            for name, text in text_row.items():
                typed = typed_row[name]
                assert (float(text) == typed) if isinstance(typed, float) else ((typed or "") == text), (kind, name)


def test_decimals_and_partial_dates_leave_as_written(tmp_path: Path) -> None:
    observation = {
        "resourceType": "Observation", "id": "o1", "status": "final", "effectiveDateTime": "2020-06",
        "code": {"coding": [{"system": "http://example.org/other", "code": "x"}, {"system": "http://loinc.org",
                                                                                   "code": "718-7"}]},
        "valueQuantity": {"value": "__VALUE__", "unit": "g/dL"},
        "referenceRange": [{"low": {"value": "__LOW__"}}],
    }
    line = json.dumps(observation).replace('"__VALUE__"', "2.40").replace('"__LOW__"', "1e1")
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1950", "deceasedBoolean": False}
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "Observation.ndjson").write_text(line + "\n", encoding="utf-8")
    (tmp_path / "in" / "Patient.ndjson").write_text(json.dumps(patient) + "\n", encoding="utf-8")
    duckdb_engine.write_tables(tmp_path / "in", tmp_path / "out", "csv")
    row = _csv(tmp_path / "out" / "Observation.csv")[0]
    assert (row["value"], row["reference_low"], row["effective_start"]) == ("2.40", "1e1", "2020-06")
    assert (row["code_system"], row["loinc"]) == ("http://example.org/other", "718-7"), "LOINC from any coding"
    assert _csv(tmp_path / "out" / "Patient.csv")[0]["birth_date"] == "1950"
    assert _csv(tmp_path / "out" / "Patient.csv")[0]["deceased"] == "false"


def test_a_type_without_a_view_gets_its_id_and_time(tmp_path: Path) -> None:
    encounter = {"resourceType": "Encounter", "id": "e1", "meta": {"lastUpdated": "2024-01-02T03:04:05.6+00:00"}}
    folder = write_folder(tmp_path / "in", [*resources(), encounter])
    written = duckdb_engine.write_tables(folder, tmp_path / "out", "csv")
    assert written["Encounter"][1] == 1
    assert _csv(tmp_path / "out" / "Encounter.csv") == [{"id": "e1", "last_updated": "2024-01-02T03:04:05.6+00:00"}]


def test_a_bad_line_names_file_and_line(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "in")
    with (folder / "Patient.ndjson").open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    with pytest.raises(InputError, match=r"Patient.ndjson:\d+: not JSON"):
        duckdb_engine.write_tables(folder, tmp_path / "out", "csv")


def test_a_resource_in_the_wrong_file_names_file_line_and_field(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "in")
    with (folder / "Patient.ndjson").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"resourceType": "Group", "id": "g"}) + "\n")
    with pytest.raises(InputError, match=r"Patient.ndjson:\d+: resourceType: a Group in the Patient file"):
        duckdb_engine.write_tables(folder, tmp_path / "out", "parquet")


def test_a_view_folder_of_ones_own(tmp_path: Path) -> None:
    view = {"resourceType": "ViewDefinition", "name": "lab_values", "status": "active", "resource": "Observation",
            "select": [{"column": [{"name": "id", "path": "id"}]},
                       {"forEach": "referenceRange",
                        "column": [{"name": "low", "path": "low.value", "type": "decimal"}]}]}
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "lab_values.json").write_text(json.dumps(view), encoding="utf-8")
    folder = write_folder(tmp_path / "in")
    written = duckdb_engine.write_tables(folder, tmp_path / "out", "csv", views_folder=tmp_path / "views")
    labs = _csv(tmp_path / "out" / "lab_values.csv")
    with_range = [r for r in resources() if r["resourceType"] == "Observation" and r.get("referenceRange")]
    assert written["lab_values"][1] == len(labs) == len(with_range)
    assert {row["low"] for row in labs} == {"0"}
    assert "Patient" in written, "types no view of the folder names still get their default table"


def test_a_broken_view_is_a_config_error_naming_its_file(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "in")
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "bad.json").write_text(json.dumps({"name": "bad", "select": []}), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.json: not a ViewDefinition we can run: no resource; no select"):
        duckdb_engine.write_tables(folder, tmp_path / "out", "csv", views_folder=tmp_path / "views")
    view = {"name": "bad", "resource": "Patient", "select": [{"column": [{"name": "x", "path": "name.descendants()"}]}]}
    (tmp_path / "views" / "bad.json").write_text(json.dumps(view), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"function descendants\(\) is not supported"):
        duckdb_engine.write_tables(folder, tmp_path / "out", "csv", views_folder=tmp_path / "views")


def test_memory_is_bounded_and_spills_to_disk(tmp_path: Path) -> None:
    connection = duckdb_engine.connect(memory_limit="300MB", temp_directory=tmp_path / "spill", threads=1)
    settings = dict(connection.execute(
        "SELECT name, value FROM duckdb_settings() WHERE name IN ('memory_limit', 'temp_directory', 'threads')"
    ).fetchall())
    connection.close()
    assert settings["memory_limit"].startswith(("286", "300"))  # DuckDB reports MiB
    assert settings["temp_directory"] == str(tmp_path / "spill")
    assert settings["threads"] == "1"


TRICKY = ["=1+1", "+cmd", "-5", "-5.5e3", "+1.5e3", "@SUM(A1)", "\tx", "\rx", "-x", "- 5", "a=b", "", ".5", "-.5",
          "1e5", "=", "+", "'quoted", "5-", "--5", "-5e", "2.40"]


@pytest.mark.parametrize("text", TRICKY)
def test_the_sql_safe_cell_is_csvcells_rule(text: str) -> None:
    connection = duckdb_engine.connect()
    (got,) = connection.execute("SELECT fp_safe_cell(?)", [text]).fetchone() or (None,)
    connection.close()
    assert got == safe_cell(text)


def test_csv_cells_are_neutralized_unless_raw(tmp_path: Path) -> None:
    patient = {"resourceType": "Patient", "id": "p1", "identifier": [{"system": "urn:x", "value": "=HYPERLINK(1)"}]}
    folder = write_folder(tmp_path / "in", [patient])
    duckdb_engine.write_tables(folder, tmp_path / "safe", "csv")
    duckdb_engine.write_tables(folder, tmp_path / "raw", "csv", raw_csv=True)
    tables.write_tables(folder, tmp_path / "python", "csv")
    assert _csv(tmp_path / "safe" / "Patient.csv")[0]["identifier"] == "'=HYPERLINK(1)"
    assert _csv(tmp_path / "raw" / "Patient.csv")[0]["identifier"] == "=HYPERLINK(1)"
    assert (tmp_path / "safe" / "Patient.csv").read_bytes() == (tmp_path / "python" / "Patient.csv").read_bytes()


def test_export_runs_the_engine_asked_for(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "in")
    for engine in set(ENGINES) - {"spark"}:  # Spark's own tests run it (test_spark_tables.py)
        report = export(folder, tmp_path / engine, "csv", engine=engine)
        assert report.files["Observation.csv"] == sum(1 for r in resources() if r["resourceType"] == "Observation")
    with pytest.raises(ConfigError, match="unknown engine 'nope'"):
        export(folder, tmp_path / "nope", "csv", engine="nope")
    with pytest.raises(ConfigError, match="--spark-master is for --engine spark, not duckdb"):
        export(folder, tmp_path / "duckdb", "csv", spark_master="local[2]")
