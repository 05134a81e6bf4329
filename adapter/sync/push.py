"""Push: an idempotent, resumable sync of mapped resources to a FHIR server.

``push`` runs in two phases.

1. **Plan** (``adapter.sync.plan``). Every resource is hashed and compared with
   the journal (create, update, unchanged) and given a dependency level, so a
   level only refers to earlier ones.
2. **Write** (``adapter.sync.write``). Level by level, the resources to write are
   cut into bundles (by entries and by bytes) and sent with bounded concurrency;
   a level starts when the one before it is finished, so what is referenced is
   always on the server before what refers to it. Every entry of every response
   is checked, and what the server accepted is committed to the journal as soon
   as its bundle returns: a run killed at any point resumes where it stopped.

Resources in the journal but not in this run (rows removed from the source)
are reported and left alone, or deleted, newest level first, with
``delete_removed``; docs/push.md explains why.

What a push did is a ``PushReport`` (``adapter.sync.report``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from adapter.client import FhirClient
from adapter.errors import InputError, NotFound
from adapter.fhir.bundle import chunks
from adapter.settings import ServerSettings
from adapter.sync.inputs import PushInput
from adapter.sync.journal import Journal, Written, journal_path
from adapter.sync.plan import plan
from adapter.sync.report import PushReport
from adapter.sync.write import Result, Write, Writer, entry_size, with_identifier

log = logging.getLogger(__name__)


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
    writer = Writer(client, journal, capabilities, write_mode)
    report = PushReport(server=client.base_url, study=study, strategy=writer.strategy, dry_run=dry_run, full=full)
    plan(resources, journal, report, full=full, keep_bodies=not dry_run)
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
                batches = chunks(writes, max_entries=bundle_entries, max_bytes=bundle_bytes, size=entry_size)
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
        report.source_reject_causes = dict(sorted(source.causes.items()))
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
    with FhirClient.from_settings(server) as client:
        # Reach the server before its journal exists: a server never reached leaves no journal folder behind.
        client.capabilities()
        with Journal(path, base_url=server.base_url, study=source.study) as journal:
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
    except NotFound:
        return False
    return True


def _run_level(
    pool: ThreadPoolExecutor,
    concurrency: int,
    batches: Iterable[list[Write]],
    send: Callable[[list[Write]], list[Result]],
    journal: Journal,
    report: PushReport,
    progress: Callable[[int], None] | None,
    tier: int,
) -> None:
    """Send one level's bundles, at most ``concurrency`` at a time, and journal each as it returns."""
    in_flight: dict[Future[list[Result]], list[Write]] = {}

    def settle(done: set[Future[list[Result]]]) -> None:
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


def _settle(batch: list[Write], results: list[Result], journal: Journal, report: PushReport) -> None:
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
            report.failures.append(with_identifier(result.failure, write.planned.body))
    if written:
        journal.record(written)


def _delete(
    pool: ThreadPoolExecutor,
    concurrency: int,
    removed: list[tuple[str, Any]],
    writer: Writer,
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
