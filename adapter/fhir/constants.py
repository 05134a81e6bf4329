"""FHIR knowledge the whole package shares: systems, extension URLs, patterns, type order.

Each constant lives here once; readers, mappers, sync and export import it.
"""

from __future__ import annotations

import os
import re

from adapter.errors import ConfigError

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

# The base of every canonical URL the project owns: its code systems, identifier systems and
# extensions (``<base>CodeSystem/ctgov-phase``, ``<base>sid/trial-subject``,
# ``<base>StructureDefinition/study-visit``). One setting, ADAPTER_PROJECT_BASE, read here once
# when the package loads, because the base is not a choice of one run: it is the identity of
# every code and extension on the servers we write to, like the namespace of our ids (ids.py),
# and mappers stay pure by reading it as a constant. Mapping files and package descriptors name
# these URLs as ``{project_base}CodeSystem/...`` (sources/loader.py puts the base in). The URLs
# carry no version, so they stay the same from release to release; changing the base changes
# every one of them (see README, "Configuration").
PROJECT_BASE_ENV = "ADAPTER_PROJECT_BASE"
DEFAULT_PROJECT_BASE = "https://trialfhir.dev/fhir/"
PROJECT_BASE_TOKEN = "{project_base}"  # noqa: S105 - a placeholder, not a secret
# An absolute http(s) URL with a host, ending in "/", with no query, fragment or white space.
_BASE_PATTERN = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?/")


def project_base(value: str | None) -> str:
    """The project base ``value`` names (the default when None or empty); a ``ConfigError`` if it is no base."""
    if not value:
        return DEFAULT_PROJECT_BASE
    if _BASE_PATTERN.fullmatch(value) is None:
        raise ConfigError(
            f"{PROJECT_BASE_ENV}={value[:100]!r} is not a base URL: give an absolute http(s) URL with a host "
            f"that ends in '/' and has no query or fragment, such as {DEFAULT_PROJECT_BASE}"
        )
    return value


PROJECT_BASE = project_base(os.environ.get(PROJECT_BASE_ENV))
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
