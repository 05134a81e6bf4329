"""FHIR datatype builders, deterministic ids and model validation."""
