"""The SDTM datasets of a study's FHIR NDJSON folder, sorted by their keys with --SEQ assigned.

Codes come from ``mappings/sdtm-terms.yaml``; variable names, labels, types and Core
from ``mappings/sdtm-datasets.yaml``. --SEQ numbers each subject's records from 1 in
dataset sort order (the keys in sdtm-datasets.yaml).

Memory grows with the datasets (the SAS XPORT writer takes whole tables); the
subject index is the only join kept while reading observations.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from adapter.export.sdtm.design import trial_design
from adapter.export.sdtm.findings import findings
from adapter.export.sdtm.interventions import interventions
from adapter.export.sdtm.model import Dataset, SdtmResult, Value
from adapter.export.sdtm.special import demographics, disposition, elements_and_visits, read_consents
from adapter.export.sdtm.study import find_study, read_subjects
from adapter.export.sdtm.terms import load_ct, load_specs, load_terms


def build_sdtm(
    folder: str | Path, *, nct_id: str | None = None, mappings: Path | None = None, package_terms: Path | None = None,
) -> SdtmResult:
    """The SDTM datasets for the study in an NDJSON folder, sorted and with --SEQ assigned; ``package_terms`` is a
    package's own sdtm-terms.yaml (tests and units the project's file lacks or that the package codes otherwise)."""
    root = Path(folder)
    specs, terms = load_specs(mappings), load_terms(mappings, package_terms)
    study = find_study(root, nct_id)
    subjects = read_subjects(root, study)
    result = SdtmResult({name: Dataset(spec, []) for name, spec in specs.items()})
    interventions(root, subjects, study, terms, result)
    findings(root, subjects, study, terms, result)
    read_consents(root, subjects)
    demographics(subjects, study, terms, result)
    elements_and_visits(subjects, study, result)
    disposition(subjects, study, result)
    # ACTSUB counts the subjects who entered the trial: screen failures are not among them.
    entered = sum(1 for row in result.datasets["DM"].rows if row["ARMNRS"] != "SCREEN FAILURE")
    trial_design(root, study, entered, terms, load_ct(mappings, package_terms), result)
    for dataset in result.datasets.values():
        for row in dataset.rows:
            for name in dataset.spec.names:
                row.setdefault(name, None)
        _sequence(dataset)
    return result


def _sequence(dataset: Dataset) -> None:
    """Sort by the dataset's keys and number --SEQ from 1 within each subject."""
    keys = dataset.spec.keys
    dataset.rows.sort(key=lambda row: tuple(_sort_value(row.get(k)) for k in keys))
    seq_name = f"{dataset.spec.name}SEQ"
    if seq_name not in dataset.spec.names or "USUBJID" not in dataset.spec.names:
        return  # trial design datasets number their own rows (TSSEQ within a parameter)
    counts: Counter[str] = Counter()
    for row in dataset.rows:
        counts[str(row["USUBJID"])] += 1
        row[seq_name] = float(counts[str(row["USUBJID"])])


def _sort_value(value: Value) -> tuple[int, float, str]:
    if value is None or value == "":
        return (0, 0.0, "")
    if isinstance(value, float):
        return (1, value, "")
    return (2, 0.0, value)
