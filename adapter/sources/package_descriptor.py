"""The descriptor of a trial package: ``package.yaml`` read into a ``Package``.

``load_package`` checks the descriptor against its JSON Schema
(``schemas/trial-package.schema.json``), reads the study's arm labels (from its
ClinicalTrials.gov record, through ``adapter.sources.ctgov``, or as listed), its
sites and visits, and loads the code tables the row readers look codes up in.
The format is documented in ``docs/trial-package.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapter.errors import ConfigError, InputError
from adapter.paths import mappings_dir
from adapter.records import Study, Visit
from adapter.sources.codetables import KINDS, CodeTables, load_code_tables
from adapter.sources.loader import json_path, load_yaml, schema_problem

DESCRIPTOR = "package.yaml"
SUBJECTS, MEASUREMENTS, ADMINISTRATIONS = "subjects.csv", "measurements.csv", "administrations.csv"
CSV_SCHEMAS = {
    SUBJECTS: "trial-package-subjects.schema.json",
    MEASUREMENTS: "trial-package-measurements.schema.json",
    ADMINISTRATIONS: "trial-package-administrations.schema.json",
}


@dataclass(frozen=True)
class Site:
    """A study site of the package; ``zone`` reads local times that carry no offset."""

    id: str
    name: str
    zone: ZoneInfo | None


@dataclass(frozen=True)
class Dialect:
    """How the package's CSV files are written (package.yaml ``csv``); the defaults are the strict format.

    ``rename`` maps a column name as written (case-folded when ``header_case`` is ``any``)
    to the package column; ``ignore`` lists columns not read (same folding).
    """

    delimiter: str = ","
    decimal: str = "."
    date_format: str | None = None
    datetime_format: str | None = None
    header_case: str = "exact"
    rename: Mapping[str, str] = field(default_factory=dict)
    ignore: frozenset[str] = frozenset()

    def key(self, name: str) -> str:
        """A column name as compared: folded to lower case when the header's case does not matter."""
        return name.casefold() if self.header_case == "any" else name


@dataclass(frozen=True)
class Package:
    """A loaded package descriptor with everything the row readers need."""

    root: Path
    nct_id: str
    arms: tuple[str, ...]
    local_system: str
    sites: Mapping[str, Site]
    visits: Mapping[str, Visit]
    tables: CodeTables
    # The study's ClinicalTrials.gov record when package.yaml names one (push maps it too).
    record: Study | None = None
    dialect: Dialect = Dialect()
    # Per visit code: the days before and after its planned day that still count as the visit.
    windows: Mapping[str, tuple[int, int]] = field(default_factory=lambda: MappingProxyType({}))

    def csv_path(self, name: str) -> Path:
        return self.root / name


