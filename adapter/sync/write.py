"""The writer: planned resources to requests the server accepts, and its responses to results.

How each resource is written follows the server's CapabilityStatement: a
transaction of PUT-to-id entries (update as create); a batch where the server
has no transactions; single PUTs where it has neither. Where it refuses
client-assigned ids, each resource is a conditional update on its first
business identifier, and references are rewritten to the ids the server chose
(the journal remembers them). A transaction the server rejects as a whole is
retried entry by entry, so one bad resource is reported with its
OperationOutcome while the rest are written.

Refused credentials (``AuthFailed``) end the run: no other bundle would escape
them, so failing every bundle the same way would only hide the one cause.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapter.client import Capabilities, FhirClient
from adapter.errors import AuthFailed, ConfigError, ServerError, outcome_messages
from adapter.fhir.bundle import bundle_body, conditional_put_entry, delete_entry, put_entry_bytes
from adapter.fhir.json import dumpb, loads
from adapter.fhir.references import references, rewrite_references
from adapter.sync.journal import Journal, Planned
from adapter.sync.report import Failure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Write:
    """One resource ready to send: where it goes and its entry in a bundle."""

    planned: Planned
    path: str  # Type/id, or Type?identifier=... for a conditional update
    resource: bytes
    entry: bytes


@dataclass(frozen=True)
class Result:
    key: str
    ok: bool
    server_id: str = ""
    version: str | None = None
    failure: Failure | None = None


def entry_size(write: Write) -> int:
    """What a write adds to a bundle, for cutting bundles by bytes."""
    return len(write.entry)


class Writer:
    """Turns planned resources into requests the server accepts, and responses into results."""

    def __init__(self, client: FhirClient, journal: Journal, capabilities: Capabilities, write_mode: str) -> None:
        if write_mode not in ("auto", "put", "conditional"):
            raise ConfigError(f"write_mode must be auto, put or conditional, not {write_mode!r}")
        self.client = client
        self.journal = journal
        self.capabilities = capabilities
        self.write_mode = write_mode
        self.bundle_type = "transaction" if capabilities.transaction else "batch" if capabilities.batch else None
        refusing = sorted(t for t, allowed in capabilities.update_create.items() if allowed is False)
        ids = {"put": "PUT to our ids", "conditional": "conditional update on identifier"}.get(write_mode, "")
        if not ids:
            ids = "PUT to our ids" + ("; conditional update for " + ", ".join(refusing) if refusing else "")
        self.strategy = f"{self.bundle_type or 'single requests'}; {ids}"

    def conditional(self, resource_type: str) -> bool:
        if self.write_mode == "auto":
            return not self.capabilities.client_ids_allowed(resource_type)
        return self.write_mode == "conditional"

    def prepare(self, planned: Planned) -> Write:
        """The request for one resource (runs in the main thread: it may read the journal)."""
        resource_type, resource_id = planned.key.split("/", 1)
        if not self.conditional(resource_type):
            return Write(planned, planned.key, planned.body, put_entry_bytes(resource_type, resource_id, planned.body))
        resource = loads(planned.body)  # Decimals: the conditional body keeps every digit
        resource = rewrite_references(resource, self.journal.server_ids(references(resource)))
        condition = _identifier_condition(resource)
        body = dumpb({key: value for key, value in resource.items() if key != "id"})
        path = f"{resource_type}?{condition}" if condition else ""
        return Write(planned, path, body, conditional_put_entry(resource, condition) if condition else b"")

    def send(self, batch: list[Write]) -> list[Result]:
        """Write one bundle's worth (runs in a worker thread: no journal access here)."""
        sendable = [write for write in batch if write.path]
        results = {write.planned.key: _no_identifier(write) for write in batch if not write.path}
        if sendable:
            for write, result in zip(sendable, self._send(sendable), strict=True):
                results[write.planned.key] = result
        return [results[write.planned.key] for write in batch]

    def _send(self, batch: list[Write]) -> list[Result]:
        if self.bundle_type is None:
            return [self._single(write) for write in batch]
        body = bundle_body((write.entry for write in batch), self.bundle_type)
        try:
            response = self.client.post_bundle(body, idempotent=True)
        except AuthFailed:
            raise
        except ServerError as error:
            if error.status == 0 or error.retryable:
                return [_failed(write.planned.key, error) for write in batch]
            # The server refused the bundle as a whole: find out which entries it objects to, one by one.
            log.warning("a %s of %d entries was refused (%s); writing its entries one by one",
                        self.bundle_type, len(batch), error)  # fmt: skip
            return [self._single(write) for write in batch]
        return _entry_results([write.planned.key for write in batch], response)

    def _single(self, write: Write) -> Result:
        try:
            response = self.client.update(write.path, write.resource)
        except AuthFailed:
            raise
        except ServerError as error:
            return _failed(write.planned.key, error)
        location = response.headers.get("Content-Location") or response.headers.get("Location") or ""
        return _accepted(write.planned.key, location, response.headers.get("ETag"))

    def delete(self, batch: list[tuple[str, str]]) -> list[Result]:
        """Delete resources given as (our key, the server's id)."""
        targets = [(key, f"{key.split('/', 1)[0]}/{server_id}") for key, server_id in batch]
        if self.bundle_type is not None:
            body = bundle_body((delete_entry(*path.split("/", 1)) for _, path in targets), self.bundle_type)
            try:
                response = self.client.post_bundle(body, idempotent=True)
                return _entry_results([key for key, _ in targets], response, deleting=True)
            except AuthFailed:
                raise
            except ServerError as error:
                log.warning("a delete %s was refused (%s); deleting one by one", self.bundle_type, error)
        results = []
        for key, path in targets:
            try:
                self.client.delete(*path.split("/", 1))
                results.append(Result(key, ok=True))
            except AuthFailed:
                raise
            except ServerError as error:
                results.append(_failed(key, error))
        return results


