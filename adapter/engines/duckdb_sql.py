"""ViewDefinitions compiled to DuckDB SQL over NDJSON files: the DuckDB backend of ``adapter.engines.sql``.

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
from collections.abc import Mapping, Sequence
from typing import Any

from adapter.engines.sql import CompiledView, Compiler, Focus, column_type, identifier, quote
from adapter.engines.views import View
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


class DuckDBCompiler(Compiler):
    """The DuckDB dialect; ``fields`` collects the top-level elements the view reads from the resource."""

    def __init__(self, view: View) -> None:
        self.fields: set[str] = set()
        super().__init__(view)

    def member(self, name: str, focus: Focus) -> str:
        key = quote("$." + json.dumps(name))
        if focus.root:
            self.fields.add(name)
            return f"fp_items(src.t.{identifier(name)})"
        if focus.single:
            return f"fp_items(json_extract({focus.sql}, {key}))"
        item = self.fresh("v")
        return f"flatten(list_transform({focus.sql}, lambda {item}: fp_items(json_extract({item}, {key}))))"

    def transform(self, items: str, item: str, body: str) -> str:
        return f"list_transform({items}, lambda {item}: {body})"

    def filter(self, items: str, item: str, test: str) -> str:
        return f"list_filter({items}, lambda {item}: {test})"

    def array(self, value: str) -> str:
        return f"[{value}]"

    def only(self, items: str) -> str:
        return f"({items}[1])"

    def first_item(self, items: str) -> str:
        return f"({items})[1]"

    def empty(self) -> str:
        return "[]::JSON[]"

    def size(self, items: str) -> str:
        return f"len({items})"

    def concat(self, left: str, right: str) -> str:
        return f"list_concat({left}, {right})"

    def slice_first(self, items: str) -> str:
        return f"list_slice({items}, 1, 1)"

    def slice_last(self, items: str) -> str:
        return f"list_slice({items}, -1, -1)"

    def slice_at(self, items: str, index: str) -> str:
        return f"list_slice({items}, {index} + 1, {index} + 1)"

    def text(self, item: str, key: str | None = None) -> str:
        return f"({item} ->> {quote('$' if key is None else '$.' + key)})"

    def json_text(self, sql_text: str) -> str:
        return f"to_json({sql_text})"

    def literal(self, text: str) -> str:
        return f"[to_json({quote(text)}::VARCHAR)]"

    def boolean_literal(self, value: str) -> str:
        return f"['{value}'::JSON]"

    def of(self, condition: str) -> str:
        return f"fp_of({condition})"

    def truth(self, items: str) -> str:
        return f"fp_bool({items})"

    def one(self, items: str, name: str) -> str:
        return f"fp_one({items}, {name})"

    def equal(self, left: str, right: str) -> str:
        return f"{left} = {right}"

    def order(self, left: str, right: str) -> str:
        return f"fp_compare({left}, {right})"

    def reference_key(self, reference: str, kind: str) -> str:
        return f"fp_reference_key({reference}, {kind})"

    def join_text(self, texts: str, separator: str) -> str:
        return f"array_to_string({texts}, {separator})"

    # -- the view -> SELECT ---------------------------------------------------------------------------
    def select(self, select: Mapping[str, Any], focus: Focus) -> tuple[list[tuple[str, str]], list[str]]:
        """The (name, SQL) columns and the lateral joins of one select, in the view's column order."""
        joins: list[str] = []
        each = select.get("forEach", select.get("forEachOrNull"))
        if each is not None:
            items = self.path(each, focus)
            if "forEachOrNull" in select:
                items = self.let(items, lambda c: f"(CASE WHEN len({c}) = 0 THEN [NULL::JSON] ELSE {c} END)")
            alias = self.fresh("f")
            joins.append(f"CROSS JOIN LATERAL (SELECT unnest({items}) AS it) AS {alias}")
            focus = Focus(f"{alias}.it", single=True)
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
                listed = ", ".join(f"{sql} AS {identifier(n)}" for n, sql in branch_columns)
                branches.append(f"SELECT {listed} FROM (SELECT 1) AS one {' '.join(branch_joins)}")  # noqa: S608
            joins.append(f"CROSS JOIN LATERAL ({' UNION ALL '.join(branches)}) AS {alias}")
            columns += [(n, f"{alias}.{identifier(n)}") for n in names or []]
        return columns, joins


def compile_view(view: View, source: str) -> CompiledView:
    """The SQL of ``view`` reading resources (raw NDJSON lines, column ``json``) from the relation ``source``."""
    compiler = DuckDBCompiler(view)
    root = Focus("src.r", root=True)
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
    listed = ",\n  ".join(f"{sql} AS {identifier(name)}" for name, sql in columns)
    # Views are configuration files, and every literal in them goes through quote(): no value from a record.
    sql = (
        f"WITH src AS (SELECT r, json_transform(r, {shape}) AS t\n"  # noqa: S608
        f"  FROM (SELECT fp_numbers_as_text(json::VARCHAR)::JSON AS r FROM {source}))\n"
        f"SELECT\n  {listed}\nFROM src {' '.join(joins)}\nWHERE {' AND '.join(conditions)}"
    )
    types = tuple(column_type(view, name) for name in names)
    return CompiledView(view["name"], view["resource"], sql, tuple(names), types)


def sources(paths: Sequence[str]) -> str:
    """The relation reading NDJSON files line by line as raw JSON text (numbers untouched)."""
    listed = ", ".join(quote(p) for p in paths)
    return f"read_ndjson_objects([{listed}])"
