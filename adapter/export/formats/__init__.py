"""The export formats by name: ``get_exporter(name)`` finds the function that writes one.

Adding a format is one module in this folder with an ``export`` function of the
``Exporter`` shape and one line in ``REGISTRY``. A module loads on first use, so
naming the formats (the CLI's ``--format`` choices, the service's JSON Schema)
loads neither pyarrow nor the SDTM tables.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from adapter.errors import ConfigError
from adapter.progress import Progress

# Format name -> the module of this package that writes it; one module may write several formats.
REGISTRY: dict[str, str] = {
    "ndjson": "ndjson",
    "csv": "tables",
    "parquet": "tables",
    "sdtm": "sdtm",
}
FORMATS = tuple(REGISTRY)
# What computes the csv and parquet tables: the SQL on FHIR views on DuckDB or on Apache Spark
# (adapter/engines), or the Python writer (adapter/export/tables.py), the one-process baseline the views were
# checked against.
ENGINES = ("duckdb", "spark", "python")


@dataclass
class ExportReport:
    """What an export wrote: files with their row or resource counts, and what it left out."""

    format: str
    output: Path
    files: dict[str, int] = field(default_factory=dict)  # file name -> records
    excluded: dict[str, int] = field(default_factory=dict)
    engine: str = "duckdb"
    # Why the source pull is incomplete, when the export was allowed to go on anyway (--allow-incomplete).
    incomplete: list[str] = field(default_factory=list)
    # Asked for: CSV cells exactly as they are, formulas not neutralized (--raw-csv; see export/csvcell.py).
    raw_csv: bool = False
    # The Spark master for engine "spark" (None: $SPARK_MASTER, spark-submit's, or local[2]).
    spark_master: str | None = None
    # Asked for: a trial package's own SDTM terms file, beside mappings/sdtm-terms.yaml (--terms; sdtm only).
    sdtm_terms: Path | None = None
    # Told what the export is doing (and, where it streams, of each resource); None shows nothing.
    progress: Progress | None = field(default=None, repr=False)

    def note(self, text: str) -> None:
        if self.progress is not None:
            self.progress.note(text)

    def as_json(self) -> dict[str, Any]:
        return {"format": self.format, "output": str(self.output), "engine": self.engine,
                "files": dict(sorted(self.files.items())), "excluded": dict(sorted(self.excluded.items())),
                "complete": not self.incomplete, "incomplete": list(self.incomplete)}

    def lines(self) -> list[str]:
        result = [f"{self.output / name}: {count} records" for name, count in sorted(self.files.items())]
        result += [f"left out: {reason}: {count}" for reason, count in sorted(self.excluded.items())]
        result += [f"INCOMPLETE source: {problem}" for problem in self.incomplete]
        return result


class Exporter(Protocol):
    """Writes the NDJSON folder ``folder`` to ``report.output`` in ``report.format``, filling the report."""

    def __call__(self, folder: Path, report: ExportReport, *, nct_id: str | None) -> None: ...


def get_exporter(name: str) -> Exporter:
    """The exporter registered as ``name``; a ``ConfigError`` naming the known formats otherwise."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown export format {name!r}; use one of {', '.join(FORMATS)}")
    module = importlib.import_module(f"{__name__}.{REGISTRY[name]}")
    exporter: Exporter = module.export
    return exporter
