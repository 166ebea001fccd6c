"""Source notebooks: outputs cleared, kernelspec set, one `parameters` cell whose first
parameter is `profile = "smoke"`, and every one of them listed in the toc."""
from __future__ import annotations

import ast

import nbformat
import pytest

from ecodistill import book

NOTEBOOKS = sorted(book.NOTEBOOK_DIR.glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_source_is_clean(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.get("kernelspec", {}).get("name"), \
        f"{path.name}: no kernelspec (papermill needs one)"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{path.name}: outputs not cleared"
            assert cell.get("execution_count") is None, f"{path.name}: execution counts not cleared"
    params = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, \
        f"{path.name}: {len(params)} cells tagged 'parameters', need exactly one"
    tree = ast.parse(params[0].source)
    assigns = {t.targets[0].id: t.value for t in tree.body if isinstance(t, ast.Assign)}
    assert "profile" in assigns and ast.literal_eval(assigns["profile"]) == "smoke"
    for value in assigns.values():
        ast.literal_eval(value)  # literals only, so papermill can override them


def test_every_notebook_is_a_chapter():
    chapters = set(book.chapter_notebooks())
    stray = [p.stem for p in NOTEBOOKS if p.stem not in chapters]
    assert not stray, f"notebooks {stray} are not in _toc.yml (as generated/<name>)"


#: Chapters that only render results (or compute the smoke profile's): their cells call
#: builders that render an empty result themselves, so no cell needs an ``else`` branch.
RENDERING = ["02_teacher", "03_distill", "04_results", "05_pi_timings"]


@pytest.mark.parametrize("name", RENDERING)
def test_chapter_cells_have_no_else_branch(name):
    nb = nbformat.read(book.NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        branches = [node.lineno for node in ast.walk(ast.parse(cell.source))
                    if isinstance(node, ast.If) and node.orelse]
        assert not branches, (f"{name}: a cell has an else branch (line {branches[0]}): let the "
                              f"builder return its empty result instead\n{cell.source}")
        long = [line for line in cell.source.splitlines() if len(line) > 100]
        assert not long, f"{name}: code lines over 100 characters: {long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_chapter_names_its_profile(path):
    """Each chapter opens with the note saying which profile's results the page shows."""
    nb = nbformat.read(path, as_version=4)
    assert any("profile_banner(profile)" in c.source for c in nb.cells if c.cell_type == "code"), \
        f"{path.name}: no cell shows report.profile_banner(profile)"
