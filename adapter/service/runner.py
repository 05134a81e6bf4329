"""The job runner: a pool of worker threads inside the service, state kept in the job store.

A job kind is a function ``(JobContext) -> JobResult``; it reports progress
through ``context.progress(...)``, which is also where a cancel request (or a
shutdown) stops it, by raising ``JobCancelled``. Jobs on the same study and
server run one at a time, because they share a sync journal.

On start-up ``recover`` marks the jobs a previous process left running as
interrupted, starts a new push for every interrupted push (the sync journal
makes it resume where the old one stopped), and queues again what was queued.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapter.errors import AdapterError, ConfigError, InputError, MappingError, ServerError
from adapter.service.problems import input_location
from adapter.service.store import CANCELLED, FAILED, INTERRUPTED, SUCCEEDED, Job, JobStore

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.5  # seconds between progress writes to the store


class JobCancelled(Exception):
    """Raised inside a job when it was asked to stop; ``shutdown`` when the service is stopping."""

    def __init__(self, shutdown: bool = False) -> None:
        super().__init__("shutdown" if shutdown else "cancelled")
        self.shutdown = shutdown


@dataclass
class JobResult:
    """What a job leaves behind: per-type summary, errors, and whether it counts as failed."""

    summary: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    failed: bool = False


class JobContext:
    """What a running job sees: itself, its folder, and a way to report progress."""

    def __init__(self, job: Job, runner: JobRunner, folder: Path, stop: threading.Event) -> None:
        self.job = job
        self.folder = folder
        self.files = folder / "files"
        self._runner = runner
        self._stop = stop
        self._counts: dict[str, Any] = {}
        self._written = 0.0

    @property
    def counts(self) -> dict[str, Any]:
        return dict(self._counts)

    def progress(self, **counts: Any) -> None:
        """Record progress counts (``done=``, ``total=``, ...); raises ``JobCancelled`` when asked to stop."""
        self._counts.update(counts)
        if time.monotonic() - self._written >= PROGRESS_INTERVAL:
            self._written = time.monotonic()
            self._runner.store.set_progress(self.job.id, self._runner.id, self._counts)
        self.check()

    def check(self) -> None:
        """Raise ``JobCancelled`` when the job was cancelled or the service is stopping."""
        if self._stop.is_set():
            raise JobCancelled(shutdown=self._runner.closing)


JobFunction = Callable[[JobContext], JobResult]


class JobRunner:
    """Runs queued jobs on ``workers`` threads; one instance per service process."""

    def __init__(self, store: JobStore, kinds: Mapping[str, JobFunction], *, folder: Path, workers: int) -> None:
        self.id = uuid.uuid4().hex
        self.store = store
        self.kinds = dict(kinds)
        self.folder = folder
        self.closing = False
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self._stops: dict[str, threading.Event] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def job_folder(self, job_id: str) -> Path:
        return self.folder / job_id

    def submit(self, job: Job) -> None:
        """Queue a stored job for a worker."""
        with self._guard:
            self._stops[job.id] = threading.Event()
        self._pool.submit(self._run, job.id)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job, or ask a running one to stop at its next progress report."""
        job = self.store.request_cancel(job_id)
        with self._guard:
            stop = self._stops.get(job_id)
        if stop:
            stop.set()
        return job

    def recover(self) -> list[Job]:
        """Pick up what a previous process left: returns the jobs started to resume interrupted pushes."""
        interrupted, queued = self.store.recover()
        resumed = []
        for old in self.store.unresumed_interruptions("push"):
            new = self.store.add_job(old.kind, old.study, old.server, old.options, old.submitted_by, resumes=old.id)
            log.info("job %s (push) was interrupted; resuming it as job %s", old.id, new.id)
            resumed.append(new)
        for job in [*queued, *resumed]:
            self.submit(job)
        if interrupted:
            log.warning("%d job(s) were interrupted by a restart", len(interrupted))
        return resumed

    def close(self) -> None:
        """Stop: running jobs are interrupted (pushes resume at the next start), queued ones stay queued."""
        self.closing = True
        with self._guard:
            for stop in self._stops.values():
                stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, job_id: str) -> None:
        with self._guard:
            stop = self._stops[job_id]
        try:
            job = self.store.job(job_id)
            if job is None or job.done or stop.is_set():
                return
            lock = self._lock_for(job)
            while not lock.acquire(timeout=0.2):
                if stop.is_set():
                    return
            try:
                self._execute(job_id, stop)
            finally:
                lock.release()
        finally:
            with self._guard:
                self._stops.pop(job_id, None)

    def _lock_for(self, job: Job) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((job.study, job.server), threading.Lock())

    def _execute(self, job_id: str, stop: threading.Event) -> None:
        job = self.store.start(job_id, self.id)
        if job is None:
            return
        folder = self.job_folder(job.id)
        context = JobContext(job, self, folder, stop)
        log.info("job %s (%s of %s on %s) started", job.id, job.kind, job.study, job.server)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            result = self.kinds[job.kind](context)
            state = FAILED if result.failed else SUCCEEDED
        except JobCancelled as signal:
            state = INTERRUPTED if signal.shutdown else CANCELLED
            result = JobResult(errors=[{"message": "stopped by a shutdown" if signal.shutdown else "cancelled"}])
        except Exception as error:  # any failure of a job is recorded on the job, not raised
            state = FAILED
            result = JobResult(errors=[describe(error)])
            if not isinstance(error, AdapterError):
                frames = "".join(traceback.format_tb(error.__traceback__))
                log.error("job %s: unexpected %s\n%s", job.id, type(error).__name__, frames)
        recorded = self.store.finish(
            job.id, self.id, state, progress=context.counts, summary=result.summary, errors=result.errors
        )
        log.info("job %s %s", job.id, state if recorded else "ended, but another process owns it now")


def describe(error: Exception) -> dict[str, Any]:
    """An error as a job records it: what and where, never a value from a record or a secret."""
    if isinstance(error, InputError):
        return {"message": error.reason, "where": input_location(error)}
    if isinstance(error, MappingError):
        return {"message": f"{error.record_id}: {error.reason}", "where": error.element}
    if isinstance(error, ServerError):
        return {"message": str(error)[:1000], "status": error.status}
    if isinstance(error, ConfigError | AdapterError):
        return {"message": str(error)}
    return {"message": f"internal error ({type(error).__name__}); see the service log"}
