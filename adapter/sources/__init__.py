"""Readers for ClinicalTrials.gov records and trial packages."""
