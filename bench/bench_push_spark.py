"""Push on one machine against push on Spark ``local[1]`` and ``local[2]``, side by side against one real server.

Each mode pushes its own fresh synthetic trial of the same shape (one Organization, one ResearchStudy, and per
subject a Patient, a ResearchSubject and ``--measurements`` Observations) from a folder of NDJSON, so every
write is a create, then pushes it again (the re-sync: nothing changed, nothing written). Each mode runs in a
fresh subprocess, which reports its seconds, the server's writes and its peak RSS:

- ``python``: ``trialfhir push FOLDER`` as the CLI runs it (``push_source``);
- ``spark-1`` / ``spark-2``: ``push --engine spark`` (``push_on_spark``) on ``local[1]`` / ``local[2]`` with as
  many partitions; the session's start is timed apart.

Every task of a Spark push writes with the server's ``concurrency`` (4 by default), so ``local[2]`` keeps up to
8 bundles in flight where one process keeps 4: the column says how many.

    .venv/bin/python bench/bench_push_spark.py --server http://127.0.0.1:8092/fhir --subjects 1000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapter.fhir.json import dumps  # noqa: E402
from bench.measure import descendants_peak_mib, peak_rss_mib  # noqa: E402
from tests.synthetic import trial  # noqa: E402

WORK = REPO / "bench" / "work"


def write_trial(folder: Path, subjects: int, measurements: int) -> int:
    """A fresh synthetic trial as NDJSON; how many resources."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    count, streams = 0, {}
    try:
        for resource in trial("NCT7" + uuid.uuid4().hex[:7], subjects, measurements):
            kind = resource["resourceType"]
            if kind not in streams:
                streams[kind] = (folder / f"{kind}.ndjson").open("w", encoding="utf-8")
            streams[kind].write(dumps(resource) + "\n")
            count += 1
    finally:
        for stream in streams.values():
            stream.close()
    return count


def child(mode: str, folder: Path, base_url: str, concurrency: int) -> None:
    from adapter.settings import ServerSettings

    server = ServerSettings(name=base_url, base_url=base_url, concurrency=concurrency, bundle_entries=250)
    journal = Path(tempfile.mkdtemp(prefix="bench-push-spark-"))
    startup, jvm = 0.0, 0.0
    try:
        if mode == "python":
            from adapter.sync.inputs import open_input
            from adapter.sync.push import push_source

            def run():
                return push_source(open_input(folder), server, journal)
        else:
            from adapter.engines.spark_engine import session
            from adapter.sync.spark_push import push_on_spark

            workers = int(mode.split("-")[1])
            started = time.perf_counter()
            spark = session(f"local[{workers}]")
            startup = time.perf_counter() - started

            def run():
                return push_on_spark(folder, server, journal, spark=spark, partitions=workers)
        started = time.perf_counter()
        first = run()
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        again = run()
        resync = time.perf_counter() - started
        if mode != "python":
            jvm = descendants_peak_mib()
    finally:
        shutil.rmtree(journal, ignore_errors=True)
    assert first.ok and again.ok, (first.failures[:3], again.failures[:3])
    print(json.dumps({"seconds": round(seconds, 2), "resync": round(resync, 2), "startup": round(startup, 2),
                      "written": first.total("written"), "written_again": again.total("written"),
                      "bundles": first.bundles, "peak_mib": peak_rss_mib(), "jvm_mib": jvm}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="http://127.0.0.1:8092/fhir")
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--measurements", type=int, default=18, help="observations per subject")
    parser.add_argument("--concurrency", type=int, default=4, help="bundles in flight per process or task")
    parser.add_argument("--modes", nargs="+", default=["python", "spark-1", "spark-2"])
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), args.server, args.concurrency)
        return
    print(f"# Python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"server {args.server}, {args.subjects} subjects x {args.measurements} Observations")
    print("| mode | resources | in flight | seconds | resources/s | re-sync | start-up | bundles | peak RSS "
          "| JVM peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode in args.modes:
        folder = WORK / f"push-spark-{mode}"
        count = write_trial(folder, args.subjects, args.measurements)
        run = subprocess.run([sys.executable, __file__, "--server", args.server, "--concurrency",
                              str(args.concurrency), "--child", mode, str(folder)],
                             capture_output=True, text=True, check=True)
        result = json.loads(run.stdout.strip().splitlines()[-1])
        assert result["written"] == count and result["written_again"] == 0, result
        flight = args.concurrency * (1 if mode == "python" else int(mode.split("-")[1]))
        jvm = f"{result['jvm_mib']} MiB" if result["jvm_mib"] else "-"
        print(f"| {mode} | {count:,} | {flight} | {result['seconds']} | {count / result['seconds']:,.0f} | "
              f"{result['resync']} s | {result['startup'] or '-'} | {result['bundles']} | {result['peak_mib']} MiB "
              f"| {jvm} |", flush=True)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
