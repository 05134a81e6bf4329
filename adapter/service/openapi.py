"""The OpenAPI 3.1 document of the service, built from the same schemas that check requests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adapter.service.media import FHIR_JSON, FILE_TYPES
from adapter.service.schemas import JOB_ID, STUDY_ID, job_request_schema
from adapter.service.store import STATES

_NULLABLE_TEXT = {"type": ["string", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, media_type: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("OperationOutcome"), description, FHIR_JSON)


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "the request is invalid: the OperationOutcome names the failing path",
        401: "no API key, or a wrong one",
        404: "no such study, job or file",
        409: "conflicts with the current state",
        413: "the body or what it unpacks to is too large",
        415: "unsupported media type",
        422: "the input cannot be mapped",
        503: "not ready",
    }
    return {str(status): _error(meaning[status]) for status in statuses}


def _schemas(servers: Iterable[str]) -> dict[str, Any]:
    return {**_SCHEMAS, "JobRequest": job_request_schema(servers), "Job": _job()}


_SCHEMAS: dict[str, Any] = {
    "OperationOutcome": {
        "type": "object",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"const": "OperationOutcome"},
            "issue": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["severity", "code"],
                    "properties": {
                        "severity": {"enum": ["fatal", "error", "warning", "information"]},
                        "code": {"type": "string"},
                        "diagnostics": {"type": "string"},
                        "expression": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
    "Status": {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["ok", "ready"]}}},
    "Study": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "title", "source", "uploaded", "url", "bundle"],
        "properties": {
            "id": STUDY_ID,
            "title": _NULLABLE_TEXT,
            "source": {"enum": ["record", "package"]},
            "uploaded": {"type": "string", "format": "date-time"},
            "url": {"type": "string"},
            "bundle": {"type": "string"},
        },
    },
    "StudyList": {
        "type": "object",
        "required": ["studies"],
        "properties": {"studies": {"type": "array", "items": _ref("Study")}},
    },
    "JobList": {
        "type": "object",
        "required": ["jobs"],
        "properties": {"jobs": {"type": "array", "items": _ref("Job")}},
    },
    "ServerList": {
        "type": "object",
        "required": ["servers"],
        "properties": {
            "servers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "base_url", "auth"],
                    "properties": {
                        "name": {"type": "string"},
                        "base_url": {"type": "string"},
                        "auth": {"type": "string", "description": "the kind of authentication (never a secret)"},
                    },
                },
            }
        },
    },
    "Bundle": {
        "type": "object",
        "required": ["resourceType", "type", "entry"],
        "properties": {
            "resourceType": {"const": "Bundle"},
            "type": {"const": "transaction"},
            "entry": {"type": "array"},
        },
    },
}


def _job() -> dict[str, Any]:
    """A job as the API shows it (its server may have left the config since: any name)."""
    job: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "id",
            "kind",
            "study",
            "server",
            "options",
            "state",
            "submitted_by",
            "created",
            "started",
            "finished",
            "cancel_requested",
            "progress",
            "summary",
            "errors",
            "files",
            "resumes",
            "resumed_by",
            "url",
        ],
        "properties": {
            "id": JOB_ID,
            "kind": {"enum": ["push", "pull", "export"]},
            "study": STUDY_ID,
            "server": {"type": "string"},
            "options": {"type": "object"},
            "state": {"enum": list(STATES)},
            "submitted_by": {"type": "string", "description": "the name of the API key that submitted it"},
            "created": {"type": "string", "format": "date-time"},
            "started": {"type": ["string", "null"], "format": "date-time"},
            "finished": {"type": ["string", "null"], "format": "date-time"},
            "cancel_requested": {"type": "boolean"},
            "progress": {
                "type": "object",
                "description": "counts so far: done, total (when known), and per-kind extras",
                "additionalProperties": {"type": ["integer", "number", "string", "null"]},
            },
            "summary": {
                "type": "object",
                "description": "the outcome: per resource type counts under types, and what the engine reports",
            },
            "errors": {
                "type": "array",
                "items": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}},
            },
            "files": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "size", "url"],
                    "properties": {"name": {"type": "string"}, "size": {"type": "integer"}, "url": {"type": "string"}},
                },
            },
            "resumes": {"type": ["string", "null"], "description": "the interrupted job this one resumes"},
            "resumed_by": {"type": ["string", "null"], "description": "the job that resumed this one"},
            "url": {"type": "string"},
        },
    }
    return job


_STUDY_PARAMETER = {"name": "study_id", "in": "path", "required": True, "schema": STUDY_ID}
_JOB_PARAMETER = {"name": "job_id", "in": "path", "required": True, "schema": JOB_ID}
_FILE_PARAMETER = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_LOCATION = {"Location": {"description": "where the created thing is", "schema": {"type": "string"}}}


def _paths() -> dict[str, Any]:
    public: list[dict[str, Any]] = []
    return {
        "/healthz": {
            "get": {
                "summary": "liveness: the process answers",
                "security": public,
                "responses": {"200": _json(_ref("Status"), "alive")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "readiness: the job store is open",
                "security": public,
                "responses": {"200": _json(_ref("Status"), "ready"), **_errors(503)},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "this document",
                "responses": {"200": _json({"type": "object"}, "the OpenAPI 3.1 document"), **_errors(401)},
            }
        },
        "/": {
            "get": {
                "summary": "the status page (HTML, refreshes itself)",
                "responses": {
                    "200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}},
                    **_errors(401),
                },
            }
        },
        "/api/v1/studies": {
            "get": {
                "summary": "the studies uploaded",
                "responses": {"200": _json(_ref("StudyList"), "studies by NCT number"), **_errors(401)},
            },
            "post": {
                "summary": "upload a ClinicalTrials.gov record (JSON or XML) or a trial package (zip)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "application/xml": {"schema": {"type": "string"}},
                        "application/zip": {"schema": {"type": "string", "contentMediaType": "application/zip"}},
                    },
                },
                "responses": {
                    "201": {**_json(_ref("Study"), "a new study"), "headers": _LOCATION},
                    "200": {**_json(_ref("Study"), "the study, replaced"), "headers": _LOCATION},
                    **_errors(400, 401, 409, 413, 415, 422),
                },
            },
        },
        "/api/v1/studies/{study_id}": {
            "parameters": [_STUDY_PARAMETER],
            "get": {
                "summary": "one study",
                "responses": {"200": _json(_ref("Study"), "the study"), **_errors(401, 404)},
            },
        },
        "/api/v1/studies/{study_id}/bundle": {
            "parameters": [_STUDY_PARAMETER],
            "get": {
                "summary": "the study's FHIR R4 transaction Bundle, mapped here without any FHIR server",
                "responses": {"200": _json(_ref("Bundle"), "the Bundle", FHIR_JSON), **_errors(401, 404, 422)},
            },
        },
        "/api/v1/jobs": {
            "get": {
                "summary": "the newest jobs first",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
                ],
                "responses": {"200": _json(_ref("JobList"), "jobs"), **_errors(400, 401)},
            },
            "post": {
                "summary": "start a push, pull, export or collect of a study against a configured server",
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _ref("JobRequest")},
                    # collect: the links file is PHI, so it is a part of its own, kept only while the job runs.
                    "multipart/form-data": {
                        "schema": {"type": "object", "required": ["job", "links"], "properties": {
                            "job": _ref("JobRequest"),
                            "links": {"type": "string", "contentMediaType": "text/csv",
                                      "description": "LINKS.csv: subject_id,identifier_system,identifier_value"},
                        }},
                        "encoding": {"job": {"contentType": "application/json"}},
                    },
                }},
                "responses": {
                    "202": {**_json(_ref("Job"), "queued"), "headers": _LOCATION},
                    **_errors(400, 401, 404, 415),
                },
            },
        },
        "/api/v1/jobs/{job_id}": {
            "parameters": [_JOB_PARAMETER],
            "get": {
                "summary": "a job: state, progress, per-type summary, errors, files",
                "responses": {"200": _json(_ref("Job"), "the job"), **_errors(401, 404)},
            },
            "delete": {
                "summary": "cancel a job",
                "responses": {
                    "200": _json(_ref("Job"), "cancelled before it started"),
                    "202": _json(_ref("Job"), "asked to stop; it stops at its next progress report"),
                    **_errors(401, 404, 409),
                },
            },
        },
        "/api/v1/jobs/{job_id}/files/{name}": {
            "parameters": [
                _JOB_PARAMETER,
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "get": {
                "summary": "one output file of a job (export NDJSON, CSV, SDTM datasets, reports)",
                "responses": {
                    "200": {
                        "description": "the file",
                        # A JSON file (a report, a manifest) is a JSON object; every other kind is its bytes.
                        "content": {
                            media_type: {"schema": {"type": "object"} if media_type == "application/json"
                                         else {"type": "string"}}
                            for media_type in FILE_TYPES.values()
                        },
                    },
                    **_errors(401, 404),
                },
            },
        },
        "/api/v1/servers": {
            "get": {
                "summary": "the configured FHIR servers (names, addresses, auth kind; never a secret)",
                "responses": {"200": _json(_ref("ServerList"), "servers"), **_errors(401)},
            }
        },
    }


# operationId of each operation: the name of the view that serves it.
OPERATION_IDS = {
    ("/healthz", "get"): "healthz",
    ("/readyz", "get"): "readyz",
    ("/openapi.json", "get"): "openapi",
    ("/", "get"): "status_page",
    ("/api/v1/studies", "get"): "list_studies",
    ("/api/v1/studies", "post"): "add_study",
    ("/api/v1/studies/{study_id}", "get"): "get_study",
    ("/api/v1/studies/{study_id}/bundle", "get"): "get_study_bundle",
    ("/api/v1/jobs", "get"): "list_jobs",
    ("/api/v1/jobs", "post"): "submit_job",
    ("/api/v1/jobs/{job_id}", "get"): "get_job",
    ("/api/v1/jobs/{job_id}", "delete"): "cancel_job",
    ("/api/v1/jobs/{job_id}/files/{name}", "get"): "get_job_file",
    ("/api/v1/servers", "get"): "list_servers",
}
_STUDY_LINKS = {
    name: {"operationId": name, "parameters": {"study_id": "$response.body#/id"}}
    for name in ("get_study", "get_study_bundle")
}
_JOB_LINKS = {
    name: {"operationId": name, "parameters": {"job_id": "$response.body#/id"}} for name in ("get_job", "cancel_job")
}


def _with_operation_ids(paths: dict[str, Any]) -> dict[str, Any]:
    for (path, method), operation_id in OPERATION_IDS.items():
        paths[path][method]["operationId"] = operation_id
    for status in ("200", "201"):
        paths["/api/v1/studies"]["post"]["responses"][status]["links"] = _STUDY_LINKS
    paths["/api/v1/jobs"]["post"]["responses"]["202"]["links"] = _JOB_LINKS
    return paths


def openapi_document(version: str, servers: Iterable[str]) -> dict[str, Any]:
    """The OpenAPI 3.1 document; ``servers`` are the configured FHIR servers a job may name."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trialfhir service",
            "version": version,
            "description": "Upload trials, push them to configured FHIR R4 servers, pull and export them. "
            "Every error is a FHIR OperationOutcome.",
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "security": [{"bearer": []}, {"basic": []}],
        "paths": _with_operation_ids(_paths()),
        "components": {
            "schemas": _schemas(servers),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API key"},
                "basic": {"type": "http", "scheme": "basic", "description": "any user name, the API key as password"},
            },
        },
    }
