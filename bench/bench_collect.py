"""collect against a real FHIR server: the batched plan beside the naive loop, requests, seconds and memory.

The hospital is the seeded Synthea population of the tests (``tools/synthea``, seed 14,
6 living patients kept: 9 inpatients). 50 or 500 subjects need more inpatients than
that, so the subjects are **replicas**: replica *k* is inpatient *k mod 9* under new ids
(``bc-<k>-<Synthea id>``) with its own MRN, holding copies of that inpatient's
Observations and MedicationAdministrations whose codes the trial accepts (what both
variants ask for; the rest of the record is not loaded, so the server holds less than a
real hospital would). Loading is PUT to those ids, so a second run sends nothing new.

For each size, each variant runs in a fresh subprocess that reports its seconds, its own
CPU seconds (so the rest is waiting for the server), the HTTP requests it sent (a
response hook on the client's session counts every one), its peak RSS (``VmHWM``) and
the 1-minute load average before and after (the machine is shared):

- **batched**: ``adapter.collect.run.collect`` as the CLI runs it: identifiers 50 per
  search, then per patient one Observation and one MedicationAdministration search with
  every accepted code, ``_sort`` by date, ``_count=1000`` (HAPI serves 50 a page); it
  also converts, places, reconciles and writes the output folder, a subject at a time.
- **naive**: the loop the issue names as the baseline: per subject one Patient search,
  then one Observation search per test and one MedicationAdministration search per
  product (``_count=100``), through the same client; it only reads the pages (no facts,
  no files), so it does less work than the batched run.
- **naive-sorted** (on request, ``--variants``): the naive loop with ``_sort`` by date added
  to each search, as the batched plan sends it: it tells how much of the difference is
  ``_sort`` (HAPI's query plan) and how much is batching.

A **floor** child only imports what collect imports. Usage (a server of its own: it
writes about 310 resources per subject):

    .venv/bin/python bench/bench_collect.py --server http://127.0.0.1:8095/fhir --sizes 50 500 \\
        [--naive-up-to 50] [--variants batched naive naive-sorted] --out bench/results/collect.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests
from measure import peak_rss_mib  # bench/ is the script's folder, so first on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SYNTHEA = REPO / "tools" / "synthea" / "synthea.py"
MRN = "http://hospital.smarthealthit.org"
BENCH_MRN = "https://bench.trialfhir.example/mrn"
PACKAGE_YAML = """\
format: trialfhir-package/1
study: {nct_id: NCT04753476, arms: [Control, Treatment]}
local_code_system: "{project_base}CodeSystem/sccr-secretome-local"
sites:
  - {id: "BC", name: "Synthea General (benchmark)", time_zone: UTC}
visits:
  - {code: D0, name: "Day 0", day: 0}
  - {code: D1, name: "Day 1", day: 1, window: [-1, 1]}
  - {code: D3, name: "Day 3", day: 3, window: [-1, 1]}
  - {code: D7, name: "Day 7", day: 7, window: [-1, 1]}
"""
KEPT = ("resourceType", "id", "status", "category", "code", "effectiveDateTime", "effectivePeriod", "valueQuantity",
        "valueCodeableConcept", "valueString", "valueInteger", "dataAbsentReason", "component",
        "medicationCodeableConcept", "dosage", "statusReason")


def inpatients() -> list[tuple[date, list[dict[str, Any]]]]:
    """Each Synthea inpatient's first admission and its resources."""
    printed = subprocess.run([sys.executable, str(SYNTHEA), "generate", "--seed", "14", "--population", "6"],
                             check=True, text=True, stdout=subprocess.PIPE).stdout
    folder = printed.strip().splitlines()[-1]  # the folder is the last line, after what a first build prints
    found = []
    for path in sorted(Path(folder).glob("*.json")):
        resources = [e["resource"] for e in json.loads(path.read_text())["entry"]]
        stays = sorted(r["period"]["start"][:10] for r in resources
                       if r["resourceType"] == "Encounter" and r.get("class", {}).get("code") == "IMP")
        if stays and any(r["resourceType"] == "Patient" for r in resources):
            found.append((date.fromisoformat(stays[0]), resources))
    return found


