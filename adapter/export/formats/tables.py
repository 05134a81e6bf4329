"""The ``csv`` and ``parquet`` formats: one flat table per resource type."""

from __future__ import annotations

from pathlib import Path

from adapter.export import tables
from adapter.export.formats import ExportReport


def export(folder: Path, report: ExportReport, *, nct_id: str | None) -> None:
    """Write one ``report.format`` table per resource type of ``folder``."""
    written = tables.write_tables(folder, report.output, report.format, raw_csv=report.raw_csv)
    report.files = {path.name: count for path, count in written.values()}
