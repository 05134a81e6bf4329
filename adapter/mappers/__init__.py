"""Mappers: one module per FHIR resource type, pure record-to-dict functions."""
