"""Find each enrolled subject's Patient on the hospital's server, by the identifiers of the links file.

One search asks for many identifiers at once (``Patient?identifier=a|1,b|2,...``: a
comma is an OR in FHIR search). Each Patient that comes back is matched to subjects by
its own identifiers, so the server's answer order does not matter. A Patient that says
it was ``replaced-by`` another is replaced by that one (followed up to ``MAX_HOPS``
links). Then, per subject: no Patient is *not found*; more than one distinct Patient
is *ambiguous* and collects nothing (a guess would put another person's values into the
trial); exactly one is *found*.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from adapter.client import FhirClient
from adapter.collect.links import HospitalId
from adapter.errors import ServerError

MAX_HOPS = 5
FOUND, NOT_FOUND, AMBIGUOUS = "found", "not-found", "ambiguous"


@dataclass(frozen=True)
class Match:
    """What the search found for one subject: ``status`` and, when found, the Patient's id."""

    status: str
    patient_id: str | None = None
    # Patients found, when ambiguous (ids on the hospital's server; never logged).
    candidates: tuple[str, ...] = ()


def find_patients(
    client: FhirClient, links: Mapping[str, tuple[HospitalId, ...]], *, chunk: int = 50
) -> dict[str, Match]:
    """A Match for every subject of ``links``."""
    owners: dict[HospitalId, set[str]] = {}
    for subject, ids in links.items():
        for hospital_id in ids:
            owners.setdefault(hospital_id, set()).add(subject)
    found: dict[str, set[str]] = {subject: set() for subject in links}
    patients: dict[str, dict[str, Any]] = {}
    identifiers = list(owners)
    for start in range(0, len(identifiers), chunk):
        batch = identifiers[start:start + chunk]
        query = {"identifier": ",".join(i.token() for i in batch), "_count": str(len(batch) * 2)}
        for patient in _entries(client, "Patient", query):
            patients[patient["id"]] = patient
            for hospital_id in _identifiers(patient):
                for subject in owners.get(hospital_id, ()):
                    found[subject].add(patient["id"])
    final = {pid: _current(client, pid, patients) for pid in {p for ids in found.values() for p in ids}}
    matches = {}
    for subject, patient_ids in found.items():
        distinct = sorted({final[pid] for pid in patient_ids})
        if not distinct:
            matches[subject] = Match(NOT_FOUND)
        elif len(distinct) > 1:
            matches[subject] = Match(AMBIGUOUS, candidates=tuple(distinct))
        else:
            matches[subject] = Match(FOUND, distinct[0])
    return matches


def _entries(client: FhirClient, resource_type: str, query: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    for page in client.search(resource_type, query, fresh=True):
        for entry in page.get("entry", []):
            resource = entry.get("resource", {})
            matched = (entry.get("search") or {}).get("mode", "match") == "match"
            if resource.get("resourceType") == resource_type and matched:
                yield resource


def _identifiers(patient: Mapping[str, Any]) -> Iterator[HospitalId]:
    for identifier in patient.get("identifier", []):
        if "system" in identifier and "value" in identifier:
            yield HospitalId(identifier["system"], identifier["value"])


def _current(client: FhirClient, patient_id: str, known: dict[str, dict[str, Any]]) -> str:
    """The id of the Patient that ``patient_id`` has been replaced by, or itself."""
    seen = [patient_id]
    while len(seen) <= MAX_HOPS:
        patient = known.get(seen[-1])
        if patient is None:
            patient = known[seen[-1]] = client.read("Patient", seen[-1])
        following = next((link["other"].get("reference", "") for link in patient.get("link", [])
                          if link.get("type") == "replaced-by" and "other" in link), "")
        if not following.startswith("Patient/"):
            return seen[-1]
        target = following.removeprefix("Patient/").split("/")[0]
        if target in seen:
            raise ServerError(0, method="GET", url=f"{client.base_url}/Patient",
                              text="Patient replaced-by links form a loop")
        seen.append(target)
    raise ServerError(0, method="GET", url=f"{client.base_url}/Patient",
                      text=f"Patient replaced-by links go on for more than {MAX_HOPS} hops")