def _entry_results(keys: list[str], response: Mapping[str, Any], *, deleting: bool = False) -> list[Result]:
    """Check every entry of a transaction-response or batch-response Bundle against what was sent."""
    entries = response.get("entry") or []
    results = []
    for index, key in enumerate(keys):
        answer = (entries[index].get("response") or {}) if index < len(entries) else {}
        status = str(answer.get("status", ""))
        code = int(status.split()[0]) if status[:3].isdigit() else 0
        if 200 <= code < 300:
            accepted = _accepted(key, answer.get("location"), answer.get("etag"))
            results.append(Result(key, ok=True) if deleting else accepted)
            continue
        outcome = answer.get("outcome")
        if isinstance(outcome, dict) and outcome.get("resourceType") == "OperationOutcome":
            message = "; ".join(outcome_messages(outcome))
        else:
            outcome = None
            message = f"status {status!r}" if status else "the server's response has no entry for this resource"
        results.append(Result(key, ok=False, failure=Failure(key, code, message, outcome=outcome)))
    return results


def _accepted(key: str, location: str | None, etag: str | None) -> Result:
    """A written resource: its server id and version from ``Type/id/_history/v`` and ``W/"v"``."""
    server_id, version = key.split("/", 1)[1], None
    parts = urllib.parse.urlsplit(location or "").path.split("/")
    if "_history" in parts:
        at = parts.index("_history")
        server_id, version = parts[at - 1], parts[at + 1] if at + 1 < len(parts) else None
    elif len(parts) >= 2 and parts[-2] == key.split("/", 1)[0]:
        server_id = parts[-1]
    if etag:
        version = etag.removeprefix("W/").strip('"')
    return Result(key, ok=True, server_id=server_id, version=version)


def _failed(key: str, error: ServerError) -> Result:
    message = "; ".join(outcome_messages(error.outcome)) if error.outcome else str(error)
    return Result(key, ok=False, failure=Failure(key, error.status, message, outcome=error.outcome))


def with_identifier(failure: Failure, body: bytes) -> Failure:
    """The failure naming the resource's business identifier too, so a person can find the source row."""
    identifiers = json.loads(body).get("identifier") or []
    first = next((i for i in identifiers if i.get("value")), None)
    if first is None:
        return failure
    return dataclasses.replace(failure, identifier=f"{first.get('system', '')}|{first['value']}")


def _no_identifier(write: Write) -> Result:
    key = write.planned.key
    reason = "the server refuses client-assigned ids and this resource has no identifier to update on"
    return Result(key, ok=False, failure=Failure(key, 0, reason))


def _identifier_condition(resource: Mapping[str, Any]) -> str:
    """``identifier=system|value`` for the first complete business identifier; '' when there is none."""
    for identifier in resource.get("identifier") or []:
        if identifier.get("system") and identifier.get("value"):
            token = f"{identifier['system']}|{identifier['value']}"
            return "identifier=" + urllib.parse.quote(token, safe="/:|")
    return ""
