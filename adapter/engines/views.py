"""SQL on FHIR v2 ViewDefinitions: the table contract of ``export --format csv|parquet``.

The views ship as data in ``mappings/views/`` (one JSON file per table); a user
may point ``load_views`` at a folder of their own. A resource type without a view
gets ``default_view``: its id and last-updated time, as the tables always had.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adapter.errors import ConfigError
from adapter.paths import mappings_dir

View = Mapping[str, Any]
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SELECT_KEYS = {"column", "select", "forEach", "forEachOrNull", "unionAll"}
_COLUMN_KEYS = {"name", "path", "type", "collection", "description", "tag"}
# Numbers a view may declare; a decimal keeps the digits it was written with (text in CSV).
NUMBER_TYPES = {"decimal", "integer", "positiveInt", "unsignedInt", "integer64"}


def views_dir() -> Path:
    return mappings_dir() / "views"


def load_views(folder: str | Path | None = None) -> dict[str, View]:
    """Every ``*.json`` view in ``folder`` (default ``mappings/views``), checked, by view name."""
    root = Path(folder) if folder is not None else views_dir()
    found: dict[str, View] = {}
    for path in sorted(root.glob("*.json")):
        try:
            view = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}:{error.lineno}: not JSON: {error.msg}") from None
        problems = check(view)
        if problems:
            raise ConfigError(f"{path}: not a ViewDefinition we can run: {'; '.join(problems)}")
        if view["name"] in found:
            raise ConfigError(f"{path}: a second view named {view['name']!r}")
        found[view["name"]] = view
    if not found:
        raise ConfigError(f"no ViewDefinition files (*.json) in {root}")
    return found


def default_view(resource_type: str) -> View:
    """The table of a type no view covers: id and last_updated."""
    columns = [{"name": "id", "path": "getResourceKey()", "type": "id"},
               {"name": "last_updated", "path": "meta.lastUpdated", "type": "instant"}]
    return {"resourceType": "ViewDefinition", "name": resource_type, "status": "active",
            "resource": resource_type, "select": [{"column": columns}]}


def check(view: Any) -> list[str]:
    """What is wrong with a ViewDefinition's shape (the FHIRPath is checked when it compiles)."""
    if not isinstance(view, Mapping):
        return ["not a JSON object"]
    problems = []
    if view.get("resourceType") not in (None, "ViewDefinition"):
        problems.append("resourceType is not ViewDefinition")
    if not isinstance(view.get("resource"), str):
        problems.append("no resource")
    if not isinstance(view.get("name"), str) or not _NAME.match(view["name"]):
        problems.append("name must be letters, digits and _ (it names the table)")
    if not isinstance(view.get("select"), list) or not view["select"]:
        problems.append("no select")
    else:
        for select in view["select"]:
            problems += _check_select(select)
    for where in view.get("where", []):
        if not isinstance(where, Mapping) or not isinstance(where.get("path"), str):
            problems.append("a where without a path")
    return problems


def _check_select(select: Any) -> list[str]:
    if not isinstance(select, Mapping):
        return ["a select is not an object"]
    problems = [f"unknown select key {key!r}" for key in select if key not in _SELECT_KEYS]
    if "forEach" in select and "forEachOrNull" in select:
        problems.append("forEach and forEachOrNull in one select")
    if any(not isinstance(select[key], str) for key in ("forEach", "forEachOrNull") if key in select):
        problems.append("forEach/forEachOrNull must be a FHIRPath string")
    for column in select.get("column", []):
        if not isinstance(column, Mapping) or not isinstance(column.get("path"), str):
            problems.append("a column without a path")
        elif not isinstance(column.get("name"), str) or not _NAME.match(column["name"]):
            problems.append(f"column name {column.get('name')!r} must be letters, digits and _")
        else:
            problems += [f"column {column['name']}: unknown key {key!r}" for key in column if key not in _COLUMN_KEYS]
    for inner in [*select.get("select", []), *select.get("unionAll", [])]:
        problems += _check_select(inner)
    return problems


def column_names(view: View) -> list[str]:
    """The view's columns in table order: a select's columns, then its selects, then its unionAll's first branch."""
    return [column["name"] for column in columns_of(view)]


def columns_of(view: View) -> list[Mapping[str, Any]]:
    """The view's column definitions in table order."""
    found: list[Mapping[str, Any]] = []
    for select in view["select"]:
        found += _select_columns(select)
    return found


def _select_columns(select: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = list(select.get("column", []))
    for inner in select.get("select", []):
        found += _select_columns(inner)
    if select.get("unionAll"):
        found += _select_columns(select["unionAll"][0])
    return found


def views_by_type(views: Mapping[str, View], resource_types: Sequence[str]) -> list[View]:
    """The views to run for the types present: each type's own views, else its default table."""
    chosen: list[View] = []
    for resource_type in resource_types:
        own = [view for view in views.values() if view["resource"] == resource_type]
        chosen += own or [default_view(resource_type)]
    return chosen
