"""The FHIR R4 transaction Bundle for one or more ClinicalTrials.gov studies.

Entries are PUTs to deterministic ids (``adapter.fhir.bundle.put_entry``),
resources that are referenced before those that refer to them (``STUDY_TYPES``:
Organization, Location, Practitioner, Group, ResearchStudy). Within a type,
entries keep the order of the studies and of the registry record. A resource
several studies share (a sponsor) is written once. The Bundle has no id or
timestamp, so mapping the same input twice gives byte-identical JSON
(``adapter.fhir.json.dumps``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from adapter.fhir.bundle import put_entry
from adapter.fhir.constants import STUDY_TYPES
from adapter.fhir.datatypes import JSON
from adapter.mappers.group import enrollment_group, has_enrollment
from adapter.mappers.location import location, site_ids
from adapter.mappers.organization import organization
from adapter.mappers.practitioner import practitioner
from adapter.mappers.researchstudy import research_study
from adapter.records import Study
from adapter.sources.ctgov_tables import CtgovTables, default_tables

log = logging.getLogger(__name__)


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
    by_type: dict[str, dict[str, JSON]] = {kind: {} for kind in STUDY_TYPES}
    for study in studies:
        for resource in study_resources(study, tables):
            kind, rid = resource["resourceType"], resource["id"]
            first = by_type[kind].setdefault(rid, resource)
            if first is not resource and first != resource:
                log.warning(
                    "%s/%s (%s) differs between studies; the first one is kept", kind, rid, resource.get("name")
                )
    entries = [put_entry(resource) for kind in STUDY_TYPES for resource in by_type[kind].values()]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
