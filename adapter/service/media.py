"""Media types of the service, shared by the views and the OpenAPI document that describes them."""

from __future__ import annotations

FHIR_JSON = "application/fhir+json"

# What a job's output files are served as, by file name ending; the first ending that fits wins.
FILE_TYPES = {
    ".ndjson": "application/fhir+ndjson",
    ".json": "application/json",
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
    ".gz": "application/gzip",
    "": "application/octet-stream",
}


def file_type(name: str) -> str:
    """The media type a job's output file ``name`` is served as."""
    return next(media_type for suffix, media_type in FILE_TYPES.items() if name.endswith(suffix))
