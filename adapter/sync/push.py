"""Push: an idempotent, resumable sync of mapped resources to a FHIR server.

``push`` runs in two phases.

1. **Plan.** Every resource is serialized once and hashed; the journal says
   whether the server has this exact content already (unchanged), an older one
   (update) or none (create). Each resource gets a dependency level one above
   the highest level among the resources of this run it refers to, so a level
   only refers to earlier ones. The plan is spooled to SQLite, not held in memory.
2. **Write.** Level by level, the resources to write are cut into bundles
   (by entries and by bytes) and sent with bounded concurrency; a level starts
   when the one before it is finished, so what is referenced is always on the
   server before what refers to it. Every entry of every response is checked,
   and what the server accepted is committed to the journal as soon as its
   bundle returns: a run killed at any point resumes where it stopped.

How each resource is written follows the server's CapabilityStatement: a
transaction of PUT-to-id entries (update as create); a batch where the server
has no transactions; single PUTs where it has neither. Where it refuses
client-assigned ids, each resource is a conditional update on its first
business identifier, and references are rewritten to the ids the server chose
(the journal remembers them). A transaction the server rejects as a whole is
retried entry by entry, so one bad resource is reported with its
OperationOutcome while the rest are written.

Resources in the journal but not in this run (rows removed from the source)
are reported and left alone, or deleted, newest level first, with
``delete_removed``; docs/push.md explains why.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from adapter.bundle import (
    bundle_body,
    chunks,
    conditional_put_entry,
    delete_entry,
    dumps,
    put_entry,
    references,
)
from adapter.client import Capabilities, FhirClient
from adapter.errors import ConfigError, InputError, ServerError, outcome_messages
from adapter.settings import ServerSettings
from adapter.sync.inputs import PushInput
from adapter.sync.journal import Journal, Planned, Written, content_hash, journal_path

log = logging.getLogger(__name__)

# Failures that no other bundle will escape: stop the run rather than fail every bundle the same way.
_FATAL_STATUSES = frozenset({401, 403})


@dataclass
class TypeSummary:
    """Counts for one resource type: the plan (create, update, unchanged) and what happened."""

    create: int = 0
    update: int = 0
    unchanged: int = 0
    written: int = 0
    failed: int = 0
    removed: int = 0


@dataclass(frozen=True)
class Failure:
    """A resource the server did not take, with the server's own words."""

    key: str
    status: int
    message: str
    identifier: str | None = None
    outcome: Mapping[str, Any] | None = None


@dataclass
class PushReport:
    """What a push planned and did; ``ok`` is False when anything failed."""

    server: str
    study: str
    strategy: str = ""
    dry_run: bool = False
    full: bool = False
    types: dict[str, TypeSummary] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    removed_action: str = "kept"
    bundles: int = 0
    seconds: float = 0.0
    # Source rows the mapper rejected (they never became resources); set by whoever ran the mapper.
    source_rejects: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures and not self.source_rejects

    def count(self, resource_type: str) -> TypeSummary:
        return self.types.setdefault(resource_type, TypeSummary())

    def total(self, what: str) -> int:
        return sum(getattr(summary, what) for summary in self.types.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "study": self.study,
            "strategy": self.strategy,
            "dryRun": self.dry_run,
            "full": self.full,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "bundles": self.bundles,
            "sourceRejects": self.source_rejects,
            "types": {name: asdict(summary) for name, summary in sorted(self.types.items())},
            "failures": [
                {"key": f.key, "identifier": f.identifier, "status": f.status, "message": f.message}
                for f in self.failures
            ],
            "removed": {"action": self.removed_action, "keys": self.removed},
        }


class TerminalProgress:
    """A progress bar on a terminal (tqdm), nothing anywhere else; its total is known once planning ends."""

    def __init__(self, stream: TextIO, enabled: bool = True) -> None:
        self._stream = stream
        self._enabled = enabled and stream.isatty()
        self._bar: Any = None

    def start(self, report: PushReport) -> None:
        if not self._enabled or report.dry_run:
            return
        from tqdm import tqdm

        total = sum(s.create + s.update + (s.unchanged if report.full else 0) for s in report.types.values())
        self._bar = tqdm(total=total, unit="res", desc=f"push {report.study}", file=self._stream, leave=False)

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.close()


