"""No import cycles in leptonsim: the package is layered, so its modules can be read,
tested and imported bottom up. Every import that runs counts, at module level or
inside a function (a lazy import only hides a cycle until the function runs); an
import under `if TYPE_CHECKING:` never runs and names types only, so it does not."""

from __future__ import annotations

import ast
from pathlib import Path

import leptonsim

ROOT = Path(leptonsim.__file__).parent


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The leptonsim modules that module `name` imports (a package's own submodules
    imported through `from pkg import sub` count as the submodule, not the package)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if _type_checking(block)
                   for stmt in block.body for n in ast.walk(stmt)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + [node.module] if node.module else base)
            subs = {f"{target}.{a.name}" for a in node.names} & known.keys()
            out |= subs or {target}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return (out & known.keys()) - {name}


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan 1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_detector_finds_a_cycle_and_a_clean_graph() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_import_graph_sees_relative_and_lazy_imports() -> None:
    known = modules()
    graph = {name: imported(name, path, known) for name, path in known.items()}
    assert "leptonsim.result" in graph["leptonsim.api"]           # from .result import
    assert "leptonsim.cli" in graph["leptonsim.validate.__main__"]  # from ..cli import
    assert "leptonsim.validate.cli" in graph["leptonsim.cli"]       # inside a function
    assert "leptonsim.result" not in graph["leptonsim.report"]     # under TYPE_CHECKING


def test_leptonsim_has_no_import_cycles() -> None:
    known = modules()
    assert cycles({name: imported(name, path, known) for name, path in known.items()}) == []


def test_no_test_module_imports_another() -> None:
    """Shared helpers live in tests/helpers/ (or conftest.py), not in test modules."""
    tests = ROOT.parent / "tests"
    importers = {p.name for p in tests.rglob("*.py")
                 for node in ast.walk(ast.parse(p.read_text()))
                 if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests.test_")}
    assert importers == set()
