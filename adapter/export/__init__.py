"""Exports: NDJSON, tables, CDISC SDTM."""
