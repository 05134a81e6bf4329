"""SDTM conformance rules, run before writing (``check``) and offline on a written folder (``check_folder``).

Each rule has an id and cites where it comes from; ``trialfhir check-sdtm DIR`` prints
what breaks them. The rules are the ones a reviewer's first pass applies, not a full
validator (no Pinnacle 21 or CDISC CORE rule set ships with the project).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path

from adapter.export.sdtm.model import ISO_8601, Dataset, Row, Value
from adapter.export.sdtm.terms import ControlledTerms, load_ct, load_specs

RULES = {
    "REQ": "SDTMIG 3.4 section 4.1: Core Req variables are present and never null, Exp variables present",
    "SEQ": "SDTMIG 3.4 section 4.1: --SEQ is unique for each record of a subject within a domain",
    "ISO": "SDTMIG 3.4 section 4.4.1: --DTC values are ISO 8601",
    "DY": "SDTMIG 3.4 section 4.4.4: there is no study day 0",
    "KEY": "SDTMIG 3.4 section 3.2.1.1: the natural keys identify one record",
    "CT": "SDTMIG 3.4 section 4.3: coded values are in their CDISC CT codelist or declared sponsor-extended",
    "XPT": "SAS XPORT v5 (SAS TS-140) as FDA requires: names at most 8 characters, labels at most 40, "
           "character values at most 200 bytes",
    "DATASET": "SDTMIG 3.4 section 2: a dataset is a known domain with its variables",
    "DEFINE": "Define-XML 2.1: define.xml is present and valid against its schema",
}  # fmt: skip
XPT_NAME, XPT_LABEL, XPT_CHAR = 8, 40, 200


def _problem(rule: str, where: str, message: str) -> str:
    return f"[{rule}] {where}: {message}"


def check(datasets: Mapping[str, Dataset], ct: ControlledTerms | None = None) -> list[str]:
    """What breaks the rules in the datasets built; empty when all is well. ``ct`` adds the CT rule."""
    problems: list[str] = []
    for name, dataset in datasets.items():
        problems += _dataset_problems(name, dataset, ct)
    return problems


def _dataset_problems(name: str, dataset: Dataset, ct: ControlledTerms | None) -> Iterator[str]:
    spec = dataset.spec
    required = [v.name for v in spec.variables if v.core == "Req"]
    dates = [v for v in spec.names if v.endswith("DTC")]
    days = [v for v in spec.names if v.endswith("DY") and v != "VISITDY"]
    seq_name = f"{name}SEQ" if f"{name}SEQ" in spec.names and "USUBJID" in spec.names else None
    seen: dict[tuple[Value, ...], int] = {}
    seq_seen: set[tuple[Value, Value]] = set()
    for n, row in enumerate(dataset.rows, start=1):
        where = f"{name} row {n}"
        missing = [v for v in spec.names if v not in row]
        if missing:
            yield _problem("REQ", where, f"variables missing: {', '.join(missing)}")
        for variable in required:
            if row.get(variable) in (None, ""):
                yield _problem("REQ", where, f"required {variable} is empty")
        for variable in dates:
            value = row.get(variable)
            if value and not (isinstance(value, str) and ISO_8601.match(value)):
                yield _problem("ISO", where, f"{variable} {value!r} is not ISO 8601")
        for variable in days:
            if row.get(variable) == 0:
                yield _problem("DY", where, f"{variable} is 0")
        key = tuple(row.get(k) for k in spec.keys)
        if key in seen:
            shown = dict(zip(spec.keys, key, strict=True))
            yield _problem("KEY", f"{name} rows {seen[key]} and {n}", f"same key {shown}")
        seen.setdefault(key, n)
        if seq_name:
            pair = (row.get("USUBJID"), row.get(seq_name))
            if pair in seq_seen:
                yield _problem("SEQ", where, f"{seq_name} {pair[1]} repeats for {pair[0]}")
            seq_seen.add(pair)
        if ct is not None:
            yield from _ct_problems(where, row, ct)


def _ct_problems(where: str, row: Row, ct: ControlledTerms) -> Iterator[str]:
    for variable, code in ct.variables.items():
        value = row.get(variable)
        if value not in (None, "") and value not in ct.codelists[code].terms:
            yield _problem("CT", where, f"{variable} {value!r} is not in codelist {code} ({ct.codelists[code].name})")


def check_folder(folder: str | Path, package_terms: Path | None = None) -> list[str]:
    """The rules on a written SDTM folder: every ``.xpt`` read back, plus the XPT limits and define.xml;
    ``package_terms`` is the package's own terms file the export was given (its terms are sponsor-extended)."""
    import pyreadstat  # pyreadstat loads only when checking files

    root = Path(folder)
    specs, ct = load_specs(), load_ct(None, package_terms)
    problems: list[str] = []
    files = sorted(root.glob("*.xpt"))
    if not files:
        return [_problem("DATASET", str(root), "no .xpt files")]
    for path in files:
        frame, meta = pyreadstat.read_xport(str(path))
        name = str(meta.table_name or path.stem).upper()
        if name not in specs:
            problems.append(_problem("DATASET", path.name, f"{name} is not a dataset we know"))
            continue
        problems += _xpt_problems(path.name, name, meta)
        rows = [{k: _value(v) for k, v in record.items()} for record in frame.to_dict("records")]
        problems += _dataset_problems(name, Dataset(specs[name], rows), ct)
    problems += _define_problems(root)
    return problems


def _value(value: object) -> Value:
    if isinstance(value, float):
        return None if math.isnan(value) else value
    return "" if value is None else str(value)


def _xpt_problems(file: str, name: str, meta: object) -> Iterator[str]:
    if len(name) > XPT_NAME:
        yield _problem("XPT", file, f"dataset name {name} is longer than {XPT_NAME}")
    if len(str(getattr(meta, "file_label", "") or "")) > XPT_LABEL:
        yield _problem("XPT", file, f"dataset label is longer than {XPT_LABEL}")
    labels: Mapping[str, str | None] = getattr(meta, "column_names_to_labels", {})
    widths: Mapping[str, int] = getattr(meta, "variable_storage_width", {}) or {}
    for variable, label in labels.items():
        if len(variable) > XPT_NAME:
            yield _problem("XPT", file, f"variable name {variable} is longer than {XPT_NAME}")
        if len(label or "") > XPT_LABEL:
            yield _problem("XPT", file, f"label of {variable} is longer than {XPT_LABEL}")
        if widths.get(variable, 0) > XPT_CHAR:
            yield _problem("XPT", file, f"{variable} is wider than {XPT_CHAR} bytes")


def _define_problems(root: Path) -> list[str]:
    path = root / "define.xml"
    if not path.exists():
        return [_problem("DEFINE", str(root), "no define.xml")]
    from odmlib.odm_parser import ODMSchemaValidator  # the schema compiles in about 2 s: only when checking

    try:
        ODMSchemaValidator(standard="define", version="2.1").validate_file(str(path))  # type: ignore[no-untyped-call]
    except Exception as error:
        return [_problem("DEFINE", path.name, str(error).splitlines()[0][:300])]
    return []
