"""Progress of a long job (pull, map package, export): what library code reports and how a terminal shows it.

Library code takes a ``Progress`` (or None) and calls ``advance`` for each unit of work
(a resource written, a row mapped) and ``note`` for what it is doing or waiting for (a
Bulk Data status poll, the file being read). It never decides where progress goes: the
CLI passes ``terminal_progress(sys.stderr, ...)``, which draws a tqdm bar on a terminal
and nothing anywhere else (a pipe, a log file, ``--json``), so output stays clean.
Push has its own bar with a known total (``adapter.sync.report``).

Notes hold no values from records: a type, a count, a server's progress header.
"""

from __future__ import annotations

from typing import Any, Protocol, TextIO


class Progress(Protocol):
    """What a long job reports as it goes."""

    def advance(self, count: int = 1) -> None:
        """``count`` more units done (resources, rows)."""

    def note(self, text: str) -> None:
        """What the job is doing or waiting for now, in a few words."""


class TerminalProgress:
    """A tqdm counter (no total: these jobs do not know theirs) with a note beside it; off unless a terminal."""

    def __init__(self, stream: TextIO, description: str, unit: str | None, enabled: bool = True) -> None:
        self._bar: Any = None
        if enabled and stream.isatty():
            from tqdm import tqdm

            # A job that only says what it is doing (unit None) shows its time and note, not a count of 0.
            shape = None if unit else "{desc} [{elapsed}{postfix}]"
            self._bar = tqdm(desc=description, unit=unit or "it", file=stream, leave=False, dynamic_ncols=True,
                             bar_format=shape)

    @property
    def shown(self) -> bool:
        return self._bar is not None

    def advance(self, count: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.close()


def terminal_progress(
    stream: TextIO, description: str, *, unit: str | None = "res", enabled: bool = True
) -> TerminalProgress:
    """A progress counter of ``unit`` (None: notes only) on ``stream`` when it is a terminal and ``enabled``;
    otherwise one that shows nothing."""
    return TerminalProgress(stream, description, unit, enabled)
