"""The fixture trial packages map to resources that pass the HAPI FHIR R4 server's ``$validate``.

The sample, drawn from every package under fixtures/ (the seed and the second trial),
holds, for every row of every mapping table (each test code, answer and abnormal flag;
each product and route; each unit spelling the sites use), and for each enrollment
state, sex, value type and effective[x] form, at least one resource.
The test fails if the fixture packages stop covering a table row, so a new mapping
entry must come with fixture data that exercises it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from adapter.package import map_package
from adapter.sources.codetables import load_code_tables
from tests.conftest import REPO, validation_errors

pytestmark = pytest.mark.integration

PACKAGES = sorted(p.parent for p in (REPO / "fixtures").glob("*/package.yaml"))


def features(resource: dict[str, Any]) -> Iterator[tuple[str, ...]]:
    """What mapping rows and shapes a resource exercises."""
    kind = resource["resourceType"]
    yield (kind,)
    for coding in resource.get("code", {}).get("coding", []):
        yield ("code", coding["system"], coding["code"])
    for coding in resource.get("valueCodeableConcept", {}).get("coding", []):
        yield ("answer", coding["system"], coding["code"])
    for concept in resource.get("interpretation", []):
        yield ("flag", concept["coding"][0]["code"])
    if "valueQuantity" in resource:
        yield ("unit", resource["valueQuantity"]["code"])
    for coding in (resource.get("code", {}) if kind == "Medication" else {}).get("coding", []):
        yield ("product", coding["system"], coding["code"])
    for coding in resource.get("dosage", {}).get("route", {}).get("coding", []):
        yield ("route", coding["system"], coding["code"])
    shape = sorted(k for k in resource if k.startswith(("value", "effective")) or k in ("referenceRange",
                                                                                             "statusReason"))
    yield (kind, "shape", *shape)
    for element in ("status", "gender"):
        if element in resource:
            yield (kind, element, resource[element])
    yield (kind, "birthDate" in resource, "extension" in resource, "actualArm" in resource)


def expected_features() -> set[tuple[str, ...]]:
    tables = load_code_tables()
    wanted: set[tuple[str, ...]] = set()
    for test in tables.tests.values():
        wanted |= {("code", c.system, c.code) for c in test.codes}
        wanted |= {("answer", a.system, a.code) for a in test.answers.values()}
        if test.unit:
            wanted.add(("unit", test.unit))
    wanted |= {("flag", flag) for flag in tables.interpretations}
    for product in tables.products.values():
        wanted |= {("product", c.system, c.code) for c in product.codes}
    for route in tables.routes.values():
        wanted |= {("route", c.system, c.code) for c in (*route.codes, *route.over_period)}
    return wanted


def sample() -> list[dict[str, Any]]:
    """The first resource that shows each feature not yet shown."""
    assert len(PACKAGES) >= 2, "the seed and the second trial's packages must both be found"
    chosen, seen = [], set()
    resources = (resource for package in PACKAGES for resource in map_package(package))
    for resource in resources:
        new = set(features(resource)) - seen
        if new:
            chosen.append(resource)
            seen |= new
    missing = expected_features() - seen
    assert not missing, f"the fixture packages no longer exercise these mapping rows: {sorted(missing)}"
    return chosen


def test_the_sample_covers_every_mapping_row_and_validates(fhir_http: requests.Session, fhir_base_url: str) -> None:
    resources = sample()
    problems = {}
    for resource in resources:
        errors = validation_errors(fhir_http, fhir_base_url, resource)
        if errors:
            problems[f"{resource['resourceType']}/{resource['id']}"] = errors
    assert not problems, json.dumps(problems, indent=2)
    assert len(resources) > 40


def test_every_enrollment_state_and_sex_validates(fhir_http: requests.Session, fhir_base_url: str) -> None:
    """The seed has completed and withdrawn subjects only; the other states and sexes are built here."""
    from adapter.mappers.patient import GENDER, patient
    from adapter.mappers.researchsubject import STATUS, research_subject
    from adapter.records import Subject

    problems = {}
    for n, (state, sex) in enumerate(zip(STATUS, [*GENDER, *GENDER], strict=False)):
        randomized = state not in ("screening", "screen-failed")
        subject = Subject(
            nct_id="NCT04753476", site_id="99", subject_id=f"STATE-{n}", sex=sex, consent_date="2020-07-01",
            status=state, assigned_arm="Control" if randomized else None,
            end_date="2020-07-29" if state in ("completed", "withdrawn") else None,
            withdrawal_reason="Withdrew consent" if state == "withdrawn" else None,
        )
        for resource in (patient(subject), research_subject(subject)):
            if errors := validation_errors(fhir_http, fhir_base_url, resource):
                problems[f"{state}/{resource['resourceType']}"] = errors
    assert not problems, json.dumps(problems, indent=2)
