"""``export``: a folder of FHIR NDJSON to NDJSON, CSV or Parquet tables, or CDISC SDTM.

One entry point, ``export(folder, output, fmt)``, for the CLI, the service and the demo.
The formats themselves are in ``adapter.export.formats``, registered by name.
"""

from __future__ import annotations

from pathlib import Path

from adapter.export.formats import FORMATS, ExportReport, get_exporter

__all__ = ["FORMATS", "ExportReport", "export"]


def export(folder: str | Path, output: str | Path, fmt: str, *, nct_id: str | None = None) -> ExportReport:
    """Export the NDJSON folder ``folder`` (as ``trialfhir pull`` writes it) to ``output`` in format ``fmt``."""
    exporter = get_exporter(fmt)  # an unknown format fails before anything is read
    report = ExportReport(fmt, Path(output))
    exporter(Path(folder), report, nct_id=nct_id)
    return report
