"""The adapter's exceptions: one tree under one root.

    AdapterError                 anything the adapter raises on purpose
    ├── ConfigError              settings, config files, mapping files that are wrong
    ├── InputError               a source file the user gave us is wrong (file, line, field)
    ├── MappingError             a record cannot become FHIR (record id, element, value)
    │   └── ConversionError      a value cannot be converted between two units (UCUM codes)
    └── ServerError              a FHIR server answered with an error (status, OperationOutcome)
        ├── AuthFailed           401, 403: credentials missing, wrong or not enough
        ├── NotFound             404, 410: no such resource or endpoint, or it is gone
        ├── Conflict             409, 412: a version conflict or a failed precondition
        └── Rejected             400, 422: the server refused what we sent (invalid resource or request)

``server_error(status, ...)`` picks the class for a status, so callers catch the
kind of failure (``except NotFound``) instead of comparing status numbers.

The CLI turns each into a one-line message and a non-zero exit code; the service
renders each as an OperationOutcome.
"""

from __future__ import annotations

from typing import Any


class AdapterError(Exception):
    """Root of every error the adapter raises on purpose."""


class ConfigError(AdapterError):
    """A setting, config file or mapping file is missing or wrong."""


class InputError(AdapterError):
    """A source file is wrong; says where (file, line or document path, field)."""

    def __init__(
        self,
        reason: str,
        *,
        source: str = "",
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        self.field = field
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = self.source or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        if self.field:
            where += f": {self.field}"
        return f"{where}: {self.reason}"


class MappingError(AdapterError):
    """A record cannot be mapped; names the record, the FHIR element and the value."""

    def __init__(self, reason: str, *, record_id: str, element: str, value: Any) -> None:
        self.reason = reason
        self.record_id = record_id
        self.element = element
        self.value = value
        super().__init__(f"{record_id}: {element}: {reason} (value {value!r})")


class ConversionError(MappingError):
    """A pair of UCUM units cannot be converted (or not without the analyte's molar mass).

    Carries the units only, never the value being converted: values are patient data.
    """

    def __init__(self, reason: str, *, from_unit: str, to_unit: str) -> None:
        self.reason = reason
        self.from_unit = from_unit
        self.to_unit = to_unit
        self.record_id, self.element, self.value = "", "valueQuantity", None
        pair = f"{from_unit} -> {to_unit}" if to_unit else from_unit
        AdapterError.__init__(self, f"{pair}: {reason}")


class ServerError(AdapterError):
    """A FHIR server answered with an error status.

    ``outcome`` is the parsed OperationOutcome when the server sent one; the
    message lists every issue in it. ``retryable`` says whether sending the same
    request again may succeed (rate limits, server overload, timeouts).
    """

    RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

    def __init__(
        self,
        status: int,
        *,
        method: str,
        url: str,
        outcome: dict[str, Any] | None = None,
        text: str = "",
    ) -> None:
        self.status = status
        self.method = method
        self.url = url
        self.outcome = outcome
        self.retryable = status in self.RETRYABLE_STATUSES
        issues = outcome_messages(outcome) if outcome else []
        detail = "; ".join(issues) if issues else text.strip()[:500]
        super().__init__(f"{method} {url} -> HTTP {status}" + (f": {detail}" if detail else ""))


class AuthFailed(ServerError):
    """The server refused our credentials (401) or their permissions (403)."""


class NotFound(ServerError):
    """The resource or endpoint does not exist (404) or no longer exists (410)."""


class Conflict(ServerError):
    """A version conflict (409) or a failed precondition such as If-Match (412)."""


class Rejected(ServerError):
    """The server refused the request or resource as invalid (400, 422)."""


_BY_STATUS: dict[int, type[ServerError]] = {
    401: AuthFailed,
    403: AuthFailed,
    404: NotFound,
    410: NotFound,
    409: Conflict,
    412: Conflict,
    400: Rejected,
    422: Rejected,
}


def server_error(
    status: int, *, method: str, url: str, outcome: dict[str, Any] | None = None, text: str = ""
) -> ServerError:
    """The ServerError subclass for ``status`` (plain ServerError for the others, e.g. 5xx)."""
    return _BY_STATUS.get(status, ServerError)(status, method=method, url=url, outcome=outcome, text=text)


def outcome_messages(outcome: dict[str, Any]) -> list[str]:
    """Each issue of an OperationOutcome as 'severity: text (at location)'."""
    messages = []
    for issue in outcome.get("issue", []):
        text = issue.get("diagnostics") or issue.get("details", {}).get("text") or issue.get("code", "")
        where = ", ".join(issue.get("expression") or issue.get("location") or [])
        messages.append(f"{issue.get('severity', 'error')}: {text}" + (f" (at {where})" if where else ""))
    return messages
