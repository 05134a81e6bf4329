"""ViewDefinitions compiled to DuckDB SQL over NDJSON files.

Every FHIRPath value is a DuckDB ``JSON[]`` (a FHIRPath collection). Each NDJSON
line is read as text and its JSON numbers (the values of object keys) are turned
into JSON strings of the same characters before anything parses it (``MACROS``:
``fp_numbers_as_text``),
because DuckDB's JSON parser reads numbers into doubles and writes ``2.40`` back
as ``2.4``; so a decimal leaves with the digits it was reported with, and dates
are never guessed into timestamps (every column is text unless the view types it).
The resource is parsed once into its top-level elements (``json_transform``), and
each column parses only the small elements it walks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapter.engines import fhirpath
from adapter.engines.fhirpath import Node
from adapter.engines.views import NUMBER_TYPES, View, columns_of
from adapter.errors import ConfigError

# Run once per connection. fp_numbers_as_text quotes the number after each "key": (whitespace allowed). It
# cannot match inside a string: there every quote is escaped (\"), so a quote followed by a colon ends a key.
# Numbers inside arrays stay numbers (FHIR R4 has no arrays of decimals). JSON values DuckDB hands back are
# minified, so their first character tells an array or null without parsing them again (fp_items).
MACROS = r"""
CREATE OR REPLACE MACRO fp_numbers_as_text(t) AS
    regexp_replace(t, '("[A-Za-z0-9_]+"\s*:\s*)(-?[0-9][0-9.eE+-]*)', '\1"\2"', 'g');
CREATE OR REPLACE MACRO fp_items(j) AS CASE
    WHEN j IS NULL OR j::VARCHAR = 'null' THEN []::JSON[]
    WHEN starts_with(j::VARCHAR, '[') THEN CAST(j AS JSON[])
    ELSE [j] END;
CREATE OR REPLACE MACRO fp_of(b) AS list_transform(list_filter([b], lambda x: x IS NOT NULL), lambda x: to_json(x));
CREATE OR REPLACE MACRO fp_bool(c) AS CASE
    WHEN len(c) = 0 THEN NULL
    WHEN len(c) > 1 THEN error('FHIRPath: a collection of several items where one boolean is needed')
    WHEN json_type(c[1]) = 'BOOLEAN' THEN (c[1] ->> '$') = 'true'
    ELSE true END;
CREATE OR REPLACE MACRO fp_where(c) AS CASE
    WHEN len(c) = 0 THEN false
    WHEN len(c) = 1 AND json_type(c[1]) = 'BOOLEAN' THEN (c[1] ->> '$') = 'true'
    ELSE error('a view''s where path gave something else than one boolean') END;
CREATE OR REPLACE MACRO fp_one(c, name) AS CASE
    WHEN len(c) > 1 THEN error('column ' || name || ': several values where the view expects one')
    ELSE c[1] END;
CREATE OR REPLACE MACRO fp_compare(a, b) AS CASE
    WHEN TRY_CAST(a ->> '$' AS DOUBLE) IS NOT NULL AND TRY_CAST(b ->> '$' AS DOUBLE) IS NOT NULL
    THEN sign(CAST(a ->> '$' AS DOUBLE) - CAST(b ->> '$' AS DOUBLE))
    ELSE CASE WHEN (a ->> '$') < (b ->> '$') THEN -1 WHEN (a ->> '$') > (b ->> '$') THEN 1 ELSE 0 END END;
CREATE OR REPLACE MACRO fp_reference_key(ref, kind) AS CASE
    WHEN regexp_matches(regexp_replace(ref, '/_history(/.*)?$', ''), '([^/]+)/([^/]+)$')
     AND (kind IS NULL OR regexp_extract(regexp_replace(ref, '/_history(/.*)?$', ''), '([^/]+)/([^/]+)$', 1) = kind)
    THEN to_json(regexp_extract(regexp_replace(ref, '/_history(/.*)?$', ''), '([^/]+)/([^/]+)$', 2)) END;
