"""Every error the service returns is a FHIR OperationOutcome with the right HTTP status.

``ApiError`` is what views raise; ``register`` installs the one handler that
turns it, Werkzeug's HTTP errors, the adapter's own errors and anything
unexpected into an OperationOutcome. Messages name what was wrong and where,
never a secret or a value from a patient record: an unexpected error is logged
by type and stack only, and answered with a bare 500.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from adapter.errors import ConfigError, InputError, MappingError
from adapter.service.media import FHIR_JSON

log = logging.getLogger(__name__)


# HTTP status -> OperationOutcome issue type (http://hl7.org/fhir/issue-type).
_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    503: "transient",
}


class ApiError(Exception):
    """An error to answer with: status, message and, for a bad body, the path of what failed."""

    def __init__(self, status: int, message: str, *, expression: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.expression = expression


def outcome(status: int, message: str, expression: str | None = None) -> dict[str, Any]:
    """An OperationOutcome with one error issue."""
    issue: dict[str, Any] = {"severity": "error", "code": _ISSUE_CODES.get(status, "exception"), "diagnostics": message}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_response(status: int, message: str, expression: str | None = None) -> Response:
    body = json.dumps(outcome(status, message, expression), ensure_ascii=False)
    return Response(body, status=status, mimetype=FHIR_JSON)


def _handle(error: Exception) -> Response:
    if isinstance(error, ApiError):
        response = outcome_response(error.status, error.message, error.expression)
    elif isinstance(error, HTTPException):
        status = error.code or 500
        response = outcome_response(status, error.description or error.name)
        if status == 405 and error.get_response().headers.get("Allow"):
            response.headers["Allow"] = error.get_response().headers["Allow"]
    elif isinstance(error, InputError):
        response = outcome_response(400, error.reason, input_location(error))
    elif isinstance(error, MappingError):
        # The offending value may come from a patient record: say where, not what.
        response = outcome_response(422, f"{error.record_id}: {error.reason}", error.element)
    elif isinstance(error, ConfigError):
        log.error("configuration error in %s: %s", loggable_request(), error)
        response = outcome_response(500, "the service is misconfigured; see its log")
    else:
        frames = "".join(traceback.format_tb(error.__traceback__))
        log.error("unexpected %s in %s\n%s", type(error).__name__, loggable_request(), frames)
        response = outcome_response(500, "internal error; see the service log")
    if response.status_code == 401:
        # Browsers (the status page) prompt for Basic, with the API key as password; API clients use Bearer.
        api = request.path.startswith("/api/")
        response.headers["WWW-Authenticate"] = 'Bearer realm="trialfhir"' if api else 'Basic realm="trialfhir"'

    return response


def escaped(text: str) -> str:
    """``text`` with line breaks, control characters, backslashes and non-ASCII escaped (``\\n``, ``\\x1b``).

    A request path is the caller's text: unescaped, ``%0A`` in it would start a forged log line.
    """
    return text.encode("unicode_escape").decode("ascii")


def loggable_request() -> str:
    """The current request's method and path, escaped for a log line (never its query string or body)."""
    return f"{escaped(request.method)} {escaped(request.path)}"


def input_location(error: InputError) -> str | None:
    """Where an input error is: file, line and field."""
    where = error.source
    if error.line is not None:
        where += f":{error.line}"
    if error.field:
        where = f"{where}: {error.field}" if where else error.field
    return where or None


def register(app: Flask) -> None:
    """Install the one error handler for every exception."""
    app.register_error_handler(Exception, _handle)
