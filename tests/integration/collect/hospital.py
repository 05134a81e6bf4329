"""A Synthea hospital for the collect tests: generated once, loaded once, read independently.

``synthea_population`` runs ``tools/synthea/synthea.py`` (cached in tools/synthea/run/).
``enrol`` picks inpatients as the trial's subjects and writes a package and a links file;
``expected_values`` reads values straight from Synthea's bundle files (not from the
server, not through collect's code) for the tests to compare against.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
MRN = "http://hospital.smarthealthit.org"
SEED, POPULATION = 14, 6
INPATIENT = "IMP"


def synthea_tool() -> Any:
    spec = importlib.util.spec_from_file_location("synthea", REPO / "tools" / "synthea" / "synthea.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Inpatient:
    """A Synthea patient with a hospital stay: the subject we enrol and what its file says."""

    subject_id: str
    mrn: str
    admitted: date
    resources: tuple[dict[str, Any], ...]


def inpatients(folder: Path) -> list[Inpatient]:
    """Every patient file's patient with an inpatient Encounter, admitted on its first stay's date."""
    found: list[Inpatient] = []
    for path in sorted(folder.glob("*.json")):
        if "Information" in path.name:
            continue
        resources = tuple(e["resource"] for e in json.loads(path.read_text())["entry"])
        patient = next(r for r in resources if r["resourceType"] == "Patient")
        stays = sorted(r["period"]["start"][:10] for r in resources
                       if r["resourceType"] == "Encounter" and r.get("class", {}).get("code") == INPATIENT)
        if not stays:
            continue
        mrn = next(i["value"] for i in patient["identifier"] if i.get("system") == MRN)
        found.append(Inpatient(f"01-{len(found) + 1:04d}", mrn, date.fromisoformat(stays[0]), resources))
    return found


PACKAGE_YAML = """\
format: trialfhir-package/1
study:
  nct_id: NCT04753476
  arms: [Control, Treatment]
local_code_system: https://trialfhir.dev/fhir/CodeSystem/sccr-secretome-local
sites:
  - {id: "01", name: "Synthea General", time_zone: UTC}
visits:
  - {code: D0, name: "Day 0", day: 0, window: [0, 0]}
  - {code: D1, name: "Day 1", day: 1, window: [-1, 1]}
  - {code: D3, name: "Day 3", day: 3, window: [-1, 1]}
  - {code: D7, name: "Day 7", day: 7, window: [-1, 1]}
"""


def enrol(subjects: list[Inpatient], root: Path, *, days: int = 28) -> tuple[Path, Path]:
    """A package enrolling ``subjects`` on their admission day for ``days``, and its links file."""
    package = root / "package"
    package.mkdir(parents=True, exist_ok=True)
    (package / "package.yaml").write_text(PACKAGE_YAML)
    with (package / "subjects.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["subject_id", "site_id", "sex", "birth_year", "arm_assigned", "arm_actual", "consent_date",
                         "status", "start_date", "end_date", "withdrawal_reason"])
        for s in subjects:
            writer.writerow([s.subject_id, "01", "U", "", "Control", "Control", s.admitted.isoformat(),
                             "completed", s.admitted.isoformat(), (s.admitted + timedelta(days=days)).isoformat(), ""])
    links = root / "links.csv"
    with links.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["subject_id", "identifier_system", "identifier_value"])
        for s in subjects:
            writer.writerow([s.subject_id, MRN, s.mrn])
    return package, links


def observations(subject: Inpatient, *codes: str) -> Iterator[dict[str, Any]]:
    """The subject's Observations with any of these LOINC codes in any coding, from Synthea's file."""
    for resource in subject.resources:
        if resource["resourceType"] == "Observation" and any(
                c.get("code") in codes for c in resource.get("code", {}).get("coding", [])):
            yield resource
