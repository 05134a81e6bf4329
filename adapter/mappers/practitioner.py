"""Practitioner from a ClinicalTrials.gov overall official.

The registry gives one name string with degrees ("Andreas M Zeiher, MD"), so it goes
to ``HumanName.text`` unparsed: splitting it into given and family names would guess.
The official's role and affiliation belong to the study, not the person, and are kept
on the ResearchStudy (extension study-official).
"""

from __future__ import annotations

from adapter.fhir.datatypes import JSON
from adapter.fhir.ids import resource_id
from adapter.records import Official


def practitioner_id(nct_id: str, official: Official) -> str:
    """The deterministic id of the Practitioner for ``official`` of study ``nct_id``."""
    return resource_id("Practitioner", nct_id, official.name)


def practitioner(nct_id: str, official: Official) -> JSON:
    """The Practitioner resource for one overall official of study ``nct_id``."""
    return {
        "resourceType": "Practitioner",
        "id": practitioner_id(nct_id, official),
        "name": [{"text": official.name}],
    }
