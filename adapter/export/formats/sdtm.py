"""The ``sdtm`` format: CDISC SDTM datasets (design, special purpose, interventions, findings) as SAS XPORT files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from adapter.errors import MappingError
from adapter.export.formats import ExportReport
from adapter.export.sdtm.build import build_sdtm
from adapter.export.sdtm.check import check
from adapter.export.sdtm.model import SdtmResult
from adapter.export.sdtm.terms import load_ct


def export(folder: Path, report: ExportReport, *, nct_id: str | None) -> None:
    """Build the SDTM datasets of ``folder``, check them, and write them; nothing is written when a check fails."""
    report.note("reading the resources into SDTM datasets")
    result = build_sdtm(folder, nct_id=nct_id, package_terms=report.sdtm_terms)
    report.note("checking the datasets")
    problems = check(result.datasets)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise MappingError(shown, record_id=str(folder), element="SDTM", value=len(problems))
    study_id = next((str(r["STUDYID"]) for r in result.datasets["DM"].rows), nct_id or "")
    for name in [name for name, dataset in result.datasets.items() if not dataset.rows]:
        # A submission leaves out datasets without records (TI for a record without criteria, SUPP-- unneeded).
        del result.datasets[name]
        result.excluded[f"dataset {name}: no records, not written"] += 1
    report.note("writing XPT, CSV and define.xml")
    report.files = _write(result, report.output, study_id, report.raw_csv, report.sdtm_terms)
    report.excluded = dict(result.excluded)


def _write(result: SdtmResult, out: Path, study_id: str, raw_csv: bool, terms: Path | None) -> dict[str, int]:
    # pandas, pyreadstat and odmlib load only when writing
    from adapter.export.sdtm.define import build_define, write_define
    from adapter.export.sdtm.xpt import variable_lengths, write_sdtm

    written = write_sdtm(result, out, study_id=study_id, raw_csv=raw_csv)
    lengths = {name: variable_lengths(dataset) for name, dataset in result.datasets.items()}
    created = datetime.now(UTC).isoformat(timespec="seconds")
    document = build_define(result, lengths, load_ct(None, terms), study_id=study_id, created=created)
    written["define"] = [write_define(document, out)]
    counts = {}
    for name, paths in written.items():
        for path in paths:
            counts[path.name] = len(result.datasets[name].rows) if name in result.datasets else len(result.datasets)
    return counts
