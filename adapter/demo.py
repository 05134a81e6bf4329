"""The main job on the seed trial, as ``make demo`` runs it.

Checks that the local FHIR server answers as R4. Mapping, push, pull and the
exports are added to this script as they land (issues 3 to 6).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import requests


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapter.demo", description=__doc__)
    parser.add_argument("--server", default="http://127.0.0.1:8080/fhir", help="FHIR base URL")
    parser.add_argument("--output", default="demo-output", help="folder for the exports")
    args = parser.parse_args(argv)
    response = requests.get(f"{args.server}/metadata", headers={"Accept": "application/fhir+json"}, timeout=30)
    response.raise_for_status()
    capabilities = response.json()
    software = capabilities.get("software", {})
    print(f"FHIR server {args.server}: {software.get('name')} {software.get('version')}, "
          f"FHIR {capabilities.get('fhirVersion')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
