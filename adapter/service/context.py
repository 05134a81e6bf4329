"""The ``Service`` the views share, how it is attached to an app, and how a view finds it.

The Flask tutorial's extension shape: ``Service.open(settings)`` takes the data
folder (lock, job store, study files, a job runner with no threads yet) and
``init_app(app)`` attaches it. The workers start on the app's first request that
is not a health probe, or when ``serve`` calls ``start``; ``close`` runs at
interpreter exit unless someone called it first, so no caller has to remember it.
"""

from __future__ import annotations

import atexit
import fcntl
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from flask import Flask, current_app, request

from adapter.errors import ConfigError
from adapter.service.runner import JobFunction, JobRunner
from adapter.service.store import JobStore
from adapter.service.studies import StudyFiles
from adapter.settings import Settings

EXTENSION = "trialfhir"


@dataclass
class Service:
    """Everything the views share: settings, the job store, the study files, the job runner."""

    settings: Settings
    store: JobStore
    studies: StudyFiles
    runner: JobRunner
    lock: IO[str]
    started: bool = False
    closed: bool = False
    stopped: bool = True  # whether every worker stopped at close
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, kinds: Mapping[str, JobFunction] | None = None) -> Service:
        """Take the data folder of ``settings``; ``kinds`` replaces the job implementations (tests)."""
        options = settings.service
        data = options.data_dir
        data.mkdir(parents=True, exist_ok=True)
        lock = _lock(data / "service.lock")
        try:
            store = JobStore(data / "jobs.sqlite")
        except BaseException:
            lock.close()
            raise
        studies = StudyFiles(data / "studies", store)
        if kinds is None:
            from adapter.service.jobs import engine_kinds

            kinds = engine_kinds(settings, studies)
        runner = JobRunner(store, kinds, folder=data / "jobs", workers=options.workers)
        return cls(settings, store, studies, runner, lock)

    def init_app(self, app: Flask, *, probes: Collection[str] = ()) -> None:
        """Serve ``app``'s requests: workers start before its first request, and the service closes at exit.

        Requests to the ``probes`` endpoints (health, readiness) start nothing: they only report.
        """
        app.extensions[EXTENSION] = self

        def start_workers() -> None:
            if request.endpoint not in probes:
                self.start()

        app.before_request(start_workers)
        atexit.register(self.close)

    def start(self) -> None:
        """Start the workers: pick up what a previous process left (see ``JobRunner.recover``). Once only."""
        with self._guard:  # held throughout, so no request sees the store before recovery
            if self.started or self.closed:
                return
            self.started = True
            self.runner.recover()

    def close(self) -> bool:
        """Stop the workers (running jobs are interrupted), close the store, release the data folder. Once only.

        Bounded in time (see ``JobRunner.close``); False when a worker would not stop.
        """
        with self._guard:
            if self.closed:
                return self.stopped
            self.closed = True
        atexit.unregister(self.close)
        self.stopped = self.runner.close()
        self.store.close()
        self.lock.close()
        return self.stopped


def service(app: Flask | None = None) -> Service:
    """The service of ``app``, by default of the app handling the current request."""
    found: Service = (app or current_app).extensions[EXTENSION]
    return found


def _lock(path: Path) -> IO[str]:
    handle = open(path, "a")  # noqa: SIM115 - held open for the life of the service
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        handle.close()
        raise ConfigError(f"another trialfhir service is using {path}; give each its own data_dir") from error
    return handle
