"""The ``csv`` and ``parquet`` formats: one flat table per resource type (per view of ``mappings/views``)."""

from __future__ import annotations

from pathlib import Path

from adapter.export.formats import ExportReport


def export(folder: Path, report: ExportReport, *, nct_id: str | None) -> None:
    """Write one ``report.format`` table per resource type of ``folder``, computed by the report's engine."""
    report.note(f"computing the {report.format} tables ({report.engine})")
    if report.engine == "spark":
        from adapter.engines import spark_engine

        written = spark_engine.write_tables(folder, report.output, report.format, raw_csv=report.raw_csv,
                                            master=report.spark_master)
    else:
        if report.engine == "python":
            from adapter.export.tables import write_tables
        else:
            from adapter.engines.duckdb_engine import write_tables
        written = write_tables(folder, report.output, report.format, raw_csv=report.raw_csv)
    report.files = {path.name: count for path, count in written.values()}
