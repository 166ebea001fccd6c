"""The package's layers (``ecodistill.LAYERS``): every import read from the source, none
upward, no cycle, every module in a layer, and module sizes kept in check.

Imports are read with :mod:`ast` from every ``.py`` file, inside functions too (an import
moved into a function still counts), plus the lazy attribute tables of a package
``__init__`` (``_LAZY``: name -> submodule). ``from pkg import name`` counts as an import of
``pkg.name`` when that is a module, else of ``pkg``.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import ecodistill

PACKAGE = Path(ecodistill.__file__).parent
MAX_LINES = 450  # STYLE.md: 100-400 lines; a longer module must say why it is still one concept
MAX_BASE_MODULES = 7  # top-level modules besides __init__, __main__, api and cli


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, source: str, is_package: bool) -> set[str]:
    """The ecodistill modules ``source`` (module ``name``) imports."""
    here = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "ecodistill"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "ecodistill":
                continue
            found |= {f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names}
        elif (isinstance(node, ast.Assign) and is_package and len(node.targets) == 1
              and getattr(node.targets[0], "id", None) == "_LAZY" and isinstance(node.value, ast.Dict)):
            found |= {f"{name}.{v.value}" for v in node.value.values}  # lazy re-exports of submodules
    return {m for m in found if m != name}


GRAPH = {name: imports_of(name, path.read_text(), path.name == "__init__.py") for name, path in MODULES.items()}


def layer_of(name: str) -> int | None:
    """Index of ``name``'s layer in ``ecodistill.LAYERS`` (-1 for the package root)."""
    if name == "ecodistill":
        return -1
    for i, (_, members) in enumerate(ecodistill.LAYERS):
        if any(name == m or name.startswith(m + ".") for m in members):
            return i
    return None


def layer_label(name: str) -> str:
    i = layer_of(name)
    return "the package root" if i == -1 else f"layer {i + 1} ({ecodistill.LAYERS[i][0]})"


def test_every_import_resolves_to_a_module():
    missing = {(a, b) for a, deps in GRAPH.items() for b in deps if b not in MODULES}
    assert not missing, f"imports of modules that do not exist: {sorted(missing)}"


def test_every_module_has_a_layer():
    orphans = sorted(m for m in MODULES if layer_of(m) is None)
    assert not orphans, f"modules in no layer of ecodistill.LAYERS: {orphans}; add them to a layer"


def test_the_package_root_imports_nothing():
    assert not GRAPH["ecodistill"], "ecodistill/__init__.py must import nothing (any module may read it)"


def test_no_import_goes_upward():
    upward = [f"{a} ({layer_label(a)}) imports {b} ({layer_label(b)})"
              for a, deps in sorted(GRAPH.items()) for b in sorted(deps)
              if layer_of(b) is not None and layer_of(a) is not None and layer_of(b) > layer_of(a)]
    assert not upward, "imports from a lower layer into a higher one:\n" + "\n".join(upward)


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycle():
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():  # the check above can fail
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_a_planted_upward_import_is_named():
    source = "from ..experiments.teacher import teacher_record\n"
    found = imports_of("ecodistill.data.prepare", source, is_package=False)
    assert found == {"ecodistill.experiments.teacher"}
    assert layer_of("ecodistill.experiments.teacher") > layer_of("ecodistill.data.prepare")
    inside_a_function = "def f():\n    from ecodistill import report\n"
    assert imports_of("ecodistill.config", inside_a_function, is_package=False) == {"ecodistill.report"}


def test_the_tree_shows_roles_not_a_flat_list():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__", "api", "cli"))
    assert len(top) <= MAX_BASE_MODULES, f"{len(top)} top-level modules {top}: move them into a subpackage"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    text = MODULES[name].read_text()
    lines = text.count("\n")
    if lines <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert re.search(r"one concept", doc), (
        f"{name} has {lines} lines (> {MAX_LINES}): split it, or say in its docstring why it is one concept")
