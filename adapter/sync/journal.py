"""The sync journal: one SQLite file per FHIR server and study.

For every resource written it keeps the content hash, the id the server knows it
by, the version the server gave it and its dependency level. A push compares each
mapped resource's hash with the journal and writes only what changed; because a
bundle's results are committed as soon as the server answers, a push killed at
any point resumes where it stopped.

The journal also holds the current run's plan in a temporary table (gone when
the connection closes): every resource of the run with its level, what to do
with it and, when it must be written, its serialized body. Spooling the plan to
SQLite keeps memory flat however big the trial, and lets the writer go level by
level whatever order the resources arrived in.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from adapter.errors import ConfigError

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resource (
    key TEXT PRIMARY KEY,          -- Type/id as we mapped it
    hash TEXT NOT NULL,            -- sha256 of the serialized resource we sent
    server_id TEXT NOT NULL,       -- the id the server keeps it under (ours, unless it assigned its own)
    version TEXT,                  -- the server's versionId after our write
    tier INTEGER NOT NULL,         -- dependency level: deletes go in reverse
    written_at TEXT NOT NULL
) WITHOUT ROWID;
"""

_PLAN = """
CREATE TEMP TABLE plan (
    seq INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    tier INTEGER NOT NULL,
    action TEXT NOT NULL,          -- create | update | unchanged
    hash TEXT NOT NULL,
    body BLOB                      -- the serialized resource, when it is to be written
);
CREATE INDEX temp.plan_by_tier ON plan (tier, seq) WHERE body IS NOT NULL;
"""


@dataclass(frozen=True)
class Recorded:
    """What the journal remembers of one resource."""

    hash: str
    server_id: str
    version: str | None
    tier: int


@dataclass(frozen=True)
class Written:
    """One resource the server accepted, to record."""

    key: str
    hash: str
    server_id: str
    version: str | None
    tier: int


@dataclass(frozen=True)
class Planned:
    """One resource of the plan that is to be written."""

    seq: int
    key: str
    tier: int
    hash: str
    body: bytes


def content_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def journal_path(journal_dir: Path, base_url: str, study: str) -> Path:
    """Where the journal of ``study`` on the server at ``base_url`` lives: readable names plus a short hash."""
    url = base_url.rstrip("/")
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", url.split("://", 1)[-1]).strip("_")[:60]
    server = f"{readable}-{hashlib.sha256(url.encode()).hexdigest()[:10]}"
    return journal_dir / server / (re.sub(r"[^A-Za-z0-9.-]+", "_", study) + ".sqlite")


class Journal:
    """The journal of one server and study; use it as a context manager."""

    def __init__(self, path: Path, *, base_url: str, study: str) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise ConfigError(f"cannot open the sync journal {path}: {error}") from error
        # WAL with synchronous=NORMAL survives a killed process (not a power cut) and is fast.
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._check_identity(base_url.rstrip("/"), study)
            self._db.executescript(_PLAN)
        except BaseException:
            self._db.close()
            raise

    def _check_identity(self, base_url: str, study: str) -> None:
        expected = {"schema": SCHEMA_VERSION, "base_url": base_url, "study": study}
        with self._transaction():
            stored = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
            if not stored:
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", expected.items())
                return
        for name, value in expected.items():
            if stored.get(name) != value:
                raise ConfigError(f"{self.path} is the journal of {name} {stored.get(name)!r}, not {value!r}")

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Commit the block as one transaction, or roll it back."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- what was written ---------------------------------------------------------------------

    def recorded(self, key: str) -> Recorded | None:
        row = self._db.execute("SELECT hash, server_id, version, tier FROM resource WHERE key = ?", (key,)).fetchone()
        return Recorded(*row) if row else None

    def server_ids(self, keys: Iterable[str]) -> dict[str, str]:
        """The server's id for each of ``keys`` the journal knows."""
        found: dict[str, str] = {}
        for key in keys:
            row = self._db.execute("SELECT server_id FROM resource WHERE key = ?", (key,)).fetchone()
            if row:
                found[key] = row[0]
        return found

    def record(self, written: Iterable[Written]) -> None:
        """Remember resources the server accepted, in one commit."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO resource VALUES (?, ?, ?, ?, ?, ?)",
                ((w.key, w.hash, w.server_id, w.version, w.tier, now) for w in written),
            )

    def forget(self, keys: Iterable[str]) -> None:
        """Drop resources that were deleted from the server."""
        with self._transaction():
            self._db.executemany("DELETE FROM resource WHERE key = ?", ((key,) for key in keys))

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM resource").fetchone()[0])

    def latest(self) -> tuple[str, Recorded] | None:
        """The resource written last, with what the journal remembers of it; None for an empty journal."""
        row = self._db.execute(
            "SELECT key, hash, server_id, version, tier FROM resource ORDER BY written_at DESC, key LIMIT 1"
        ).fetchone()
        return (row[0], Recorded(*row[1:])) if row else None

    # --- this run's plan ----------------------------------------------------------------------

    def plan_tier(self, keys: Iterable[str]) -> int:
        """The highest level among ``keys`` already in this run's plan; -1 when none is."""
        highest = -1
        for key in keys:
            row = self._db.execute("SELECT tier FROM plan WHERE key = ?", (key,)).fetchone()
            if row and row[0] > highest:
                highest = row[0]
        return highest

    def plan_add(self, key: str, tier: int, action: str, hash_: str, body: bytes | None) -> bool:
        """Add one resource to the plan; False when its key is already there (a duplicate in the input)."""
        try:
            self._db.execute(
                "INSERT INTO plan (key, tier, action, hash, body) VALUES (?, ?, ?, ?, ?)",
                (key, tier, action, hash_, body),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def plan_begin(self) -> None:
        """Planning inserts many rows: one transaction for all of them (the table is temporary anyway)."""
        self._db.execute("DELETE FROM plan")
        self._db.execute("BEGIN")

    def plan_end(self) -> None:
        self._db.execute("COMMIT")

    def plan_tiers(self) -> list[int]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT tier FROM plan WHERE body IS NOT NULL ORDER BY 1")]

    def planned(self, tier: int, page: int = 2000) -> Iterator[Planned]:
        """The resources of one level to write, in input order; reads a page at a time (no cursor stays open)."""
        after = -1
        while True:
            rows = self._db.execute(
                "SELECT seq, key, tier, hash, body FROM plan WHERE body IS NOT NULL AND tier = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (tier, after, page),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield Planned(*row)
            after = rows[-1][0]

    def removed(self) -> list[tuple[str, Recorded]]:
        """Resources the journal has but this run's plan does not: rows gone from the source.

        Only types this run has at all count: pushing a study record alone after its trial package
        must not make every Patient and Observation look removed.
        """
        rows = self._db.execute(
            "SELECT key, hash, server_id, version, tier FROM resource "
            "WHERE key NOT IN (SELECT key FROM plan) "
            "AND substr(key, 1, instr(key, '/') - 1) IN "
            "(SELECT DISTINCT substr(key, 1, instr(key, '/') - 1) FROM plan) "
            "ORDER BY tier DESC, key"
        ).fetchall()
        return [(row[0], Recorded(*row[1:])) for row in rows]
