"""The book's build machinery without building: which profile ``auto`` means, how an executed
notebook becomes a chapter (default parameters removed, code hidden behind a toggle, no
per-run timestamps), and what may be published."""
from __future__ import annotations

import nbformat
import pytest

from ecodistill import book


def test_auto_is_the_most_complete_committed_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    assert book.resolve_profile("auto") == "cpu"
    assert book.resolve_profile("smoke") == "smoke"
    runs = tmp_path / "full" / "runs"
    runs.mkdir(parents=True)
    (runs / "scratch-afno_m-final-0123456789.csv").write_text("")
    assert book.resolve_profile("auto") == "cpu"  # one arm alone is not a comparison
    (runs / "kd-l1-offline-afno_m_from_teacher-final-0123456789.csv").write_text("")
    assert book.resolve_profile("auto") == "full"
    assert "auto" in book.BOOK_PROFILES


def test_an_executed_notebook_becomes_a_chapter(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"),
                nbformat.v4.new_code_cell("profile = 'smoke'"),
                nbformat.v4.new_code_cell("profile = 'cpu'"),
                nbformat.v4.new_code_cell("1 + 1"),
                nbformat.v4.new_code_cell("2 + 2")]
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.cells[2].metadata["tags"] = ["injected-parameters"]
    nb.cells[4].metadata["tags"] = ["remove-input"]
    nb.cells[3].metadata["papermill"] = {"duration": 0.1, "start_time": "now"}
    nb.cells[3].metadata["execution"] = {"iopub.status.busy": "now"}
    nb.metadata["papermill"] = {"start_time": "now", "end_time": "later", "duration": 1.0,
                                "parameters": {"profile": "cpu"}}
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    book.prepare_for_book(path)
    out = nbformat.read(path, as_version=4)
    tags = [c.metadata.get("tags", []) for c in out.cells]
    assert tags[1] == ["parameters", "remove-cell"]
    assert tags[2] == ["injected-parameters", "remove-cell"] and tags[3] == ["hide-input"]
    assert tags[4] == ["remove-input"] and tags[0] == []
    assert "papermill" not in out.cells[3].metadata and "execution" not in out.cells[3].metadata
    assert out.metadata["papermill"] == {"parameters": {"profile": "cpu"}}
    assert out.cells[2].id == "injected-parameters"  # not papermill's random id: no churn


def test_smoke_is_never_published():
    with pytest.raises(ValueError, match="never published"):
        book.publish("smoke")
    assert book.ensure_results("cpu") == 0.0  # cpu and full chapters only read results
