"""The import graph, read from the source with `ast`: no cycles, and every layer imports only what it may.

Imports inside functions count (a lazy import is still a dependency); imports under
`if TYPE_CHECKING:` do not (they exist for annotations only and never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "analytics", "providers", "storage", "renderers", "bot")

#: What each layer may import from the project (besides itself).
ALLOWED = {
    "core": set(),
    "analytics": {"core"},
    "providers": {"core", "analytics"},
    "storage": {"core", "analytics"},
    "renderers": {"core", "analytics"},
    "bot": {"core", "analytics", "providers", "storage", "renderers"},
}
#: Libraries that do I/O: pure computation never imports them.
IO_LIBRARIES = {
    "httpx",
    "aiohttp",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "alembic",
    "websockets",
    "socket",
    "requests",
    "urllib",
    "discord",
    "slack_bolt",
    "slack_sdk",
    "openai",
    "subprocess",
}
#: Chat and model platforms: named only under bot/.
PLATFORMS = {"discord", "slack_bolt", "slack_sdk", "openai"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module name `name` imports, lazy ones included, TYPE_CHECKING ones left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                found.add(mod)
                found.update(f"{mod}.{a.name}" for a in child.names)
            visit(child)

    visit(tree)
    return found


def _project(target: str) -> str | None:
    """The project module an imported name refers to (the longest known prefix), or None for a library."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


GRAPH = {name: {p for t in _imports(name, path) if (p := _project(t)) and p != name} for name, path in MODULES.items()}
LIBRARIES = {name: {t.split(".")[0] for t in _imports(name, path) if _project(t) is None} for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_the_graph_was_read() -> None:
    # a parser that found nothing would pass every rule below
    assert len(MODULES) > 100 and "bot.app" in MODULES
    assert "bot.pipeline" in GRAPH["bot.app"] and "core.errors" in GRAPH["bot.pipeline"]


def test_no_import_cycles() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_what_it_may(layer: str) -> None:
    wrong = sorted(
        f"{name} -> {dep}"
        for name, deps in GRAPH.items()
        if name.split(".")[0] == layer
        for dep in deps
        if dep.split(".")[0] not in ALLOWED[layer] | {layer}
    )
    assert wrong == []


@pytest.mark.parametrize("layer", ["core", "analytics", "renderers"])
def test_pure_layers_do_no_io(layer: str) -> None:
    wrong = sorted(
        f"{name} -> {lib}" for name, libs in LIBRARIES.items() if name.split(".")[0] == layer for lib in libs & IO_LIBRARIES
    )
    assert wrong == []


def test_platform_names_appear_only_under_bot() -> None:
    wrong = sorted(
        f"{name} -> {lib}" for name, libs in LIBRARIES.items() if not name.startswith("bot") for lib in libs & PLATFORMS
    )
    assert wrong == []


def test_commands_use_only_the_runtimes_public_face() -> None:
    wrong = sorted(
        f"{name} -> {dep}"
        for name, deps in GRAPH.items()
        if name.startswith("bot.commands")
        for dep in deps
        if dep.startswith("bot.runtime") and dep != "bot.runtime.api"
    )
    assert wrong == []


def test_the_runtime_never_imports_a_surface_the_cli_or_a_command() -> None:
    forbidden = ("bot.surfaces", "bot.cli", "bot.commands", "bot.app", "bot.serve")
    wrong = sorted(
        f"{name} -> {dep}"
        for name, deps in GRAPH.items()
        if name.startswith("bot.runtime") and name != "bot.runtime.__main__"
        for dep in deps
        if dep.startswith(forbidden)
    )
    assert wrong == []
