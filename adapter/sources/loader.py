"""One way to read a YAML or JSON file and check it against a JSON Schema.

Mapping files, code tables, the trial package descriptor and the config file all
come through here, so they share one strictness and one error format:

- a duplicate key is an error (PyYAML and ``json`` keep the last one silently);
- a YAML alias (``*name``) is an error: a few nested aliases expand a tiny file into
  gigabytes (the "billion laughs"), and none of our files needs them;
- a document nested deeper than ``MAX_DEPTH`` is an error, not a ``RecursionError``;
- a string that starts with ``{project_base}`` starts with the project base instead
  (``adapter.fhir.constants.PROJECT_BASE``), so mapping files and package descriptors
  name the project's own code systems as ``{project_base}CodeSystem/ctgov-phase``;
- a schema problem is reported as ``<file>: <json path>: <message>``, the JSON path
  written by ``json_path`` (``rows[0].code``), the message kept short: an input
  value appears only as a short scalar (``_short``), never whole; a YAML syntax
  error names line and column, never the text of the line.

Schemas are checked by ``Validator``: Draft 2020-12, except that a ``pattern``'s ``$``
ends the string as in ECMA-262 (the regex dialect JSON Schema names). Python's ``$``
also matches before a final newline, which let ``"NCT04753476\n"`` pass
``^NCT[0-9]{8}$``.

``load_checked(path, schema)`` does both steps; ``load_yaml`` (read only),
``schema_problem`` (check a document already in memory) and ``unique_keys`` (a
``json.loads`` hook) are the pieces, for readers with their own error type.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from adapter.errors import ConfigError
from adapter.fhir.constants import PROJECT_BASE, PROJECT_BASE_TOKEN

# Longer schema messages are cut: a message may start with the repr of the offending value.
MAX_MESSAGE = 200
# Deeper documents are refused: none of ours nests past a dozen levels, and the parsers recurse.
MAX_DEPTH = 100


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys, aliases and deep nesting."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted; write the value out", mark)
        depth = getattr(self, "_depth", 0)
        if depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return dict(loader.construct_pairs(node, deep=deep))


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> Any:
    """A YAML (or JSON) file's content, refusing duplicate keys, with the project base put in; a ``ConfigError``
    names the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: cannot read: not UTF-8 text ({error.reason} at byte {error.start})") from error
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(error)}") from error
    return with_project_base(document)


def with_project_base(document: Any) -> Any:
    """``document`` with each string value that starts with ``{project_base}`` starting with the project base.

    Why a placeholder put in here, not relative URLs resolved by each reader: the base is
    decided in one place (constants.PROJECT_BASE) and put in by the one loader, before
    the schema check, so the schemas go on checking absolute URIs and no reader has to
    know which fields hold a system. Only a leading placeholder counts: the base starts a
    URL. Keys are left alone; records from outside (registry JSON, CSV rows) never come here.
    """
    if isinstance(document, str):
        if document.startswith(PROJECT_BASE_TOKEN):
            return PROJECT_BASE + document[len(PROJECT_BASE_TOKEN):]
        return document
    if isinstance(document, dict):
        return {key: with_project_base(value) for key, value in document.items()}
    if isinstance(document, list):
        return [with_project_base(value) for value in document]
    return document


def yaml_problem(error: yaml.YAMLError) -> str:
    """What PyYAML found wrong and where (line, column), without the snippet of input it would quote."""
    if not isinstance(error, yaml.MarkedYAMLError):
        return type(error).__name__
    mark = error.problem_mark or error.context_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return f"{str(error.problem or error.context)[:MAX_MESSAGE]}{where}"


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A ``json.loads`` ``object_pairs_hook`` that refuses duplicate keys (raises ``ValueError``)."""
    found = dict(pairs)  # C speed; the loop below runs only when a key repeats
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key[:60]!r}")
            seen.add(key)
    return found


def load_schema(path: Path) -> dict[str, Any]:
    """A JSON Schema file's content; a ``ConfigError`` names the file."""
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: cannot read the schema: {error}") from error
    return loaded


def json_path(parts: Any) -> str:
    """A document path as text: ``protocolSection.designModule.phases[1]``; ``(document)`` for the root."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


@functools.cache
def ecma_pattern(pattern: str) -> re.Pattern[str]:
    """A JSON Schema ``pattern`` compiled so that an unescaped ``$`` (at the end or before ``)`` or ``|``) ends the
    string, as in ECMA-262, instead of also matching before a final newline as Python's ``$`` does."""
    return re.compile(re.sub(r"(?<!\\)\$(?=$|[)|])", r"\\Z", pattern))


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[jsonschema.ValidationError]:
    if validator.is_type(instance, "string") and not ecma_pattern(pattern).search(instance):
        yield jsonschema.ValidationError(f"{_short(instance)} does not match {pattern!r}")


Validator: Any = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})  # type: ignore[no-untyped-call]


def schema_problem(document: Any, schema: Mapping[str, Any] | Any) -> tuple[tuple[str | int, ...], str] | None:
    """The most relevant way ``document`` breaks ``schema``: (path in the document, short message), or None.

    ``schema`` may be a ready ``Validator``, for a schema that checks many documents.
    """
    validator = schema if hasattr(schema, "iter_errors") else Validator(schema)
    problem = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if problem is None:
        return None
    message = _message(problem)
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    return tuple(problem.absolute_path), message


# jsonschema's messages for these keywords start with the repr of the whole instance; ours show a short one.
_TEMPLATES = {
    "type": "{value} is not of type {rule}",
    "enum": "{value} is not one of {rule}",
    "pattern": "{value} does not match {rule}",
    "format": "{value} is not a {rule}",
    "minLength": "{value} is too short (at least {rule} characters)",
    "maxLength": "{value} is too long (at most {rule} characters)",
    "minimum": "{value} is less than the minimum of {rule}",
    "maximum": "{value} is more than the maximum of {rule}",
    "minItems": "{value} has fewer than {rule} items",
    "maxItems": "{value} has more than {rule} items",
}
# These messages name the schema's values or property names, never the instance.
_KEY_MESSAGES = frozenset({"required", "additionalProperties", "dependentRequired", "propertyNames", "const"})


def _message(problem: jsonschema.ValidationError) -> str:
    keyword = str(problem.validator)
    if keyword in _KEY_MESSAGES:
        return problem.message
    value = _short(problem.instance)
    if keyword in _TEMPLATES:
        rule: Any = problem.validator_value
        if keyword == "type":
            shown = repr(rule) if isinstance(rule, str) else ", ".join(map(repr, rule))
        else:
            shown = repr(rule) if keyword != "enum" else repr(list(rule))
        return _TEMPLATES[keyword].format(value=value, rule=shown[:MAX_MESSAGE])
    return f"{value} does not satisfy the schema's {keyword!r} rule"


def _short(value: Any) -> str:
    """A value as an error may show it: a scalar's repr cut to 60 characters; a container by its kind."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = repr(value if not isinstance(value, str) or len(value) <= 60 else value[:57] + "...")
    return text[:80]


def load_checked(path: Path, schema: Mapping[str, Any] | Path) -> Any:
    """The content of the YAML or JSON file ``path``, checked against ``schema`` (a schema or its file).

    Raises ``ConfigError("<path>: <json path>: <message>")`` for the first problem.
    """
    if isinstance(schema, Path):
        schema = load_schema(schema)
    document = load_yaml(path)
    problem = schema_problem(document, schema)
    if problem is not None:
        parts, message = problem
        raise ConfigError(f"{path}: {json_path(parts)}: {message}")
    return document
