"""Engines that run the export views at scale: SQL on FHIR ViewDefinitions compiled to DuckDB SQL."""
