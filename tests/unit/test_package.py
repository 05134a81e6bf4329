"""Mapping the seed trial package: reconciliation, order, determinism and golden files.

Golden files live in ``tests/golden/package-NCT04753476/``: the report, every resource
of three subjects (both arms, one withdrawn) and a SHA-256 digest of each full NDJSON output. After
a reviewed change, rewrite them with ``UPDATE_GOLDEN=1 pytest tests/unit/test_package.py``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from adapter.fhir.constants import PACKAGE_TYPES
from adapter.package import map_package, write_mapped_package
from tests.conftest import REPO

SEED = REPO / "fixtures" / "NCT04753476"
GOLDEN = REPO / "tests" / "golden" / "package-NCT04753476"
CSV_FILES = ("subjects.csv", "measurements.csv", "administrations.csv")
SAMPLE_SUBJECTS = ("01-0001", "03-0003", "06-0018")  # Control; Secretome-MSCs; Secretome-MSCs, withdrawn


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mapped")
    write_mapped_package(SEED, out)
    return out


def test_every_seed_row_is_read_and_mapped(mapped: Path) -> None:
    report = json.loads((mapped / "report.json").read_text(encoding="utf-8"))
    expected = {name: len(rows(SEED / name)) for name in CSV_FILES}
    assert {name: c["read"] for name, c in report["files"].items()} == expected
    assert all(c["read"] == c["mapped"] + c["rejected"] for c in report["files"].values())
    assert report["rejected"] == 0 and report["complete"] and report["reconciles"]
    products = {(a["product_code"], a.get("lot", "")) for a in rows(SEED / "administrations.csv")}
    assert report["resources"] == {
        "Organization": 6,  # the six sites of package.yaml
        "Patient": expected["subjects.csv"],
        "Consent": expected["subjects.csv"],
        "ResearchSubject": expected["subjects.csv"],
        "Observation": expected["measurements.csv"],
        "Medication": len(products),
        "MedicationAdministration": expected["administrations.csv"],
    }
    for kind, count in report["resources"].items():
        found = lines(mapped / f"{kind}.ndjson")
        if kind == "Organization":  # the study record's sponsors share the file with the sites
            found = [line for line in found if "/sid/trial-site" in line]
        assert len(found) == count
    assert (mapped / "rejects.ndjson").read_text(encoding="utf-8") == ""


def test_seed_arms_are_randomized_24_24() -> None:
    subjects = rows(SEED / "subjects.csv")
    assert len(subjects) == 48
    assert sorted(s["arm_assigned"] for s in subjects).count("Control") == 24
    secretome = {s["subject_id"] for s in subjects if s["arm_assigned"] == "Secretome-MSCs"}
    given = {a["subject_id"] for a in rows(SEED / "administrations.csv") if a["product_code"] == "SECRETOME"}
    assert given == secretome  # only the experimental arm gets the secretome


def test_references_come_after_what_they_point_to() -> None:
    seen: set[str] = set()
    order = []
    for resource in map_package(SEED):
        kind = resource["resourceType"]
        if not order or order[-1] != kind:
            order.append(kind)
        for element in ("individual", "subject", "patient", "consent", "managingOrganization", "medicationReference"):
            if element in resource:
                assert resource[element]["reference"] in seen
        seen.add(f"{kind}/{resource['id']}")
    # The sites first; Patient, Consent and ResearchSubject per subject; the Observations; then each
    # product's Medication just before its first MedicationAdministration.
    assert order[0] == "Organization" and "Organization" not in order[1:]
    subjects_end = order.index("Observation")
    assert set(order[1:subjects_end]) == {"Patient", "Consent", "ResearchSubject"}
    assert "Observation" not in order[subjects_end + 1 :]
    assert set(order[subjects_end + 1 :]) == {"Medication", "MedicationAdministration"}


def test_two_runs_write_identical_bytes(mapped: Path, tmp_path: Path) -> None:
    write_mapped_package(SEED, tmp_path)
    for kind in PACKAGE_TYPES:
        assert (tmp_path / f"{kind}.ndjson").read_bytes() == (mapped / f"{kind}.ndjson").read_bytes()


def test_every_id_is_unique(mapped: Path) -> None:
    ids = [json.loads(line)["id"] for kind in PACKAGE_TYPES for line in lines(mapped / f"{kind}.ndjson")]
    assert len(ids) == len(set(ids))


def test_a_dirty_copy_rejects_exactly_the_bad_rows(tmp_path: Path) -> None:
    """Break known lines of each file; those, and only those, are rejected, and the counts reconcile."""
    package = tmp_path / "package"
    shutil.copytree(SEED, package)
    breaks = {
        "subjects.csv": {3: lambda f: f.__setitem__(4, "Placebo")},  # not an arm
        "measurements.csv": {
            5: lambda f: f.__setitem__(3, "n/a"),  # not a number
            9: lambda f: f.__setitem__(4, "furlongs"),  # unknown unit
            200: lambda f: f.__setitem__(2, "XYZ"),  # unknown test code
            301: lambda f: f.__setitem__(0, "99-9999"),  # no such subject
        },
        "administrations.csv": {7: lambda f: f.__setitem__(4, "NASAL"), 8: lambda f: f.pop()},
    }
    for name, changes in breaks.items():
        with (package / name).open(encoding="utf-8", newline="") as stream:
            lines = list(csv.reader(stream))
        for line, change in changes.items():
            change(lines[line - 1])
        with (package / name).open("w", encoding="utf-8", newline="") as stream:
            csv.writer(stream, lineterminator="\n").writerows(lines)
    mapping = map_package(package)
    list(mapping)
    report = mapping.report
    rejected = {(r.file, r.line) for r in report.rejects}
    expected = {(name, line) for name, changes in breaks.items() for line in changes}
    # The rejected subject's own measurements and doses are rejected too: they name no known subject.
    bad_subject = rows(SEED / "subjects.csv")[1]["subject_id"]
    for name in ("measurements.csv", "administrations.csv"):
        for number, row in enumerate(rows(SEED / name), start=2):
            if row["subject_id"] == bad_subject:
                expected.add((name, number))
    assert rejected == expected
    assert report.reconciles()
    for name in CSV_FILES:
        assert report.files[name].read == len(rows(SEED / name))


def _golden_outputs(mapped: Path) -> dict[str, str]:
    sample = []
    patients = {
        json.loads(line)["id"]: json.loads(line)["identifier"][0]["value"].split("/")[-1]
        for line in lines(mapped / "Patient.ndjson")
    }
    for kind in PACKAGE_TYPES:
        for line in lines(mapped / f"{kind}.ndjson"):
            resource = json.loads(line)
            owner = resource.get("subject") or resource.get("individual") or resource.get("patient")
            patient_id = owner["reference"].split("/")[1] if owner else resource["id"]
            # Sites and Medications belong to no subject: all of them are in the sample.
            if patient_id not in patients or patients[patient_id] in SAMPLE_SUBJECTS:
                sample.append(line)  # as written, byte for byte
    digests = {
        f"{kind}.ndjson": hashlib.sha256((mapped / f"{kind}.ndjson").read_bytes()).hexdigest()
        for kind in PACKAGE_TYPES
    }
    return {
        "report.json": (mapped / "report.json").read_text(encoding="utf-8"),
        "sample.ndjson": "\n".join(sample) + "\n",
        "digests.json": json.dumps(digests, indent=2) + "\n",
    }


def test_golden_files(mapped: Path) -> None:
    outputs = _golden_outputs(mapped)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, text in outputs.items():
            (GOLDEN / name).write_text(text, encoding="utf-8")
    for name, text in outputs.items():
        assert (GOLDEN / name).read_text(encoding="utf-8") == text, f"{name} differs from the golden file"
