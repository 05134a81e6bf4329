"""Benchmark: ClinicalTrials.gov record to transaction Bundle, on the largest sample record.

Runs read (JSON parse + schema check + records), map (resources + Bundle) and
serialize (stable JSON) many times in one process, after a warm-up run, and prints
the median time per stage and the throughput. Usage:

    .venv/bin/python bench/bench_map_study.py [PATH] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

from adapter.fhir.json import dumps
from adapter.sources.ctgov import parse_studies
from adapter.sources.ctgov_tables import default_tables
from adapter.studybundle import studies_bundle

REPO = Path(__file__).resolve().parent.parent
LARGEST = REPO.parent / "shared" / "ctgov-samples" / "v2" / "NCT04431453.json"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", type=Path, default=LARGEST)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    data = args.path.read_bytes()
    tables = default_tables()
    parse_studies(data, str(args.path), tables=tables)  # warm-up: schema validator, tables, imports
    read_s, map_s, dump_s, out_bytes, entries = [], [], [], 0, 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        studies = parse_studies(data, str(args.path), tables=tables)
        t1 = time.perf_counter()
        bundle = studies_bundle(studies, tables)
        t2 = time.perf_counter()
        text = dumps(bundle)
        t3 = time.perf_counter()
        read_s.append(t1 - t0)
        map_s.append(t2 - t1)
        dump_s.append(t3 - t2)
        out_bytes, entries = len(text.encode()), len(bundle["entry"])
    total = [a + b + c for a, b, c in zip(read_s, map_s, dump_s, strict=True)]
    median = statistics.median(total)
    print(f"record: {args.path.name}, {len(data) / 1024:.0f} KiB in, {out_bytes / 1024:.0f} KiB out, {entries} entries")
    print(f"machine: nproc={os.cpu_count()}, cpu={_cpu_model()}, python={platform.python_version()}")
    print(f"runs: {args.runs} (after one warm-up)")
    print(
        f"median per record: read {statistics.median(read_s) * 1000:.1f} ms, "
        f"map {statistics.median(map_s) * 1000:.1f} ms, serialize {statistics.median(dump_s) * 1000:.1f} ms, "
        f"total {median * 1000:.1f} ms"
    )
    print(f"throughput: {1 / median:.1f} records/s, {len(data) / median / 1e6:.1f} MB/s of input")


if __name__ == "__main__":
    main()
