"""The FHIRPath of SQL on FHIR views compiled to SQL: the walk shared by the DuckDB and Spark backends.

A FHIRPath value is a SQL list of JSON items (a FHIRPath collection): DuckDB's
``JSON[]``, Spark's ``ARRAY<VARIANT>``. ``Compiler`` walks the expression tree
(``adapter.engines.fhirpath``) and a view's columns once for both engines; a backend
(``duckdb_sql.DuckDBCompiler``, ``spark_sql.SparkCompiler``) supplies the few list and
JSON primitives each dialect spells its own way, and how a view's rows are joined.
In both, numbers are JSON strings of the digits they were written with (each
backend quotes them before parsing), so a decimal leaves as written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapter.engines import fhirpath
from adapter.engines.fhirpath import Node
from adapter.engines.views import NUMBER_TYPES, View, columns_of, load_views, views_by_type
from adapter.errors import ConfigError, InputError
from adapter.fhir.ndjson import read_file, resource_files

TABLE_FORMATS = ("csv", "parquet")
# Messages our SQL raises on purpose; they name no values, so they may be shown.
OWN_ERRORS = ("several values where", "a resource of another type", "where path gave", "FHIRPath:")


def quote(text: str) -> str:
    """A SQL string literal (DuckDB and Spark both double a quote inside one)."""
    return "'" + text.replace("'", "''") + "'"


@dataclass
class Focus:
    """Where a FHIRPath expression starts: the resource itself (``root``), one JSON item, or a collection."""

    sql: str
    single: bool = False
    root: bool = False


@dataclass
class Compiler:
    """Compiles the FHIRPath of one view; the backend methods at the end are the dialect."""

    view: View
    constants: dict[str, str] = field(default_factory=dict)
    counter: int = 0

    def __post_init__(self) -> None:
        for constant in self.view.get("constant", []):
            values = [(k, v) for k, v in constant.items() if k.startswith("value")]
            if not isinstance(constant.get("name"), str) or len(values) != 1:
                raise ConfigError(f"view {self.view.get('name')}: a constant needs a name and one value[x]")
            key, value = values[0]
            if isinstance(value, bool):
                self.constants[constant["name"]] = self.boolean_literal(str(value).lower())
            elif isinstance(value, int | float | str):
                self.constants[constant["name"]] = self.literal(value if isinstance(value, str) else json.dumps(value))
            else:
                raise ConfigError(f"constant {key}: only primitive values are supported")

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def let(self, value: str, body: Callable[[str], str]) -> str:
        """``body`` over ``value`` computed once: a nested expression read twice would double the SQL at every
        level (DuckDB inlines its macros; the Spark backend has none)."""
        name = self.fresh("b")
        return self.only(self.transform(self.array(value), name, body(name)))

    def boolean(self, collection: str) -> str:
        return self.let(collection, self.truth)

    # -- FHIRPath -> a list of JSON items -----------------------------------------------------------
    def path(self, expression: str, focus: Focus) -> str:
        return self.compile(fhirpath.parse(expression), focus)

    def compile(self, node: Node, focus: Focus) -> str:
        kind = node.kind
        if kind == "member":
            return self.member(node.name, focus if node.base is None else Focus(self.compile(node.base, focus)))
        if kind in ("string", "number"):
            return self.literal(node.name)  # numbers are JSON strings of their digits here, as in the data
        if kind == "boolean":
            return self.boolean_literal(node.name)
        if kind == "constant":
            if node.name not in self.constants:
                raise ConfigError(f"view {self.view.get('name')}: no constant %{node.name}")
            return self.constants[node.name]
        if kind == "this":
            return self.collection(focus)
        if kind == "call":
            return self.call(node, focus)
        if kind == "index":
            position = f"TRY_CAST({self.scalar(node.args[0], focus)} AS BIGINT)"
            return self.let(position, lambda n: self.slice_at(self.base(node, focus), n))
        left, right = (self.compile(arg, focus) for arg in node.args)
        if kind == "|":
            return self.concat(left, right)
        if kind in ("and", "or"):
            return self.of(f"{self.boolean(left)} {kind.upper()} {self.boolean(right)}")
        return self.let(left, lambda a: self.let(right, lambda b: self.compare(kind, a, b)))

    def compare(self, kind: str, a: str, b: str) -> str:
        if kind in ("=", "!="):
            test = self.of(self.equal(a, b) if kind == "=" else f"NOT ({self.equal(a, b)})")
        else:  # numbers compare as numbers (they are JSON strings of digits here), other values as text
            test = self.of(f"{self.order(self.one(a, quote(kind)), self.one(b, quote(kind)))} {kind} 0")
        return f"(CASE WHEN {self.size(a)} = 0 OR {self.size(b)} = 0 THEN {self.empty()} ELSE {test} END)"

    def collection(self, focus: Focus) -> str:
        return self.array(focus.sql) if focus.single or focus.root else focus.sql

    def call(self, node: Node, focus: Focus) -> str:
        name, args = node.name, node.args
        if name == "ofType":
            kind = fhirpath.type_name(args[0])
            if node.base is not None and node.base.kind == "member":
                # A choice element: value.ofType(Quantity) is the JSON key valueQuantity.
                choice = Node("member", node.base.name + kind[0].upper() + kind[1:], node.base.base)
                return self.compile(choice, focus)
            item = self.fresh("v")
            return self.filter(self.base(node, focus), item, f"{self.text(item, 'resourceType')} = {quote(kind)}")
        base = self.base(node, focus)
        if name == "first":
            return self.slice_first(base)
        if name == "last":
            return self.slice_last(base)
        if name in ("where", "exists") and args:
            item = self.fresh("v")
            test = self.compile(args[0], Focus(item, single=True))
            kept = self.filter(base, item, f"coalesce({self.boolean(test)}, false)")
            return kept if name == "where" else self.of(f"{self.size(kept)} > 0")
        if name == "exists":
            return self.of(f"{self.size(base)} > 0")
        if name == "empty":
            return self.of(f"{self.size(base)} = 0")
        if name == "not":
            return self.of(f"NOT {self.boolean(base)}")
        if name == "count":
            return self.array(self.json_text(f"CAST({self.size(base)} AS VARCHAR)"))
        if name == "getResourceKey":
            return self.member("id", focus if node.base is None else Focus(base))
        if name == "getReferenceKey":
            kind = quote(fhirpath.type_name(args[0])) if args else "NULL"
            item = self.fresh("v")
            references = self.member("reference", Focus(base))
            keys = self.transform(references, item, self.reference_key(self.text(item), kind))
            kept = self.fresh("v")
            return self.filter(keys, kept, f"{kept} IS NOT NULL")
        if name == "join":
            separator = self.scalar(args[0], focus) if args else "''"
            item = self.fresh("v")
            text = self.join_text(self.transform(base, item, self.text(item)), separator)
            return self.array(self.json_text(text))  # the spec's tests: joining nothing gives ''
        if name == "extension":
            url = self.scalar(args[0], focus)
            item = self.fresh("v")
            extensions = self.member("extension", Focus(base) if node.base is not None else focus)
            return self.filter(extensions, item, f"{self.text(item, 'url')} = {url}")
        if name == "iif":
            test = f"coalesce({self.boolean(self.compile(args[0], focus))}, false)"
            otherwise = self.compile(args[2], focus) if len(args) == 3 else self.empty()
            return f"(CASE WHEN {test} THEN {self.compile(args[1], focus)} ELSE {otherwise} END)"
        raise ConfigError(f"FHIRPath function {name}() has no SQL translation")

    def base(self, node: Node, focus: Focus) -> str:
        return self.collection(focus) if node.base is None else self.compile(node.base, focus)

    def scalar(self, node: Node, focus: Focus) -> str:
        """A one-value argument (a separator, a URL) as SQL text."""
        return self.text(self.first_item(self.compile(node, focus)))

    def column(self, column: Mapping[str, Any], focus: Focus) -> str:
        """A view column as SQL: text, or the number or boolean its type says; a collection as a list of text."""
        values = self.path(column["path"], focus)
        if column.get("collection"):
            item = self.fresh("v")
            return self.transform(values, item, self.text(item))
        text = self.let(values, lambda c: self.text(self.one(c, quote(column["name"]))))
        kind = column.get("type")
        if kind == "boolean":
            return f"CAST({text} AS BOOLEAN)"
        if kind in NUMBER_TYPES - {"decimal"}:
            return f"CAST({text} AS BIGINT)"
        return text

    # -- the dialect: list and JSON primitives -------------------------------------------------------
    def member(self, name: str, focus: Focus) -> str:
        """The items of element ``name`` of every item of ``focus`` (arrays flattened, nulls dropped)."""
        raise NotImplementedError

    def transform(self, items: str, item: str, body: str) -> str:
        raise NotImplementedError

    def filter(self, items: str, item: str, test: str) -> str:
        raise NotImplementedError

    def array(self, value: str) -> str:
        """A list of one value."""
        raise NotImplementedError

    def only(self, items: str) -> str:
        """The single item of a list known to hold one."""
        raise NotImplementedError

    def first_item(self, items: str) -> str:
        """The first item, or NULL for an empty list."""
        raise NotImplementedError

    def empty(self) -> str:
        raise NotImplementedError

    def size(self, items: str) -> str:
        raise NotImplementedError

    def concat(self, left: str, right: str) -> str:
        raise NotImplementedError

    def slice_first(self, items: str) -> str:
        raise NotImplementedError

    def slice_last(self, items: str) -> str:
        raise NotImplementedError

    def slice_at(self, items: str, index: str) -> str:
        """The item at 0-based ``index`` as a list (empty past the end)."""
        raise NotImplementedError

    def text(self, item: str, key: str | None = None) -> str:
        """An item (or its element ``key``) as text: a string unquoted, other JSON as written."""
        raise NotImplementedError

    def json_text(self, sql_text: str) -> str:
        """A JSON string item holding the SQL text ``sql_text``."""
        raise NotImplementedError

    def literal(self, text: str) -> str:
        """A collection of one JSON string."""
        raise NotImplementedError

    def boolean_literal(self, value: str) -> str:
        """A collection of one JSON boolean (``value`` is true or false)."""
        raise NotImplementedError

    def of(self, condition: str) -> str:
        """A SQL boolean as a collection: one JSON boolean, empty for NULL."""
        raise NotImplementedError

    def truth(self, items: str) -> str:
        """A collection as one SQL boolean (FHIRPath singleton evaluation); an error for several items."""
        raise NotImplementedError

    def one(self, items: str, name: str) -> str:
        """The single item of a collection (NULL when empty); an error naming ``name`` (SQL) for several."""
        raise NotImplementedError

    def equal(self, left: str, right: str) -> str:
        """Two collections hold the same JSON items in the same order (a SQL boolean)."""
        raise NotImplementedError

    def order(self, left: str, right: str) -> str:
        """-1, 0 or 1: two items compared as numbers when both are, else as text."""
        raise NotImplementedError

    def reference_key(self, reference: str, kind: str) -> str:
        """The id of a ``Type/id`` reference (text) as a JSON item, if its type is ``kind`` (NULL: any)."""
        raise NotImplementedError

    def join_text(self, texts: str, separator: str) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class CompiledView:
    """A view as one query of a backend: its SQL, and its table's columns with the FHIR types the view declares."""

    name: str
    resource: str
    sql: str
    columns: tuple[str, ...]
    types: tuple[str | None, ...]


