"""The package's import graph: no cycles, and the layering rules of docs/plugins.md.

Every ``import`` of ``rewardhub`` modules counts, at module level or inside a function (a lazy
import hides a cycle, it does not remove it); imports under ``if TYPE_CHECKING:`` do not (they
never run). Importing ``a.b.c`` also runs ``a.b``'s ``__init__``.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import rewardhub

ROOT = Path(rewardhub.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """The rewardhub modules ``tree`` imports (outside ``if TYPE_CHECKING:``)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join([*pkg, base] if base else pkg)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m == "rewardhub" or m.startswith("rewardhub.")}


def import_graph() -> dict[str, set[str]]:
    """Module → the rewardhub modules importing it runs."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for target in _imports(tree, name, path.name == "__init__.py"):
            # `import a.b.c` runs a, a.b and a.b.c; `from a.b import name` where name is not a
            # module runs a and a.b
            parts = target.split(".")
            for k in range(1, len(parts) + 1):
                dep = ".".join(parts[:k])
                if dep in modules and dep != name and not name.startswith(dep + "."):
                    graph[name].add(dep)
    return graph


GRAPH = import_graph()


def _reaches(source: str, target: str) -> bool:
    seen, todo = set(), [source]
    while todo:
        mod = todo.pop()
        if mod == target:
            return True
        if mod not in seen:
            seen.add(mod)
            todo.extend(GRAPH.get(mod, ()))
    return False


def test_the_package_has_no_import_cycles() -> None:
    # the facade loads submodules lazily by name (strings, not imports)
    try:
        graphlib.TopologicalSorter(GRAPH).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


CORE = ("rewardhub.types", "rewardhub.outcome", "rewardhub.rows", "rewardhub.errors")


@pytest.mark.parametrize("core", CORE)
def test_core_types_import_nothing_of_the_engine(core: str) -> None:
    for above in ("rewardhub.engine", "rewardhub.pipeline", "rewardhub.source", "rewardhub.hub"):
        assert not _reaches(core, above), f"{core} imports {above}"


def test_sources_never_import_the_engine_or_the_pipeline() -> None:
    sources = [m for m in GRAPH if m.startswith("rewardhub.sources.")] + ["rewardhub.source"]
    for mod in sources:
        for above in ("rewardhub.engine", "rewardhub.pipeline"):
            assert not _reaches(mod, above), f"{mod} imports {above}"


def test_aggregators_never_build_a_hub() -> None:
    for mod in [m for m in GRAPH if m.startswith("rewardhub.aggregate")]:
        assert not _reaches(mod, "rewardhub.hub"), f"{mod} imports rewardhub.hub"


def test_the_graph_sees_function_level_imports() -> None:
    tree = ast.parse("def f():\n    from rewardhub.engine import Engine\n")
    assert "rewardhub.engine" in _imports(tree, "rewardhub.x", False)
    typed = ast.parse("if TYPE_CHECKING:\n    from rewardhub.engine import Engine\n")
    assert "rewardhub.engine" not in _imports(typed, "rewardhub.x", False)
