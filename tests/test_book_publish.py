"""Issue 20, item 8: ``make book`` leaves the working tree clean. Publishing a rebuild whose
chapters differ only in what changes with every build (timings, paths, timestamps, the
appendix's build record, the execution record's host and seconds) writes nothing; a real
change of content is written."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from ecodistill import book

SOURCE = book.PUBLISHED_DIR / "cpu"
pytestmark = pytest.mark.skipif(not (SOURCE / "02_data.ipynb").is_file(), reason="no published cpu chapters")


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    generated, published = tmp_path / "generated", tmp_path / "published"
    generated.mkdir()
    published.mkdir()
    shutil.copy(book.PUBLISHED_DIR / "nbval_sanitize.cfg", published / "nbval_sanitize.cfg")
    monkeypatch.setattr(book, "GENERATED_DIR", generated)
    monkeypatch.setattr(book, "PUBLISHED_DIR", published)
    monkeypatch.setattr(book, "chapter_notebooks", lambda: ["02_data", "99_appendix"])
    return generated, published / "cpu"


def _generate(generated, edit=lambda name, text: text, seconds=1.0, host="vm"):
    for name in ("02_data", "99_appendix"):
        text = (SOURCE / f"{name}.ipynb").read_text()
        (generated / f"{name}.ipynb").write_text(edit(name, text))
    record = {"profile": "cpu", "host": {"host": host, "cpu_count": 2},
              "notebooks": [{"notebook": n, "profile": "cpu", "status": "ok", "parameters": {"profile": "cpu"},
                             "seconds": seconds, "started": "2026-12-07T21:05:37+0000"}
                            for n in ("02_data", "99_appendix")]}
    (generated / "execution.json").write_text(json.dumps(record))


def _snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_a_rebuild_that_changes_only_volatile_records_writes_nothing(dirs):
    generated, folder = dirs
    _generate(generated)
    book.publish("cpu")
    before = _snapshot(folder)
    assert set(before) == {"02_data.ipynb", "99_appendix.ipynb", "execution.json"}

    def volatile(name, text):
        nb = json.loads(text)
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                if out.get("metadata", {}).get("scrapbook", {}).get("name") == "data_seconds":
                    out["data"] = {k: "31.2" for k in out["data"]}  # a glued build timing
                elif name == "99_appendix":  # the build record: commit, seconds, times all differ
                    out.update(json.loads(re.sub(r"\d", "7", json.dumps(out))))
        text = json.dumps(nb, indent=1)
        text = re.sub(r"prepared in \d+(\.\d+)? s on \S+", "prepared in 99.9 s on aarch64", text)  # sanitized
        return re.sub(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d", "2031-01-01T09:00:00", text)

    _generate(generated, volatile, seconds=99.0, host="another-host")
    book.publish("cpu")
    assert _snapshot(folder) == before  # bytes and modification times: git status stays clean


def test_a_change_of_content_is_published(dirs):
    generated, folder = dirs
    _generate(generated)
    book.publish("cpu")
    before = _snapshot(folder)
    text = (SOURCE / "02_data.ipynb").read_text()
    marker = '"text/plain": [\n'
    assert marker in text

    def changed(name, text):
        return text.replace(marker, marker + '    "a new number 0.123\\n",\n', 1) if name == "02_data" else text

    _generate(generated, changed, seconds=5.0)
    book.publish("cpu")
    after = _snapshot(folder)
    assert after["02_data.ipynb"] != before["02_data.ipynb"] and "a new number 0.123" in after["02_data.ipynb"][0].decode()
    assert after["99_appendix.ipynb"] == before["99_appendix.ipynb"]
    assert after["execution.json"] == before["execution.json"]  # only its seconds changed
    record = json.loads((generated / "execution.json").read_text())
    record["notebooks"][0]["status"] = "error"
    (generated / "execution.json").write_text(json.dumps(record))
    book.publish("cpu")
    assert json.loads((folder / "execution.json").read_text())["notebooks"][0]["status"] == "error"
