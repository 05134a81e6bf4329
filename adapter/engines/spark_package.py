"""``map package`` on Apache Spark: subjects partitioned, each partition mapped by the one-machine mapping.

Each Spark task (``mapPartitionsWithIndex`` over one item per partition) maps the subjects whose id falls in its
partition (crc32 of the id) with ``adapter.package.PackageMapping`` itself: the same readers, checks and
mappers, over a copy of the package's CSV files in which the other partitions' rows are blank lines. Blank
lines are not rows, so every row keeps its line number and every reject names the line of the original file.
All the rows of a subject fall in one partition, so the checks within a subject (duplicates, unknown subject)
see what the one-machine run sees. When a file's subjects are not contiguous (the one-machine reader rejects
rows across subjects then), partition 0 maps the whole package and the others nothing, so the output is still
the same. Every task reads the whole files (cheap next to mapping), from the package folder, which the driver
and the executors must both see (as the output folder).

The driver checks the package first (descriptor, CSV headers), writes the study's own resources, keeps the site
Organizations and each Medication once (every partition that gives a product maps its Medication), joins the
partitions' NDJSON, rejects and counts, and writes ``report.json``: the one-machine output, lines in another
order.
"""

from __future__ import annotations

import csv
import json
import shutil
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from adapter.errors import InputError
from adapter.fhir.json import dumps
from adapter.package import PackageMapping, Report, replacing_folder
from adapter.sources.package_csv import read_header
from adapter.sources.package_descriptor import ADMINISTRATIONS, MEASUREMENTS, SUBJECTS, Package, load_package

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

FILES = (SUBJECTS, MEASUREMENTS, ADMINISTRATIONS)
# Resources more than one partition maps (the same resource each time): the driver keeps one of each.
SHARED = ("Organization", "Medication")


def write_mapped_package(path: str | Path, out: str | Path, *, spark: SparkSession | None = None,
                         master: str | None = None, partitions: int | None = None, strict: bool = False) -> Report:
    """Map the package at ``path`` into ``out`` on Spark, as ``adapter.package.write_mapped_package`` does.

    ``partitions``: how many (default: the session's default parallelism). ``strict``: an InputError for the
    first rejected row, in file and line order, and nothing written.
    """
    from adapter.engines.spark_engine import session
    from adapter.studybundle import study_resources

    package = load_package(path)
    for name in FILES:  # a broken header fails here, before any task starts
        read_header(package.csv_path(name), name, package.dialect)
    spark = spark or session(master)
    count = partitions or spark.sparkContext.defaultParallelism
    with replacing_folder(out) as work:
        task = _task(str(package.root.resolve()), count, str(work.resolve()))
        results = spark.sparkContext.parallelize(range(count), count).mapPartitionsWithIndex(task).collect()
        report = _report(package, results)
        if strict and report.rejected:
            first = min((_order(r), r) for result in results for r in map(json.loads, result["rejects"]))[1]
            raise InputError(first["reason"], source=first["file"], line=first["line"], field=first["column"])
        _join(work, package, results, study_resources(package.record) if package.record else [])
        (work / "report.json").write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")
    return report


def _order(reject: dict[str, Any]) -> tuple[int, int]:
    return FILES.index(reject["file"]), reject["line"]


def _task(root: str, partitions: int, work: str) -> Callable[[int, Iterable[int]], Iterator[dict[str, Any]]]:
    def run(partition: int, _: Iterable[int]) -> Iterator[dict[str, Any]]:
        yield map_partition(Path(root), partition, partitions, Path(work))
    return run


def map_partition(root: Path, partition: int, partitions: int, work: Path) -> dict[str, Any]:
    """Map one partition's subjects; NDJSON to ``work/part-<n>/``; returns its counts, rejects and the shared
    resources (site Organizations, Medications) as lines."""
    package = load_package(root)
    own = work / f"part-{partition:05d}"
    shutil.rmtree(own, ignore_errors=True)  # what a failed attempt of this task left: Spark retries tasks
    own.mkdir()
    contiguous = [_own_rows(package, name, own / name, partition, partitions) for name in FILES]
    if all(contiguous):
        package = replace(package, root=own)
    elif partition != 0:
        return {"files": {}, "resources": {}, "causes": {}, "rejects": [], "shared": []}
    rejects: list[str] = []
    shared: list[tuple[str, str, str]] = []
    mapping = PackageMapping(package, on_reject=lambda r: rejects.append(dumps(r.as_json())))
    with ExitStack() as stack:
        streams: dict[str, IO[str]] = {}
        for resource in mapping:
            kind, line = resource["resourceType"], dumps(resource)
            if kind in SHARED:
                shared.append((kind, resource["id"], line))
                continue
            if kind not in streams:
                streams[kind] = stack.enter_context((own / f"{kind}.ndjson").open("w", encoding="utf-8",
                                                                                  newline="\n"))
            streams[kind].write(line + "\n")
    report = mapping.report
    return {"files": {name: vars(c) for name, c in report.files.items()}, "resources": dict(report.resources),
            "causes": dict(report.causes), "rejects": rejects, "shared": shared}


