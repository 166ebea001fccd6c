"""Reading back what was kept: one-line errors for missing, empty, truncated and malformed
JSON / NPY / NPZ files (issue 14, case 5: every read error names the file and the fix)."""
from __future__ import annotations

import numpy as np
import pytest

from ecodistill.store.integrity import read_json, read_npy, read_npz

FIX = "rerun `python -m ecodistill teacher`"


def _check(err, path):
    text = str(err.value)
    assert str(path) in text and FIX in text and "\n" not in text, text


@pytest.mark.parametrize("content, kind, match", [
    (None, FileNotFoundError, "not found"),
    (b"", ValueError, "is empty"),
    (b'{"run_id": "abc", "rows": [1, 2', ValueError, "not valid JSON .*truncated"),
    (b"{'single': 'quotes'}", ValueError, "not valid JSON"),
    (b"\xff\xfe\x00garbage", ValueError, "not UTF-8"),
])
def test_read_json_errors_name_the_file_and_the_fix(tmp_path, content, kind, match):
    path = tmp_path / "teacher.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(kind, match=match) as err:
        read_json(path, "teacher record", FIX)
    _check(err, path)


def test_read_json_reads_json(tmp_path):
    (tmp_path / "ok.json").write_text('{"a": [1, 2]}')
    assert read_json(tmp_path / "ok.json") == {"a": [1, 2]}


def test_read_npy_and_npz_errors(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(1000.0))
    np.savez(tmp_path / "b.npz", x=np.arange(1000.0))
    assert read_npy(tmp_path / "a.npy", mmap_mode="r")[3] == 3.0 and read_npz(tmp_path / "b.npz")["x"][5] == 5.0
    for name, reader in (("a.npy", read_npy), ("b.npz", read_npz)):
        path = tmp_path / name
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(ValueError, match="damaged or truncated") as err:
            reader(path, "cached sums", FIX)
        _check(err, path)
        path.write_bytes(b"")
        with pytest.raises(ValueError, match="is empty") as err:
            reader(path, "cached sums", FIX)
        _check(err, path)
    (tmp_path / "a.npy").write_bytes(b"\x93NUMPY junk")  # a damaged header, memory-mapped
    with pytest.raises(ValueError, match="damaged or truncated"):
        read_npy(tmp_path / "a.npy", mmap_mode="r")
