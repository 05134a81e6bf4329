"""FHIR NDJSON folders in the Bulk Data layout: read them, write them, describe them.

A folder holds one file per resource type, ``<Type>.ndjson`` (or, as Bulk Data
servers split large outputs, ``<Type>.<n>.ndjson``; gzip files end in ``.gz``),
one resource per line, and ``manifest.json``: the Bulk Data complete-status
manifest shape (``transactionTime``, ``request``, ``requiresAccessToken``,
``output[{type, url, count}]``, ``error``) with our own details under
``extension``.

Numbers with a fraction are read as ``decimal.Decimal`` (``adapter.fhir.json.loads``):
a value keeps its digits, trailing zeros included (``12.50`` stays ``12.50``), so
a resource read from a folder and written again (push, export) gives the very
bytes it was read from.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from adapter.errors import InputError
from adapter.fhir.json import dumps, loads

MANIFEST = "manifest.json"
_FILE_NAME = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)(?:\.(?P<part>\d+))?\.ndjson(?:\.gz)?$")


def resource_files(folder: str | Path) -> dict[str, list[Path]]:
    """The NDJSON files in ``folder``, by resource type, each type's parts in order."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError("not a folder of NDJSON files", source=str(root))
    found: dict[str, list[tuple[int, Path]]] = {}
    for path in root.iterdir():
        if match := _FILE_NAME.match(path.name):
            found.setdefault(match["type"], []).append((int(match["part"] or 0), path))
    return {kind: [path for _, path in sorted(parts)] for kind, parts in sorted(found.items())}


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def read_file(path: Path, resource_type: str | None = None) -> Iterator[dict[str, Any]]:
    """The resources in one NDJSON file, one at a time; a bad line is an InputError naming it."""
    with _open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield parse_line(line, path, number, resource_type)


def parse_line(line: str, path: Path, number: int, resource_type: str | None = None) -> dict[str, Any]:
    """One NDJSON line as a resource (of ``resource_type`` when given); else an InputError naming file and line."""
    try:
        resource = loads(line)
    except json.JSONDecodeError as error:
        raise InputError(f"not JSON: {error.msg}", source=str(path), line=number) from None
    if not isinstance(resource, dict) or "resourceType" not in resource:
        raise InputError("not a FHIR resource", source=str(path), line=number, field="resourceType")
    if resource_type and resource["resourceType"] != resource_type:
        raise InputError(
            f"a {resource['resourceType']} in the {resource_type} file",
            source=str(path),
            line=number,
            field="resourceType",
        )
    return resource


def read_resources(folder: str | Path, resource_type: str) -> Iterator[dict[str, Any]]:
    """Every ``resource_type`` resource in the folder, streamed file by file."""
    for path in resource_files(folder).get(resource_type, []):
        yield from read_file(path, resource_type)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The folder's manifest, or an empty one when it has none."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, ValueError) as error:
        raise InputError(f"not a manifest: {error}", source=str(path)) from None


def write_manifest(
    folder: str | Path,
    counts: Mapping[str, int],
    *,
    transaction_time: str,
    request: str,
    extension: Mapping[str, Any] | None = None,
    errors: Iterable[Mapping[str, Any]] = (),
) -> Path:
    """Write ``manifest.json`` for the ``<Type>.ndjson`` files of ``counts``."""
    manifest = {
        "transactionTime": transaction_time,
        "request": request,
        "requiresAccessToken": False,
        "output": [{"type": kind, "url": f"{kind}.ndjson", "count": counts[kind]} for kind in sorted(counts)],
        "error": list(errors),
        "extension": dict(extension or {}),
    }
    path = Path(folder) / MANIFEST
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


class NdjsonWriter:
    """Writes resources to ``<Type>.ndjson`` files in a folder, one open file per type, and counts them."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.counts: dict[str, int] = {}
        self._files: dict[str, IO[str]] = {}

    def __enter__(self) -> NdjsonWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def write_line(self, resource_type: str, line: str) -> None:
        """Append one already serialized resource (no newline) to its type's file."""
        out = self._files.get(resource_type)
        if out is None:
            out = self._files[resource_type] = (self.folder / f"{resource_type}.ndjson").open("w", encoding="utf-8")
            self.counts[resource_type] = 0
        out.write(line)
        out.write("\n")
        self.counts[resource_type] += 1

    def write(self, resource: Mapping[str, Any]) -> None:
        self.write_line(str(resource["resourceType"]), dumps(resource))

    def close(self) -> None:
        for out in self._files.values():
            out.close()
        self._files.clear()
