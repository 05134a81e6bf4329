"""The FHIR R4 transaction Bundle for one or more ClinicalTrials.gov studies.

Entries are written with PUT to deterministic ids (``fullUrl`` ``urn:uuid:<id>``,
``request.url`` ``<Type>/<id>``), resources that are referenced before those that
refer to them: Organization, Location, Practitioner, Group, ResearchStudy. Within a
type, entries keep the order of the studies and of the registry record. A resource
several studies share (a sponsor) is written once. The Bundle has no id or
timestamp, so mapping the same input twice gives byte-identical JSON
(``bundle_json``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from adapter.fhir.datatypes import JSON
from adapter.mappers.group import enrollment_group, has_enrollment
from adapter.mappers.location import location, site_ids
from adapter.mappers.organization import organization
from adapter.mappers.practitioner import practitioner
from adapter.mappers.researchstudy import research_study
from adapter.records import Study
from adapter.sources.ctgov_tables import CtgovTables, default_tables

log = logging.getLogger(__name__)

ENTRY_ORDER = ("Organization", "Location", "Practitioner", "Group", "ResearchStudy")


def study_resources(study: Study, tables: CtgovTables | None = None) -> list[JSON]:
    """Every resource for ``study``, in Bundle order (may repeat a shared Organization)."""
    tables = tables or default_tables()
    agencies = [a for a in (study.lead_sponsor, *study.collaborators) if a is not None]
    resources = [organization(agency, tables) for agency in agencies]
    resources += [location(f, site, tables) for f, site in zip(study.facilities, site_ids(study), strict=True)]
    resources += [practitioner(study.nct_id, official) for official in study.officials]
    if has_enrollment(study):
        resources.append(enrollment_group(study, tables))
    resources.append(research_study(study, tables))
    return resources


def study_bundle(study: Study, tables: CtgovTables | None = None) -> JSON:
    """The transaction Bundle for one study."""
    return studies_bundle([study], tables)


def studies_bundle(studies: Iterable[Study], tables: CtgovTables | None = None) -> JSON:
    """One transaction Bundle for several studies (a search page), each resource once."""
    by_type: dict[str, dict[str, JSON]] = {kind: {} for kind in ENTRY_ORDER}
    for study in studies:
        for resource in study_resources(study, tables):
            kind, rid = resource["resourceType"], resource["id"]
            first = by_type[kind].setdefault(rid, resource)
            if first is not resource and first != resource:
                log.warning(
                    "%s/%s (%s) differs between studies; the first one is kept", kind, rid, resource.get("name")
                )
    entries = [_entry(resource) for kind in ENTRY_ORDER for resource in by_type[kind].values()]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def bundle_json(bundle: JSON) -> str:
    """The project's stable serialization: compact, UTF-8 characters as they are, key order as built."""
    return json.dumps(bundle, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def _entry(resource: JSON) -> JSON:
    kind, rid = resource["resourceType"], resource["id"]
    return {"fullUrl": f"urn:uuid:{rid}", "resource": resource, "request": {"method": "PUT", "url": f"{kind}/{rid}"}}