def terminal_progress(stream: TextIO, *, enabled: bool = True) -> TerminalProgress:
    return TerminalProgress(stream, enabled)


def format_report(report: PushReport) -> str:
    """The report as a person reads it: a table per type, then every failure, then what was removed."""
    title = "plan (dry run, nothing written)" if report.dry_run else f"pushed in {report.seconds:.1f} s"
    lines = [f"{report.study} -> {report.server} ({report.strategy}): {title}"]
    columns = ("create", "update", "unchanged", "written", "failed", "removed")
    lines.append(f"{'type':<26}" + "".join(f"{c:>10}" for c in columns))
    for name, summary in sorted(report.types.items()):
        lines.append(f"{name:<26}" + "".join(f"{getattr(summary, c):>10}" for c in columns))
    lines.append(f"{'total':<26}" + "".join(f"{report.total(c):>10}" for c in columns))
    for failure in report.failures:
        who = failure.key + (f" ({failure.identifier})" if failure.identifier else "")
        status = f"HTTP {failure.status}: " if failure.status else ""
        lines.append(f"failed: {who}: {status}{failure.message}")
    if report.source_rejects:
        lines.append(f"rejected source rows (not pushed): {report.source_rejects}, each logged above")
    if report.removed:
        if report.removed_action == "deleted":
            lines.append(f"removed from the source and deleted from the server: {len(report.removed)}")
        else:
            lines.append(
                f"removed from the source, left on the server: {len(report.removed)} "
                "(--delete-removed deletes them; see docs/push.md)"
            )
    return "\n".join(lines)


@dataclass(frozen=True)
class _Write:
    """One resource ready to send: where it goes and its entry in a bundle."""

    planned: Planned
    path: str  # Type/id, or Type?identifier=... for a conditional update
    resource: bytes
    entry: bytes


@dataclass(frozen=True)
class _Result:
    key: str
    ok: bool
    server_id: str = ""
    version: str | None = None
    failure: Failure | None = None


def push(
    resources: Iterable[Mapping[str, Any]],
    *,
    client: FhirClient,
    journal: Journal,
    study: str = "",
    bundle_entries: int = 500,
    bundle_bytes: int = 5_000_000,
    concurrency: int = 4,
    write_mode: str = "auto",
    full: bool = False,
    dry_run: bool = False,
    delete_removed: bool = False,
    progress: Callable[[int], None] | None = None,
    on_planned: Callable[[PushReport], None] | None = None,
) -> PushReport:
    """Sync ``resources`` (mapped, deterministic ids, referenced ones first) to the server behind ``client``.

    ``full`` writes everything whatever the journal says; ``dry_run`` plans and writes nothing;
    ``progress(n)`` hears of every ``n`` resources done; ``on_planned`` sees the report once planning ends.
    """
    started = time.monotonic()
    capabilities = client.capabilities()
    if not full and not _server_has_latest_write(client, journal):
        # A server reset or restored from a backup: trusting the journal would skip what is gone.
        log.warning("the server no longer has what the journal recorded last: writing everything (as with --full)")
        full = True
    writer = _Writer(client, journal, capabilities, write_mode)
    report = PushReport(server=client.base_url, study=study, strategy=writer.strategy, dry_run=dry_run, full=full)
    _plan(resources, journal, report, full=full, keep_bodies=not dry_run)
    removed = journal.removed()
    report.removed = [key for key, _ in removed]
    for key, _ in removed:
        report.count(key.split("/", 1)[0]).removed += 1
    if on_planned:
        on_planned(report)
    if not dry_run:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="push") as pool:
            for tier in journal.plan_tiers():
                writes = (writer.prepare(planned) for planned in journal.planned(tier))
                batches = chunks(writes, max_entries=bundle_entries, max_bytes=bundle_bytes, size=_entry_size)
                _run_level(pool, concurrency, batches, writer.send, journal, report, progress, tier)
            if removed and delete_removed:
                report.removed_action = "deleted"
                _delete(pool, concurrency, removed, writer, journal, report, bundle_entries)
    report.seconds = time.monotonic() - started
    return report


