"""collect against HAPI loaded with small hand-written Patients and Observations, one case at a time.

Each test writes its own Patients (ids and identifier system unique to the test) with
PUT, so what other tests or agents write to the shared server cannot reach them: every
search collect makes is by identifier or by patient.
"""

from __future__ import annotations

import csv
import json
import shutil
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from adapter.client import FhirClient
from adapter.collect.run import collect
from adapter.package import map_package
from tests.conftest import validation_errors
from tests.integration.collect.hospital import PACKAGE_YAML

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CONSENT = "2021-03-01"  # day 0; visits D1 (2021-03-02 +-1 day), D3 (03-04 +-1), D7 (03-08 +-1)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


class Hospital:
    """A few Patients and Observations of one test on the server, and the package and links enrolling them."""

    def __init__(self, client: FhirClient, root: Path) -> None:
        self.client, self.root = client, root
        self.tag = uuid.uuid4().hex[:12]
        self.mrn = f"https://hospital.test/{self.tag}/mrn"
        self.national = f"https://hospital.test/{self.tag}/national"
        self.links: list[tuple[str, str, str]] = []

    def patient(self, name: str, *identifiers: tuple[str, str], replaced_by: str | None = None) -> str:
        pid = f"c14-{self.tag}-{name}"
        resource: dict[str, Any] = {"resourceType": "Patient", "id": pid,
                                    "identifier": [{"system": s, "value": v} for s, v in identifiers]}
        if replaced_by:
            resource["link"] = [{"other": {"reference": f"Patient/c14-{self.tag}-{replaced_by}"},
                                 "type": "replaced-by"}]
        self.client.update(f"Patient/{pid}", resource)
        return pid

    def observation(self, name: str, patient: str, code: str, value: str | None, unit: str, when: str, *,
                    status: str = "final") -> dict[str, Any]:
        """PUT an Observation (``value`` as JSON number text) and return the server's version of it."""
        oid = f"c14-{self.tag}-{name}"
        resource: dict[str, Any] = {"resourceType": "Observation", "id": oid, "status": status,
                                    "code": {"coding": [{"system": LOINC, "code": code}]},
                                    "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": when}
        if value is not None:
            resource["valueQuantity"] = {"value": Decimal(value), "unit": unit, "system": UCUM, "code": unit}
        return dict(self.client.update(f"Observation/{oid}", resource).json())

    def link(self, subject: str, system: str, value: str) -> None:
        self.links.append((subject, system, value))

    def collect(self) -> dict[str, Any]:
        package = self.root / "package"
        package.mkdir(exist_ok=True)
        (package / "package.yaml").write_text(PACKAGE_YAML)
        subjects = sorted({s for s, _, _ in self.links})
        with (package / "subjects.csv").open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["subject_id", "site_id", "sex", "birth_year", "arm_assigned", "arm_actual",
                             "consent_date", "status", "start_date", "end_date", "withdrawal_reason"])
            for s in subjects:
                writer.writerow([s, "01", "U", "", "Control", "Control", CONSENT, "completed", CONSENT,
                                 "2021-03-28", ""])
        links = self.root / "links.csv"
        with links.open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["subject_id", "identifier_system", "identifier_value"])
            writer.writerows(self.links)
        return collect(package, self.client, links, self.out).as_json()

    @property
    def out(self) -> Path:
        return self.root / "out"

    def id(self, name: str) -> str:
        return f"c14-{self.tag}-{name}"


