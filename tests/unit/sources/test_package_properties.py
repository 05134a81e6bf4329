"""Property-based tests of the trial package readers (hypothesis)."""

from __future__ import annotations

import csv
import io
import tempfile
from decimal import Decimal
from pathlib import Path

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.package import map_package
from adapter.sources.package_csv import check_cell, columns
from adapter.sources.package_descriptor import CSV_SCHEMAS, schema
from tests.unit.sources.trialpackage import MEASUREMENTS_HEADER, measurements, write_package

COLUMNS = [(file_name, name) for file_name in CSV_SCHEMAS for name in columns(file_name)]
QUANTITY_TESTS = [("IL6", "pg/mL"), ("CRP", "mg/L"), ("SPO2", "%"), ("TEMP", "Cel"), ("LYMPH", "10*3/uL")]

# Text that looks like what sites send, plus what breaks readers.
cell = st.one_of(
    st.sampled_from(["S1", "S2", "S9", "SCR", "D7", "IL6", "CRP", "SOFA", "SARSCOV2", "DETECTED", "pg/mL", "mg/dL",
                     "12.5", "-3", "1e5", "2020-07-01T08:30", "2020-07-01", "H", "", " ", "\"", ",", "\n"]),
    st.text(max_size=12),
    st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,3})?", fullmatch=True),
)


@settings(max_examples=300, deadline=None)
@given(column=st.sampled_from(COLUMNS), data=st.data())
def test_the_compiled_column_check_agrees_with_json_schema(column: tuple[str, str], data: st.DataObject) -> None:
    file_name, name = column
    spec = schema(CSV_SCHEMAS[file_name])["properties"][name]
    candidates = [st.text(max_size=40), cell]
    if "pattern" in spec:
        candidates.append(st.from_regex(spec["pattern"]))
    if "enum" in spec:
        candidates.append(st.sampled_from(spec["enum"]))
    value = data.draw(st.one_of(*candidates))
    valid_by_schema = jsonschema.Draft202012Validator({"properties": {name: spec}}).is_valid({name: value})
    assert (check_cell(columns(file_name)[name], value) is None) == valid_by_schema


def _rows_in(data: bytes) -> int:
    """Rows the csv module finds after the header (blank lines are not rows), counted independently."""
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader, None)
    count = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return count
        except csv.Error:
            count += 1
            continue
        count += bool(fields)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.lists(cell, min_size=0, max_size=11), max_size=12),
    junk=st.lists(st.binary(max_size=4), max_size=3),
)
def test_every_row_is_mapped_or_rejected_whatever_the_bytes(rows: list[list[str]], junk: list[bytes]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MEASUREMENTS_HEADER.split(","))
    for row in rows:
        writer.writerow(row)
    data = buffer.getvalue().encode("utf-8") + b"\n".join(junk)
    with tempfile.TemporaryDirectory() as folder:
        mapping = map_package(write_package(Path(folder), measurements=data))
        resources = list(mapping)
    report = mapping.report
    counts = report.files["measurements.csv"]
    assert report.reconciles() and report.complete
    assert counts.read == _rows_in(data)
    assert counts.mapped == report.resources["Observation"]
    assert sum(r["resourceType"] == "Observation" for r in resources) == counts.mapped
    assert all(reject.file == "measurements.csv" and reject.line >= 2 and reject.reason for reject in report.rejects)


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(
        st.tuples(
            st.sampled_from(QUANTITY_TESTS),
            st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
        ),
        min_size=1,
        max_size=8,
        unique_by=lambda v: v[0][0],
    ),
    hour=st.integers(0, 23),
)
def test_valid_quantities_come_out_unchanged_with_the_site_offset(
    values: list[tuple[tuple[str, str], Decimal]], hour: int
) -> None:
    rows = [f"S1,SCR,{code},{value},{unit},2020-07-01T{hour:02d}:05,,," for (code, unit), value in values]
    with tempfile.TemporaryDirectory() as folder:
        mapping = map_package(write_package(Path(folder), measurements=measurements(*rows)))
        observations = [r for r in mapping if r["resourceType"] == "Observation"]
    assert mapping.report.rejects == []
    for ((_, unit), value), obs in zip(values, observations, strict=True):
        assert Decimal(str(obs["valueQuantity"]["value"])) == value
        assert obs["valueQuantity"]["code"] == unit
        assert obs["effectiveDateTime"] == f"2020-07-01T{hour:02d}:05:00+07:00"
