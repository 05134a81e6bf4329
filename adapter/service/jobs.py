"""The job kinds the service runs: push, pull, export and collect, each a thin call into the engine.

The service adds nothing to the engine's work: it opens the stored study with
``adapter.sync.inputs``, builds the client and journal from the settings exactly
as the CLI does, and calls ``adapter.sync.push.push`` (or pull, or export),
turning the engine's progress callbacks into job progress and its report into
the job's summary and errors. A collect job reads its links file from the job's
private folder, which the runner removes when the job ends, whatever happens.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapter.client import FhirClient
from adapter.errors import ConfigError
from adapter.export.exporter import export
from adapter.service.runner import LINKS_FILE, PRIVATE, JobContext, JobFunction, JobResult
from adapter.service.studies import PACKAGE, StudyFiles
from adapter.settings import ServerSettings, Settings
from adapter.sync.inputs import PushInput
from adapter.sync.pull import pull
from adapter.sync.push import push_source
from adapter.sync.report import PushReport
from adapter.sync.sink import PullReport

REMOVED_FILE = "removed.txt"


def engine_kinds(settings: Settings, studies: StudyFiles) -> Mapping[str, JobFunction]:
    """The job functions of a real service."""
    return {
        "push": functools.partial(run_push, settings=settings, studies=studies),
        "pull": functools.partial(run_pull, settings=settings, studies=studies),
        "export": functools.partial(run_export, settings=settings, studies=studies),
        "collect": functools.partial(run_collect, settings=settings, studies=studies),
    }


def _server(settings: Settings, name: str) -> ServerSettings:
    # Only a configured server: the name was checked when the job was submitted, and is checked again here
    # because the config may have changed across a restart.
    if name not in settings.servers:
        raise ConfigError(f"no FHIR server named {name} is configured any more")
    return settings.server(name)


def run_push(context: JobContext, *, settings: Settings, studies: StudyFiles) -> JobResult:
    """Push the stored study to the server; resumes through the sync journal like the CLI."""
    job = context.job
    server = _server(settings, job.server)
    entry = studies.store.study(job.study)
    if entry is None:
        raise ConfigError(f"study {job.study} is no longer stored")
    source = studies.open(entry)
    done = 0

    def planned(report: PushReport) -> None:
        writes = report.total("create") + report.total("update") + (report.total("unchanged") if report.full else 0)
        context.progress(total=0 if report.dry_run else writes, done=0, unchanged=report.total("unchanged"))

    def advanced(count: int) -> None:
        nonlocal done
        done += count
        context.progress(done=done)

    context.check()
    report = push_source(
        source,
        server,
        settings.journal_dir,
        full=bool(job.options.get("full")),
        dry_run=bool(job.options.get("dry_run")),
        delete_removed=bool(job.options.get("delete_removed")),
        progress=advanced,
        on_planned=planned,
    )
    removed = None
    if report.removed:  # thousands of keys belong in a file, not in the job record
        context.files.mkdir(parents=True, exist_ok=True)
        report.write_removed(context.files / REMOVED_FILE)
        removed = REMOVED_FILE
    summary = report.to_json(removed_file=removed)
    errors = [
        {"message": f"{failure['key']}: HTTP {failure['status']}: {failure['message']}"}
        for failure in summary["failures"]
    ]
    return JobResult(summary=summary, errors=errors + reject_errors(context, source), failed=not report.ok)


def reject_errors(context: JobContext, source: PushInput) -> list[dict[str, Any]]:
    """The rows the mapper rejected: where they are, for the job record; their reasons, in the job's files.

    A reason may quote a cell of a patient record: it goes only to ``rejects.ndjson``, which the
    caller downloads like any other result, never into the job record or the log.
    """
    if not source.rejects:
        return []
    context.files.mkdir(parents=True, exist_ok=True)
    with open(context.files / "rejects.ndjson", "w", encoding="utf-8") as out:
        out.writelines(json.dumps(reject.as_json(), ensure_ascii=False) + "\n" for reject in source.rejects)
    errors: list[dict[str, Any]] = [{"message": "row rejected", "where": reject.where} for reject in source.rejects]
    if (more := source.rejected() - len(source.rejects)) > 0:
        errors.append({"message": f"{more} more row(s) rejected; rejects.ndjson lists the first {len(errors)}"})
    return errors


def run_pull(context: JobContext, *, settings: Settings, studies: StudyFiles) -> JobResult:
    """Pull the study back from the server into the job's files: ``<Type>.ndjson`` and ``manifest.json``."""
    report = _pull(context, settings, context.files)
    return JobResult(
        summary=_pull_summary(report), errors=[{"message": p} for p in report.problems], failed=not report.ok
    )


def run_export(context: JobContext, *, settings: Settings, studies: StudyFiles) -> JobResult:
    """Pull the study, then export it (NDJSON, CSV, Parquet or SDTM) into the job's files."""
    fmt = str(context.job.options.get("format", "csv"))
    pulled = _pull(context, settings, context.folder / "pulled")
    context.check()
    exported = export(context.folder / "pulled", context.files, fmt, nct_id=context.job.study)
    summary = {**_pull_summary(pulled), "format": fmt, "exported": exported.files, "excluded": exported.excluded}
    return JobResult(summary=summary, errors=[{"message": p} for p in pulled.problems], failed=not pulled.ok)


def run_collect(context: JobContext, *, settings: Settings, studies: StudyFiles) -> JobResult:
    """Collect the stored package's subjects from the hospital server into the job's files (docs/collect.md)."""
    from adapter.collect.run import collect  # only collect jobs need it

    job = context.job
    links = context.folder / PRIVATE / LINKS_FILE
    try:
        server = _server(settings, job.server)
        entry = studies.store.study(job.study)
        if entry is None or entry.source != PACKAGE:
            raise ConfigError(f"study {job.study} is not a stored trial package; collect needs its subjects.csv")
        if not links.is_file():
            raise ConfigError("the job's links file is gone (the service restarted before the job ran); submit again")
        context.check()
        with FhirClient.from_settings(server) as client:
            report = collect(studies.source(entry), client, links, context.files, since=job.options.get("since"))
    finally:
        links.unlink(missing_ok=True)  # the runner removes the folder too; PHI goes as soon as it is read
    summary = report.as_json()
    context.progress(done=summary["resources_fetched"], total=summary["resources_fetched"])
    return JobResult(summary=summary)


def _pull(context: JobContext, settings: Settings, output: Path) -> PullReport:
    server = _server(settings, context.job.server)
    options = context.job.options

    def sleep(seconds: float) -> None:
        # Bulk Data polls wait here: a cancel or a shutdown is noticed between polls.
        context.check()
        time.sleep(seconds)
        context.check()

    context.check()
    with FhirClient.from_settings(server) as client:
        report = pull(client, context.job.study, output, mode=options.get("mode", "auto"), since=options.get("since"),
                      sleep=sleep)  # fmt: skip
    context.progress(done=sum(report.counts.values()), total=sum(report.counts.values()))
    return report


def _pull_summary(report: PullReport) -> dict[str, Any]:
    return {
        "mode": report.mode,
        "types": {kind: {"pulled": count} for kind, count in sorted(report.counts.items())},
        "duplicates": report.duplicates,
        "problems": report.problems,
    }
