"""The FHIRPath subset SQL on FHIR views use, parsed into a small tree the SQL compilers walk.

Supported: member navigation, the indexer ``[n]``, string/number/boolean
literals, ``%constant``, ``$this``, the operators ``|`` (union, kept in order),
``=``, ``!=``, ``<``, ``>``, ``<=``, ``>=``, ``and``, ``or``, and the functions
in ``FUNCTIONS``. Anything else is a ``ConfigError``
naming the expression, raised when the view is compiled, before data is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapter.errors import ConfigError

# name -> (least, most) arguments
FUNCTIONS: dict[str, tuple[int, int]] = {
    "first": (0, 0),
    "last": (0, 0),
    "where": (1, 1),
    "exists": (0, 1),
    "empty": (0, 0),
    "not": (0, 0),
    "count": (0, 0),
    "ofType": (1, 1),
    "getResourceKey": (0, 0),
    "getReferenceKey": (0, 1),
    "join": (0, 1),
    "extension": (1, 1),
    "iif": (2, 3),
}
# Lowest precedence first (FHIRPath: | binds tighter than comparisons, then =, then and, then or).
_BINARY = (("or",), ("and",), ("=", "!="), ("<", ">", "<=", ">="), ("|",))

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<number>\d+(?:\.\d+)?)|(?P<const>%[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<name>\$this|[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)|(?P<op>!=|<=|>=|[.(),=|<>\[\]]))"
)
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "t": "\t", "n": "\n", "r": "\r", "f": "\f"}


@dataclass(frozen=True)
class Node:
    """One FHIRPath tree node: ``kind`` is member, call, string, number, boolean, constant, this or an operator."""

    kind: str
    name: str = ""
    base: Node | None = None
    args: tuple[Node, ...] = ()


def parse(expression: str) -> Node:
    """The tree of ``expression``; a ``ConfigError`` naming it when it is outside the subset."""
    tokens = _tokens(expression)
    parser = _Parser(expression, tokens)
    node = parser.binary(0)
    if parser.position != len(tokens):
        parser.fail(f"unexpected {tokens[parser.position][1]!r}")
    return node


def _tokens(expression: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(expression.rstrip()):
        match = _TOKEN.match(expression, position)
        if not match or match.end() == position:
            raise ConfigError(f"FHIRPath {expression!r}: cannot read it from position {position} (unsupported syntax)")
        kind = match.lastgroup or ""
        found.append((kind, match[kind]))
        position = match.end()
    return found


class _Parser:
    def __init__(self, expression: str, tokens: list[tuple[str, str]]) -> None:
        self.expression = expression
        self.tokens = tokens
        self.position = 0

    def fail(self, why: str) -> None:
        raise ConfigError(f"FHIRPath {self.expression!r}: {why}")

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def take(self, value: str) -> None:
        if self.peek()[1] != value:
            self.fail(f"expected {value!r}, found {self.peek()[1] or 'the end'!r}")
        self.position += 1

    def binary(self, level: int) -> Node:
        if level == len(_BINARY):
            return self.invocation()
        left = self.binary(level + 1)
        while self.peek()[1] in _BINARY[level] and self.peek()[0] in ("op", "name"):
            operator = self.peek()[1]
            self.position += 1
            left = Node(operator, args=(left, self.binary(level + 1)))
        return left

    def invocation(self) -> Node:
        node = self.term(None)
        while self.peek()[1] in (".", "["):
            self.position += 1
            if self.tokens[self.position - 1][1] == "[":
                node = Node("index", base=node, args=(self.binary(0),))
                self.take("]")
            else:
                node = self.term(node)
        return node

    def term(self, base: Node | None) -> Node:
        kind, value = self.peek()
        self.position += 1
        if base is None and kind == "string":
            return Node("string", _unescape(value[1:-1]))
        if base is None and kind == "number":
            return Node("number", value)
        if base is None and kind == "const":
            return Node("constant", value[1:])
        if base is None and value == "(":
            node = self.binary(0)
            self.take(")")
            return node
        if kind != "name":
            self.fail(f"unexpected {value or 'end'!r}")
        if base is None and value in ("true", "false"):
            return Node("boolean", value)
        if value == "$this":
            return Node("this")
        name = value.strip("`")
        if self.peek()[1] != "(":
            return Node("member", name, base)
        self.position += 1
        args: list[Node] = []
        while self.peek()[1] != ")":
            args.append(self.binary(0))
            if self.peek()[1] == ",":
                self.position += 1
        self.take(")")
        if name not in FUNCTIONS:
            self.fail(f"function {name}() is not supported (supported: {', '.join(sorted(FUNCTIONS))})")
        least, most = FUNCTIONS[name]
        if not least <= len(args) <= most:
            self.fail(f"{name}() takes {least} to {most} arguments, not {len(args)}")
        return Node("call", name, base, tuple(args))


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[1]), text)


def type_name(node: Node) -> str:
    """The type an ``ofType()``/``getReferenceKey()`` argument names (``Quantity``, ``FHIR.string``)."""
    if node.kind != "member" or (node.base is not None and node.base.name != "FHIR"):
        raise ConfigError(f"expected a type name, found a {node.kind}")
    return node.name
