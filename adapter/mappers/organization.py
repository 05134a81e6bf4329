"""Organization from a ClinicalTrials.gov agency (lead sponsor or collaborator).

The id is keyed on the agency name alone, so a sponsor shared by several studies is
one resource on the server. ``Organization.type`` carries the registry's agency
class (NIH, INDUSTRY, ...) in the project code system: R4's organization-type codes
(prov, govt, bus, ...) do not line up with the registry's classes one to one.
"""

from __future__ import annotations

from adapter.fhir.datatypes import JSON, compact
from adapter.fhir.ids import resource_id
from adapter.records import Agency
from adapter.sources.ctgov_tables import CtgovTables


def organization_id(agency: Agency) -> str:
    """The deterministic id of the Organization for ``agency``."""
    return resource_id("Organization", agency.name)


def organization(agency: Agency, tables: CtgovTables) -> JSON:
    """The Organization resource for a sponsor or collaborator."""
    kind = tables["ctgov-agency-class"].concept(agency.agency_class) if agency.agency_class else None
    return compact(
        {
            "resourceType": "Organization",
            "id": organization_id(agency),
            "type": [kind] if kind else None,
            "name": agency.name,
        }
    )