def accepted() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per trial test and per product, the ``system|code`` tokens collect asks a hospital for."""
    from adapter.collect import facts as F
    from adapter.sources.codetables import load_code_tables

    tables = load_code_tables()
    tests: dict[str, list[str]] = {}
    for (system, code), takers in F.accepting_tests(tables.tests, tables.project_systems).items():
        for taker in takers:
            tests.setdefault(taker.code, []).append(f"{system}|{code}")
    products: dict[str, list[str]] = {}
    for (system, code), takers in F.accepting_products(tables.products).items():
        for taker in takers:
            products.setdefault(taker.code, []).append(f"{system}|{code}")
    return tests, products


def replicas(size: int, tokens: set[str]) -> Iterator[tuple[int, date, list[dict[str, Any]]]]:
    """Replica k: inpatient k mod n under new ids, with the resources of accepted codes only."""
    population = inpatients()
    for k in range(size):
        admitted, resources = population[k % len(population)]
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        pid = f"bc-{k}-{patient['id']}"[:64]
        copies = [{"resourceType": "Patient", "id": pid, "identifier": [{"system": BENCH_MRN, "value": f"B{k:05d}"}],
                   "gender": patient.get("gender"), "birthDate": patient.get("birthDate")}]
        for r in resources:
            concept = r.get("code") or r.get("medicationCodeableConcept") or {}
            if r["resourceType"] not in ("Observation", "MedicationAdministration") or not any(
                    f"{c.get('system')}|{c.get('code')}" in tokens for c in concept.get("coding", [])):
                continue
            copy = {key: r[key] for key in KEPT if key in r}
            copies.append({**copy, "id": f"bc-{k}-{r['id']}"[:64], "subject": {"reference": f"Patient/{pid}"}})
        yield k, admitted, copies


def load(server: str, size: int, root: Path) -> tuple[Path, Path, int]:
    """Replicas on the server (PUT), and the package and links file enrolling them."""
    tests, products = accepted()
    tokens = {t for codes in (*tests.values(), *products.values()) for t in codes}
    package, links = root / "package", root / "links.csv"
    package.mkdir(parents=True, exist_ok=True)
    (package / "package.yaml").write_text(PACKAGE_YAML)
    (package / "administrations.csv").write_text("subject_id,product_code,start,status\n")
    written = 0
    with requests.Session() as http, (package / "subjects.csv").open("w", newline="") as s, \
            links.open("w", newline="") as ln:
        subjects, link_rows = csv.writer(s), csv.writer(ln)
        subjects.writerow(["subject_id", "site_id", "sex", "birth_year", "arm_assigned", "arm_actual",
                           "consent_date", "status", "start_date", "end_date", "withdrawal_reason"])
        link_rows.writerow(["subject_id", "identifier_system", "identifier_value"])
        for k, admitted, copies in replicas(size, tokens):
            end = (admitted + timedelta(days=28)).isoformat()
            subjects.writerow([f"BC-{k:05d}", "BC", "U", "", "Control", "Control", admitted.isoformat(),
                               "completed", admitted.isoformat(), end, ""])
            link_rows.writerow([f"BC-{k:05d}", BENCH_MRN, f"B{k:05d}"])
            for start in range(0, len(copies), 500):
                entries = [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                           for r in copies[start:start + 500]]
                answer = http.post(server, json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
                                   headers={"Content-Type": "application/fhir+json"}, timeout=600)
                answer.raise_for_status()
            written += len(copies)
    return package, links, written


def child(variant: str, server: str, package: Path, links: Path, out: Path) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    from adapter.client import FhirClient
    from adapter.collect.run import collect

    session = requests.Session()
    sent = [0]
    session.hooks["response"].append(lambda response, *args, **kwargs: sent.__setitem__(0, sent[0] + 1))
    load_before = os.getloadavg()[0]
    started, cpu = time.perf_counter(), time.process_time()
    resources = 0
    with FhirClient(server, session=session) as client:
        if variant == "batched":
            report = collect(package, client, links, out)
            resources = report.fetched
        elif variant.startswith("naive"):
            resources = naive(client, package, links, sort=variant == "naive-sorted")
    seconds = time.perf_counter() - started
    return {"variant": variant, "seconds": round(seconds, 2), "cpu_seconds": round(time.process_time() - cpu, 2),
            "requests": sent[0], "resources": resources,
            "ms_per_resource": round(1000 * seconds / max(resources, 1), 2),
            "peak_rss_mib": peak_rss_mib(), "load_before": round(load_before, 1),
            "load_after": round(os.getloadavg()[0], 1)}


def naive(client: Any, package: Path, links: Path, *, sort: bool = False) -> int:
    """One search per subject per test (and per product): the baseline."""
    tests, products = accepted()
    with (package / "subjects.csv").open(newline="") as stream:
        dates = {r["subject_id"]: (r["consent_date"], r["end_date"]) for r in csv.DictReader(stream)}
    with links.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    read = 0
    for row in rows:
        first, last = dates[row["subject_id"]]
        found = [e["resource"]["id"] for page in client.search(
            "Patient", {"identifier": f"{row['identifier_system']}|{row['identifier_value']}"}, fresh=True)
                 for e in page.get("entry", [])]
        if len(found) != 1:
            continue
        for kind, table, when in (("Observation", tests, "date"), ("MedicationAdministration", products,
                                                                     "effective-time")):
            for codes in table.values():
                query = {"patient": f"Patient/{found[0]}", "code": ",".join(codes), when: [f"ge{first}", f"le{last}"],
                         "_count": "100", **({"_sort": when} if sort else {})}
                for page in client.search(kind, query, fresh=True):
                    read += len(page.get("entry", []))
    return read


def run_child(variant: str, server: str, package: Path, links: Path, out: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", variant, "--server", server, "--package", str(package),
               "--links", str(links), "--child-out", str(out)]
    result = subprocess.run(command, check=True, text=True, stdout=subprocess.PIPE)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--naive-up-to", type=int, metavar="N",
                        help="run the naive loop only at sizes up to N (it sends 50 searches a subject)")
    parser.add_argument("--variants", nargs="+", default=["batched", "naive"],
                        choices=["batched", "naive", "naive-sorted"])
    parser.add_argument("--child", choices=["batched", "naive", "naive-sorted", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--package", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--links", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "floor":
            import adapter.collect.run  # noqa: F401 - what every collect process imports

            print(json.dumps({"variant": "floor", "peak_rss_mib": peak_rss_mib()}))
        else:
            print(json.dumps(child(args.child, args.server, args.package, args.links, args.child_out)))
        return
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
                               "server": args.server, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "sizes": []}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            root = Path(tmp) / f"s{size}"
            started = time.perf_counter()
            package, links, written = load(args.server, size, root)
            print(f"{size} subjects: {written} resources loaded in {time.perf_counter() - started:.0f} s", flush=True)
            row: dict[str, Any] = {"subjects": size, "resources_loaded": written}
            naive = args.naive_up_to is None or size <= args.naive_up_to
            for variant in args.variants:
                if naive or not variant.startswith("naive"):
                    row[variant] = run_child(variant, args.server, package, links, root / f"out-{variant}")
                    print(f"  {variant}: {row[variant]}", flush=True)
            if "naive" in row and "batched" in row:
                row["fewer_requests"] = round(row["naive"]["requests"] / row["batched"]["requests"], 1)
                row["faster"] = round(row["naive"]["seconds"] / row["batched"]["seconds"], 1)
            results["sizes"].append(row)
        results["floor"] = run_child("floor", args.server, Path(), Path(), Path())
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
