"""Benchmark: NDJSON -> Parquet tables, the DuckDB engine (the views) against the Python writer, in one run.

For each size (Observations, default 1,000,000) a seeded generator writes an NDJSON
folder under ``bench/work/export-<n>/`` (kept between runs): per subject a Patient,
a ResearchSubject and lab Observations shaped like the mapped trial package's
(LOINC code, a decimal value with its digits such as ``2.40``, UCUM unit, reference
range, interpretation, study extension). Then each measurement runs in a fresh
subprocess and reports its seconds, rows and peak RSS (``VmHWM``, see ``measure.py``):

- ``python``: ``adapter.export.tables.write_tables`` (one process, one core);
- ``duckdb-1`` / ``duckdb-2``: ``adapter.engines.duckdb_engine.write_tables`` with 1 and
  2 DuckDB threads, memory limit 2 GB (spills to disk past it);
- ``spark-1`` / ``spark-2``: ``adapter.engines.spark_engine.write_tables`` on ``local[1]`` and
  ``local[2]``; the session's start is timed apart (``startup``), and the peak RSS of the JVM
  (and anything else the child started) is added as ``jvm_mib``.

Usage:

    .venv/bin/python bench/bench_export.py [--sizes 1000000] [--format parquet]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
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
PER_SUBJECT = 100
LABS = [("718-7", "Hemoglobin", "g/dL", 12.0, 17.5), ("2345-7", "Glucose", "mg/dL", 70.0, 140.0),
        ("26881-3", "Interleukin 6", "pg/mL", 0.0, 7.0), ("1988-5", "C reactive protein", "mg/L", 0.0, 5.0)]


def generate(folder: Path, observations: int) -> None:
    """A seeded NDJSON folder with ``observations`` Observations; skipped when it is already there."""
    done = folder / "done"
    if done.exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(16)
    study = "ResearchStudy/bench-study"
    extension = [{"url": "http://hl7.org/fhir/StructureDefinition/workflow-researchStudy",
                  "valueReference": {"reference": study}}]
    subjects = max(1, observations // PER_SUBJECT)
    with (folder / "Patient.ndjson").open("w") as patients, \
            (folder / "ResearchSubject.ndjson").open("w") as enrolments, \
            (folder / "Observation.ndjson").open("w") as labs:
        written = 0
        for n in range(subjects):
            patient = f"p{n:07d}"
            gender = rng.choice(["male", "female"])
            patients.write(json.dumps({"resourceType": "Patient", "id": patient, "gender": gender,
                                       "birthDate": str(1940 + rng.randrange(60))}) + "\n")
            enrolments.write(json.dumps({
                "resourceType": "ResearchSubject", "id": f"s{n:07d}", "status": "on-study",
                "identifier": [{"system": "https://trialfhir.dev/fhir/sid/subject", "value": f"BENCH/01/{n:05d}"}],
                "study": {"reference": study}, "individual": {"reference": f"Patient/{patient}"},
                "period": {"start": "2020-06-10"}, "assignedArm": "A", "actualArm": "A"}) + "\n")
            for k in range(min(PER_SUBJECT, observations - written)):
                code, name, unit, low, high = LABS[k % len(LABS)]
                value = f"{rng.uniform(low * 0.5, high * 1.5 + 1):.2f}"  # two decimals, kept as written
                flag = "H" if float(value) > high else "L" if float(value) < low else "N"
                line = json.dumps({
                    "resourceType": "Observation", "id": f"o{n:07d}-{k:03d}", "status": "final",
                    "meta": {"lastUpdated": "2024-05-01T10:00:00.123+00:00"}, "extension": extension,
                    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                              "code": "laboratory"}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": name}]},
                    "subject": {"reference": f"Patient/{patient}"},
                    "effectiveDateTime": f"2020-06-{10 + k % 18:02d}T08:30:00+07:00",
                    "valueQuantity": {"value": "@V", "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
                    "referenceRange": [{"low": {"value": low, "unit": unit}, "high": {"value": high, "unit": unit}}],
                    "interpretation": [{"coding": [{"code": flag}]}]}, separators=(",", ":"))
                labs.write(line.replace('"@V"', value) + "\n")
                written += 1
    done.write_text("ok")


def child(mode: str, folder: Path, output: Path, fmt: str) -> None:
    sys.path.insert(0, str(REPO))
    shutil.rmtree(output, ignore_errors=True)
    start = time.perf_counter()
    startup, jvm, warm, first, jvm_cpu = 0.0, 0.0, 0.0, 0.0, 0.0
    cpu_start = time.process_time()
    if mode == "python":
        from adapter.export.tables import write_tables

        written = write_tables(folder, output, fmt)
    elif mode.startswith("spark"):
        from adapter.engines import spark_engine

        spark = spark_engine.session(f"local[{mode.split('-')[1]}]")
        startup, start = time.perf_counter() - start, time.perf_counter()
        written = spark_engine.write_tables(folder, output, fmt, spark=spark)
        # Once more in the same session: the JVM's code is compiled by now (the first run pays for that).
        first, again = time.perf_counter() - start, time.perf_counter()
        spark_engine.write_tables(folder, Path(f"{output}-again"), fmt, spark=spark)
        warm = time.perf_counter() - again
        shutil.rmtree(f"{output}-again", ignore_errors=True)
        jvm, jvm_cpu = descendants_peak_mib(), descendants_cpu_seconds()
        spark.stop()
    else:
        from adapter.engines.duckdb_engine import write_tables as duck

        written = duck(folder, output, fmt, threads=int(mode.split("-")[1]))
    seconds = first or time.perf_counter() - start
    rows = {kind: count for kind, (_, count) in written.items()}
    print(json.dumps({"seconds": round(seconds, 2), "startup": round(startup, 2), "warm": round(warm, 2),
                      "rows": rows,
                      "peak_mib": peak_rss_mib(), "jvm_mib": jvm,
                      "cpu": round(time.process_time() - cpu_start + jvm_cpu, 2)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--format", default="parquet", choices=["parquet", "csv"])
    parser.add_argument("--modes", nargs="+", default=["python", "duckdb-1", "duckdb-2", "spark-1", "spark-2"])
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FOLDER", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]), args.format)
        return
    print(f"# {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, format {args.format}")
    print("| observations | input | engine | seconds | observations/s | again, same session | start-up "
          "| CPU s, all runs | peak RSS | JVM peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        folder = WORK / f"export-{size}"
        started = time.perf_counter()
        generate(folder, size)
        megabytes = sum(p.stat().st_size for p in folder.glob("*.ndjson")) / 2**20
        print(f"# generated in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for mode in args.modes:
            output = WORK / f"export-{size}-{mode}"
            run = subprocess.run([sys.executable, __file__, "--format", args.format, "--child", mode, str(folder),
                                  str(output)], capture_output=True, text=True, check=True)
            result = json.loads(run.stdout.strip().splitlines()[-1])
            assert result["rows"]["Observation"] == size, result
            rate = size / result["seconds"]
            jvm = f"{result['jvm_mib']} MiB" if result["jvm_mib"] else "-"
            warm = f"{result['warm']} s, {size / result['warm']:,.0f}/s" if result["warm"] else "-"
            print(f"| {size:,} | {megabytes:.0f} MiB | {mode} | {result['seconds']} | {rate:,.0f} | {warm} | "
                  f"{result['startup'] or '-'} | {result['cpu']} | {result['peak_mib']} MiB | {jvm} |", flush=True)
            shutil.rmtree(output, ignore_errors=True)


if __name__ == "__main__":
    main()