def push_source(
    source: PushInput,
    server: ServerSettings,
    journal_dir: Path,
    *,
    full: bool = False,
    dry_run: bool = False,
    delete_removed: bool = False,
    progress: Callable[[int], None] | None = None,
    on_planned: Callable[[PushReport], None] | None = None,
) -> PushReport:
    """Push an opened input to a configured server with its journal: what the CLI and the service both run."""

    def planned(report: PushReport) -> None:
        report.source_rejects = source.rejected()
        if report.source_rejects and delete_removed:
            # A rejected row looks removed: deleting would throw away its last good version.
            raise InputError(
                f"{report.source_rejects} source row(s) were rejected; deleting removed resources would delete "
                "what they wrote before (fix them, or push without deleting)",
                source=source.study,
            )
        if on_planned:
            on_planned(report)

    path = journal_path(journal_dir, server.base_url, source.study)
    log.info("%s %s, journal %s", source.kind, source.study, path)
    with (
        FhirClient.from_settings(server) as client,
        Journal(path, base_url=server.base_url, study=source.study) as journal,
    ):
        return push(
            source.resources,
            client=client,
            journal=journal,
            study=source.study,
            bundle_entries=server.bundle_entries,
            bundle_bytes=server.bundle_bytes,
            concurrency=server.concurrency,
            write_mode=server.write_mode,
            full=full,
            dry_run=dry_run,
            delete_removed=delete_removed,
            progress=progress,
            on_planned=planned,
        )


def _server_has_latest_write(client: FhirClient, journal: Journal) -> bool:
    """Whether the resource the journal recorded last is still on the server (one read per push)."""
    latest = journal.latest()
    if latest is None:
        return True
    key, recorded = latest
    try:
        client.read(key.split("/", 1)[0], recorded.server_id)
    except ServerError as error:
        if error.status in (404, 410):
            return False
        raise
    return True


def _entry_size(write: _Write) -> int:
    return len(write.entry)


def _plan(
    resources: Iterable[Mapping[str, Any]], journal: Journal, report: PushReport, *, full: bool, keep_bodies: bool
) -> None:
    journal.plan_begin()
    try:
        for resource in resources:
            resource_type, resource_id = resource.get("resourceType"), resource.get("id")
            if not isinstance(resource_type, str) or not isinstance(resource_id, str):
                report.failures.append(Failure(f"{resource_type}/{resource_id}", 0, "resource has no type or id"))
                continue
            key = f"{resource_type}/{resource_id}"
            body = dumps(resource)
            digest = content_hash(body)
            recorded = journal.recorded(key)
            action = "create" if recorded is None else "unchanged" if recorded.hash == digest else "update"
            write = full or action != "unchanged"
            # What is not written needs no level: it is on the server already, so nothing waits for it.
            tier = journal.plan_tier(references(body) - {key}) + 1 if write else -1
            if not journal.plan_add(key, tier, action, digest, body if write and keep_bodies else None):
                report.failures.append(Failure(key, 0, "the same resource id twice in the input; the first was kept"))
                report.count(resource_type).failed += 1
                continue
            setattr(report.count(resource_type), action, getattr(report.count(resource_type), action) + 1)
    finally:
        journal.plan_end()


def _run_level(
    pool: ThreadPoolExecutor,
    concurrency: int,
    batches: Iterable[list[_Write]],
    send: Callable[[list[_Write]], list[_Result]],
    journal: Journal,
    report: PushReport,
    progress: Callable[[int], None] | None,
    tier: int,
) -> None:
    """Send one level's bundles, at most ``concurrency`` at a time, and journal each as it returns."""
    in_flight: dict[Future[list[_Result]], list[_Write]] = {}

    def settle(done: set[Future[list[_Result]]]) -> None:
        for future in done:
            batch = in_flight.pop(future)
            results = future.result()  # a fatal error propagates and ends the run
            _settle(batch, results, journal, report)
            report.bundles += 1
            log.info("level %d: bundle of %d entries done (%d bundles so far)", tier, len(batch), report.bundles)
            if progress:
                progress(len(batch))

    try:
        for batch in batches:
            if len(in_flight) >= concurrency:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                settle(done)
            in_flight[pool.submit(send, batch)] = batch
        while in_flight:
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            settle(done)
    except BaseException:
        for future in in_flight:
            future.cancel()
        raise


