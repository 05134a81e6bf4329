"""Location from a ClinicalTrials.gov study site (a facility).

Natural key: (NCT id, facility name), or (NCT id, "site-<n>") when the facility has
no name, n counting sites from 1 in registry order. Industry studies often list
several sites under one name ("Research Site"); those get (NCT id, name,
"site-<n>") so each keeps its own resource. The site's recruitment status is not
``Location.status`` (that is whether the place operates), so it goes to the
extension ctgov-recruitment-status. ``address.country`` is the ISO 3166-1 alpha-2 code
of the registry's country name (mappings/countries.yaml; R4 documents the element as an
ISO 3166 2- or 3-letter code); a name the table does not know is kept as written. Site
contacts are people at the site; R4 would need a PractitionerRole for them, which this
mapping does not make.
"""

from __future__ import annotations

from collections import Counter

from adapter.fhir.datatypes import JSON, compact
from adapter.fhir.ids import resource_id
from adapter.records import Facility, Study
from adapter.sources.ctgov_tables import CtgovTables, project_extension


def site_ids(study: Study) -> list[str]:
    """The Location id of each of the study's facilities, in registry order."""
    counts = Counter(f.name for f in study.facilities if f.name)
    ids = []
    for n, facility in enumerate(study.facilities, start=1):
        if facility.name and counts[facility.name] == 1:
            key: tuple[str, ...] = (facility.name,)
        elif facility.name:
            key = (facility.name, f"site-{n}")
        else:
            key = (f"site-{n}",)
        ids.append(resource_id("Location", study.nct_id, *key))
    return ids


def location(facility: Facility, location_id: str, tables: CtgovTables) -> JSON:
    """The Location resource for one facility; ``location_id`` comes from ``site_ids``."""
    status = (
        project_extension(
            "ctgov-recruitment-status",
            valueCodeableConcept=tables["ctgov-recruitment-status"].concept(facility.status),
        )
        if facility.status
        else None
    )
    position = (
        {"longitude": facility.lon, "latitude": facility.lat}
        if facility.lat is not None and facility.lon is not None
        else None
    )
    return compact(
        {
            "resourceType": "Location",
            "id": location_id,
            "extension": [status] if status else None,
            "name": facility.name,
            "mode": "instance",
            "address": compact(
                {
                    "city": facility.city,
                    "state": facility.state,
                    "postalCode": facility.zip,
                    "country": (tables.country_code(facility.country) or facility.country)
                    if facility.country
                    else None,
                }
            ),
            "position": position,
        }
    )
