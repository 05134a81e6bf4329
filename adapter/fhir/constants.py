"""FHIR knowledge the whole package shares: systems, extension URLs, patterns, type order.

Each constant lives here once; readers, mappers, sync and export import it.
"""

from __future__ import annotations

import re

# ClinicalTrials.gov registry numbers, as identifier system and value pattern. We write
# HL7's registration (terminology.hl7.org NamingSystem, OID 2.16.840.1.113883.3.1077),
# which other converters use too; we read and search every spelling seen in the wild,
# so a study another tool wrote (https, trailing slash) is still found.
NCT_SYSTEM = "http://clinicaltrials.gov"
NCT_SYSTEMS = (NCT_SYSTEM, "https://clinicaltrials.gov", "http://clinicaltrials.gov/", "https://clinicaltrials.gov/")
NCT_PATTERN = re.compile(r"NCT[0-9]{8}")  # always used with fullmatch (a "$" lets a trailing newline through)

# LOINC, the code system of lab tests and vital signs.
LOINC = "http://loinc.org"

# HL7's workflow extension that ties an Observation or MedicationAdministration to its ResearchStudy.
RESEARCH_STUDY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/workflow-researchStudy"

# The project's own extensions and identifier systems.
PROJECT_BASE = "https://trialfhir.dev/fhir/"
EXTENSION_BASE = PROJECT_BASE + "StructureDefinition/"
IDENTIFIER_BASE = PROJECT_BASE + "sid/"
VISIT_EXTENSION = EXTENSION_BASE + "study-visit"
# The value as the source reported it (valueQuantity: its digits and unit) beside the standard
# Observation.valueQuantity, and the precision a dateTime was collected at (valueCode: minute, day ...).
REPORTED_VALUE_EXTENSION = EXTENSION_BASE + "reported-value"
REPORTED_PRECISION_EXTENSION = EXTENSION_BASE + "reported-precision"

# Referenced types before the types that refer to them: the order of bundles, pushes and exports.
TYPE_ORDER = (
    "Organization",
    "Location",
    "Practitioner",
    "Group",
    "ResearchStudy",
    "Patient",
    "Consent",
    "ResearchSubject",
    "Observation",
    "Medication",
    "MedicationAdministration",
)
STUDY_TYPES = TYPE_ORDER[:5]  # what a registry record becomes
# What a trial package becomes: its sites' Organizations, then what its rows become.
PACKAGE_TYPES = ("Organization", *TYPE_ORDER[5:])


def is_nct_id(value: str) -> bool:
    """Whether ``value`` is exactly an NCT number (no surrounding text, no trailing newline)."""
    return NCT_PATTERN.fullmatch(value) is not None
