"""The main job on the seed trial, as ``make demo`` runs it.

Maps the seed trial NCT04753476, pushes it to the FHIR server, pulls it back
and writes the exports (NDJSON, CSV and Parquet tables, CDISC SDTM) into one
folder, through the same commands a user runs (``trialfhir map / push / pull /
export``), then lists what it wrote.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import requests

from adapter.cli import main as trialfhir
from adapter.export.formats import FORMATS as EXPORT_FORMATS

SEED = Path(__file__).resolve().parent.parent / "fixtures" / "NCT04753476"
NCT_ID = "NCT04753476"


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

    print(f"\n== wrote into {out}/")
    for path in sorted(p for p in out.rglob("*") if p.is_file() and journal not in p.parents):
        print(f"  {path.relative_to(out)}  ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
