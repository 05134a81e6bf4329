"""The service's SQLite store: jobs (state, progress, outcome) and the studies uploaded.

One connection, shared by the request threads and the workers under a lock;
WAL mode so a killed process loses nothing that was committed. A job is only
moved on by the runner that started it (``runner`` column): after a restart the
old process's claims are void, and ``recover`` marks its running jobs
interrupted.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapter.errors import ConfigError

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED = (
    "queued", "running", "succeeded", "failed", "cancelled", "interrupted",
)  # fmt: skip
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED, INTERRUPTED})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS job (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    study TEXT NOT NULL,
    server TEXT NOT NULL,
    options TEXT NOT NULL,
    state TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    created TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    progress TEXT NOT NULL DEFAULT '{}',
    summary TEXT NOT NULL DEFAULT '{}',
    errors TEXT NOT NULL DEFAULT '[]',
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    runner TEXT,
    resumes TEXT,
    resumed_by TEXT
);
CREATE INDEX IF NOT EXISTS job_by_state ON job (state);
CREATE TABLE IF NOT EXISTS study (
    id TEXT PRIMARY KEY,
    title TEXT,
    source TEXT NOT NULL,
    uploaded TEXT NOT NULL
);
"""


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Job:
    """One job as stored."""

    id: str
    kind: str
    study: str
    server: str
    options: dict[str, Any]
    state: str
    submitted_by: str
    created: str
    started: str | None
    finished: str | None
    progress: dict[str, Any]
    summary: dict[str, Any]
    errors: list[dict[str, Any]]
    cancel_requested: bool
    resumes: str | None
    resumed_by: str | None

    @property
    def done(self) -> bool:
        return self.state in FINISHED


@dataclass(frozen=True)
class StudyEntry:
    """One uploaded study: ``source`` is ``record`` (a ClinicalTrials.gov record) or ``package``."""

    id: str
    title: str | None
    source: str
    uploaded: str


_JOB_COLUMNS = (
    "id, kind, study, server, options, state, submitted_by, created, started, finished, progress, summary, errors, "
    "cancel_requested, resumes, resumed_by"
)


def _job(row: tuple[Any, ...]) -> Job:
    values = list(row)
    for index in (4, 10, 11, 12):
        values[index] = json.loads(values[index])
    values[13] = bool(values[13])
    return Job(*values)


