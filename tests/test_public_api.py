"""The user's surface: every ecodistill name the README, the chapters and the book's pages
import or call exists, and the public API (:mod:`ecodistill.api`) resolves name by name."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

import ecodistill
from ecodistill import api

ROOT = Path(ecodistill.__file__).parent.parent


def _code_of_readme() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```(?:python|py)\n(.*?)```", text, flags=re.S)


def _code_of_notebooks() -> list[str]:
    blocks = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                blocks.append("".join(cell["source"]))
    return blocks


def _code_of_pages() -> list[str]:
    blocks = []
    for path in sorted((ROOT / "book").glob("*.md")):
        blocks += re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", path.read_text(), flags=re.S)
    return blocks


def used_names(blocks: list[str]) -> set[tuple[str, str]]:
    """``(module, name)`` for every ``from ecodistill... import name`` and every
    ``alias.attr`` where ``alias`` is an imported ecodistill module."""
    used: set[tuple[str, str]] = set()
    for code in blocks:
        try:
            tree = ast.parse(code)
        except SyntaxError:  # a cell with IPython magics: read its import lines only
            tree = ast.parse("\n".join(line for line in code.splitlines() if line.startswith(("from ", "import "))))
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ecodistill":
                for a in node.names:
                    used.add((node.module, a.name))
                    full = f"{node.module}.{a.name}"
                    if importlib.util.find_spec(node.module) and _is_module(full):
                        aliases[a.asname or a.name] = full
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "ecodistill":
                        used.add((a.name, ""))
                        aliases[a.asname or a.name] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases):
                used.add((aliases[node.value.id], node.attr))
    return used


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


USED = sorted(used_names(_code_of_readme() + _code_of_notebooks() + _code_of_pages()))


def test_the_readme_and_chapters_use_ecodistill():  # the parametrised check below is not vacuous
    modules = {m for m, _ in USED}
    assert {"ecodistill.data", "ecodistill.models", "ecodistill.losses", "ecodistill.report"} <= modules
    assert ("ecodistill.data", "read_era5") in USED and ("ecodistill.losses", "register_loss") in USED


@pytest.mark.parametrize("module, name", USED)
def test_every_used_name_exists(module, name):
    mod = importlib.import_module(module)
    if name:
        assert hasattr(mod, name) or _is_module(f"{module}.{name}"), (
            f"{module}.{name} is used in the README or a chapter but does not exist")


@pytest.mark.parametrize("name", api.__all__)
def test_the_public_api_resolves(name):
    obj = getattr(api, name)
    assert obj.__doc__, f"ecodistill.api.{name} has no docstring"


def test_the_api_lists_what_the_readme_promises():
    promised = {"read_era5", "read_ndvi", "make_dataset", "write_dataset", "register_loss", "register_family",
                "load_fourcastnet_backbone", "train_student", "run_teacher_pipeline", "run_matrix", "get_profile"}
    assert promised <= set(api.__all__)
