"""Benchmark: the SDTM export's time and peak memory by number of measurements, beside a read-only baseline.

For each size (Observations, default 100,000 and 1,000,000) a seeded generator writes
an NDJSON folder under ``bench/work/sdtm-<n>/`` (kept between runs): a ResearchStudy
with an NCT identifier and two arms, per subject a Patient, a ResearchSubject and lab
and vital-sign Observations shaped like the mapped trial package's (LOINC code,
decimal value, UCUM unit, reference range, study-visit extension). Each measurement
runs in a fresh subprocess and reports seconds, rows and peak RSS (``VmHWM``, see
``measure.py``):

- ``read``: every Observation parsed from the NDJSON and dropped (the streaming floor);
- ``sdtm``: ``trialfhir export --format sdtm`` (all datasets, CSV, XPT, define.xml).

Usage:

    .venv/bin/python bench/bench_sdtm.py [--sizes 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from measure import peak_rss_mib  # bench/ is the script's folder, so first on sys.path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / "work"
PER_SUBJECT = 100
NCT = "NCT00000015"
TESTS = [("1988-5", "mg/L", 0.0, 5.0), ("2276-4", "ug/L", 30.0, 400.0), ("26881-3", "pg/mL", 0.0, 7.0),
         ("731-0", "10*3/uL", 1.0, 4.0), ("8867-4", "/min", 60.0, 100.0)]
VISIT = "https://trialfhir.dev/fhir/StructureDefinition/study-visit"


def generate(folder: Path, observations: int) -> None:
    """A seeded NDJSON folder with ``observations`` Observations; skipped when it is already there."""
    if (folder / "done").exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(15)
    study = {"resourceType": "ResearchStudy", "id": "study", "status": "active",
             "identifier": [{"system": "https://clinicaltrials.gov", "value": NCT}],
             "arm": [{"name": "A"}, {"name": "B"}], "site": [{"reference": "Location/site"}]}
    (folder / "ResearchStudy.ndjson").write_text(json.dumps(study) + "\n")
    site = {"resourceType": "Location", "id": "site", "address": {"country": "Indonesia"}}
    (folder / "Location.ndjson").write_text(json.dumps(site) + "\n")
    subjects = max(1, observations // PER_SUBJECT)
    with (folder / "Patient.ndjson").open("w") as patients, \
            (folder / "ResearchSubject.ndjson").open("w") as enrolments, \
            (folder / "Observation.ndjson").open("w") as labs:  # fmt: skip
        written = 0
        for n in range(subjects):
            patient = f"p{n:07d}"
            patients.write(json.dumps({"resourceType": "Patient", "id": patient, "birthDate": "1960",
                                       "gender": rng.choice(["male", "female"])}) + "\n")
            enrolments.write(json.dumps({
                "resourceType": "ResearchSubject", "id": f"s{n:07d}", "status": "off-study",
                "identifier": [{"value": f"{NCT}/{n % 10:02d}/{n:07d}"}],
                "period": {"start": "2020-06-01", "end": "2020-08-01"},
                "study": {"reference": "ResearchStudy/study"}, "individual": {"reference": f"Patient/{patient}"},
                "assignedArm": "AB"[n % 2], "actualArm": "AB"[n % 2]}) + "\n")
            for k in range(min(PER_SUBJECT, observations - written)):
                loinc, unit, low, high = TESTS[k % len(TESTS)]
                day = k // len(TESTS)
                visit = [{"url": "name", "valueString": f"Day {day}"}, {"url": "plannedDay", "valueInteger": day}]
                labs.write(json.dumps({
                    "resourceType": "Observation", "id": f"o{n:07d}-{k:03d}", "status": "final",
                    "extension": [{"url": VISIT, "extension": visit}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                    "subject": {"reference": f"Patient/{patient}"},
                    "effectiveDateTime": f"2020-06-{1 + day % 28:02d}T{8 + day // 28:02d}:30:00+07:00",
                    "valueQuantity": {"value": round(rng.uniform(low, high * 1.5), 1), "unit": unit,
                                      "system": "http://unitsofmeasure.org", "code": unit},
                    "referenceRange": [{"low": {"value": low}, "high": {"value": high}}]}) + "\n")
                written += 1
    (folder / "done").write_text("")


def run(kind: str, folder: Path) -> dict[str, float]:
    """One measurement in this process (called in a fresh subprocess)."""
    start = time.perf_counter()
    if kind == "read":
        from adapter.fhir.ndjson import read_resources

        rows = sum(1 for _ in read_resources(folder, "Observation"))
    else:
        from adapter.export.exporter import export

        out = folder.parent / f"{folder.name}-out"
        shutil.rmtree(out, ignore_errors=True)
        report = export(folder, out, "sdtm")
        rows = sum(count for name, count in report.files.items() if name.endswith(".xpt"))
    return {"seconds": round(time.perf_counter() - start, 1), "rows": rows, "peak_mib": peak_rss_mib()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--run", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run(args.run[0], Path(args.run[1]))))
        return
    print(f"# {platform.node()} python {platform.python_version()}")
    for size in args.sizes:
        folder = WORK / f"sdtm-{size}"
        generate(folder, size)
        for kind in ("read", "sdtm"):
            result = subprocess.run([sys.executable, __file__, "--run", kind, str(folder)], check=True,
                                    capture_output=True, text=True, cwd=REPO)
            print(json.dumps({"size": size, "kind": kind, **json.loads(result.stdout.splitlines()[-1])}), flush=True)


if __name__ == "__main__":
    main()
