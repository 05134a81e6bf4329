"""SDTM conformance rules we enforce before writing, and ``trialfhir check-sdtm`` runs on a folder."""

from __future__ import annotations

from collections.abc import Mapping

from adapter.export.sdtm.model import ISO_8601, Dataset, Value


def check(datasets: Mapping[str, Dataset]) -> list[str]:
    """What breaks SDTM rules we enforce: Req variables missing or null, non-ISO 8601 --DTC,
    duplicate keys, --SEQ not unique within a subject. Empty when all is well."""
    problems: list[str] = []
    for name, dataset in datasets.items():
        spec = dataset.spec
        required = [v.name for v in spec.variables if v.core == "Req"]
        dates = [v for v in spec.names if v.endswith("DTC")]
        seen: dict[tuple[Value, ...], int] = {}
        seq_seen: set[tuple[Value, Value]] = set()
        for n, row in enumerate(dataset.rows, start=1):
            missing = [v for v in spec.names if v not in row]
            if missing:
                problems.append(f"{name} row {n}: variables missing: {', '.join(missing)}")
            for variable in required:
                if row.get(variable) in (None, ""):
                    problems.append(f"{name} row {n}: required {variable} is empty")
            for variable in dates:
                value = row.get(variable)
                if value and not (isinstance(value, str) and ISO_8601.match(value)):
                    problems.append(f"{name} row {n}: {variable} {value!r} is not ISO 8601")
            key = tuple(row.get(k) for k in spec.keys)
            if key in seen:
                problems.append(f"{name} rows {seen[key]} and {n}: same key {dict(zip(spec.keys, key, strict=True))}")
            seen.setdefault(key, n)
            seq_name = f"{name}SEQ"
            if seq_name in spec.names and "USUBJID" in spec.names:
                pair = (row.get("USUBJID"), row.get(seq_name))
                if pair in seq_seen:
                    problems.append(f"{name} row {n}: {seq_name} {pair[1]} repeats for {pair[0]}")
                seq_seen.add(pair)
    return problems
