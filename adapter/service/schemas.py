"""JSON Schemas of the request bodies, used both to check requests and in the OpenAPI document.

A job request is checked in two steps, the envelope and then the options of its
kind, so an error names the exact failing path (``options.formats[1]``) rather
than "matches none of three alternatives". The OpenAPI document states the same
rules as one ``oneOf`` built from these pieces, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import jsonschema

from adapter.export.formats import FORMATS as EXPORT_FORMATS
from adapter.fhir.constants import NCT_PATTERN, is_nct_id
from adapter.service.problems import ApiError
from adapter.sources.loader import Validator, json_path
from adapter.sync.modes import PULL_MODES

# JSON Schema patterns are unanchored searches, hence the anchors; "$" still lets a trailing
# newline through, so ``check_job_request`` checks the study with ``is_nct_id`` as well.
STUDY_ID: dict[str, Any] = {"type": "string", "pattern": f"^{NCT_PATTERN.pattern}$", "description": "NCT number"}
JOB_ID: dict[str, Any] = {"type": "string", "pattern": "^[0-9a-f]{32}$"}


def server_name(servers: Iterable[str]) -> dict[str, Any]:
    """A configured server's name: the only servers a job may name (the API never takes a URL to call)."""
    return {"type": "string", "enum": sorted(servers), "description": "the name of a configured FHIR server"}


PUSH_OPTIONS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "full": {"type": "boolean", "description": "write every resource, whatever the sync journal says"},
        "dry_run": {"type": "boolean", "description": "plan and report, write nothing"},
        "delete_removed": {"type": "boolean", "description": "delete resources whose rows left the source"},
    },
}
_PULL_PROPERTIES: dict[str, Any] = {
    "mode": {"enum": list(PULL_MODES), "description": "search, Bulk Data $export, or auto (bulk when offered)"},
    "since": {
        "type": "string",
        "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$",
        "description": "a FHIR instant: only resources changed after it",
    },
}
PULL_OPTIONS: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": _PULL_PROPERTIES}
EXPORT_OPTIONS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **_PULL_PROPERTIES,
        "format": {"enum": list(EXPORT_FORMATS), "description": "what to write (default csv)"},
    },
}

# collect: the links file (PHI) is not an option: it comes as the request's multipart part "links".
COLLECT_OPTIONS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"since": {**_PULL_PROPERTIES["since"], "description": "only hospital resources changed after it"}},
}

OPTIONS: dict[str, dict[str, Any]] = {
    "push": PUSH_OPTIONS, "pull": PULL_OPTIONS, "export": EXPORT_OPTIONS, "collect": COLLECT_OPTIONS,
}


def job_envelope(servers: Iterable[str]) -> dict[str, Any]:
    """A job request without the options of its kind."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind", "study", "server"],
        "properties": {
            "kind": {"enum": list(OPTIONS)},
            "study": STUDY_ID,
            "server": server_name(servers),
            "options": {"type": "object"},
        },
    }


def job_request_schema(servers: Iterable[str]) -> dict[str, Any]:
    """The whole job request as one schema: one alternative per kind."""
    alternatives = []
    for kind, options in OPTIONS.items():
        variant = job_envelope(servers)
        variant["properties"]["kind"] = {"const": kind}
        variant["properties"]["options"] = copy.deepcopy(options)
        alternatives.append(variant)
    return {"oneOf": alternatives}


def check(instance: Any, schema: Mapping[str, Any], prefix: Iterable[str | int] = ()) -> None:
    """Raise a 400 ``ApiError`` naming the failing path when ``instance`` does not fit ``schema``."""
    error = jsonschema.exceptions.best_match(Validator(schema).iter_errors(instance))
    if error is None:
        return
    path = [*prefix, *error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        path += [name for name in error.validator_value if name not in error.instance][:1]
    message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
    raise ApiError(400, message, expression=json_path(path) if path else None)


def check_job_request(body: Any, servers: Iterable[str]) -> dict[str, Any]:
    """A valid job request naming one of ``servers``, or a 400 naming what is wrong."""
    check(body, job_envelope(servers))
    if not is_nct_id(body["study"]):
        raise ApiError(400, f"{body['study']!r} is not an NCT number", expression="study")
    check(body.get("options", {}), OPTIONS[body["kind"]], ["options"])
    since = body.get("options", {}).get("since")
    if since is not None and not _real_instant(since):
        raise ApiError(400, f"{since!r} is not a date and time that exists", expression="options.since")
    return dict(body)


def _real_instant(text: str) -> bool:
    # The pattern admits 2024-02-30T25:61:00Z; the server would answer that with an error mid-job.
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