def partition_of(subject_id: str, partitions: int) -> int:
    """The partition of a subject: the same in every process (Python's own hash() is salted per process)."""
    return zlib.crc32(subject_id.encode("utf-8", "surrogateescape")) % partitions


def _own_rows(package: Package, name: str, target: Path, partition: int, partitions: int) -> bool:
    """Copy a package CSV file to ``target`` with the rows of other partitions as blank lines (a row the CSV
    reader cannot read, or without a subject, stays in partition 0); False when its subjects are not
    contiguous."""
    names = read_header(package.csv_path(name), name, package.dialect)
    column = names.index("subject_id")
    consumed: list[str] = []
    current, seen, contiguous = None, set(), True
    with package.csv_path(name).open(encoding="utf-8-sig", errors="surrogateescape", newline="") as stream, \
            target.open("w", encoding="utf-8", errors="surrogateescape", newline="") as out:
        def lines() -> Iterator[str]:
            for line in stream:
                consumed.append(line)
                yield line

        reader = csv.reader(lines(), delimiter=package.dialect.delimiter)
        next(reader)  # the header, checked by read_header
        out.write("".join(consumed))
        consumed.clear()
        while True:
            try:
                fields: list[str] | None = next(reader)
            except StopIteration:
                break
            except csv.Error:
                fields = None
            subject = fields[column].strip() if fields and len(fields) > column else None
            if subject and subject != current:
                contiguous = contiguous and subject not in seen
                seen.add(subject)
                current = subject
            mine = partition_of(subject, partitions) == partition if subject else partition == 0
            out.write("".join(consumed) if mine else "\n" * len(consumed))
            consumed.clear()
        out.write("".join(consumed))
    return contiguous


def _report(package: Package, results: list[dict[str, Any]]) -> Report:
    report = Report(package.nct_id)
    for result in results:
        for name, counts in result["files"].items():
            for key, value in counts.items():
                setattr(report.files[name], key, getattr(report.files[name], key) + value)
        for kind, value in result["resources"].items():
            if kind not in SHARED:
                report.resources[kind] += value
        for cause, value in result["causes"].items():
            report.causes[cause] = report.causes.get(cause, 0) + value
    for kind in SHARED:
        report.resources[kind] = len({key for r in results for k, key, _ in r["shared"] if k == kind})
    report.complete = True
    return report


def _join(work: Path, package: Package, results: list[dict[str, Any]], study: list[dict[str, Any]]) -> None:
    """The partitions' files as one NDJSON file per type, the study's resources and the shared ones once."""
    lines: dict[str, list[str]] = {}
    written: set[tuple[str, str]] = set()
    for resource in study:  # as the one-machine run: a sponsor may also be a collaborator
        key = (resource["resourceType"], resource["id"])
        if key not in written:
            written.add(key)
            lines.setdefault(resource["resourceType"], []).append(dumps(resource))
    kept: dict[tuple[str, str], str] = {}
    for result in results:
        for kind, key, line in result["shared"]:
            if kept.setdefault((kind, key), line) != line:
                raise AssertionError(f"two partitions mapped {kind}/{key} differently")
    for (kind, _), line in kept.items():
        lines.setdefault(kind, []).append(line)
    parts = sorted(work.glob("part-*"))
    kinds = sorted({p.stem for part in parts for p in part.glob("*.ndjson")} | set(lines))
    for kind in kinds:
        with (work / f"{kind}.ndjson").open("w", encoding="utf-8", newline="\n") as out:
            for line in lines.get(kind, []):
                out.write(line + "\n")
            for part in parts:
                if (part / f"{kind}.ndjson").is_file():
                    with (part / f"{kind}.ndjson").open(encoding="utf-8") as handle:
                        shutil.copyfileobj(handle, out)
    with (work / "rejects.ndjson").open("w", encoding="utf-8", newline="\n") as out:
        for result in results:
            out.writelines(line + "\n" for line in result["rejects"])
    for part in parts:
        shutil.rmtree(part)
