"""ViewDefinitions compiled to Spark SQL: the Spark backend of ``adapter.engines.sql``.

A FHIRPath value is a Spark ``ARRAY<VARIANT>``; the resource is one ``VARIANT``
(column ``r`` of the relation the query reads, made by ``spark_engine`` from each
NDJSON line read as text, its numbers quoted first as the DuckDB backend does, so
``2.40`` keeps its digits and no date is guessed into a timestamp). Spark SQL has
no macros, so what DuckDB's ``fp_*`` macros do is spelled out here, each argument
bound once with ``let``.

The rows differ from DuckDB's in one way: Spark has no lateral join of a correlated
``UNION ALL``, so each select becomes an array of row structs (its columns, crossed
with its nested selects, its ``unionAll`` branches concatenated, over every
``forEach`` item) that the query turns into rows with ``inline``. The columns and
rows are the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from adapter.engines.sql import CompiledView, Compiler, Focus, column_type, quote
from adapter.engines.views import View
from adapter.errors import ConfigError

# The number after each "key": made a JSON string of the same characters, before parse_json reads a double
# from it (Java regex, for regexp_replace in spark_engine; the DuckDB backend's fp_numbers_as_text).
NUMBERS = r'("[A-Za-z0-9_]+"\s*:\s*)(-?[0-9][0-9.eE+-]*)'
NUMBERS_AS_TEXT = '$1"$2"'
_REFERENCE = "([^/]+)/([^/]+)$"
_Rows = tuple[list[str], str]  # column names, and the SQL of an ARRAY<STRUCT> holding the rows


def identifier(name: str) -> str:
    """A quoted SQL identifier in Spark's spelling (backticks)."""
    return "`" + name.replace("`", "``") + "`"


