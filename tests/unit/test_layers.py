"""The package's shape: layers import only downwards, no import cycles, modules stay small.

The layers, lowest first (docs/ARCHITECTURE.md draws them):

0. ``adapter`` (the version), ``errors``, ``paths``, ``records``, ``fhir``: what everything shares
1. ``sources``, ``settings``, ``auth``: reading inputs and configuration
2. ``mappers``: records to FHIR resources
3. ``client``, ``package``, ``studybundle``: one server conversation, one mapping run
4. ``sync``, ``export``: whole jobs; peers, neither imports the other; ``engines`` (the export views
   on DuckDB or Spark, and map package on Spark), which export and sync (push on Spark) call and which
   imports neither;
   ``collect`` (hospital data into the trial), a peer of sync and export that imports neither
5. ``service``, ``cli``, ``demo``: the edges a user drives
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "adapter"

LAYERS: dict[str, int] = {
    "adapter": 0,
    "adapter.__main__": 5,
    "adapter.errors": 0,
    "adapter.paths": 0,
    "adapter.records": 0,
    "adapter.fhir": 0,
    "adapter.progress": 0,
    "adapter.sources": 1,
    "adapter.settings": 1,
    "adapter.auth": 1,
    "adapter.mappers": 2,
    "adapter.client": 3,
    "adapter.package": 3,
    "adapter.studybundle": 3,
    "adapter.sync": 4,
    "adapter.export": 4,
    "adapter.engines": 4,
    "adapter.collect": 4,
    "adapter.service": 5,
    "adapter.cli": 5,
    "adapter.demo": 5,
}
# Peers at one layer that must not know each other.
SEPARATE = {
    ("adapter.sync", "adapter.export"),
    ("adapter.export", "adapter.sync"),
    # The engines run the export views and map on Spark; export and sync call them, never the other way.
    ("adapter.engines", "adapter.export"),
    ("adapter.engines", "adapter.sync"),
    # Collecting from a hospital is its own job: it neither pushes nor exports.
    ("adapter.collect", "adapter.sync"),
    ("adapter.collect", "adapter.export"),
    ("adapter.sync", "adapter.collect"),
    ("adapter.export", "adapter.collect"),
}
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The adapter modules ``path`` imports, at any depth of the file (function-level imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return {name for name in found if name in modules}


def _unit(module: str) -> str:
    """The longest LAYERS key that ``module`` is or lies under."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in LAYERS:
            return candidate
    raise AssertionError(f"{module} has no layer: add it to LAYERS and to docs/ARCHITECTURE.md")


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, set(modules)) - {name} for name, path in modules.items()}


def test_every_module_has_a_layer() -> None:
    for name in _modules():
        _unit(name)


def test_imports_only_go_down_a_layer_or_stay_level() -> None:
    wrong = []
    for name, targets in _graph().items():
        source = _unit(name)
        for target in targets:
            destination = _unit(target)
            if LAYERS[destination] > LAYERS[source] or (source, destination) in SEPARATE:
                wrong.append(f"{name} (layer {LAYERS[source]}) imports {target} (layer {LAYERS[destination]})")
    assert wrong == []


def test_no_import_cycle() -> None:
    graph = _graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target):], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_is_small_or_says_why(name: str) -> None:
    path = _modules()[name]
    text = path.read_text(encoding="utf-8")
    lines = text.count("\n")
    if lines > MAX_LINES:
        docstring = ast.get_docstring(ast.parse(text)) or ""
        assert "Why it is long:" in docstring, f"{path}: {lines} lines; split it or say 'Why it is long:' in it"
