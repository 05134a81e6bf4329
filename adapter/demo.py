"""The main job on the seed trial, as ``make demo`` runs it.

Maps the seed trial NCT04753476, pushes it to the FHIR server, pulls it back
and writes the exports (NDJSON, CSV and Parquet tables, CDISC SDTM) into one
folder, through the same commands a user runs (``trialfhir map / push / pull /
export``), then lists what it wrote.

Then the hospital side (docs/collect.md): a seeded Synthea hospital (generated once
with ``tools/synthea``, cached, loaded with PUTs so loading again changes nothing);
its inpatients enrolled as the subjects of a small package of the same trial (site
``SYN``, so no seed subject is touched); ``trialfhir collect`` for them; a second
collect against an EDC that holds the first run's values with one changed, so the
reconciliation shows matches and a mismatch; and a push of the collected rows, whose
Observations point at their hospital sources (``derivedFrom``).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import requests

from adapter.cli import main as trialfhir
from adapter.export.formats import FORMATS as EXPORT_FORMATS

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "fixtures" / "NCT04753476"
NCT_ID = "NCT04753476"
SYNTHEA = REPO / "tools" / "synthea" / "synthea.py"
SYNTHEA_SEED, SYNTHEA_POPULATION = "14", "6"  # the population the integration tests use: cached once for both
MRN = "http://hospital.smarthealthit.org"  # Synthea's medical record numbers
HOSPITAL_PACKAGE = f"""\
format: trialfhir-package/1
study: {{nct_id: {NCT_ID}, arms: [Control, Treatment]}}
local_code_system: "{{project_base}}CodeSystem/sccr-secretome-local"
sites:
  - {{id: "SYN", name: "Synthea General (synthetic)", time_zone: UTC}}
visits:
  - {{code: D0, name: "Day 0", day: 0}}
  - {{code: D1, name: "Day 1", day: 1, window: [-1, 1]}}
  - {{code: D3, name: "Day 3", day: 3, window: [-1, 1]}}
  - {{code: D7, name: "Day 7", day: 7, window: [-1, 1]}}
