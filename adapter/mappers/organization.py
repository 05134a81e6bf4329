"""Organization from a ClinicalTrials.gov agency (lead sponsor or collaborator).

A trial package's site is an Organization too (``site_organization``), keyed on
(NCT id, site id) and named as package.yaml names it: the Patient's
``managingOrganization``, since R4 has no element linking a subject to its site.

The id of an agency is keyed on its name alone, so a sponsor shared by several studies is
one resource on the server. ``Organization.type`` carries the registry's agency
class (NIH, INDUSTRY, ...) in the project code system: R4's organization-type codes
(prov, govt, bus, ...) do not line up with the registry's classes one to one.
"""

from __future__ import annotations

from adapter.fhir.constants import IDENTIFIER_BASE
from adapter.fhir.datatypes import JSON, compact, identifier
from adapter.fhir.ids import resource_id
from adapter.records import Agency
from adapter.sources.ctgov_tables import CtgovTables


def organization_id(agency: Agency) -> str:
    """The deterministic id of the Organization for ``agency``."""
    return resource_id("Organization", agency.name)


SITE_SYSTEM = IDENTIFIER_BASE + "trial-site"


def site_organization_id(nct_id: str, site_id: str) -> str:
    """The id of the Organization of a package site."""
    return resource_id("Organization", nct_id, "site", site_id)


def site_organization(nct_id: str, site_id: str, name: str) -> JSON:
    """The Organization of a package site; identifier ``<NCT id>/<site id>`` in the trial-site system."""
    return {
        "resourceType": "Organization",
        "id": site_organization_id(nct_id, site_id),
        "identifier": [identifier(SITE_SYSTEM, f"{nct_id}/{site_id}", use="official")],
        "name": name,
    }


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
