"""The package's layout: no import circles, and the language server split by concern.

The module graph is read from the source with ``ast``: an edge for every ``import`` that runs
(at module level or inside a function), none for imports under ``if TYPE_CHECKING:``. A circle
in that graph fails, with the modules on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "speedsmith"
LSP_MODULES = ("state", "scheduler", "actions", "commands", "hints", "edits", "app")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The package modules ``path`` imports when it runs (not under ``TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def resolve(target: str) -> None:
        # ``import a.b.c`` imports a, a.b and a.b.c; the deepest known one is the edge that
        # matters (its parents are packages whose __init__ runs first anyway).
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                resolve(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in known:
                    resolve(f"{source}.{alias.name}")  # ``from pkg import module``
                else:
                    resolve(source)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: runtime_imports(path, name, known) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = 0

    def connect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                result.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return result


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        pytest.param({"a": {"b"}, "b": set()}, [], id="chain"),
        pytest.param({"a": {"b"}, "b": {"a"}}, [["a", "b"]], id="pair"),
        pytest.param(
            {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]], id="ring"
        ),
    ],
)
def test_cycle_finder(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(edges) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("import speedsmith.lsp.state\n", {"speedsmith.lsp.state"}, id="import"),
        pytest.param("from speedsmith.lsp import edits\n", {"speedsmith.lsp.edits"}, id="module"),
        pytest.param(
            "from speedsmith.lsp.state import State\n", {"speedsmith.lsp.state"}, id="name"
        ),
        pytest.param("from . import edits\n", {"speedsmith.lsp.edits"}, id="relative"),
        pytest.param(
            "import typing\nif typing.TYPE_CHECKING:\n    import speedsmith.lsp.state\n",
            set(),
            id="type-checking-only",
        ),
        pytest.param(
            "def f():\n    from speedsmith.lsp import state\n",
            {"speedsmith.lsp.state"},
            id="inside-a-function",
        ),
    ],
)
def test_runtime_imports(tmp_path: Path, source: str, expected: set[str]) -> None:
    path = tmp_path / "mod.py"
    path.write_text(source, encoding="utf-8")
    known = {"speedsmith", "speedsmith.lsp", "speedsmith.lsp.state", "speedsmith.lsp.edits"}

    assert runtime_imports(path, "speedsmith.lsp.mod", known) == expected


def test_no_import_circles() -> None:
    found = cycles(graph())

    assert found == [], "import circles (runtime imports, TYPE_CHECKING excluded): " + "; ".join(
        " -> ".join(cycle) for cycle in found
    )


def test_only_the_app_knows_the_server_class() -> None:
    edges = graph()
    users = sorted(name for name, targets in edges.items() if "speedsmith.lsp.app" in targets)

    assert users in ([], ["speedsmith.lsp"], ["speedsmith.lsp", "speedsmith.lsp.__main__"])


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in LSP_MODULES])
def test_lsp_module_names_the_methods_it_serves(name: str) -> None:
    path = PACKAGE / "lsp" / f"{name}.py"
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""

    assert "LSP method" in docstring, f"{path.name}'s docstring names no LSP method"