class JobStore:
    """Jobs and studies in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db: sqlite3.Connection | None = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise ConfigError(f"cannot open the job store {path}: {error}") from error

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                raise ConfigError(f"the job store {self.path} is closed")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def ready(self) -> bool:
        """Whether the store is open and answers."""
        try:
            with self._transaction() as db:
                db.execute("SELECT 1").fetchone()
        except (ConfigError, sqlite3.Error):
            return False
        return True

    # --- jobs -----------------------------------------------------------------------------

    def add_job(
        self,
        kind: str,
        study: str,
        server: str,
        options: Mapping[str, Any],
        submitted_by: str,
        *,
        resumes: str | None = None,
    ) -> Job:
        job_id = uuid.uuid4().hex
        with self._transaction() as db:
            db.execute(
                "INSERT INTO job (id, kind, study, server, options, state, submitted_by, created, resumes) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, kind, study, server, json.dumps(dict(options)), QUEUED, submitted_by, now(), resumes),
            )
            if resumes:
                db.execute("UPDATE job SET resumed_by = ? WHERE id = ?", (job_id, resumes))
        job = self.job(job_id)
        assert job is not None
        return job

    def job(self, job_id: str) -> Job | None:
        with self._transaction() as db:
            row = db.execute(f"SELECT {_JOB_COLUMNS} FROM job WHERE id = ?", (job_id,)).fetchone()  # noqa: S608
        return _job(row) if row else None

    def jobs(self, limit: int = 100) -> list[Job]:
        """The newest jobs first."""
        with self._transaction() as db:
            rows = db.execute(f"SELECT {_JOB_COLUMNS} FROM job ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()  # noqa: S608
        return [_job(row) for row in rows]

    def active_jobs(self, study: str) -> int:
        """How many jobs on ``study`` are queued or running."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT count(*) FROM job WHERE study = ? AND state IN (?, ?)", (study, QUEUED, RUNNING)
            ).fetchone()
        return int(row[0])

    def start(self, job_id: str, runner: str) -> Job | None:
        """Claim a queued job for ``runner``; None when it is no longer queued (cancelled meanwhile)."""
        with self._transaction() as db:
            claimed = db.execute(
                "UPDATE job SET state = ?, started = ?, runner = ? WHERE id = ? AND state = ?",
                (RUNNING, now(), runner, job_id, QUEUED),
            ).rowcount
        return self.job(job_id) if claimed else None

    def set_progress(self, job_id: str, runner: str, progress: Mapping[str, Any]) -> bool:
        """Record progress; False when ``runner`` no longer owns the job."""
        with self._transaction() as db:
            return bool(
                db.execute(
                    "UPDATE job SET progress = ? WHERE id = ? AND state = ? AND runner = ?",
                    (json.dumps(dict(progress)), job_id, RUNNING, runner),
                ).rowcount
            )

    def finish(
        self,
        job_id: str,
        runner: str,
        state: str,
        *,
        progress: Mapping[str, Any],
        summary: Mapping[str, Any],
        errors: list[dict[str, Any]],
    ) -> bool:
        """Record the outcome of a job ``runner`` owns; False when it no longer does."""
        assert state in FINISHED
        with self._transaction() as db:
            return bool(
                db.execute(
                    "UPDATE job SET state = ?, finished = ?, progress = ?, summary = ?, errors = ? "
                    "WHERE id = ? AND state = ? AND runner = ?",
                    (state, now(), json.dumps(dict(progress)), json.dumps(dict(summary)), json.dumps(errors),
                     job_id, RUNNING, runner),
                ).rowcount
            )  # fmt: skip

    def request_cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once; ask a running one to stop. Returns the job as it now is."""
        with self._transaction() as db:
            db.execute(
                "UPDATE job SET state = ?, finished = ?, cancel_requested = 1 WHERE id = ? AND state = ?",
                (CANCELLED, now(), job_id, QUEUED),
            )
            db.execute("UPDATE job SET cancel_requested = 1 WHERE id = ? AND state = ?", (job_id, RUNNING))
        return self.job(job_id)

    def recover(self) -> tuple[list[Job], list[Job]]:
        """At start-up: mark jobs left running interrupted; return them and the jobs still queued, oldest first.

        A job left running whose cancel was asked for is marked cancelled instead: it is never resumed.
        """
        with self._transaction() as db:
            running = [row[0] for row in db.execute("SELECT id FROM job WHERE state = ? ORDER BY seq", (RUNNING,))]
            db.execute(
                "UPDATE job SET state = ?, finished = ?, errors = ? WHERE state = ? AND cancel_requested = 1",
                (CANCELLED, now(), json.dumps([{"message": "cancelled; the service stopped before the job did"}]),
                 RUNNING),
            )  # fmt: skip
            db.execute(
                "UPDATE job SET state = ?, finished = ?, errors = ? WHERE state = ?",
                (INTERRUPTED, now(), json.dumps([{"message": "the service stopped while the job ran"}]), RUNNING),
            )
            queued = [row[0] for row in db.execute("SELECT id FROM job WHERE state = ? ORDER BY seq", (QUEUED,))]
        interrupted = [job for job in map(self.job, running) if job and job.state == INTERRUPTED]
        return interrupted, [job for job in map(self.job, queued) if job]

    def unresumed_interruptions(self, kind: str) -> list[Job]:
        """Interrupted jobs of ``kind`` that no later job resumes yet and nobody asked to cancel, oldest first."""
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_JOB_COLUMNS} FROM job WHERE kind = ? AND state = ? AND resumed_by IS NULL "  # noqa: S608
                "AND cancel_requested = 0 ORDER BY seq",
                (kind, INTERRUPTED),
            ).fetchall()
        return [_job(row) for row in rows]

    # --- studies --------------------------------------------------------------------------

    def put_study(self, study_id: str, title: str | None, source: str) -> bool:
        """Record an uploaded study; True when it is new, False when it replaced one."""
        with self._transaction() as db:
            existed = db.execute("SELECT 1 FROM study WHERE id = ?", (study_id,)).fetchone() is not None
            db.execute("INSERT OR REPLACE INTO study VALUES (?, ?, ?, ?)", (study_id, title, source, now()))
        return not existed

    def study(self, study_id: str) -> StudyEntry | None:
        with self._transaction() as db:
            row = db.execute("SELECT id, title, source, uploaded FROM study WHERE id = ?", (study_id,)).fetchone()
        return StudyEntry(*row) if row else None

    def studies(self) -> list[StudyEntry]:
        with self._transaction() as db:
            rows = db.execute("SELECT id, title, source, uploaded FROM study ORDER BY id").fetchall()
        return [StudyEntry(*row) for row in rows]
