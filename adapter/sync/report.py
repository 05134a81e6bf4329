"""What a push planned and did: ``PushReport``, its table for a person, and the progress bar."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from adapter.sources.package_csv import reject_summary


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
    source_reject_causes: dict[str, int] = field(default_factory=dict)  # by file, column and kind; no values

    @property
    def ok(self) -> bool:
        return not self.failures and not self.source_rejects

    def count(self, resource_type: str) -> TypeSummary:
        return self.types.setdefault(resource_type, TypeSummary())

    def total(self, what: str) -> int:
        return sum(getattr(summary, what) for summary in self.types.values())

    def to_json(self, removed_file: str | None = None) -> dict[str, Any]:
        """The report as JSON. Removed resources are counted, not listed (a run can remove thousands):
        ``write_removed`` puts their keys in a file, which ``removed_file`` names."""
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
            "sourceRejectsByCause": dict(self.source_reject_causes),
            "types": {name: asdict(summary) for name, summary in sorted(self.types.items())},
            "failures": [
                {"key": f.key, "identifier": f.identifier, "status": f.status, "message": f.message}
                for f in self.failures
            ],
            "removed": {"action": self.removed_action, "count": len(self.removed), "file": removed_file},
        }

    def write_removed(self, path: Path) -> None:
        """The keys of the removed resources, one per line."""
        path.write_text("".join(f"{key}\n" for key in self.removed), encoding="utf-8")


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
        lines.append(f"rejected source rows (not pushed): {report.source_rejects}, each logged above; by cause:")
        lines.extend(reject_summary(report.source_reject_causes))
    if report.removed:
        if report.removed_action == "deleted":
            lines.append(f"removed from the source and deleted from the server: {len(report.removed)}")
        else:
            lines.append(
                f"removed from the source, left on the server: {len(report.removed)} "
                "(--delete-removed deletes them; see docs/push.md)"
            )
    return "\n".join(lines)