@cache
def schema(name: str) -> dict[str, Any]:
    """One of the package JSON Schemas shipped in ``adapter/sources/schemas``."""
    text = resources.files("adapter.sources").joinpath("schemas", name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def load_package(path: str | Path) -> Package:
    """Read ``package.yaml`` in the folder ``path``, the study's arms and the code tables."""
    root = Path(path)
    descriptor = root / DESCRIPTOR
    if not root.is_dir():
        raise InputError("not a folder; a trial package is a folder holding package.yaml", source=str(root))
    if not descriptor.is_file():
        raise InputError("missing; a trial package folder needs a package.yaml", source=str(descriptor))
    try:
        data = load_yaml(descriptor)
    except ConfigError as error:
        raise InputError(str(error), source=str(descriptor)) from error
    if problem := schema_problem(data, schema("trial-package.schema.json")):
        parts, message = problem
        raise InputError(message, source=str(descriptor), field=json_path(parts) if parts else None)

    study = data["study"]
    nct_id = study["nct_id"]
    if ("record" in study) == ("arms" in study):
        raise InputError("give either record (the study's ClinicalTrials.gov record) or arms (its arm labels), "
                         "exactly one of them", source=str(descriptor), field="study")
    record = _record(root, study["record"], nct_id, descriptor) if "record" in study else None
    arms = tuple(study["arms"]) if record is None else record.arm_labels()

    sites: dict[str, Site] = {}
    for index, site in enumerate(data["sites"]):
        if site["id"] in sites:
            raise InputError(f"site id {site['id']!r} is listed twice", source=str(descriptor), field=f"sites/{index}")
        sites[site["id"]] = Site(site["id"], site["name"], _zone(site.get("time_zone"), descriptor, index))
    visits: dict[str, Visit] = {}
    windows: dict[str, tuple[int, int]] = {}
    for index, visit in enumerate(data["visits"]):
        if visit["code"] in visits:
            raise InputError(f"visit {visit['code']!r} is listed twice",
                             source=str(descriptor), field=f"visits/{index}")
        low, high = visit.get("window", (0, 0))
        if not low <= 0 <= high:
            raise InputError("window is [days before, days after] the planned day: the first <= 0 <= the second",
                             source=str(descriptor), field=f"visits/{index}/window")
        visits[visit["code"]] = Visit(visit["code"], visit["name"], visit.get("day"))
        windows[visit["code"]] = (low, high)

    try:
        tables = load_code_tables(*_mapping_paths(root, data.get("mappings", {})))
    except ConfigError as error:  # a package's own mapping file is input the user gave us
        raise InputError(str(error), source=str(descriptor), field="mappings") from error
    return Package(
        root=root,
        nct_id=nct_id,
        arms=arms,
        local_system=data["local_code_system"],
        sites=MappingProxyType(sites),
        visits=MappingProxyType(visits),
        tables=tables,
        record=record,
        dialect=_dialect(data.get("csv", {}), descriptor),
        windows=MappingProxyType(windows),
    )


def _record(root: Path, record: str, nct_id: str, descriptor: Path) -> Study:
    # The one ClinicalTrials.gov reader is the study engineer's; imported here so a
    # package that lists its arms never needs it.
    from adapter.sources.ctgov import read_study

    study = read_study(root / record)
    if study.nct_id != nct_id:
        raise InputError(
            f"study/nct_id is {nct_id} but {record} is the record of {study.nct_id}",
            source=str(descriptor),
            field="study/record",
        )
    if not study.arm_labels():
        raise InputError(f"{record} lists no arms; list them in study/arms instead", source=str(descriptor))
    return study


def _dialect(declared: Mapping[str, Any], descriptor: Path) -> Dialect:
    dialect = Dialect(
        delimiter=declared.get("delimiter", ","),
        decimal=declared.get("decimal", "."),
        date_format=declared.get("date_format"),
        datetime_format=declared.get("datetime_format"),
        header_case=declared.get("header_case", "exact"),
    )
    if dialect.decimal == dialect.delimiter:
        raise InputError("the decimal mark cannot be the delimiter too (use delimiter ';' with decimal ',')",
                         source=str(descriptor), field="csv/decimal")
    rename = {dialect.key(name): column for name, column in declared.get("rename", {}).items()}
    ignore = frozenset(dialect.key(name) for name in declared.get("ignore", ()))
    return replace(dialect, rename=MappingProxyType(rename), ignore=ignore)


def _zone(name: str | None, descriptor: Path, index: int) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InputError(f"unknown time zone {name!r} (use an IANA name such as Asia/Jakarta)",
                         source=str(descriptor), field=f"sites/{index}/time_zone") from error


def _mapping_paths(root: Path, chosen: Mapping[str, str]) -> tuple[dict[str, Path], dict[str, Path]]:
    """The project's file of each kind, and the package's own files (``./name``) whose entries add to it."""
    paths, own = {}, {}
    for kind in KINDS:
        name = chosen.get(kind, f"{kind}.yaml")
        if name.startswith("./"):
            own[kind] = root / name
        else:
            paths[kind] = mappings_dir() / name
    return paths, own