CREATE OR REPLACE MACRO fp_check_type(actual, expected) AS CASE
    WHEN actual = expected THEN true ELSE error('a resource of another type than ' || expected) END;
"""
_EMPTY = "[]::JSON[]"


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _json_literal(text: str) -> str:
    return f"[to_json({quote(text)}::VARCHAR)]"


@dataclass
class _Focus:
    """Where a FHIRPath expression starts: the resource itself (``root``), one JSON item, or a collection."""

    sql: str
    single: bool = False
    root: bool = False


@dataclass
class Compiler:
    """Compiles one view; ``fields`` collects the top-level elements its paths read from the resource."""

    view: View
    constants: dict[str, str] = field(default_factory=dict)
    fields: set[str] = field(default_factory=set)
    counter: int = 0

    def __post_init__(self) -> None:
        for constant in self.view.get("constant", []):
            values = [(k, v) for k, v in constant.items() if k.startswith("value")]
            if not isinstance(constant.get("name"), str) or len(values) != 1:
                raise ConfigError(f"view {self.view.get('name')}: a constant needs a name and one value[x]")
            self.constants[constant["name"]] = _constant_sql(*values[0])

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def let(self, value: str, body: Callable[[str], str]) -> str:
        """``body`` over ``value`` computed once: DuckDB macros are inlined, so a macro that reads its argument
        twice given a nested expression would double the SQL at every level."""
        name = self.fresh("b")
        return f"(list_transform([{value}], lambda {name}: {body(name)})[1])"

    def boolean(self, collection: str) -> str:
        return self.let(collection, lambda c: f"fp_bool({c})")

    # -- FHIRPath -> JSON[] -------------------------------------------------------------------------
    def path(self, expression: str, focus: _Focus) -> str:
        return self.compile(fhirpath.parse(expression), focus)

    def compile(self, node: Node, focus: _Focus) -> str:
        kind = node.kind
        if kind == "member":
            return self.member(node.name, focus if node.base is None else _Focus(self.compile(node.base, focus)))
        if kind == "string":
            return _json_literal(node.name)
        if kind == "number":
            return _json_literal(node.name)  # numbers are JSON strings of their digits here, as in the data
        if kind == "boolean":
            return f"['{node.name}'::JSON]"
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
            return self.let(position, lambda n: f"list_slice({self.base(node, focus)}, {n} + 1, {n} + 1)")
        left, right = (self.compile(arg, focus) for arg in node.args)
        if kind == "|":
            return f"list_concat({left}, {right})"
        if kind in ("and", "or"):
            return f"fp_of({self.boolean(left)} {kind.upper()} {self.boolean(right)})"
        return self.let(left, lambda a: self.let(right, lambda b: self.compare(kind, a, b)))

    def compare(self, kind: str, a: str, b: str) -> str:
        if kind in ("=", "!="):
            test = f"fp_of({a} {'=' if kind == '=' else '<>'} {b})"
        else:  # numbers compare as numbers (they are JSON strings of digits here), other values as text
            test = f"fp_of(fp_compare(fp_one({a}, '{kind}'), fp_one({b}, '{kind}')) {kind} 0)"
        return f"(CASE WHEN len({a}) = 0 OR len({b}) = 0 THEN {_EMPTY} ELSE {test} END)"

    def collection(self, focus: _Focus) -> str:
        if focus.root:
            return "[src.r]"
        return f"[{focus.sql}]" if focus.single else focus.sql

    def member(self, name: str, focus: _Focus) -> str:
        key = quote("$." + json.dumps(name))
        if focus.root:
            self.fields.add(name)
            return f"fp_items(src.t.{_identifier(name)})"
        if focus.single:
            return f"fp_items(json_extract({focus.sql}, {key}))"
        item = self.fresh("v")
        return f"flatten(list_transform({focus.sql}, lambda {item}: fp_items(json_extract({item}, {key}))))"

    def each(self, base: str, body: str, item: str) -> str:
        return f"list_transform({base}, lambda {item}: {body})"

    def call(self, node: Node, focus: _Focus) -> str:
        name, args = node.name, node.args
        if name == "ofType":
            kind = fhirpath.type_name(args[0])
            if node.base is not None and node.base.kind == "member":
                # A choice element: value.ofType(Quantity) is the JSON key valueQuantity.
                choice = Node("member", node.base.name + kind[0].upper() + kind[1:], node.base.base)
                return self.compile(choice, focus)
            base = self.base(node, focus)
            item = self.fresh("v")
            return f"list_filter({base}, lambda {item}: ({item} ->> '$.resourceType') = {quote(kind)})"
        base = self.base(node, focus)
        if name == "first":
            return f"list_slice({base}, 1, 1)"
        if name == "last":
            return f"list_slice({base}, -1, -1)"
        if name in ("where", "exists") and args:
            item = self.fresh("v")
            test = self.compile(args[0], _Focus(item, single=True))
            kept = f"list_filter({base}, lambda {item}: coalesce({self.boolean(test)}, false))"
            return kept if name == "where" else f"fp_of(len({kept}) > 0)"
        if name == "exists":
            return f"fp_of(len({base}) > 0)"
        if name == "empty":
            return f"fp_of(len({base}) = 0)"
        if name == "not":
            return f"fp_of(NOT {self.boolean(base)})"
        if name == "count":
            return f"[to_json(len({base})::VARCHAR)]"
        if name == "getResourceKey":
            return self.member("id", focus if node.base is None else _Focus(base))
        if name == "getReferenceKey":
            kind = quote(fhirpath.type_name(args[0])) if args else "NULL"
            item = self.fresh("v")
            references = self.member("reference", _Focus(base))
            keys = f"list_transform({references}, lambda {item}: fp_reference_key({item} ->> '$', {kind}))"
            return f"list_filter({keys}, lambda {item}: {item} IS NOT NULL)"
        if name == "join":
            separator = self.scalar(args[0], focus) if args else "''"
            item = self.fresh("v")
            text = f"array_to_string(list_transform({base}, lambda {item}: {item} ->> '$'), {separator})"
            return f"[to_json({text})]"  # the spec's tests: joining nothing gives ''
        if name == "extension":
            url = self.scalar(args[0], focus)
            item = self.fresh("v")
            extensions = self.member("extension", _Focus(base) if node.base is not None else focus)
            return f"list_filter({extensions}, lambda {item}: ({item} ->> '$.url') = {url})"
        if name == "iif":
            test = f"coalesce({self.boolean(self.compile(args[0], focus))}, false)"
            otherwise = self.compile(args[2], focus) if len(args) == 3 else _EMPTY
            return f"(CASE WHEN {test} THEN {self.compile(args[1], focus)} ELSE {otherwise} END)"
        raise ConfigError(f"FHIRPath function {name}() has no DuckDB translation")

    def base(self, node: Node, focus: _Focus) -> str:
        return self.collection(focus) if node.base is None else self.compile(node.base, focus)

    def scalar(self, node: Node, focus: _Focus) -> str:
        """A one-value argument (a separator, a URL) as SQL text."""
        return f"(({self.compile(node, focus)})[1] ->> '$')"

    # -- the view -> SELECT ---------------------------------------------------------------------------
    def select(self, select: Mapping[str, Any], focus: _Focus) -> tuple[list[tuple[str, str]], list[str]]:
        """The (name, SQL) columns and the lateral joins of one select, in the view's column order."""
        joins: list[str] = []
        each = select.get("forEach", select.get("forEachOrNull"))
        if each is not None:
            items = self.path(each, focus)
            if "forEachOrNull" in select:
                items = self.let(items, lambda c: f"(CASE WHEN len({c}) = 0 THEN [NULL::JSON] ELSE {c} END)")
            alias = self.fresh("f")
            joins.append(f"CROSS JOIN LATERAL (SELECT unnest({items}) AS it) AS {alias}")
            focus = _Focus(f"{alias}.it", single=True)
        columns = [(c["name"], self.column(c, focus)) for c in select.get("column", [])]
        for inner in select.get("select", []):
            inner_columns, inner_joins = self.select(inner, focus)
            columns += inner_columns
            joins += inner_joins
        if select.get("unionAll"):
            alias = self.fresh("u")
            branches = []
            names: list[str] | None = None
            for branch in select["unionAll"]:
                branch_columns, branch_joins = self.select(branch, focus)
                if names is not None and [n for n, _ in branch_columns] != names:
                    raise ConfigError(f"view {self.view.get('name')}: unionAll branches with different columns")
                names = [n for n, _ in branch_columns]
                listed = ", ".join(f"{sql} AS {_identifier(n)}" for n, sql in branch_columns)
                branches.append(f"SELECT {listed} FROM (SELECT 1) AS one {' '.join(branch_joins)}")  # noqa: S608
            joins.append(f"CROSS JOIN LATERAL ({' UNION ALL '.join(branches)}) AS {alias}")
            columns += [(n, f"{alias}.{_identifier(n)}") for n in names or []]
        return columns, joins

    def column(self, column: Mapping[str, Any], focus: _Focus) -> str:
        values = self.path(column["path"], focus)
        if column.get("collection"):
            item = self.fresh("v")
            return f"list_transform({values}, lambda {item}: {item} ->> '$')"
        text = self.let(values, lambda c: f"(fp_one({c}, {quote(column['name'])}) ->> '$')")
        kind = column.get("type")
        if kind == "boolean":
            return f"CAST({text} AS BOOLEAN)"
        if kind in NUMBER_TYPES - {"decimal"}:
            return f"CAST({text} AS BIGINT)"
        return text


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _constant_sql(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"['{str(value).lower()}'::JSON]"
    if isinstance(value, int | float):
        return _json_literal(json.dumps(value))
    if isinstance(value, str):
        return _json_literal(value)
    raise ConfigError(f"constant {key}: only primitive values are supported")


@dataclass(frozen=True)
class CompiledView:
    """A view as one DuckDB query over the relation ``source`` (one row per resource, column ``json``)."""

    name: str
    resource: str
    sql: str
    columns: tuple[str, ...]
    types: tuple[str | None, ...]


def compile_view(view: View, source: str) -> CompiledView:
    """The SQL of ``view`` reading resources (raw NDJSON lines, column ``json``) from the relation ``source``."""
    compiler = Compiler(view)
    root = _Focus("src.r", root=True)
    columns: list[tuple[str, str]] = []
    joins: list[str] = []
    for select in view["select"]:
        found, more = compiler.select(select, root)
        columns += found
        joins += more
    names = [name for name, _ in columns]
    if len(set(names)) != len(names):
        raise ConfigError(f"view {view['name']}: two columns with one name")
    conditions = [f"fp_check_type(src.t.\"resourceType\", {quote(view['resource'])})"]
    for where in view.get("where", []):
        conditions.append(compiler.let(compiler.path(where["path"], root), lambda c: f"fp_where({c})"))
    compiler.fields.add("resourceType")
    top = {name: "VARCHAR" if name == "resourceType" else "JSON" for name in sorted(compiler.fields)}
    shape = quote(json.dumps(top))
    listed = ",\n  ".join(f"{sql} AS {_identifier(name)}" for name, sql in columns)
    # Views are configuration files, and every literal in them goes through quote(): no value from a record.
    sql = (
        f"WITH src AS (SELECT r, json_transform(r, {shape}) AS t\n"  # noqa: S608
        f"  FROM (SELECT fp_numbers_as_text(json::VARCHAR)::JSON AS r FROM {source}))\n"
        f"SELECT\n  {listed}\nFROM src {' '.join(joins)}\nWHERE {' AND '.join(conditions)}"
    )
    types = tuple(_column_type(view, name) for name in names)
    return CompiledView(view["name"], view["resource"], sql, tuple(names), types)


def _column_type(view: View, name: str) -> str | None:
    return next((c.get("type") for c in columns_of(view) if c["name"] == name), None)


def sources(paths: Sequence[str]) -> str:
    """The relation reading NDJSON files line by line as raw JSON text (numbers untouched)."""
    listed = ", ".join(quote(p) for p in paths)
    return f"read_ndjson_objects([{listed}])"
