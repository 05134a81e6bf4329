"""The ``ndjson`` format: every resource, checked and in the stable one-line form, with a manifest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from adapter.export.formats import ExportReport
from adapter.fhir import ndjson


def export(folder: Path, report: ExportReport, *, nct_id: str | None) -> None:
    """Copy the resources of ``folder`` into ``<Type>.ndjson`` files under ``report.output``."""
    out = report.output
    source_manifest = ndjson.read_manifest(folder)
    with ndjson.NdjsonWriter(out) as writer:
        for resource_type, paths in ndjson.resource_files(folder).items():
            report.note(resource_type)
            for path in paths:
                for resource in ndjson.read_file(path, resource_type):
                    writer.write(resource)
                    if report.progress is not None:
                        report.progress.advance()
    ndjson.write_manifest(
        out,
        writer.counts,
        transaction_time=source_manifest.get("transactionTime") or datetime.now(UTC).isoformat(timespec="seconds"),
        request=source_manifest.get("request", f"file:{folder.resolve()}"),
        extension=source_manifest.get("extension"),
    )
    report.files = {f"{kind}.ndjson": count for kind, count in writer.counts.items()}
