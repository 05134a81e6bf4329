"""Benchmark: a trial package to NDJSON, ours against a fhir.resources baseline, and peak memory by size.

For each size (measurements, default 100,000 and 1,000,000) the seeded generator
writes a package under ``bench/work/`` (kept between runs), then each measurement
runs in a fresh subprocess pinned to one CPU:

- ``ours``: ``map_package`` (read, check, map) and the project's stable
  ``json.dumps`` per resource, written to /dev/null;
- ``baseline``: the same read and map, then each resource built as its
  ``fhir.resources.R4B`` model (``model_validate``) and serialized with
  ``model_dump_json()`` — what a pipeline that builds resources through the models
  costs. By default only at the smallest size (it is slow); ``--baseline-all`` runs it
  at every size.

Each child reports resources, seconds and its peak RSS (``VmHWM``, see ``measure.py``).

``--engines`` instead compares whole ``map package`` runs that write the output folder, not pinned:
``python`` (``adapter.package.write_mapped_package``, one process) against ``spark-1`` and
``spark-2`` (``adapter.engines.spark_package`` on ``local[1]`` and ``local[2]``, one partition per
core; the session's start timed apart, the JVM's and its Python workers' peak RSS added up). Usage:

    .venv/bin/python bench/bench_map_package.py [--sizes 100000 1000000] [--baseline-all]
    .venv/bin/python bench/bench_map_package.py --engines [--sizes 100000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from measure import (  # bench/ is the script's folder, so first on sys.path
    descendants_cpu_seconds,
    descendants_peak_mib,
    peak_rss_mib,
)

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / "work"
GENERATOR = REPO / "fixtures" / "NCT04753476" / "generate.py"
MEASUREMENTS_PER_SUBJECT = 4640 / 48  # the seed package's ratio


def engine_child(mode: str, folder: Path) -> None:
    """One whole ``map package`` run (output folder written) by ``mode``, printed as JSON."""
    import shutil
    import tempfile

    out = Path(tempfile.mkdtemp(prefix=f"map-{mode}-", dir=WORK)) / "out"
    start, startup, jvm, first, warm, jvm_cpu = time.perf_counter(), 0.0, 0.0, 0.0, 0.0, 0.0
    cpu_start = time.process_time()
    if mode == "python":
        from adapter.package import write_mapped_package

        report = write_mapped_package(folder, out)
    else:
        from adapter.engines import spark_engine, spark_package

        workers = int(mode.split("-")[1])
        spark = spark_engine.session(f"local[{workers}]")
        startup, start = time.perf_counter() - start, time.perf_counter()
        report = spark_package.write_mapped_package(folder, out, spark=spark, partitions=workers)
        # Once more in the same session: the Python workers are started and the JVM's code compiled by now.
        first, again = time.perf_counter() - start, time.perf_counter()
        spark_package.write_mapped_package(folder, out, spark=spark, partitions=workers)
        warm = time.perf_counter() - again
        jvm, jvm_cpu = descendants_peak_mib(), descendants_cpu_seconds()
        spark.stop()
    seconds = first or time.perf_counter() - start
    shutil.rmtree(out.parent)
    print(json.dumps({"mode": mode, "resources": sum(report.resources.values()),
                      "measurements": report.files["measurements.csv"].read, "seconds": seconds,
                      "warm": warm, "startup": startup, "peak_rss_mib": peak_rss_mib(), "jvm_mib": jvm,
                      "cpu": time.process_time() - cpu_start + jvm_cpu}))


def child(mode: str, folder: Path) -> None:
    """Run one measurement in this process and print it as JSON."""
    if mode in ("python", "spark-1", "spark-2"):
        engine_child(mode, folder)
        return
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from adapter.package import dumps, map_package

    if mode == "baseline":
        from fhir.resources.R4B import get_fhir_model_class

        models = {kind: get_fhir_model_class(kind) for kind in
                  ("Patient", "ResearchSubject", "Observation", "MedicationAdministration")}

        def serialize(res: dict[str, object]) -> str:
            return str(models[str(res["resourceType"])].model_validate(res).model_dump_json())
    else:
        serialize = dumps

    start, cpu_start = time.perf_counter(), time.process_time()
    count = 0
    mapping = map_package(folder)
    with open(os.devnull, "w", encoding="utf-8") as sink:
        for res in mapping:
            sink.write(serialize(res) + "\n")
            count += 1
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    report = mapping.report
    print(json.dumps({
        "mode": mode,
        "resources": count,
        "measurements": report.files["measurements.csv"].read,
        "rejected": report.rejected,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mib": peak_rss_mib(),
    }))


def package_for(measurements: int) -> Path:
    subjects = math.ceil(measurements / MEASUREMENTS_PER_SUBJECT)
    folder = WORK / f"package-{subjects}-subjects"
    if not (folder / "administrations.csv").is_file():
        subprocess.run([sys.executable, str(GENERATOR), "--subjects", str(subjects), "--out", str(folder)], check=True)
    return folder


def run_child(mode: str, folder: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(folder)], check=True,
                         capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="measurements per package")
    parser.add_argument("--baseline-all", action="store_true", help="run the baseline at every size")
    parser.add_argument("--engines", action="store_true", help="python against Spark local[1] and local[2]")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    if args.engines:
        engines(sorted(args.sizes))
        return
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; each run pinned to one CPU")
    rows = []
    for n, size in enumerate(sorted(args.sizes)):
        folder = package_for(size)
        modes = ["ours", "baseline"] if n == 0 or args.baseline_all else ["ours"]
        for mode in modes:
            result = run_child(mode, folder)
            # Rate per CPU second of the one core the child ran on: the machine is shared,
            # so wall-clock time also counts other processes' turns.
            result["rate"] = result["resources"] / result["cpu_seconds"]
            rows.append(result)
            print(f"{mode:8} {int(result['measurements']):>9} measurements {int(result['resources']):>9} resources "
                  f"{result['seconds']:7.1f} s wall {result['cpu_seconds']:7.1f} s CPU "
                  f"{result['rate']:7.0f} resources/CPU-s  peak RSS {result['peak_rss_mib']:6.1f} MiB", flush=True)
    by_size = {}
    for row in rows:
        by_size.setdefault(row["measurements"], {})[row["mode"]] = row
    for size, modes in by_size.items():
        if "baseline" in modes:
            print(f"speed-up at {int(size)} measurements: {modes['ours']['rate'] / modes['baseline']['rate']:.1f}x")


def engines(sizes: list[int]) -> None:
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("| engine | measurements | resources | wall | resources/s | again, same session | start-up | CPU s, all runs "
          "| peak RSS | JVM + workers peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in sizes:
        folder = package_for(size)
        for mode in ("python", "spark-1", "spark-2"):
            r = run_child(mode, folder)
            jvm = f"{r['jvm_mib']} MiB" if r["jvm_mib"] else "-"
            warm = f"{r['warm']:.1f} s, {r['resources'] / r['warm']:,.0f}/s" if r["warm"] else "-"
            print(f"| {mode} | {int(r['measurements']):,} | {int(r['resources']):,} | {r['seconds']:.1f} s | "
                  f"{r['resources'] / r['seconds']:,.0f} | {warm} | {r['startup']:.1f} s | {r['cpu']:.1f} | "
                  f"{r['peak_rss_mib']} MiB | "
                  f"{jvm} |", flush=True)


if __name__ == "__main__":
    main()
