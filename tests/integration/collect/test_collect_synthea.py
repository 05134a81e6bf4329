"""collect against HAPI loaded with a Synthea population, checked against Synthea's own files."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

from adapter.client import FhirClient
from adapter.collect.run import collect
from tests.integration.collect.hospital import enrol, inpatients, observations

pytestmark = pytest.mark.slow


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture(scope="module")
def collected(synthea_hospital: Path, fhir_base_url: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    subjects = inpatients(synthea_hospital)
    assert len(subjects) >= 3, "the seeded population should hold several inpatients"
    root = tmp_path_factory.mktemp("collect")
    package, links = enrol(subjects, root)
    with FhirClient(fhir_base_url) as client:
        report = collect(package, client, links, root / "out")
    return subjects, root / "out", report.as_json(), links


def test_every_enrolled_inpatient_is_found(collected) -> None:  # type: ignore[no-untyped-def]
    subjects, _, report, _ = collected
    assert report["subjects"] == {"found": len(subjects)}


def test_collected_values_are_synthea_values_in_the_trial_units(collected) -> None:  # type: ignore[no-untyped-def]
    subjects, out, _, _ = collected
    by_id = {r["id"]: r for s in subjects for r in observations(s, "2703-7", "1988-5", "2708-6", "19994-3")}
    checked = 0
    for row in rows(out / "measurements.csv"):
        source = by_id.get(row["source_id"])
        if row["test_code"] not in ("PAO2", "CRP", "SPO2", "FIO2") or source is None:
            continue
        quantity = source["valueQuantity"]
        assert Decimal(row["reported_value"]) == Decimal(str(quantity["value"]))
        assert row["reported_unit"] == quantity["code"]
        assert row["collected_at"] == source["effectiveDateTime"]
        if row["unit"] == quantity["code"]:
            assert Decimal(row["value"]) == Decimal(str(quantity["value"]))
        checked += 1
    assert checked >= 10
    # Every visit row points at a source resource and its version on the server.
    assert all(r["source_id"] and (r["source_version"] or r["derived_from"]) for r in rows(out / "measurements.csv"))


def test_the_ratio_is_derived_from_synthea_pao2_and_fio2(collected) -> None:  # type: ignore[no-untyped-def]
    subjects, out, report, _ = collected
    values = {r["id"]: Decimal(str(r["valueQuantity"]["value"]))
              for s in subjects for r in observations(s, "2703-7", "19994-3")}
    derived = [r for r in rows(out / "measurements.csv") + rows(out / "measurements-other.csv")
               if r["test_code"] == "PFRATIO"]
    assert derived and report["codes"]["PFRATIO"]["derived"] == len(derived)
    for row in derived:
        pao2_url, fio2_url = row["derived_from"].split()
        pao2 = values[pao2_url.split("/_history")[0].rsplit("/", 1)[1]]
        fio2 = values[fio2_url.split("/_history")[0].rsplit("/", 1)[1]]
        expected = pao2 / (fio2 / 100)
        assert abs(Decimal(row["value"]) - expected) <= expected * Decimal("0.05")  # rounded to 2-3 digits


def test_counts_add_up_and_the_links_file_is_not_copied(collected) -> None:  # type: ignore[no-untyped-def]
    subjects, out, report, links = collected
    for code, count in report["codes"].items():
        assert count.get("read", 0) == (count.get("collected", 0) + count.get("rejected", 0)
                                         + count.get("out_of_window", 0)), code
    written = "".join(p.read_text() for p in out.iterdir())
    assert all(s.mrn not in written for s in subjects)
    assert not any(p.name == links.name for p in out.iterdir())


def test_administrations_are_collected_by_rxnorm(collected) -> None:  # type: ignore[no-untyped-def]
    subjects, out, _, _ = collected
    given = {r["id"] for s in subjects for r in s.resources if r["resourceType"] == "MedicationAdministration"}
    collected_rows = rows(out / "administrations.csv")
    assert collected_rows and all(r["source_id"] in given for r in collected_rows)
    assert {r["product_code"] for r in collected_rows} <= {"ENOXAPARIN", "REMDESIVIR", "AZITHRO", "TOCILIZUMAB"}


def test_reconciliation_says_missing_in_edc_for_a_package_without_values(collected) -> None:  # type: ignore[no-untyped-def]
    _, out, report, _ = collected
    visit_rows = [r for r in rows(out / "measurements.csv")]
    assert report["reconciliation"] == {"missing-in-edc": len(visit_rows)}
    assert json.loads((out / "report.json").read_text())["reconciliation"] == report["reconciliation"]
