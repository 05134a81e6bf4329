"""Pull and export against the HAPI server: search = $export, resume, and the seed trial's round trip.

The seed trial is pushed once per session by the ``seeded`` fixture (tests/conftest.py).
Counts are by our study only.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapter.client import FhirClient
from adapter.export.exporter import export
from adapter.fhir import elements
from adapter.fhir.json import dumps, loads
from adapter.mappers.medicationadministration import medication_administration_id
from adapter.mappers.observation import observation_id
from adapter.records import Code
from adapter.sources.package import read_administrations, read_measurements, read_subjects
from adapter.sources.package_descriptor import load_package
from adapter.sync.bulk import STATUS_FILE
from adapter.sync.pull import pull

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "NCT04753476"
NCT = "NCT04753476"


@pytest.fixture(scope="module")
def by_search(seeded: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("search")
    with FhirClient(seeded) as client:
        report = pull(client, NCT, out, mode="search")
    assert report.ok, report.problems
    return out


def _resources(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in folder.glob("*.ndjson"):
        for line in path.read_text(encoding="utf-8").splitlines():
            resource = loads(line)  # decimals with their digits
            found[(resource["resourceType"], resource["id"])] = resource
    return found


@pytest.mark.slow  # 6 s, after the 20 s session seed with --durations on the shared HAPI server
def test_pull_by_search_and_by_export_give_the_same_resources(seeded: str, by_search: Path, tmp_path: Path) -> None:
    with FhirClient(seeded) as client:
        report = pull(client, NCT, tmp_path, mode="bulk")
    assert report.mode == "bulk" and report.ok, report.problems
    searched, exported = _resources(by_search), _resources(tmp_path)
    assert set(searched) == set(exported)
    assert {k: dumps(v) for k, v in searched.items()} == {k: dumps(v) for k, v in exported.items()}, (
        "same content too, every digit, not just the same ids")
    subjects = sum(1 for kind, _ in searched if kind == "ResearchSubject")
    assert subjects == sum(1 for _ in _csv(SEED / "subjects.csv"))
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert {o["type"]: o["count"] for o in manifest["output"]}["Patient"] == subjects


@pytest.mark.slow  # 11 s with --durations on the shared HAPI server
def test_an_export_interrupted_after_kick_off_resumes_from_its_saved_status_url(seeded: str, tmp_path: Path) -> None:
    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    with FhirClient(seeded) as client, pytest.raises(KeyboardInterrupt):
        pull(client, NCT, tmp_path, mode="bulk", sleep=interrupt, poll_interval=0.5)
    saved = json.loads((tmp_path / STATUS_FILE).read_text(encoding="utf-8"))["status"]

    calls: list[tuple[str, str]] = []
    with FhirClient(seeded) as client:
        send = client.send

        def recording(method: str, path: str, **options: Any) -> Any:
            calls.append((method, path))
            return send(method, path, **options)

        client.send = recording  # type: ignore[method-assign]
        report = pull(client, NCT, tmp_path, mode="bulk")
    assert report.ok and report.counts["Observation"] > 0
    assert not any(method == "POST" for method, _ in calls), "no second kick-off"
    assert ("GET", saved) in calls, "polled the saved status URL"
    assert not (tmp_path / STATUS_FILE).exists()


def _csv(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        yield from csv.DictReader(handle)


def test_round_trip_keeps_every_subject_arm_value_unit_and_time(by_search: Path, tmp_path: Path) -> None:
    export(by_search, tmp_path / "tables", "csv")
    export(by_search, tmp_path / "sdtm", "sdtm")
    dm = {row["SUBJID"]: row for row in _csv(tmp_path / "sdtm" / "dm.csv")}
    for subject in _csv(SEED / "subjects.csv"):
        row = dm.pop(subject["subject_id"])
        assert (row["SITEID"], row["ARM"], row["ACTARM"]) == (
            subject["site_id"], subject["arm_assigned"], subject["arm_actual"])
        assert row["SEX"] == subject["sex"]
    assert dm == {}, "no subject the source does not have"

    observations = {row["id"]: row for row in _csv(tmp_path / "tables" / "Observation.csv")}
    findings = {(r["USUBJID"], r["LBDTC"], r["LBLOINC"]): r for r in _csv(tmp_path / "sdtm" / "lb.csv")}
    package = load_package(SEED)
    index: dict[str, str] = {}
    for _ in read_subjects(package, index):
        pass
    source_rows = list(_csv(SEED / "measurements.csv"))
    compared = 0
    for item in read_measurements(package, index):
        if not isinstance(item, tuple):
            continue  # a rejected row: it is in the rejects report, not on the server
        line, measurement = item
        source = source_rows[line - 2]
        row = observations.pop(observation_id(measurement))
        # The time as the site wrote it (local), now with the site's offset.
        wrote, got = re.findall(r"\d+", source["collected_at"]), re.findall(r"\d+", row["effective_start"])
        assert [int(n) for n in wrote[:5]] == [int(n) for n in got[:5]], (source, row["effective_start"])
        if isinstance(measurement.value, Decimal):
            assert Decimal(row["value"]) == measurement.value
            assert row["unit_code"] == measurement.unit
            if source["unit"] == measurement.unit:
                assert Decimal(row["value"]) == Decimal(source["value"]), "no conversion, the very value"
            lab = findings.get((f"{NCT}-{measurement.site_id}-{measurement.subject_id}", row["effective_start"],
                                row["loinc"]))
            if lab is not None:
                assert Decimal(lab["LBSTRESN"]) == measurement.value
        compared += 1
    assert compared > 1000 and observations == {}, "every observation comes from a source row"


_OFFSET = re.compile(r"(Z|[+-][0-9]{2}:[0-9]{2})$")


def _as_written(moment: str | None) -> str | None:
    """A time without its UTC offset (the server's has the site's offset), with T between date and time."""
    return None if moment is None else _OFFSET.sub("", moment.replace(" ", "T", 1))


def test_the_pull_keeps_every_value_unit_digit_and_time_precision_the_site_wrote(by_search: Path) -> None:
    """Map, push, pull: every accepted measurements.csv and administrations.csv row is in the pulled NDJSON as written.

    What the site wrote is read where the resource keeps it: the reported-value extension when the
    value was converted or its unit spelled otherwise, the standard Quantity when not; a time at
    the precision it was given (reported-precision extension).
    """
    pulled = _resources(by_search)
    package = load_package(SEED)
    index: dict[str, str] = {}
    for _ in read_subjects(package, index):
        pass
    rows = list(_csv(SEED / "measurements.csv"))
    converted = 0
    for item in read_measurements(package, index):
        assert isinstance(item, tuple), item  # the seed has no bad row
        line, measurement = item
        row, observation = rows[line - 2], pulled[("Observation", observation_id(measurement))]
        assert _as_written(elements.reported_datetime(observation, "effectiveDateTime")) == _as_written(
            row["collected_at"]), row
        if isinstance(measurement.value, Decimal):
            reported = elements.reported_quantity(observation, "valueQuantity")
            assert (elements.number_text(reported["value"]), reported["unit"]) == (row["value"], row["unit"]), row
            converted += reported is not observation["valueQuantity"]
            for bound in ("low", "high"):
                if row[f"ref_{bound}"]:
                    written = elements.reported_quantity(observation["referenceRange"][0][bound])
                    assert (elements.number_text(written["value"]), written["unit"]) == (row[f"ref_{bound}"],
                                                                                          row["unit"]), row
        elif isinstance(measurement.value, Code):
            assert observation["valueCodeableConcept"]["coding"][0]["code"] == measurement.value.code
        else:
            assert str(observation.get("valueInteger", observation.get("valueString"))) == row["value"]
    assert converted == 945, "344 converted values and 601 units spelled otherwise (mmHg, °C, ng/mL FEU)"

    rows = list(_csv(SEED / "administrations.csv"))
    for item in read_administrations(package, index):
        assert isinstance(item, tuple), item
        line, administration = item
        row = rows[line - 2]
        resource = pulled[("MedicationAdministration", medication_administration_id(administration))]
        dose = resource["dosage"]["dose"]
        assert (elements.number_text(dose["value"]), dose["unit"]) == (row["dose"], row["dose_unit"])
        if row["end"]:
            span = resource["effectivePeriod"]
            assert _as_written(elements.reported_datetime(span, "start")) == _as_written(row["start"])
            assert _as_written(elements.reported_datetime(span, "end")) == _as_written(row["end"])
        else:
            assert _as_written(elements.reported_datetime(resource, "effectiveDateTime")) == _as_written(row["start"])
