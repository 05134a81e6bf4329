"""Writing SDTM datasets: CSV, SAS XPORT version 5 (``.xpt``) and a metadata file.

The XPORT files are written by pyreadstat (ReadStat's writer). Version 5 limits
names to 8 characters, labels to 40 and character values to 200 bytes; a value
longer than that is an error, never cut silently.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
import pyreadstat

from adapter.errors import MappingError
from adapter.export.csvcell import safe_cell
from adapter.export.sdtm.model import Dataset, SdtmResult
from adapter.fhir.elements import number_text

XPT_MAX_CHAR = 200
STANDARD = "SDTMIG 3.4"


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return number_text(value) if isinstance(value, float) else str(value)


def write_csv(dataset: Dataset, path: Path, *, raw: bool = False) -> None:
    """The dataset as CSV: header of variable names, numbers as plain decimals, nulls empty.

    Text a spreadsheet would run as a formula is neutralized (``csvcell``) unless ``raw``; the XPT keeps it as is.
    """
    cell = _text if raw else (lambda value: safe_cell(_text(value)))
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(dataset.spec.names)
        for row in dataset.rows:
            writer.writerow([cell(row.get(name)) for name in dataset.spec.names])


def variable_lengths(dataset: Dataset) -> dict[str, int]:
    """Bytes of the longest value of each character variable (at least 1); 8 for numbers."""
    lengths = {}
    for variable in dataset.spec.variables:
        if variable.type == "Num":
            lengths[variable.name] = 8
            continue
        longest = max((len(_text(row.get(variable.name)).encode("utf-8")) for row in dataset.rows), default=1)
        if longest > XPT_MAX_CHAR:
            raise MappingError(
                f"longer than the {XPT_MAX_CHAR} bytes SAS XPORT v5 allows",
                record_id=dataset.spec.name,
                element=variable.name,
                value=longest,
            )
        lengths[variable.name] = max(longest, 1)
    return lengths


def write_xpt(dataset: Dataset, path: Path) -> None:
    """The dataset as SAS XPORT v5, with the dataset and variable labels."""
    spec = dataset.spec
    columns: dict[str, list[Any]] = {}
    for variable in spec.variables:
        values = [row.get(variable.name) for row in dataset.rows]
        if variable.type == "Num":
            columns[variable.name] = [float("nan") if v is None or v == "" else float(v) for v in values]
        else:
            columns[variable.name] = [_text(v) for v in values]
    frame = pd.DataFrame(columns, columns=spec.names)
    for variable in spec.variables:
        frame[variable.name] = frame[variable.name].astype("float64" if variable.type == "Num" else "object")
    pyreadstat.write_xport(
        frame,
        str(path),
        file_label=spec.label,
        column_labels={v.name: v.label for v in spec.variables},
        table_name=spec.name,
        file_format_version=5,
    )


def write_sdtm(
    result: SdtmResult, output: str | Path, *, study_id: str = "", raw_csv: bool = False
) -> dict[str, list[Path]]:
    """Write each dataset as ``<dm>.csv`` and ``<dm>.xpt`` and the metadata file; returns the files per dataset."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {}
    described = []
    for name, dataset in result.datasets.items():
        lengths = variable_lengths(dataset)
        csv_path, xpt_path = out / f"{name.lower()}.csv", out / f"{name.lower()}.xpt"
        write_csv(dataset, csv_path, raw=raw_csv)
        write_xpt(dataset, xpt_path)
        files[name] = [csv_path, xpt_path]
        described.append(_describe(dataset, lengths, csv_path.name, xpt_path.name))
    metadata = {
        "standard": STANDARD,
        "studyid": study_id,
        "datasets": described,
        "excluded": [{"reason": reason, "count": count} for reason, count in sorted(result.excluded.items())],
    }
    path = out / "metadata.json"
    path.write_text(json.dumps(metadata, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    files["metadata"] = [path]
    return files


def _describe(dataset: Dataset, lengths: Mapping[str, int], csv_name: str, xpt_name: str) -> dict[str, Any]:
    spec = dataset.spec
    return {
        "name": spec.name,
        "label": spec.label,
        "records": len(dataset.rows),
        "keys": list(spec.keys),
        "files": {"csv": csv_name, "xpt": xpt_name},
        "variables": [
            {"name": v.name, "label": v.label, "type": v.type, "length": lengths[v.name], "core": v.core}
            for v in spec.variables
        ],
    }
