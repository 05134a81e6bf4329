"""One way to read a YAML or JSON file and check it against a JSON Schema.

Mapping files, code tables, the trial package descriptor and the config file all
come through here, so they share one strictness and one error format:

- a duplicate key is an error (PyYAML and ``json`` keep the last one silently);
- a schema problem is reported as ``<file>: <json path>: <message>``, the JSON path
  written by ``json_path`` (``rows[0].code``), the message kept short: never a
  repr of a whole input value.

``load_checked(path, schema)`` does both steps; ``load_yaml`` (read only),
``schema_problem`` (check a document already in memory) and ``unique_keys`` (a
``json.loads`` hook) are the pieces, for readers with their own error type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from adapter.errors import ConfigError

# Longer schema messages are cut: a message may start with the repr of the offending value.
MAX_MESSAGE = 200


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (PyYAML keeps the last one silently)."""


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
    """A YAML (or JSON) file's content, refusing duplicate keys; a ``ConfigError`` names the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: cannot read: not UTF-8 text ({error.reason} at byte {error.start})") from error
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A ``json.loads`` ``object_pairs_hook`` that refuses duplicate keys (raises ``ValueError``)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"duplicate key {key!r}")
        found[key] = value
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


def schema_problem(
    document: Any, schema: Mapping[str, Any] | jsonschema.Draft202012Validator
) -> tuple[tuple[str | int, ...], str] | None:
    """The most relevant way ``document`` breaks ``schema``: (path in the document, short message), or None.

    ``schema`` may be a ready validator, for a schema that checks many documents.
    """
    if isinstance(schema, jsonschema.Draft202012Validator):
        validator = schema
    else:
        validator = jsonschema.Draft202012Validator(schema)
    problem = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if problem is None:
        return None
    message = problem.message
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    return tuple(problem.absolute_path), message


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
