"""``export``: a folder of FHIR NDJSON to NDJSON, CSV or Parquet tables, or CDISC SDTM.

One entry point, ``export(folder, output, fmt)``, for the CLI, the service and the demo.
The formats themselves are in ``adapter.export.formats``, registered by name.

An export is only as complete as the pull it reads, so the folder is checked first:
a folder with no NDJSON file is an error, and one whose ``manifest.json`` records
problems (the pull's own, or errors a Bulk Data server reported), or whose counts do
not match the files, is refused unless ``allow_incomplete`` says to go on. Then the
output says so: ``export.json`` in the output folder records the source, whether it
was complete, and its problems. A folder without a manifest (not written by
``trialfhir pull``) has nothing to check against, and ``export.json`` says that too.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from adapter.errors import ConfigError, InputError
from adapter.export.formats import ENGINES, FORMATS, ExportReport, get_exporter
from adapter.fhir import ndjson
from adapter.progress import Progress

__all__ = ["ENGINES", "FORMATS", "METADATA", "ExportReport", "completeness_problems", "export"]

METADATA = "export.json"


def export(
    folder: str | Path,
    output: str | Path,
    fmt: str,
    *,
    nct_id: str | None = None,
    allow_incomplete: bool = False,
    raw_csv: bool = False,
    engine: str = "duckdb",
    spark_master: str | None = None,
    sdtm_terms: Path | None = None,
    progress: Progress | None = None,
) -> ExportReport:
    """Export the NDJSON folder ``folder`` (as ``trialfhir pull`` writes it) to ``output`` in format ``fmt``.

    CSV cells a spreadsheet would run as formulas are neutralized unless ``raw_csv`` (``adapter.export.csvcell``).
    ``engine`` computes the csv and parquet tables (``ENGINES``); the other formats ignore it. ``spark_master``:
    where engine ``spark`` runs (see ``adapter.engines.spark_engine.session``).
    ``sdtm_terms`` is a trial package's own SDTM terms file (``sdtm`` only).
    ``progress`` is told what the export is doing.
    """
    exporter = get_exporter(fmt)  # an unknown format fails before anything is read
    if sdtm_terms is not None and fmt != "sdtm":
        raise ConfigError(f"--terms is for --format sdtm, not {fmt}")
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if spark_master and engine != "spark":
        raise ConfigError(f"--spark-master is for --engine spark, not {engine}")
    source = Path(folder)
    if progress is not None:
        progress.note("checking the pull is complete")
    problems = completeness_problems(source)
    if problems and not allow_incomplete:
        raise InputError("the pull is incomplete, so an export of it would be too: " + "; ".join(problems)
                         + ". Pull again, or export it anyway with --allow-incomplete (the output then says so)",
                         source=str(source / ndjson.MANIFEST))
    report = ExportReport(fmt, Path(output), incomplete=problems, raw_csv=raw_csv, engine=engine,
                          spark_master=spark_master, sdtm_terms=sdtm_terms, progress=progress)
    exporter(source, report, nct_id=nct_id)
    _write_metadata(source, report)
    return report


def completeness_problems(folder: Path) -> list[str]:
    """Why the pulled folder is not a complete pull (empty when it is); an empty folder is an InputError."""
    files = ndjson.resource_files(folder)
    if not files:
        raise InputError("holds no FHIR NDJSON files (<Type>.ndjson); nothing to export", source=str(folder))
    manifest = ndjson.read_manifest(folder)
    if not manifest:
        return []
    problems = [str(p) for p in (manifest.get("extension") or {}).get("trialfhir", {}).get("problems") or []]
    problems += [f"the server reported errors in {e.get('url', e)}" for e in manifest.get("error") or []]
    listed = {str(o.get("type")): o.get("count") for o in manifest.get("output") or [] if isinstance(o, dict)}
    for kind in sorted(set(listed) | set(files)):
        found = sum(_lines(path) for path in files.get(kind, []))
        if kind not in listed:
            problems.append(f"{kind}: {found} resources in files the manifest does not list")
        elif listed[kind] != found:
            problems.append(f"{kind}: the manifest counts {listed[kind]}, the files hold {found}")
    return problems


def _lines(path: Path) -> int:
    # Non-blank lines, without parsing them: a malformed line is an error the export itself reports.
    with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as lines:
        return sum(1 for line in lines if line.strip())


def _write_metadata(source: Path, report: ExportReport) -> None:
    has_manifest = (source / ndjson.MANIFEST).is_file()
    metadata: dict[str, Any] = {
        "format": report.format,
        "source": str(source.resolve()),
        "complete": not report.incomplete if has_manifest else None,
        "problems": report.incomplete,
    }
    if not has_manifest:
        metadata["note"] = "the source folder has no manifest.json, so its completeness could not be checked"
    report.output.mkdir(parents=True, exist_ok=True)
    (report.output / METADATA).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