@pytest.fixture
def hospital(fhir_base_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    with FhirClient(fhir_base_url) as client:
        yield Hospital(client, tmp_path)


def test_patients_not_found_ambiguous_and_replaced_by(hospital: Hospital) -> None:
    h = hospital
    plain = h.patient("plain", (h.mrn, "M1"))
    # Subject 01-0002's MRN and national id name two different people: ambiguous, never a guess.
    one = h.patient("one", (h.mrn, "M2"))
    h.patient("other", (h.national, "N2"))
    # The MRN is on a merged-away record: its replaced-by link leads to the surviving Patient.
    survivor = h.patient("survivor", (h.mrn, "M3-new"))
    h.patient("merged", (h.mrn, "M3"), replaced_by="survivor")
    for name, patient in (("o-plain", plain), ("o-one", one), ("o-survivor", survivor)):
        h.observation(name, patient, "2703-7", "80", "mm[Hg]", "2021-03-02T10:00:00Z")
    h.link("01-0001", h.mrn, "M1")
    h.link("01-0002", h.mrn, "M2")
    h.link("01-0002", h.national, "N2")
    h.link("01-0003", h.mrn, "M3")
    h.link("01-0004", h.mrn, "M-NOBODY")

    report = h.collect()

    assert report["subjects"] == {"found": 2, "ambiguous": 1, "not-found": 1}
    collected = {(r["subject_id"], r["source_id"]) for r in rows(h.out / "measurements.csv")}
    assert collected == {("01-0001", h.id("o-plain")), ("01-0003", h.id("o-survivor"))}


def test_units_two_codes_the_derived_ratio_and_counts(hospital: Hospital, fhir_base_url: str) -> None:
    h = hospital
    p = h.patient("p", (h.mrn, "M1"))
    h.link("01-0001", h.mrn, "M1")
    crp = h.observation("crp", p, "1988-5", "1.56", "mg/dL", "2021-03-02T09:00:00Z")
    h.observation("crp-mol", p, "1988-5", "3.1", "mmol/L", "2021-03-04T09:00:00Z")
    # FiO2 under both codes the test accepts: the ventilator setting (19994-3) and the measured one (3150-0).
    fio2 = h.observation("fio2-set", p, "19994-3", "40", "%", "2021-03-02T10:00:00Z")
    h.observation("fio2-measured", p, "3150-0", "55", "%", "2021-03-04T12:00:00Z")
    pao2 = h.observation("pao2", p, "2703-7", "82", "mm[Hg]", "2021-03-02T10:20:00Z")
    h.observation("pao2-before", p, "2703-7", "75", "mm[Hg]", "2021-02-28T10:00:00Z")  # before consent

    report = h.collect()

    visit = {(r["test_code"], r["visit"]): r for r in rows(h.out / "measurements.csv")}
    assert {k: (r["value"], r["unit"], r["reported_value"], r["reported_unit"]) for k, r in visit.items()} == {
        ("CRP", "D1"): ("15.6", "mg/L", "1.56", "mg/dL"),
        ("FIO2", "D1"): ("40", "%", "40", "%"),
        ("FIO2", "D3"): ("55", "%", "55", "%"),
        ("PAO2", "D1"): ("82", "mm[Hg]", "82", "mm[Hg]"),
        # 82 / 0.40 = 205, kept to the two significant digits of the less precise input.
        ("PFRATIO", "D1"): ("200", "mm[Hg]", "", ""),
    }
    assert visit[("CRP", "D1")]["source_version"] == crp["meta"]["versionId"]
    assert visit[("PFRATIO", "D1")]["derived_from"].split() == [
        f"{fhir_base_url}/Observation/{pao2['id']}/_history/{pao2['meta']['versionId']}",
        f"{fhir_base_url}/Observation/{fio2['id']}/_history/{fio2['meta']['versionId']}",
    ]
    [reject] = [json.loads(line) for line in (h.out / "rejects.ndjson").read_text().splitlines()]
    assert (reject["source_id"], reject["state"], reject["reported_unit"]) == (h.id("crp-mol"), "rejected", "mmol/L")
    assert "mmol/L" in reject["reason"] and "3.1" not in reject["reason"]

    # Every row of every file names its source and version (a derived row: its sources' versioned URLs).
    for name in ("measurements.csv", "measurements-other.csv", "administrations.csv"):
        assert all((r["source_id"] and r["source_version"]) or r["derived_from"] for r in rows(h.out / name)), name
    reconciled = {(r["test_code"], r["ehr_source"]) for r in rows(h.out / "reconciliation.csv")}
    assert ("CRP", f"Observation/{crp['id']}/_history/{crp['meta']['versionId']}") in reconciled
    assert ("PFRATIO", visit[("PFRATIO", "D1")]["derived_from"]) in reconciled

    codes = report["codes"]
    assert codes["CRP"] == {"read": 2, "collected": 1, "rejected": 1, "visit": 1}
    assert codes["PAO2"] == {"read": 2, "collected": 1, "out_of_window": 1, "visit": 1}
    assert codes["FIO2"]["read"] == codes["FIO2"]["collected"] == 2
    assert codes["PFRATIO"] == {"derived": 1}
    read = sum(c.get("read", 0) for c in codes.values())
    assert read == report["resources_fetched"] == 6
    assert read == sum(c.get(k, 0) for c in codes.values() for k in ("collected", "rejected", "out_of_window"))


def test_a_corrected_value_and_an_entered_in_error_show_on_the_second_run(hospital: Hospital) -> None:
    h = hospital
    p = h.patient("p", (h.mrn, "M1"))
    h.link("01-0001", h.mrn, "M1")
    h.observation("pao2", p, "2703-7", "80", "mm[Hg]", "2021-03-02T10:00:00Z")
    h.observation("crp", p, "1988-5", "12", "mg/L", "2021-03-04T10:00:00Z")
    h.observation("crp-d7", p, "1988-5", "9.5", "mg/L", "2021-03-08T10:00:00Z")
    first = h.collect()
    assert (first["resources_fetched"], first["changes"]) == (3, {})
    since = json.loads((h.out / "journal.json").read_text())["since"]

    corrected = h.observation("pao2", p, "2703-7", "85", "mm[Hg]", "2021-03-02T10:00:00Z", status="corrected")
    h.observation("crp", p, "1988-5", "12", "mg/L", "2021-03-04T10:00:00Z", status="entered-in-error")
    second = h.collect()

    assert second["since"] == since  # the server's time of the first run, from the journal
    assert second["resources_fetched"] == 2  # only what changed since the first run
    changes = {r["source_id"]: r for r in rows(h.out / "changes.csv")}
    assert set(changes) == {h.id("pao2"), h.id("crp")}
    assert {k: changes[h.id("pao2")][k] for k in ("change", "old_value", "new_value", "unit")} == {
        "change": "changed", "old_value": "80", "new_value": "85", "unit": "mm[Hg]"}
    assert {k: changes[h.id("crp")][k] for k in ("change", "old_state", "old_value", "new_state")} == {
        "change": "retracted", "old_state": "collected", "old_value": "12", "new_state": "retracted"}
    visit = {r["source_id"]: r for r in rows(h.out / "measurements.csv")}
    assert set(visit) == {h.id("pao2"), h.id("crp-d7")}  # the unchanged D7 value kept from the journal
    assert (visit[h.id("pao2")]["value"], visit[h.id("pao2")]["source_version"]) == (
        "85", corrected["meta"]["versionId"])
    retracted = [json.loads(line) for line in (h.out / "rejects.ndjson").read_text().splitlines()]
    assert [(r["source_id"], r["state"]) for r in retracted] == [(h.id("crp"), "retracted")]
    assert second["changes"] == {"changed": 1, "retracted": 1}


def test_mapped_collected_rows_carry_their_sources_and_validate(hospital: Hospital, fhir_base_url: str,
                                                                 fhir_http: requests.Session) -> None:
    h = hospital
    p = h.patient("p", (h.mrn, "M1"))
    h.link("01-0001", h.mrn, "M1")
    crp = h.observation("crp", p, "1988-5", "1.56", "mg/dL", "2021-03-02T09:00:00Z")
    fio2 = h.observation("fio2", p, "19994-3", "40", "%", "2021-03-02T10:00:00Z")
    pao2 = h.observation("pao2", p, "2703-7", "82", "mm[Hg]", "2021-03-02T10:20:00Z")
    h.collect()
    # The collected files are package files as they stand: map package reads them beside the package's subjects.csv.
    for name in ("measurements.csv", "administrations.csv"):
        shutil.copy(h.out / name, h.root / "package" / name)
    mapping = map_package(h.root / "package")
    observations = {o["code"]["coding"][-1]["code"]: o for o in mapping if o["resourceType"] == "Observation"}
    assert mapping.report.rejects == []

    def url(resource: dict[str, Any]) -> tuple[str, str, str]:
        return ("Observation", "urn:ietf:rfc:3986",
                f"{fhir_base_url}/Observation/{resource['id']}/_history/{resource['meta']['versionId']}")

    assert {code: [(r["type"], r["identifier"]["system"], r["identifier"]["value"]) for r in o["derivedFrom"]]
            for code, o in observations.items()} == {
        "CRP": [url(crp)], "FIO2": [url(fio2)], "PAO2": [url(pao2)], "PFRATIO": [url(pao2), url(fio2)]}
    # HAPI refuses an external reference (HAPI-0507), so the sources are logical references: a server takes them.
    with FhirClient(fhir_base_url) as client:
        probe = {**observations["PAO2"], "id": h.id("mapped"), "subject": {"reference": f"Patient/{p}"}}
        assert client.update(f"Observation/{probe['id']}", probe).json()["derivedFrom"] == probe["derivedFrom"]
    # The hospital's value and unit travel beside the converted one.
    [written] = [e["valueQuantity"] for e in observations["CRP"]["extension"] if "valueQuantity" in e]
    assert (observations["CRP"]["valueQuantity"]["value"], written["value"], written["code"]) == (
        Decimal("15.6"), Decimal("1.56"), "mg/dL")
    for observation in observations.values():
        assert validation_errors(fhir_http, fhir_base_url, observation) == [], observation["code"]
