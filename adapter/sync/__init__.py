"""Push to and pull from FHIR servers."""
