#!/usr/bin/env python3
"""A test hospital: generate a seeded Synthea population and load it into a FHIR server (standard library only).

    python3 tools/synthea/synthea.py generate [--seed 14] [--population 6]
    python3 tools/synthea/synthea.py load --server http://127.0.0.1:8080/fhir [--seed 14] [--population 6]

``generate`` resolves Synthea 3.3.0 from Maven Central (``pom.xml``; first run only)
and runs its COVID-19 module for patients aged 60-90, keeping only those with a severe
or critical course (``keep_covid_hospitalized.json``): hospital stays with arterial
blood gases, labs, vitals and drug administrations. The reference date is fixed, so a
seed always gives the same population. Output is cached in ``run/<name>/fhir/`` (ignored
by git) and reused while it exists; ``generate`` prints that folder.

``load`` writes it idempotently: Synthea's transactions POST every resource, so a
second load would duplicate the hospital. Each entry is rewritten to ``PUT
Type/<Synthea's uuid>`` and every ``urn:uuid:`` reference to that id, so loading again
leaves the server as it was. The shared Organization/Location/Practitioner files come
first (their entries are conditional creates). Only the resource types collection and
its tests read are loaded (``LOADED``): claims and supply deliveries are most of a
record's bulk and nobody reads them here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET = HERE / "target"
RUN = HERE / "run"
CLASSPATH_FILE = TARGET / "classpath.txt"
KEEP_MODULE = HERE / "keep_covid_hospitalized.json"
# The simulation ends here: COVID-19 stays fall in 2020, and the wall clock would make
# every run differ.
REFERENCE_DATE = "20210601"
LOADED = frozenset({"Patient", "Encounter", "Condition", "Observation", "MedicationAdministration"})
TIMEOUT_S = 600


def build() -> None:
    """Resolve Synthea's jars and write their classpath (downloads ~200 MB on first run)."""
    if CLASSPATH_FILE.exists() and CLASSPATH_FILE.stat().st_mtime >= (HERE / "pom.xml").stat().st_mtime:
        return
    print("synthea: resolving Synthea 3.3.0 with Maven", file=sys.stderr)
    subprocess.run(["mvn", "-B", "-q", "-f", str(HERE / "pom.xml"), "package"], check=True)


def output_dir(seed: int, population: int) -> Path:
    return RUN / f"covid-s{seed}-p{population}"


def generate(seed: int, population: int) -> Path:
    """Run Synthea once for this seed and size; return the folder of FHIR bundles."""
    out = output_dir(seed, population)
    done = out / "done"
    if done.exists():
        return out / "fhir"
    build()
    if out.exists():
        shutil.rmtree(out)  # an interrupted run: start again
    out.mkdir(parents=True)
    command = [
        "java", "-Xmx2g", "-cp", CLASSPATH_FILE.read_text().strip(), "App",
        "-s", str(seed), "-cs", str(seed), "-r", REFERENCE_DATE, "-p", str(population), "-a", "60-90",
        "-m", "covid19*", "-k", str(KEEP_MODULE),
        "--generate.thread_pool_size=1", f"--exporter.baseDirectory={out}",
    ]
    started = time.monotonic()
    with (out / "synthea.log").open("wb") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True, cwd=out)
    done.write_text(f"{time.monotonic() - started:.0f} s\n")
    return out / "fhir"


def bundle_files(folder: Path) -> list[Path]:
    """Shared resources first (patients reference them conditionally), then the patients."""
    shared = sorted(folder.glob("hospitalInformation*.json")) + sorted(folder.glob("practitionerInformation*.json"))
    patients = sorted(p for p in folder.glob("*.json") if p not in shared)
    return shared + patients


def idempotent(bundle: dict[str, Any]) -> dict[str, Any]:
    """A patient transaction as PUTs to Synthea's uuids, limited to the loaded types."""
    ids: dict[str, str] = {}
    kept = []
    for entry in bundle["entry"]:
        resource = entry["resource"]
        kind = resource["resourceType"]
        if entry.get("request", {}).get("method") != "POST" or kind not in LOADED:
            continue
        uuid = entry["fullUrl"].removeprefix("urn:uuid:")
        ids[entry["fullUrl"]] = f"{kind}/{uuid}"
        kept.append(entry)
    text = json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": kept})
    for urn, local in ids.items():
        text = text.replace(f'"{urn}"', f'"{local}"')
    rewritten: dict[str, Any] = json.loads(text)
    for entry in rewritten["entry"]:
        resource = entry["resource"]
        resource["id"] = entry["fullUrl"].split("/", 1)[1]
        entry["request"] = {"method": "PUT", "url": entry["fullUrl"]}
        entry.pop("fullUrl")
    return rewritten


def post(server: str, bundle: dict[str, Any]) -> dict[str, Any]:
    if not server.startswith(("http://", "https://")):
        raise SystemExit(f"synthea: --server must be an http(s) FHIR base URL, not {server!r}")
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        server.rstrip("/"), data=json.dumps(bundle).encode(), method="POST",
        headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (a test server)
            answer: dict[str, Any] = json.load(response)
            return answer
    except urllib.error.HTTPError as error:
        raise SystemExit(f"synthea: the server refused a bundle: HTTP {error.code}: {error.read()[:2000]!r}") from error


def load(server: str, folder: Path) -> int:
    """Load every bundle of ``folder``; return the number of entries written."""
    written = 0
    for path in bundle_files(folder):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        if bundle.get("type") == "transaction":
            bundle = idempotent(bundle)
        answer = post(server, bundle)
        failed = [e["response"]["status"] for e in answer.get("entry", []) if e["response"]["status"][:1] != "2"]
        if failed:
            raise SystemExit(f"synthea: {path.name}: {len(failed)} entries failed: {failed[:5]}")
        written += len(bundle["entry"])
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["build", "generate", "load"])
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SYNTHEA_SEED", "14")))
    parser.add_argument("--population", type=int, default=int(os.environ.get("SYNTHEA_POPULATION", "6")),
                        help="living patients to keep (Synthea also keeps those who died)")
    parser.add_argument("--server", help="FHIR base URL to load into (load only)")
    args = parser.parse_args()
    if args.action == "build":
        build()
    elif args.action == "generate":
        print(generate(args.seed, args.population))
    else:
        if not args.server:
            parser.error("load needs --server")
        started = time.monotonic()
        count = load(args.server, generate(args.seed, args.population))
        print(f"synthea: {count} entries loaded into {args.server} in {time.monotonic() - started:.0f} s",
              file=sys.stderr)


if __name__ == "__main__":
    main()