def _settle(batch: list[_Write], results: list[_Result], journal: Journal, report: PushReport) -> None:
    written = []
    for write, result in zip(batch, results, strict=True):
        summary = report.count(write.planned.key.split("/", 1)[0])
        if result.ok:
            summary.written += 1
            planned = write.planned
            written.append(Written(planned.key, planned.hash, result.server_id, result.version, planned.tier))
        else:
            summary.failed += 1
            assert result.failure is not None
            report.failures.append(_with_identifier(result.failure, write.planned.body))
    if written:
        journal.record(written)


def _delete(
    pool: ThreadPoolExecutor,
    concurrency: int,
    removed: list[tuple[str, Any]],
    writer: _Writer,
    journal: Journal,
    report: PushReport,
    bundle_entries: int,
) -> None:
    """Delete removed resources, highest level first, so nothing is deleted while something still refers to it."""
    for tier in sorted({recorded.tier for _, recorded in removed}, reverse=True):
        keys = [(key, recorded.server_id) for key, recorded in removed if recorded.tier == tier]
        for start in range(0, len(keys), bundle_entries):
            batch = keys[start : start + bundle_entries]
            results = writer.delete(batch)
            gone = [result.key for result in results if result.ok]
            journal.forget(gone)
            for result in results:
                if not result.ok:
                    assert result.failure is not None
                    report.failures.append(result.failure)
                    report.count(result.key.split("/", 1)[0]).failed += 1
            report.bundles += 1


class _Writer:
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

    def prepare(self, planned: Planned) -> _Write:
        """The request for one resource (runs in the main thread: it may read the journal)."""
        resource_type, resource_id = planned.key.split("/", 1)
        if not self.conditional(resource_type):
            return _Write(planned, planned.key, planned.body, put_entry(resource_type, resource_id, planned.body))
        resource = json.loads(planned.body)
        resource = _rewrite_references(resource, self.journal.server_ids(references(resource)))
        condition = _identifier_condition(resource)
        body = dumps({key: value for key, value in resource.items() if key != "id"})
        path = f"{resource_type}?{condition}" if condition else ""
        return _Write(planned, path, body, conditional_put_entry(resource, condition) if condition else b"")

    def send(self, batch: list[_Write]) -> list[_Result]:
        """Write one bundle's worth (runs in a worker thread: no journal access here)."""
        sendable = [write for write in batch if write.path]
        results = {write.planned.key: _no_identifier(write) for write in batch if not write.path}
        if sendable:
            for write, result in zip(sendable, self._send(sendable), strict=True):
                results[write.planned.key] = result
        return [results[write.planned.key] for write in batch]

    def _send(self, batch: list[_Write]) -> list[_Result]:
        if self.bundle_type is None:
            return [self._single(write) for write in batch]
        body = bundle_body((write.entry for write in batch), self.bundle_type)
        try:
            response = self.client.post_bundle(body, idempotent=True)
        except ServerError as error:
            if error.status in _FATAL_STATUSES:
                raise
            if error.status == 0 or error.retryable:
                return [_failed(write.planned.key, error) for write in batch]
            # The server refused the bundle as a whole: find out which entries it objects to, one by one.
            log.warning("a %s of %d entries was refused (%s); writing its entries one by one",
                        self.bundle_type, len(batch), error)  # fmt: skip
            return [self._single(write) for write in batch]
        return _entry_results([write.planned.key for write in batch], response)

    def _single(self, write: _Write) -> _Result:
        try:
            response = self.client.update(write.path, write.resource)
        except ServerError as error:
            if error.status in _FATAL_STATUSES:
                raise
            return _failed(write.planned.key, error)
        location = response.headers.get("Content-Location") or response.headers.get("Location") or ""
        return _accepted(write.planned.key, location, response.headers.get("ETag"))

    def delete(self, batch: list[tuple[str, str]]) -> list[_Result]:
        """Delete resources given as (our key, the server's id)."""
        targets = [(key, f"{key.split('/', 1)[0]}/{server_id}") for key, server_id in batch]
        if self.bundle_type is not None:
            body = bundle_body((delete_entry(*path.split("/", 1)) for _, path in targets), self.bundle_type)
            try:
                response = self.client.post_bundle(body, idempotent=True)
                return _entry_results([key for key, _ in targets], response, deleting=True)
            except ServerError as error:
                if error.status in _FATAL_STATUSES:
                    raise
                log.warning("a delete %s was refused (%s); deleting one by one", self.bundle_type, error)
        results = []
        for key, path in targets:
            try:
                self.client.delete(*path.split("/", 1))
                results.append(_Result(key, ok=True))
            except ServerError as error:
                if error.status in _FATAL_STATUSES:
                    raise
                results.append(_failed(key, error))
        return results


