"""``export``: a folder of FHIR NDJSON to NDJSON, CSV or Parquet tables, or CDISC SDTM.

One entry point, ``export(folder, output, fmt)``, for the CLI, the service and the demo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from adapter.errors import ConfigError, MappingError
from adapter.export import ndjson, sdtm, tables

FORMATS = ("ndjson", "csv", "parquet", "sdtm")


@dataclass
class ExportReport:
    """What an export wrote: files with their row or resource counts, and what it left out."""

    format: str
    output: Path
    files: dict[str, int] = field(default_factory=dict)  # file name -> records
    excluded: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        result = [f"{self.output / name}: {count} records" for name, count in sorted(self.files.items())]
        result += [f"left out: {reason}: {count}" for reason, count in sorted(self.excluded.items())]
        return result


def export(folder: str | Path, output: str | Path, fmt: str, *, nct_id: str | None = None) -> ExportReport:
    """Export the NDJSON folder ``folder`` (as ``trialfhir pull`` writes it) to ``output`` in format ``fmt``."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(output)
    report = ExportReport(fmt, out)
    if fmt == "ndjson":
        report.files = _copy_ndjson(Path(folder), out)
    elif fmt in tables.FORMATS:
        report.files = {path.name: count for path, count in tables.write_tables(folder, out, fmt).values()}
    else:
        result = sdtm.build_sdtm(folder, nct_id=nct_id)
        problems = sdtm.check(result.datasets)
        if problems:
            shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            raise MappingError(shown, record_id=str(folder), element="SDTM", value=len(problems))
        study_id = next((str(r["STUDYID"]) for r in result.datasets["DM"].rows), nct_id or "")
        report.files = _write_sdtm(result, out, study_id)
        report.excluded = dict(result.excluded)
    return report


def _write_sdtm(result: sdtm.SdtmResult, out: Path, study_id: str) -> dict[str, int]:
    from adapter.export.xpt import write_sdtm  # pandas and pyreadstat load only for SDTM

    written = write_sdtm(result, out, study_id=study_id)
    counts = {}
    for name, paths in written.items():
        for path in paths:
            counts[path.name] = len(result.datasets[name].rows) if name in result.datasets else len(result.datasets)
    return counts


def _copy_ndjson(folder: Path, out: Path) -> dict[str, int]:
    """Copy every resource, checked and in the stable one-line form, into ``<Type>.ndjson`` files with a manifest."""
    source_manifest = ndjson.read_manifest(folder)
    with ndjson.NdjsonWriter(out) as writer:
        for resource_type, paths in ndjson.resource_files(folder).items():
            for path in paths:
                for resource in ndjson.read_file(path, resource_type):
                    writer.write(resource)
    ndjson.write_manifest(
        out,
        writer.counts,
        transaction_time=source_manifest.get("transactionTime") or datetime.now(UTC).isoformat(timespec="seconds"),
        request=source_manifest.get("request", f"file:{folder.resolve()}"),
        extension=source_manifest.get("extension"),
    )
    return {f"{kind}.ndjson": count for kind, count in writer.counts.items()}