"""


def _step(title: str, argv: list[str]) -> None:
    print(f"\n== {title}\n$ trialfhir {' '.join(argv)}", flush=True)
    code = trialfhir(argv)
    if code != 0:
        raise SystemExit(f"demo: 'trialfhir {argv[0]}' failed with exit code {code}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapter.demo", description=__doc__)
    parser.add_argument("--server", default="http://127.0.0.1:8080/fhir", help="FHIR base URL")
    parser.add_argument("--output", default="demo-output", help="folder for everything the demo writes")
    parser.add_argument("--package", default=str(SEED), help="the trial package (default: the seed trial)")
    args = parser.parse_args(argv)
    out = Path(args.output)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    capabilities = requests.get(
        f"{args.server}/metadata", headers={"Accept": "application/fhir+json"}, timeout=60
    ).json()
    software = capabilities.get("software", {})
    print(f"FHIR server {args.server}: {software.get('name')} {software.get('version')}, "
          f"FHIR {capabilities.get('fhirVersion')}")

    # The journal lives with the demo's output, so a demo against a freshly started
    # (empty, in-memory) server never trusts a journal written for an earlier one.
    journal = out / "journal"
    os.environ["ADAPTER_JOURNAL_DIR"] = str(journal)
    package = args.package
    _step("map the study record", ["map", "study", f"{package}/study.json", "-o", str(out / "study.bundle.json")])
    _step("map the trial package", ["map", "package", package, "-o", str(out / "mapped")])
    _step("push the trial", ["push", package, "--server", args.server])
    _step("push again: nothing changes", ["push", package, "--server", args.server])
    _step("pull it back (Bulk Data $export)", ["pull", "--server", args.server, "--study", NCT_ID,
                                              "-o", str(out / "pulled")])
    for form in EXPORT_FORMATS:
        _step(f"export {form}", ["export", str(out / "pulled"), "--format", form, "-o", str(out / "export" / form)])

    _hospital(args.server, out)

    print(f"\n== wrote into {out}/")
    for path in sorted(p for p in out.rglob("*") if p.is_file() and journal not in p.parents):
        print(f"  {path.relative_to(out)}  ({path.stat().st_size:,} bytes)")
    return 0


def _hospital(server: str, out: Path) -> None:
    """Collect from a Synthea hospital into a package of the trial, reconcile, push (module docstring)."""
    print("\n== a Synthea hospital: generated once (about two minutes; cached in tools/synthea/run/), "
          "loaded with PUTs", flush=True)
    size = ["--seed", SYNTHEA_SEED, "--population", SYNTHEA_POPULATION]
    generated = subprocess.run([sys.executable, str(SYNTHEA), "generate", *size], check=True, text=True,
                               stdout=subprocess.PIPE)
    subprocess.run([sys.executable, str(SYNTHEA), "load", "--server", server, *size], check=True)
    enrolled = _enrol(Path(generated.stdout.strip()), out / "hospital-package", out / "LINKS.csv")
    print(f"enrolled {len(enrolled)} inpatients as subjects {', '.join(enrolled)}; LINKS.csv holds their MRNs "
          "(PHI: the demo writes it beside the output only because the data are synthetic)")
    package, links = out / "hospital-package", out / "LINKS.csv"
    _step("collect their labs, vitals and drugs", ["collect", str(package), "--server", server, "--links", str(links),
                                                   "-o", str(out / "collected")])
    # The EDC as a coordinator keyed it: the collected visit values, one of them mistyped.
    with (out / "collected" / "measurements.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    with (package / "measurements.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["subject_id", "visit", "test_code", "value", "unit", "collected_at"])
        for index, row in enumerate(rows):
            value = str(Decimal(row["value"]) + 1) if index == 0 and row["unit"] else row["value"]
            writer.writerow([row["subject_id"], row["visit"], row["test_code"], value, row["unit"],
                             row["collected_at"]])
    _step("collect again, reconciled against the EDC", ["collect", str(package), "--server", server, "--links",
                                                        str(links), "-o", str(out / "reconciled")])
    report = json.loads((out / "reconciled" / "report.json").read_text())
    print(f"reconciliation: {report['reconciliation']}")
    # The collected rows replace the EDC's: push them, each Observation pointing at its hospital source.
    for name in ("measurements.csv", "administrations.csv"):
        shutil.copy(out / "collected" / name, package / name)
    # A sync journal of its own: the journal knows a trial's resources by study, so in the seed's journal
    # this package of the same study would list every seed resource as removed from the source.
    os.environ["ADAPTER_JOURNAL_DIR"] = str(out / "journal" / "hospital")
    _step("push the collected rows", ["push", str(package), "--server", server])


def _enrol(bundles: Path, package: Path, links: Path) -> list[str]:
    """Synthea's inpatients as subjects (enrolled on their first admission, for 28 days) and their LINKS.csv."""
    package.mkdir(parents=True, exist_ok=True)
    (package / "package.yaml").write_text(HOSPITAL_PACKAGE, encoding="utf-8")
    (package / "administrations.csv").write_text("subject_id,product_code,start,status\n", encoding="utf-8")
    subjects: list[list[str]] = []
    link_rows: list[list[str]] = []
    for path in sorted(bundles.glob("*.json")):
        resources = [e["resource"] for e in json.loads(path.read_text(encoding="utf-8")).get("entry", [])]
        patient = next((r for r in resources if r["resourceType"] == "Patient"), None)
        stays = sorted(r["period"]["start"][:10] for r in resources if r["resourceType"] == "Encounter"
                       and r.get("class", {}).get("code") == "IMP")
        mrn = next((i["value"] for i in (patient or {}).get("identifier", []) if i.get("system") == MRN), None)
        if not stays or mrn is None:
            continue
        subject = f"SYN-{len(subjects) + 1:04d}"
        end = (datetime.date.fromisoformat(stays[0]) + datetime.timedelta(days=28)).isoformat()
        subjects.append([subject, "SYN", "U", "", "Control", "Control", stays[0], "completed", stays[0], end, ""])
        link_rows.append([subject, MRN, mrn])
    with (package / "subjects.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["subject_id", "site_id", "sex", "birth_year", "arm_assigned", "arm_actual", "consent_date",
                         "status", "start_date", "end_date", "withdrawal_reason"])
        writer.writerows(subjects)
    with links.open("w", newline="") as stream:
        csv.writer(stream).writerows([["subject_id", "identifier_system", "identifier_value"], *link_rows])
    return [row[0] for row in subjects]


if __name__ == "__main__":
    sys.exit(main())
