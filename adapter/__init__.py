"""trialfhir: move clinical-trial data into and out of FHIR R4 servers."""

__version__ = "0.1.0"
