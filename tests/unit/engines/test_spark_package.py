"""``map package`` on Spark (local[2]): the one-machine output, byte for byte after sorting lines, same report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from adapter.cli import main
from adapter.engines import spark_package
from adapter.errors import InputError
from adapter.package import write_mapped_package

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SEED = Path(__file__).resolve().parents[3] / "fixtures" / "NCT04753476"
# Rows the reader rejects, each for another reason, and a quoted cell over two lines (lines after it keep
# their numbers only if the partitions' copies keep every line).
BAD_ROWS = (
    "06-0048,D28,IL6,abc,pg/mL,2021-02-26T07:15,,,\n"
    '06-0048,D28,CXR,"two\nlines",,2021-02-26T09:15,,,\n'
    "06-0048,D28,SARSCOV2,NOT_DETECTED,,2021-02-26,,,N\n"
    "06-0048,D28,IL10,1.0\n"
    "99-9999,SCR,IL6,1.0,pg/mL,2020-06-11T09:15,,,\n"
)


def _same_output(one: Path, spark: Path) -> None:
    assert sorted(p.name for p in spark.iterdir()) == sorted(p.name for p in one.iterdir())
    for path in one.iterdir():
        assert sorted((spark / path.name).read_bytes().splitlines()) == sorted(path.read_bytes().splitlines()), path


def _package(tmp_path: Path, more_measurements: str) -> Path:
    package = tmp_path / "package"
    shutil.copytree(SEED, package)
    with (package / "measurements.csv").open("a", encoding="utf-8", newline="") as handle:
        handle.write(more_measurements)
    return package


@pytest.mark.parametrize("partitions", [2, 3])
def test_the_seed_trial_maps_as_on_one_machine(spark: SparkSession, tmp_path: Path, partitions: int) -> None:
    one = write_mapped_package(SEED, tmp_path / "one")
    ours = spark_package.write_mapped_package(SEED, tmp_path / "spark", spark=spark, partitions=partitions)
    assert ours.as_json() == one.as_json()
    assert ours.resources["Observation"] == 4640
    _same_output(tmp_path / "one", tmp_path / "spark")


def test_rejects_name_the_lines_of_the_original_file(spark: SparkSession, tmp_path: Path) -> None:
    package = _package(tmp_path, BAD_ROWS)
    one = write_mapped_package(package, tmp_path / "one")
    ours = spark_package.write_mapped_package(package, tmp_path / "spark", spark=spark)
    assert one.rejected == 4
    assert ours.as_json() == one.as_json()
    _same_output(tmp_path / "one", tmp_path / "spark")


def test_subjects_out_of_order_are_mapped_as_on_one_machine(spark: SparkSession, tmp_path: Path) -> None:
    """A subject whose rows come back later: the partitions map nothing, partition 0 everything."""
    package = _package(tmp_path, "01-0001,D28,IL6,2.0,pg/mL,2020-07-09T09:15,0.0,7.0,N\n")
    one = write_mapped_package(package, tmp_path / "one")
    ours = spark_package.write_mapped_package(package, tmp_path / "spark", spark=spark)
    assert one.causes == {"measurements.csv: subject_id: rows of a subject not contiguous": 1}
    assert ours.as_json() == one.as_json()
    _same_output(tmp_path / "one", tmp_path / "spark")


def test_strict_stops_at_the_first_reject_as_on_one_machine(spark: SparkSession, tmp_path: Path) -> None:
    package = _package(tmp_path, BAD_ROWS)
    with pytest.raises(InputError) as one:
        write_mapped_package(package, tmp_path / "one", strict=True)
    with pytest.raises(InputError) as ours:
        spark_package.write_mapped_package(package, tmp_path / "spark", spark=spark, strict=True)
    assert str(ours.value) == str(one.value)
    assert not (tmp_path / "spark").exists()


def test_the_cli_maps_on_spark(spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map", "package", str(SEED), "-o", str(tmp_path / "out"), "--engine", "spark", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["resources"]["Observation"] == 4640
    assert json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))["reconciles"] is True


def test_each_partition_maps_its_own_subjects(tmp_path: Path) -> None:
    results = [spark_package.map_partition(SEED, n, 3, tmp_path) for n in range(3)]
    for name, total in (("subjects.csv", 48), ("measurements.csv", 4640), ("administrations.csv", 1420)):
        rows = [result["files"][name]["read"] for result in results]
        assert all(rows) and sum(rows) == total, name
    # Spark may run a task again (after a failure elsewhere): the second attempt starts afresh.
    assert spark_package.map_partition(SEED, 1, 3, tmp_path) == results[1]


def test_spark_master_without_the_spark_engine_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["map", "package", str(SEED), "-o", str(tmp_path / "out"), "--spark-master", "local[2]"]) == 2
    assert "--spark-master is for --engine spark, not python" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
