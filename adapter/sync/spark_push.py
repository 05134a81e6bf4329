"""``push`` on Apache Spark: each partition of patients pushes its own bundles, with its own journal.

The input is a folder of mapped NDJSON, or a trial package, which is first mapped on Spark
(``spark_package``) into a folder beside the journals; its rejected rows are the report's source rejects.

Every resource falls in one stage, and a stage starts when the one before it has ended, so what is referenced
is on the server before what refers to it (a level of the one-machine push becomes a stage):

1. ``study``: what refers to no Patient (ResearchStudy, Group, Organization, Location, Medication...), pushed
   by the driver;
2. the partitions: a Patient, and what refers to it and to no other Patient (ResearchSubject, Consent,
   Observation, MedicationAdministration), fall in partition ``crc32(patient id) % N``, as in ``map package``.
   Each Spark task pushes its partition with ``adapter.sync.push.push`` (the same plan, levels within the
   partition, bundles and checks), its resources in the one-machine order (files in type order, lines in
   file order);
3. ``shared``: what refers to more than one Patient, pushed by the driver last.

A task Spark retries is safe: every write is a PUT to a deterministic id, so a second attempt writes the
same resources again, and a journal records only what the server took. Each stage and partition has its own
journal, ``<the one-machine journal>.spark/<stage>.sqlite``, which the executors must see (on a cluster, a
shared file system); the partitions' journals are named by N as well, so another N starts fresh journals and
its first run writes every patient's resources once more (the same content).

Tasks get the server's settings without its credentials and read those themselves, from the config file and
their environment: secrets never travel in Spark's task payloads. On a cluster the executors need the config
file and the secrets' variables (``spark.executorEnv.*``) or files.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapter.client import FhirClient
from adapter.engines.spark_engine import session
from adapter.engines.spark_package import partition_of, write_mapped_package
from adapter.errors import AdapterError, ConfigError, InputError
from adapter.fhir.json import loads
from adapter.fhir.ndjson import parse_line
from adapter.fhir.references import references
from adapter.settings import AuthSettings, ServerSettings, load_settings
from adapter.sources.package_descriptor import load_package
from adapter.sync.inputs import ordered_files, study_of
from adapter.sync.journal import Journal, journal_path
from adapter.sync.push import push
from adapter.sync.report import Failure, PushReport

if TYPE_CHECKING:
    from pyspark import RDD
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# Stages besides the partitions 0..N-1, and the mark of a line that is not a resource.
STUDY, SHARED, BAD = -1, -2, -3


def push_on_spark(
    source: str | Path,
    server: ServerSettings,
    journal_dir: Path,
    *,
    config_file: Path | None = None,
    spark: SparkSession | None = None,
    master: str | None = None,
    partitions: int | None = None,
    full: bool = False,
    dry_run: bool = False,
) -> PushReport:
    """Push ``source`` (a trial package or a folder of mapped NDJSON) to ``server`` on Spark.

    ``config_file`` is where the tasks read the server's settings (None: ``server`` is an unconfigured URL).
    ``partitions``: how many (default: the session's default parallelism).
    """
    started = time.monotonic()
    source = Path(source)
    if source.is_file():
        raise ConfigError(f"{source} is a study record: push it without --engine spark (it is one bundle)")
    with FhirClient.from_settings(server) as client:
        client.capabilities()  # a server never reached starts no Spark job and leaves no journal behind
    spark = spark or session(master)
    count = partitions or spark.sparkContext.defaultParallelism
    package = (source / "package.yaml").is_file()
    study = load_package(source).nct_id if package else study_of(source)
    folder = journal_path(journal_dir, server.base_url, study).with_suffix(".spark")
    folder.mkdir(parents=True, exist_ok=True)
    mapped = folder / "mapped"
    try:
        if package:
            log.info("mapping the package on Spark, %d partition(s)", count)
        rejects = _map(source, mapped, spark, count) if package else None
        report = _push_stages(mapped if package else source, server, folder, study, spark, count,
                              config_file=config_file, full=full, dry_run=dry_run)
    finally:
        shutil.rmtree(mapped, ignore_errors=True)  # patient data: kept no longer than the push
    if rejects is not None:
        report.source_rejects, report.source_reject_causes = rejects
    report.seconds = time.monotonic() - started
    return report


def _map(package: Path, out: Path, spark: SparkSession, count: int) -> tuple[int, dict[str, int]]:
    """Map the package on Spark into ``out``; its rejected rows (logged by where, never by value) and causes."""
    report = write_mapped_package(package, out, spark=spark, partitions=count)
    with (out / "rejects.ndjson").open(encoding="utf-8") as lines:
        for line in lines:
            reject = json.loads(line)
            log.warning("row rejected at %s:%s: %s (trialfhir map writes the reasons to its rejects file)",
                        reject["file"], reject["line"], reject["column"])
    return report.rejected, dict(sorted(report.causes.items()))


def _push_stages(folder: Path, server: ServerSettings, journals: Path, study: str, spark: SparkSession,
                 count: int, *, config_file: Path | None, full: bool, dry_run: bool) -> PushReport:
    from pyspark import StorageLevel

    files = ordered_files(folder)
    keyed = _keyed(spark, files, count).persist(StorageLevel.MEMORY_AND_DISK)  # parsed once, read by 3 stages
    try:
        bad = keyed.filter(lambda row: row[0][0] == BAD).takeOrdered(1)
        if bad:
            (_, rank, index), (reason, field) = bad[0]
            raise InputError(reason, source=str(files[rank][1]), line=index + 1, field=field)
        options = {"full": full, "dry_run": dry_run}
        # The server without its credentials: each task reads them itself (see the module's docstring), from
        # the config file by its absolute path (a task's working folder is Spark's choice).
        config = str(config_file.resolve()) if config_file else None
        target = (replace(server, auth=AuthSettings()), server.auth.type, config, str(journals), study, options)
        study_lines = _lines(keyed, STUDY)
        log.info("stage study: %d resource(s), from the driver", len(study_lines))
        reports = [_push_part(study_lines, "study", target)]
        _stop_if_failed(reports)  # the partitions refer to what the study stage writes
        log.info("stage partitions: %d Spark task(s), each with its patients' resources", count)
        task = _task(target, count)
        rows = keyed.filter(lambda row: 0 <= row[0][0] < count)
        reports += rows.repartitionAndSortWithinPartitions(count, lambda key: key[0]).mapPartitionsWithIndex(
            task).collect()
        _stop_if_failed(reports)  # what spans patients refers to every partition's
        shared_lines = _lines(keyed, SHARED)
        log.info("stage shared: %d resource(s) that refer to several patients, from the driver", len(shared_lines))
        reports.append(_push_part(shared_lines, "shared", target))
    finally:
        keyed.unpersist()
    _stop_if_failed(reports)
    return _merged(server.base_url, study, dry_run, reports)


def _stop_if_failed(reports: list[dict[str, Any]]) -> None:
    for part in reports:
        if "error" in part:
            raise AdapterError(f"{part['stage']} failed: {part['error']} (what it wrote is in its journal: "
                               "run the push again to resume)")


def _keyed(spark: SparkSession, files: list[tuple[str, Path]], count: int) -> RDD[Any]:
    """Every non-blank line as ((stage, file rank, line index), line), or ((BAD, ...), (reason, field))."""
    context = spark.sparkContext
    parts = [context.textFile(str(path)).zipWithIndex().flatMap(_keyer(rank, kind, count))
             for rank, (kind, path) in enumerate(files)]
    return context.union(parts)


def _keyer(rank: int, kind: str, count: int) -> Callable[[tuple[str, int]], Iterator[tuple[Any, Any]]]:
    def key(item: tuple[str, int]) -> Iterator[tuple[Any, Any]]:
        line, index = item
        if not line.strip():
            return
        try:
            resource = parse_line(line, Path(kind), index + 1, kind)
        except InputError as error:
            yield (BAD, rank, index), (error.reason, error.field)
            return
        yield (stage_of(resource, count), rank, index), line
    return key


def stage_of(resource: dict[str, Any], count: int) -> int:
    """The partition of the one Patient a resource is or refers to; else STUDY (none) or SHARED (several)."""
    if resource["resourceType"] == "Patient" and isinstance(resource.get("id"), str):
        return partition_of(resource["id"], count)
    patients = {key for key in references(resource) if key.startswith("Patient/")}
    if not patients:
        return STUDY
    if len(patients) > 1:
        return SHARED
    return partition_of(patients.pop().split("/", 1)[1], count)


def _lines(keyed: RDD[Any], stage: int) -> list[str]:
    """The lines of a driver stage in the one-machine order (few: study-level resources)."""
    return [line for _, line in sorted(keyed.filter(lambda row: row[0][0] == stage).collect())]


def _task(target: tuple[Any, ...], count: int) -> Callable[[int, Iterable[Any]], Iterator[dict[str, Any]]]:
    def run(partition: int, rows: Iterable[Any]) -> Iterator[dict[str, Any]]:
        yield _push_part((line for _, line in rows), f"part-{partition:05d}-of-{count:05d}", target)
    return run


def _push_part(lines: Iterable[str], stage: str, target: tuple[Any, ...]) -> dict[str, Any]:
    """Push one stage's resources with its own journal; the report as plain data, or the error that stopped it."""
    server, auth, config_file, journals, study, options = target
    try:
        if auth != "none":
            configured = load_settings(config_file).server(server.name)
            if configured.base_url != server.base_url:
                raise ConfigError(f"the config file here names another URL for server {server.name!r}")
            server = replace(server, auth=configured.auth)
        with FhirClient.from_settings(server) as client, \
                Journal(Path(journals) / f"{stage}.sqlite", base_url=server.base_url, study=study) as journal:
            report = push((loads(line) for line in lines), client=client, journal=journal, study=study,
                          bundle_entries=server.bundle_entries, bundle_bytes=server.bundle_bytes,
                          concurrency=server.concurrency, write_mode=server.write_mode, **options)
    except AdapterError as error:  # said by the driver; the message names no patient values
        return {"stage": stage, "error": str(error)}
    result = asdict(report)
    result["failures"] = [{**failure, "outcome": None} for failure in result["failures"]]
    return result


def _merged(server: str, study: str, dry_run: bool, reports: list[dict[str, Any]]) -> PushReport:
    """One report from the stages' reports: counts summed, failures and removed keys joined."""
    merged = PushReport(server=server, study=study, strategy=reports[0]["strategy"], dry_run=dry_run,
                        full=any(part["full"] for part in reports))
    for part in reports:
        for kind, counts in part["types"].items():
            summary = merged.count(kind)
            for name, value in counts.items():
                setattr(summary, name, getattr(summary, name) + value)
        merged.failures += [Failure(**failure) for failure in part["failures"]]
        merged.removed += part["removed"]
        merged.bundles += part["bundles"]
    return merged
