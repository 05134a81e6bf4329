"""Tables: one per resource type, one row per resource, codes/values/units/times as columns."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from adapter.errors import ConfigError, InputError
from adapter.export.exporter import export
from adapter.export.tables import write_tables
from tests.unit.export.trial import resources, write_folder


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_has_one_row_per_resource_with_values_units_and_times(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "in")
    written = write_tables(folder, tmp_path / "out", "csv")
    expected = {}
    for resource in resources():
        expected[resource["resourceType"]] = expected.get(resource["resourceType"], 0) + 1
    assert {kind: count for kind, (_, count) in written.items()} == expected
    rows = {row["id"]: row for row in _csv(tmp_path / "out" / "Observation.csv")}
    source = next(r for r in resources() if r["resourceType"] == "Observation")
    row = rows[source["id"]]
    assert row["loinc"] == "26881-3"
    assert float(row["value"]) == source["valueQuantity"]["value"]
    assert row["unit_code"] == "pg/mL"
    assert row["effective_start"] == source["effectiveDateTime"]
    assert row["reference_low"] == "0" and row["reference_high"] == "7"
    assert row["interpretation"] == "H"
    assert row["patient"] == source["subject"]["reference"].split("/")[1]
    zero = next(r for r in rows.values() if r["loinc"] == "96790-1")
    assert zero["value"] == "0", "an integer value of 0 is a value, not a blank"


def test_parquet_matches_csv(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "in")
    write_tables(folder, tmp_path / "csv", "csv")
    write_tables(folder, tmp_path / "pq", "parquet")
    for kind in ("Observation", "MedicationAdministration", "ResearchSubject"):
        from_csv = _csv(tmp_path / "csv" / f"{kind}.csv")
        table = pq.read_table(tmp_path / "pq" / f"{kind}.parquet").to_pylist()
        assert len(table) == len(from_csv)
        for text_row, typed_row in zip(from_csv, table, strict=True):
            for name, text in text_row.items():
                typed = typed_row[name]
                if isinstance(typed, float):
                    assert float(text) == typed, (kind, name)
                else:
                    assert (typed or "") == text, (kind, name)


def test_medication_administration_columns(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "in")
    write_tables(folder, tmp_path / "out", "csv")
    row = _csv(tmp_path / "out" / "MedicationAdministration.csv")[0]
    assert (row["dose"], row["dose_unit_code"], row["route_code"]) == ("1.5", "mL", "78421000")
    assert row["effective_start"] == "2020-06-11T09:00:00+07:00"
    assert row["effective_end"] == "2020-06-11T09:05:00+07:00"


def test_ndjson_export_keeps_every_resource_and_writes_a_manifest(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "in")
    report = export(folder, tmp_path / "out", "ndjson")
    assert sum(report.files.values()) == len(resources())
    manifest = (tmp_path / "out" / "manifest.json").read_text(encoding="utf-8")
    assert '"type": "Observation"' in manifest


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "in")
    with (folder / "Patient.ndjson").open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    with pytest.raises(InputError, match=r"Patient.ndjson:\d+: not JSON"):
        write_tables(folder, tmp_path / "out", "csv")


def test_unknown_format_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown export format"):
        export(write_folder(tmp_path / "in"), tmp_path / "out", "xlsx")
