"""The job runner: a pool of worker threads inside the service, state kept in the job store.

A job kind is a function ``(JobContext) -> JobResult``; it reports progress
through ``context.progress(...)``, which is also where a cancel request (or a
shutdown) stops it, by raising ``JobCancelled``. Jobs on the same study and
server run one at a time, because they share a sync journal.

On start-up ``recover`` marks the jobs a previous process left running as
interrupted (or cancelled, when a cancel was asked for), starts a new push for
every interrupted push (the sync journal makes it resume where the old one
stopped), and queues again what was queued.

A job that does long work without reporting progress (reading a huge file, say)
would not notice a cancel or a shutdown. So a job that has not stopped
``STOP_GRACE`` seconds after being asked gets ``JobCancelled`` raised inside its
thread (``_interrupt``): Python delivers it at the thread's next bytecode, which
reaches any pure-Python loop. ``close`` waits at most ``STOP_GRACE`` plus
``KILL_GRACE`` seconds and reports whether every worker stopped, so a server can
exit even when a job is stuck in C code.
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapter.errors import AdapterError, ConfigError, InputError, MappingError, ServerError
from adapter.service.problems import input_location
from adapter.service.store import CANCELLED, FAILED, INTERRUPTED, SUCCEEDED, Job, JobStore

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.5  # seconds between progress writes to the store
STOP_GRACE = 5.0  # seconds a job has to stop by itself once asked
KILL_GRACE = 5.0  # seconds more, after JobCancelled was raised inside it
# A job's inputs that must not outlive it (collect's links file, which is PHI): removed when the job
# ends however it ends, when it is cancelled before it starts, and at start-up for jobs a crash cut short.
PRIVATE = "private"
LINKS_FILE = "links.csv"  # collect's links file, in the private folder


class JobCancelled(BaseException):
    """Raised inside a job when it was asked to stop; ``shutdown`` when the service is stopping.

    A BaseException, like KeyboardInterrupt: the engine's ``except Exception`` must not swallow it.
    """

    def __init__(self, shutdown: bool = False) -> None:
        super().__init__("shutdown" if shutdown else "cancelled")
        self.shutdown = shutdown


class _ShutdownRaised(JobCancelled):
    """What ``_interrupt`` raises at a shutdown (an asynchronous exception is a class, built without arguments)."""

    def __init__(self) -> None:
        super().__init__(shutdown=True)


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
        self._futures: set[Future[None]] = set()
        self._threads: dict[str, int] = {}  # running job id -> its worker thread, while the job function runs
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def job_folder(self, job_id: str) -> Path:
        return self.folder / job_id

    def private_folder(self, job_id: str) -> Path:
        """Where a job's private inputs wait for it (see ``PRIVATE``)."""
        return self.job_folder(job_id) / PRIVATE

    def submit(self, job: Job) -> None:
        """Queue a stored job for a worker."""
        with self._guard:
            self._stops[job.id] = threading.Event()
            future = self._pool.submit(self._run, job.id)
            self._futures.add(future)
        future.add_done_callback(self._futures.discard)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job, or ask a running one to stop (at its next progress report, or see ``_interrupt``)."""
        job = self.store.request_cancel(job_id)
        with self._guard:
            stop = self._stops.get(job_id)
        if stop:
            stop.set()
            timer = threading.Timer(STOP_GRACE, self._interrupt, (job_id, JobCancelled))
            timer.daemon = True
            timer.start()
        return job

    def recover(self) -> list[Job]:
        """Pick up what a previous process left: returns the jobs started to resume interrupted pushes."""
        interrupted, queued = self.store.recover()
        for job in interrupted:
            shutil.rmtree(self.private_folder(job.id), ignore_errors=True)
        resumed = []
        for old in self.store.unresumed_interruptions("push"):
            # unresumed_interruptions leaves out jobs whose cancel was asked for: those stay stopped.
            new = self.store.add_job(old.kind, old.study, old.server, old.options, old.submitted_by, resumes=old.id)
            log.info("job %s (push) was interrupted; resuming it as job %s", old.id, new.id)
            resumed.append(new)
        for job in [*queued, *resumed]:
            self.submit(job)
        if interrupted:
            log.warning("%d job(s) were interrupted by a restart", len(interrupted))
        return resumed

    def close(self, grace: float = STOP_GRACE, kill_grace: float = KILL_GRACE) -> bool:
        """Stop: running jobs are interrupted (pushes resume at the next start), queued ones stay queued.

        Bounded: waits ``grace`` seconds, raises ``JobCancelled`` in the jobs still running, waits
        ``kill_grace`` more. True when every worker stopped; False when one is stuck (in C code), and
        then only a process exit ends it.
        """
        self.closing = True
        with self._guard:
            for stop in self._stops.values():
                stop.set()
            futures = set(self._futures)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if wait(futures, timeout=grace).not_done:
            with self._guard:
                running = list(self._threads)
            for job_id in running:
                self._interrupt(job_id, _ShutdownRaised)
            if stuck := wait(futures, timeout=kill_grace).not_done:
                log.error("%d job(s) did not stop within %.0f seconds", len(stuck), grace + kill_grace)
                return False
        return True

    def _interrupt(self, job_id: str, signal: type[JobCancelled]) -> None:
        """Raise ``signal`` inside the thread running ``job_id``, if its job function still runs."""
        with self._guard:
            thread = self._threads.get(job_id)
            if thread is not None:
                log.warning("job %s did not stop when asked; interrupting it", job_id)
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), ctypes.py_object(signal))

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
            shutil.rmtree(self.private_folder(job_id), ignore_errors=True)
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
            with self._guard:
                self._threads[job.id] = threading.get_ident()
            try:
                result = self.kinds[job.kind](context)
            finally:
                with self._guard:  # from here on _interrupt leaves this thread alone
                    self._threads.pop(job.id, None)
                _settle()
            state = FAILED if result.failed else SUCCEEDED
        except JobCancelled as signal:
            # A shutdown that overtakes a cancel still ends the job as cancelled: it must not be resumed.
            asked = self.store.job(job.id)
            shutdown = signal.shutdown and not (asked and asked.cancel_requested)
            state = INTERRUPTED if shutdown else CANCELLED
            result = JobResult(errors=[{"message": "stopped by a shutdown" if shutdown else "cancelled"}])
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


def _settle() -> None:
    """Nothing: a Python call, where an interrupt issued just before the job function returned is delivered.

    An asynchronous exception is raised at the thread's next check point (a call or a loop); this one
    is inside the ``try`` that records the job as cancelled.
    """


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