def column_type(view: View, name: str) -> str | None:
    """The FHIR type a view declares for its column ``name``."""
    return next((c.get("type") for c in columns_of(view) if c["name"] == name), None)


def identifier(name: str) -> str:
    """A quoted SQL identifier in DuckDB's spelling (Spark's is ``spark_sql.identifier``)."""
    return '"' + name.replace('"', '""') + '"'


def input_error(message: str, compiled: CompiledView, paths: Sequence[Path]) -> InputError:
    """The error a failed query gets: a bad input line is found again by the Python reader, which names file,
    line and field; otherwise only our own messages are shown, since an engine's may quote a value from a record."""
    for path in paths:
        for _ in read_file(path, compiled.resource):  # raises the InputError naming file, line and field
            pass
    first = next((line for line in message.splitlines() if any(own in line for own in OWN_ERRORS)), None)
    reason = first.strip() if first else "the engine failed"
    return InputError(f"view {compiled.name}: {reason}", source=str(paths[0].parent))


def plan_tables(
    folder: str | Path, output: str | Path, fmt: str, views_folder: str | Path | None
) -> tuple[dict[str, list[Path]], list[View], Path]:
    """What every backend's ``write_tables`` starts with: the format checked, the NDJSON files by type, the views
    to run for the types present, and the output folder made."""
    if fmt not in TABLE_FORMATS:
        raise ConfigError(f"unknown table format {fmt!r}; use one of {', '.join(TABLE_FORMATS)}")
    files = resource_files(folder)
    views = views_by_type(load_views(views_folder), list(files))
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    return files, views, out
