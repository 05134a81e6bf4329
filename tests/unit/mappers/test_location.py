"""Locations: one per site, with ids that stay apart when names repeat."""

from __future__ import annotations

from adapter.fhir.ids import resource_id
from adapter.mappers.location import location, site_ids
from adapter.records import Facility, Study
from adapter.sources.ctgov_tables import default_tables


def test_site_ids_follow_the_natural_key_and_keep_repeated_names_apart() -> None:
    study = Study(
        nct_id="NCT00000001",
        source_format="ctgov-v2-json",
        facilities=(Facility("Research Site"), Facility("Only One"), Facility(None), Facility("Research Site")),
    )
    ids = site_ids(study)
    assert ids[1] == resource_id("Location", "NCT00000001", "Only One")
    assert ids[2] == resource_id("Location", "NCT00000001", "site-3")
    assert ids[0] == resource_id("Location", "NCT00000001", "Research Site", "site-1")
    assert len(set(ids)) == 4


def test_location_has_address_position_and_site_status() -> None:
    facility = Facility("Hospital", "RECRUITING", "León", None, "24071", "Spain", 42.60003, -5.57032)
    resource = location(facility, "x", default_tables())
    assert resource["address"] == {"city": "León", "postalCode": "24071", "country": "ES"}
    assert resource["position"] == {"longitude": -5.57032, "latitude": 42.60003}
    assert resource["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "RECRUITING"
    assert "status" not in resource  # Location.status is whether the place operates, not recruitment


def test_a_country_the_table_does_not_know_is_kept_as_written() -> None:
    facility = Facility("Hospital", None, "Pristina", None, None, "Kosovo")
    assert location(facility, "x", default_tables())["address"] == {"city": "Pristina", "country": "Kosovo"}
