"""The query plan: batched searches for the found patients' observations and administrations.

One search covers many patients and every accepted code at once:
``Observation?patient=a,b,c&code=s|x,s|y&date=ge..&date=le..`` (and
``MedicationAdministration?...&effective-time=...``), with large pages; a later run adds
``_lastUpdated=ge<since>`` so only what changed comes back. The server's
CapabilityStatement must declare each parameter the plan uses: a missing one is a
ConfigError naming it, before any patient data is asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from adapter.client import FhirClient
from adapter.errors import ConfigError

# Per resource type: the search parameters the plan uses, and the date parameter's name.
NEEDED = {
    "Patient": ("identifier",),
    "Observation": ("patient", "code", "date"),
    "MedicationAdministration": ("patient", "code", "effective-time"),
}
DATE_PARAM = {"Observation": "date", "MedicationAdministration": "effective-time"}
SINCE_PARAM = "_lastUpdated"


def search_params(statement: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Per resource type, the search parameters a CapabilityStatement declares for the server."""
    rest: Mapping[str, Any] = next((r for r in statement.get("rest", []) if r.get("mode") == "server"), {})
    return {r["type"]: frozenset(p.get("name", "") for p in r.get("searchParam", []))
            for r in rest.get("resource", []) if "type" in r}


def check_plan(client: FhirClient, *, since: bool) -> None:
    """Refuse a server whose CapabilityStatement lacks a search parameter the plan needs."""
    declared = search_params(client.send("GET", "metadata").json())
    for resource_type, names in NEEDED.items():
        for name in (*names, SINCE_PARAM) if since and resource_type != "Patient" else names:
            if name not in declared.get(resource_type, frozenset()):
                raise ConfigError(
                    f"{client.base_url} does not offer the search parameter {resource_type}:{name} "
                    "(its CapabilityStatement does not list it); collect needs it to ask for "
                    f"{resource_type} resources in batches"
                )


@dataclass
class Fetched:
    """Resources of one search plan, and the server's time of the first page (the next run's since)."""

    server_time: str | None = None
    requests: int = 0


def fetch(
    client: FhirClient,
    resource_type: str,
    patients: list[str],
    codes: Iterable[tuple[str, str]],
    *,
    first: date,
    last: date | None,
    since: str | None,
    fetched: Fetched,
    chunk: int = 50,
    page_size: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Every ``resource_type`` of ``patients`` with one of ``codes``, in the dates given (a day's margin)."""
    tokens = ",".join(sorted(f"{system}|{code}" for system, code in codes))
    if not tokens or not patients:
        return
    dates = [f"ge{(first - timedelta(days=1)).isoformat()}"]
    if last is not None:
        dates.append(f"le{(last + timedelta(days=1)).isoformat()}")
    for start in range(0, len(patients), chunk):
        query: dict[str, Any] = {
            "patient": ",".join(f"Patient/{p}" for p in patients[start:start + chunk]),
            "code": tokens,
            DATE_PARAM[resource_type]: dates,
            "_count": str(page_size),
        }
        if since:
            query[SINCE_PARAM] = f"ge{since}"
        for page in client.search(resource_type, query, fresh=True):
            fetched.requests += 1
            if fetched.server_time is None:
                fetched.server_time = (page.get("meta") or {}).get("lastUpdated")
            for entry in page.get("entry", []):
                resource = entry.get("resource", {})
                if resource.get("resourceType") == resource_type:
                    yield resource


def subject_of(resource: Mapping[str, Any], by_patient: Mapping[str, str]) -> str | None:
    """The trial subject a resource belongs to, by its ``subject`` reference to a found Patient."""
    reference = str((resource.get("subject") or {}).get("reference", ""))
    return by_patient.get(reference.rsplit("Patient/", 1)[-1]) if "Patient/" in reference else None