def _entry_results(keys: list[str], response: Mapping[str, Any], *, deleting: bool = False) -> list[_Result]:
    """Check every entry of a transaction-response or batch-response Bundle against what was sent."""
    entries = response.get("entry") or []
    results = []
    for index, key in enumerate(keys):
        answer = (entries[index].get("response") or {}) if index < len(entries) else {}
        status = str(answer.get("status", ""))
        code = int(status.split()[0]) if status[:3].isdigit() else 0
        if 200 <= code < 300:
            accepted = _accepted(key, answer.get("location"), answer.get("etag"))
            results.append(_Result(key, ok=True) if deleting else accepted)
            continue
        outcome = answer.get("outcome")
        if isinstance(outcome, dict) and outcome.get("resourceType") == "OperationOutcome":
            message = "; ".join(outcome_messages(outcome))
        else:
            outcome = None
            message = f"status {status!r}" if status else "the server's response has no entry for this resource"
        results.append(_Result(key, ok=False, failure=Failure(key, code, message, outcome=outcome)))
    return results


def _accepted(key: str, location: str | None, etag: str | None) -> _Result:
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
    return _Result(key, ok=True, server_id=server_id, version=version)


def _failed(key: str, error: ServerError) -> _Result:
    message = "; ".join(outcome_messages(error.outcome)) if error.outcome else str(error)
    return _Result(key, ok=False, failure=Failure(key, error.status, message, outcome=error.outcome))


def _with_identifier(failure: Failure, body: bytes) -> Failure:
    """The failure naming the resource's business identifier too, so a person can find the source row."""
    identifiers = json.loads(body).get("identifier") or []
    first = next((i for i in identifiers if i.get("value")), None)
    if first is None:
        return failure
    return dataclasses.replace(failure, identifier=f"{first.get('system', '')}|{first['value']}")


def _no_identifier(write: _Write) -> _Result:
    key = write.planned.key
    reason = "the server refuses client-assigned ids and this resource has no identifier to update on"
    return _Result(key, ok=False, failure=Failure(key, 0, reason))


def _identifier_condition(resource: Mapping[str, Any]) -> str:
    """``identifier=system|value`` for the first complete business identifier; '' when there is none."""
    for identifier in resource.get("identifier") or []:
        if identifier.get("system") and identifier.get("value"):
            token = f"{identifier['system']}|{identifier['value']}"
            return "identifier=" + urllib.parse.quote(token, safe="/:|")
    return ""


def _rewrite_references(node: Any, server_ids: Mapping[str, str]) -> Any:
    """``node`` with each reference to one of ``server_ids``' keys pointing at the server's id instead."""
    if not server_ids:
        return node
    if isinstance(node, dict):
        rewritten = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in server_ids:
                value = f"{value.split('/', 1)[0]}/{server_ids[value]}"
            rewritten[key] = _rewrite_references(value, server_ids)
        return rewritten
    if isinstance(node, list):
        return [_rewrite_references(item, server_ids) for item in node]
    return node