class SparkCompiler(Compiler):
    """The Spark SQL dialect."""

    def member(self, name: str, focus: Focus) -> str:
        path = quote("$[" + json.dumps(name) + "]")
        if focus.root or focus.single:
            return self.items(f"try_variant_get({focus.sql}, {path}, 'variant')")
        item = self.fresh("v")
        inner = self.items(f"try_variant_get({item}, {path}, 'variant')")
        return f"flatten(transform({focus.sql}, {item} -> {inner}))"

    def items(self, value: str) -> str:
        """A JSON value as a collection: an array's items, one item, or none for a missing or null value."""
        return self.let(value, lambda b: (
            f"(CASE WHEN {b} IS NULL OR is_variant_null({b}) THEN {self.empty()} "
            f"ELSE coalesce(try_variant_get({b}, '$', 'array<variant>'), array({b})) END)"))

    def transform(self, items: str, item: str, body: str) -> str:
        return f"transform({items}, {item} -> {body})"

    def filter(self, items: str, item: str, test: str) -> str:
        return f"filter({items}, {item} -> {test})"

    def array(self, value: str) -> str:
        return f"array({value})"

    def only(self, items: str) -> str:
        return f"({items})[0]"

    def first_item(self, items: str) -> str:
        return f"try_element_at({items}, 1)"

    def empty(self) -> str:
        return "CAST(array() AS ARRAY<VARIANT>)"

    def size(self, items: str) -> str:
        return f"size({items})"

    def concat(self, left: str, right: str) -> str:
        return f"concat({left}, {right})"

    def slice_first(self, items: str) -> str:
        return f"slice({items}, 1, 1)"

    def slice_last(self, items: str) -> str:
        return f"slice({items}, -1, 1)"

    def slice_at(self, items: str, index: str) -> str:
        return f"(CASE WHEN {index} >= 0 THEN slice({items}, {index} + 1, 1) ELSE {self.empty()} END)"

    def text(self, item: str, key: str | None = None) -> str:
        return f"try_variant_get({item}, {quote('$' if key is None else '$.' + key)}, 'string')"

    def json_text(self, sql_text: str) -> str:
        return f"CAST({sql_text} AS VARIANT)"

    def literal(self, text: str) -> str:
        return f"array(CAST({quote(text)} AS VARIANT))"

    def boolean_literal(self, value: str) -> str:
        return f"array(CAST({value} AS VARIANT))"

    def of(self, condition: str) -> str:
        return self.let(condition, lambda b: (
            f"(CASE WHEN {b} IS NULL THEN {self.empty()} ELSE array(CAST({b} AS VARIANT)) END)"))

    def truth(self, items: str) -> str:
        return (f"(CASE WHEN size({items}) = 0 THEN NULL WHEN size({items}) > 1 THEN "
                "raise_error('FHIRPath: a collection of several items where one boolean is needed') "
                f"WHEN schema_of_variant({items}[0]) = 'BOOLEAN' THEN variant_get({items}[0], '$', 'boolean') "
                "ELSE true END)")

    def one(self, items: str, name: str) -> str:
        message = f"concat('column ', {name}, ': several values where the view expects one')"
        return f"(CASE WHEN size({items}) > 1 THEN raise_error({message}) ELSE try_element_at({items}, 1) END)"

    def equal(self, left: str, right: str) -> str:
        a, b = self.fresh("v"), self.fresh("v")
        return f"(transform({left}, {a} -> to_json({a})) = transform({right}, {b} -> to_json({b})))"

    def order(self, left: str, right: str) -> str:
        def compare(a: str, b: str) -> str:
            x, y = f"try_cast({a} AS DOUBLE)", f"try_cast({b} AS DOUBLE)"
            return (f"(CASE WHEN {x} IS NOT NULL AND {y} IS NOT NULL THEN sign({x} - {y}) "
                    f"WHEN {a} < {b} THEN -1 WHEN {a} > {b} THEN 1 ELSE 0 END)")
        return self.let(self.text(left), lambda a: self.let(self.text(right), lambda b: compare(a, b)))

    def reference_key(self, reference: str, kind: str) -> str:
        pattern = quote(_REFERENCE)
        return self.let(f"regexp_replace({reference}, '/_history(/.*)?$', '')", lambda r: (
            f"(CASE WHEN {r} RLIKE {pattern} AND ({kind} IS NULL OR regexp_extract({r}, {pattern}, 1) = {kind}) "
            f"THEN CAST(regexp_extract({r}, {pattern}, 2) AS VARIANT) END)"))

    def join_text(self, texts: str, separator: str) -> str:
        return f"array_join({texts}, {separator})"

    # -- the view -> rows ------------------------------------------------------------------------------
    def rows(self, select: Mapping[str, Any], focus: Focus) -> _Rows:
        """One select's rows, over each item of its forEach (an empty forEachOrNull gives one row of nulls)."""
        each = select.get("forEach", select.get("forEachOrNull"))
        if each is None:
            return self.product(select, focus)
        items = self.path(each, focus)
        if "forEachOrNull" in select:
            items = self.let(items, lambda c: (
                f"(CASE WHEN size({c}) = 0 THEN array(CAST(NULL AS VARIANT)) ELSE {c} END)"))
        item = self.fresh("f")
        names, rows = self.product(select, Focus(item, single=True))
        return names, f"flatten(transform({items}, {item} -> {rows}))"

    def product(self, select: Mapping[str, Any], focus: Focus) -> _Rows:
        """A select's own columns, crossed with the rows of each nested select and of its unionAll."""
        parts: list[_Rows] = []
        own = [(c["name"], self.column(c, focus)) for c in select.get("column", [])]
        if own:
            parts.append(([n for n, _ in own], f"array({_struct((n, sql) for n, sql in own)})"))
        parts += [self.rows(inner, focus) for inner in select.get("select", [])]
        if select.get("unionAll"):
            branches = [self.rows(branch, focus) for branch in select["unionAll"]]
            if any(names != branches[0][0] for names, _ in branches):
                raise ConfigError(f"view {self.view.get('name')}: unionAll branches with different columns")
            parts.append((branches[0][0], f"concat({', '.join(rows for _, rows in branches)})"))
        if not parts:
            raise ConfigError(f"view {self.view.get('name')}: a select without columns")
        return self.cross(parts)

    def cross(self, parts: list[_Rows]) -> _Rows:
        names, rows = parts[0]
        for more_names, more in parts[1:]:
            a, b = self.fresh("a"), self.fresh("b")
            fields = [(n, f"{a}.{identifier(n)}") for n in names] + [(n, f"{b}.{identifier(n)}") for n in more_names]
            rows = f"flatten(transform({rows}, {a} -> transform({more}, {b} -> {_struct(fields)})))"
            names = names + more_names
        return names, rows


def _struct(fields: Any) -> str:
    """A row struct of (name, SQL) fields."""
    return "named_struct(" + ", ".join(f"{quote(name)}, {sql}" for name, sql in fields) + ")"


def compile_view(view: View, source: str) -> CompiledView:
    """The Spark SQL of ``view`` reading resources (one ``VARIANT`` per row, column ``r``) from the view ``source``."""
    compiler = SparkCompiler(view)
    root = Focus("src.r", root=True)
    rows = compiler.cross([compiler.rows(select, root) for select in view["select"]])
    names = rows[0]
    if len(set(names)) != len(names):
        raise ConfigError(f"view {view['name']}: two columns with one name")
    resource = quote(view["resource"])
    conditions = [f"(CASE WHEN {compiler.text('src.r', 'resourceType')} = {resource} THEN true "
                  f"ELSE raise_error(concat('a resource of another type than ', {resource})) END)"]
    for where in view.get("where", []):
        conditions.append(compiler.let(compiler.path(where["path"], root), lambda c: (
            f"(CASE WHEN size({c}) = 0 THEN false WHEN size({c}) = 1 AND schema_of_variant({c}[0]) = 'BOOLEAN' "
            f"THEN variant_get({c}[0], '$', 'boolean') "
            "ELSE raise_error('a view''s where path gave something else than one boolean') END)")))
    # Views are configuration files, and every literal in them goes through quote(): no value from a record.
    sql = f"SELECT inline({rows[1]}) FROM {source} AS src WHERE {' AND '.join(conditions)}"  # noqa: S608
    types = tuple(column_type(view, name) for name in names)
    return CompiledView(view["name"], view["resource"], sql, tuple(names), types)
