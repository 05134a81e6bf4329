"""The query plan: searches for the found patients' observations and administrations, a group at a time.

One search covers a group of patients and every accepted code at once:
``Observation?patient=a,b,c&code=s|x,s|y&date=ge..&date=le..&_sort=date`` (and
``MedicationAdministration?...&effective-time=...&_sort=effective-time``), with large pages;
a later run adds ``_lastUpdated=ge<since>`` so only what changed comes back. A group's
date range is its subjects' participation with a day's margin either side. Groups are
bounded by a number of patients and by the length of the search URL (``MAX_URL``), since
servers refuse long request lines. ``_sort`` is there for speed: on HAPI's JPA server
(H2) the same search without it took 10 to 14 s for its first page instead of 0.6 s
(docs/collect.md). The server's CapabilityStatement must declare each parameter the plan
uses: a missing one is a ConfigError naming it, before any patient data is asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

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
# Characters of a search URL: Jetty, Tomcat and nginx refuse a request line much over 8 KiB by default.
MAX_URL = 6000


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


def tokens(codes: Iterable[tuple[str, str]]) -> str:
    """The ``code`` parameter: every ``system|code`` ORed, in a stable order."""
    return ",".join(sorted(f"{system}|{code}" for system, code in codes))


def groups(patients: Sequence[str], *, most: int, fixed: int, max_url: int = MAX_URL) -> Iterator[list[str]]:
    """``patients`` in order, in groups of at most ``most`` whose search URL stays within ``max_url``.

    ``fixed`` is the URL's length without the patients. A group has at least one patient,
    whatever its length: a server that refuses it says so.
    """
    group: list[str] = []
    length = fixed
    for patient in patients:
        # ``Patient/<id>`` percent-encoded (``/`` is %2F), and the comma before it (%2C).
        size = len(quote(f"Patient/{patient}", safe="")) + 3
        if group and (len(group) >= most or length + size > max_url):
            yield group
            group, length = [], fixed
        group.append(patient)
        length += size
    if group:
        yield group


def url_length(base_url: str, resource_type: str, codes: str, since: str | None) -> int:
    """A search URL's length without its patients (dates and page size at their longest)."""
    query = f"?patient=&code={quote(codes, safe='')}&{DATE_PARAM[resource_type]}=ge0000-00-00" \
            f"&{DATE_PARAM[resource_type]}=le0000-00-00&_sort={DATE_PARAM[resource_type]}&_count=1000"
    if since:
        query += f"&{SINCE_PARAM}=ge{quote(since, safe='')}"
    return len(f"{base_url.rstrip('/')}/{resource_type}{query}")


def search_query(
    resource_type: str, patients: Sequence[str], codes: str, *, first: date, last: date | None, since: str | None,
    page_size: int = 1000,
) -> dict[str, Any]:
    """The search for ``patients``' resources with one of ``codes``, in the dates given with a day's margin."""
    dates = [f"ge{(first - timedelta(days=1)).isoformat()}"]
    if last is not None:
        dates.append(f"le{(last + timedelta(days=1)).isoformat()}")
    query: dict[str, Any] = {
        "patient": ",".join(f"Patient/{p}" for p in patients),
        "code": codes,
        DATE_PARAM[resource_type]: dates,
        "_sort": DATE_PARAM[resource_type],
        "_count": str(page_size),
    }
    if since:
        query[SINCE_PARAM] = f"ge{since}"
    return query


def fetch(
    client: FhirClient,
    resource_type: str,
    patients: list[str],
    codes: str,
    *,
    first: date,
    last: date | None,
    since: str | None,
    fetched: Fetched,
    page_size: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Every ``resource_type`` of ``patients`` with one of ``codes`` (``tokens``): one search and its pages."""
    if not codes or not patients:
        return
    query = search_query(resource_type, patients, codes, first=first, last=last, since=since, page_size=page_size)
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
