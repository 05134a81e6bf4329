"""Patient, ResearchSubject, Observation and MedicationAdministration mappers: pure, deterministic, R4-shaped."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from adapter.fhir.ids import resource_id
from adapter.fhir.json import dumps
from adapter.fhir.validate import r4b_problems
from adapter.mappers.consent import consent
from adapter.mappers.medication import medication
from adapter.mappers.medicationadministration import medication_administration
from adapter.mappers.observation import observation
from adapter.mappers.organization import site_organization
from adapter.mappers.patient import patient
from adapter.mappers.researchsubject import STATUS, research_subject
from adapter.records import Administration, Code, Measurement, Subject, Visit

SUBJECT = Subject(
    nct_id="NCT04753476", site_id="01", subject_id="01-0001", sex="F", consent_date="2020-06-11",
    status="withdrawn", birth_year=1961, assigned_arm="Secretome-MSCs", actual_arm="Control",
    start_date="2020-06-12", end_date="2020-06-20", withdrawal_reason="Withdrew consent",
)
IL6 = Measurement(
    nct_id="NCT04753476", site_id="01", subject_id="01-0001", visit=Visit("D7", "Day 7", 7), test_code="IL6",
    local_system="https://example.org/sponsor", display="Interleukin 6", category="laboratory",
    codes=(Code("http://loinc.org", "26881-3", "Interleukin 6 [Mass/volume] in Serum or Plasma"),),
    value=Decimal("12.50"), collected_at="2020-06-18T08:30:00+07:00", unit="pg/mL",
    low=Decimal("0"), high=Decimal("7.0"),
    interpretation=Code("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "H", "High"),
)
DOSE = Administration(
    nct_id="NCT04753476", site_id="01", subject_id="01-0001", product_code="SECRETOME",
    local_system="https://example.org/sponsor", product_display="Secretome-MSCs",
    product_codes=(Code("https://trialfhir.dev/fhir/CodeSystem/trial-product", "secretome-hypoxic-mscs", "Secretome"),),
    status="completed", start="2020-06-12T10:00:00+07:00", dose=Decimal("1"), dose_unit="mL",
    route_display="Intramuscular",
    route_codes=(Code("http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", "IM",
                      "Injection, intramuscular"),),
)
STUDY_REFERENCE = {"reference": f"ResearchStudy/{resource_id('ResearchStudy', 'NCT04753476')}"}
PATIENT_REFERENCE = {"reference": f"Patient/{resource_id('Patient', 'NCT04753476', '01', '01-0001')}"}


def same_json(a: dict[str, object], b: dict[str, object]) -> bool:
    return dumps(a) == dumps(b)


def test_patient_is_pseudonymous_with_the_birth_year_only() -> None:
    resource = patient(SUBJECT)
    assert resource["id"] == PATIENT_REFERENCE["reference"].split("/")[1]
    assert resource["identifier"] == [{"use": "official", "system": "https://trialfhir.dev/fhir/sid/trial-subject",
                                       "value": "NCT04753476/01/01-0001"}]
    assert resource["gender"] == "female" and resource["birthDate"] == "1961"
    assert not {"name", "telecom", "address", "contact", "photo"} & set(resource)
    assert "birthDate" not in patient(replace(SUBJECT, birth_year=None))
    assert r4b_problems(resource) == []


@pytest.mark.parametrize(("sex", "gender"), [("M", "male"), ("F", "female"), ("U", "unknown"),
                                             ("UNDIFFERENTIATED", "other")])
def test_patient_gender(sex: str, gender: str) -> None:
    assert patient(replace(SUBJECT, sex=sex))["gender"] == gender


def test_ids_follow_the_natural_key() -> None:
    assert patient(SUBJECT)["id"] == patient(replace(SUBJECT, sex="M", birth_year=None))["id"]
    assert patient(SUBJECT)["id"] != patient(replace(SUBJECT, site_id="02"))["id"]
    assert research_subject(SUBJECT)["id"] != patient(SUBJECT)["id"]


def test_research_subject_links_study_patient_arms_and_period() -> None:
    resource = research_subject(SUBJECT)
    assert resource["study"] == STUDY_REFERENCE and resource["individual"] == PATIENT_REFERENCE
    assert resource["status"] == "withdrawn"
    assert resource["period"] == {"start": "2020-06-12", "end": "2020-06-20"}
    assert (resource["assignedArm"], resource["actualArm"]) == ("Secretome-MSCs", "Control")
    assert resource["extension"] == [{"url": "https://trialfhir.dev/fhir/StructureDefinition/withdrawal-reason",
                                      "valueString": "Withdrew consent"}]
    assert r4b_problems(resource) == []


def test_research_subject_status_covers_every_package_state() -> None:
    r4_codes = {"candidate", "eligible", "follow-up", "ineligible", "not-registered", "off-study", "on-study",
                "on-study-intervention", "on-study-observation", "pending-on-study", "potential-candidate",
                "screening", "withdrawn"}
    assert set(STATUS.values()) <= r4_codes
    screening = research_subject(replace(SUBJECT, status="screening", start_date=None, end_date=None,
                                         withdrawal_reason=None, assigned_arm=None, actual_arm=None))
    assert screening["period"] == {"start": "2020-06-11"}
    assert not {"assignedArm", "actualArm", "extension"} & set(screening)


def test_observation_quantity_with_range_interpretation_visit_and_study() -> None:
    resource = observation(IL6)
    assert list(resource)[:4] == ["resourceType", "id", "extension", "status"]
    assert resource["id"] == resource_id("Observation", "NCT04753476", "01", "01-0001", "D7", "IL6",
                                         "2020-06-18T08:30:00+07:00")
    assert resource["extension"][0] == {"url": "http://hl7.org/fhir/StructureDefinition/workflow-researchStudy",
                                        "valueReference": STUDY_REFERENCE}
    assert resource["extension"][1]["extension"] == [{"url": "code", "valueCode": "D7"},
                                                     {"url": "name", "valueString": "Day 7"},
                                                     {"url": "plannedDay", "valueInteger": 7}]
    assert [c["code"] for c in resource["code"]["coding"]] == ["26881-3", "IL6"]
    assert resource["category"][0]["coding"][0]["code"] == "laboratory"
    assert resource["valueQuantity"]["value"] == 12.5
    assert resource["referenceRange"] == [{"low": {"value": 0, "unit": "pg/mL", "system": "http://unitsofmeasure.org",
                                                   "code": "pg/mL"},
                                           "high": {"value": 7.0, "unit": "pg/mL",
                                                    "system": "http://unitsofmeasure.org", "code": "pg/mL"}}]
    assert resource["interpretation"][0]["coding"][0]["code"] == "H"
    assert resource["subject"] == PATIENT_REFERENCE
    assert r4b_problems(resource) == []


@pytest.mark.parametrize(
    ("value", "element"),
    [(3, "valueInteger"), (Code("http://snomed.info/sct", "260373001", "Detected"), "valueCodeableConcept"),
     ("No active lung lesion", "valueString")],
)
def test_observation_value_types(value: object, element: str) -> None:
    measurement = replace(IL6, value=value, unit=None, low=None, high=None, interpretation=None)
    resource = observation(measurement)
    assert element in resource
    assert not {"valueQuantity", "referenceRange", "interpretation"} & set(resource)
    assert r4b_problems(resource) == []


def test_medication_administration_dose_route_and_study() -> None:
    resource = medication_administration(DOSE)
    assert resource["effectiveDateTime"] == "2020-06-12T10:00:00+07:00" and "effectivePeriod" not in resource
    assert resource["dosage"]["route"]["coding"][0]["code"] == "IM"
    assert resource["dosage"]["dose"] == {"value": 1, "unit": "mL", "system": "http://unitsofmeasure.org",
                                          "code": "mL"}
    assert resource["medicationReference"] == {
        "reference": f"Medication/{resource_id('Medication', 'NCT04753476', 'SECRETOME')}", "display": "Secretome-MSCs"}
    assert "medicationCodeableConcept" not in resource  # R4: one medication[x]
    assert resource["extension"] == [{"url": "http://hl7.org/fhir/StructureDefinition/workflow-researchStudy",
                                      "valueReference": STUDY_REFERENCE}]
    assert r4b_problems(resource) == []


def test_medication_not_given_keeps_its_due_time_and_reason() -> None:
    resource = medication_administration(
        replace(DOSE, status="not-done", not_given_reason="Patient refused", end="2020-06-12T10:30:00+07:00")
    )
    assert resource["statusReason"] == [{"text": "Patient refused"}]
    assert resource["effectivePeriod"] == {"start": "2020-06-12T10:00:00+07:00", "end": "2020-06-12T10:30:00+07:00"}
    assert r4b_problems(resource) == []


def test_mapping_twice_gives_identical_json() -> None:
    for mapper, record in ((patient, SUBJECT), (research_subject, SUBJECT), (observation, IL6),
                           (medication_administration, DOSE)):
        assert same_json(mapper(record), mapper(record))


def test_medication_carries_codes_form_and_lot_with_one_id_per_product_and_lot() -> None:
    plain = medication(DOSE)
    assert [c["code"] for c in plain["code"]["coding"]] == ["secretome-hypoxic-mscs", "SECRETOME"]
    assert plain["code"]["text"] == "Secretome-MSCs" and not {"form", "batch"} & set(plain)
    assert medication(replace(DOSE, start="2020-06-13T10:00:00+07:00"))["id"] == plain["id"]
    form = Code("http://snomed.info/sct", "385219001", "Conventional release solution for injection")
    lot = medication(replace(DOSE, lot="B-2020-07", product_form=form))
    assert lot["id"] != plain["id"] and lot["batch"] == {"lotNumber": "B-2020-07"}
    assert lot["form"]["coding"][0]["code"] == "385219001"
    assert medication_administration(replace(DOSE, lot="B-2020-07"))["medicationReference"]["reference"] == (
        f"Medication/{lot['id']}")  # fmt: skip
    assert r4b_problems(lot) == []


def test_consent_is_dated_research_consent_of_the_patient_referenced_by_the_subject() -> None:
    resource = consent(SUBJECT)
    assert (resource["status"], resource["dateTime"], resource["patient"]) == ("active", "2020-06-11",
                                                                               PATIENT_REFERENCE)  # fmt: skip
    assert resource["scope"]["coding"][0]["code"] == "research"
    assert research_subject(SUBJECT)["consent"] == {"reference": f"Consent/{resource['id']}"}
    assert r4b_problems(resource) == []


def test_patient_is_managed_by_its_site_organization() -> None:
    site = site_organization("NCT04753476", "01", "RSUD Bantul")
    assert patient(SUBJECT)["managingOrganization"] == {"reference": f"Organization/{site['id']}"}
    assert site["identifier"][0]["value"] == "NCT04753476/01" and site["name"] == "RSUD Bantul"
    assert r4b_problems(site) == []
