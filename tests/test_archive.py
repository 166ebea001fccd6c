"""Packing results into ≤ 8 checked files and restoring them (ecodistill.store.archive)."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time

import pytest

from ecodistill import cli
from ecodistill.store import archive
from ecodistill.store.archive import ArchiveError, pack_results, unpack
from ecodistill.utils import sha256_file

PROFILE = "demo"


@pytest.fixture
def results(tmp_path, monkeypatch):
    """A fake ``results/demo/`` in tmp (``ECODISTILL_RESULTS``) with ~60 kB of incompressible data."""
    root = tmp_path / "results"
    monkeypatch.setenv("ECODISTILL_RESULTS", str(root))
    src = root / PROFILE
    (src / "runs").mkdir(parents=True)
    (src / "teacher").mkdir()
    (src / "runs" / "a-123.csv").write_text("run_id,metric,value\na-123,r2,0.5\n")
    (src / "runs" / "a-123.json").write_text('{"lr": 0.001}\n')
    (src / "teacher" / "pred_test.part000.npy").write_bytes(os.urandom(40_000))
    (src / "teacher" / "pred_test.manifest.json").write_text("{}\n")
    (src / "timings.csv").write_bytes(os.urandom(20_000))
    return src


def files_of(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def packed(tmp_path, **kw):
    out = tmp_path / "out"
    kw.setdefault("max_part_bytes", 16_000)
    return out, pack_results(PROFILE, out, **kw)


def test_pack_unpack_roundtrip(results, tmp_path):
    before = files_of(results)
    out, manifest = packed(tmp_path, summary={"seconds": 12.5})
    written = sorted(p.name for p in out.iterdir())
    assert len(written) <= 8 and all(p.is_file() for p in out.iterdir())  # no sub-folders
    assert len(manifest["parts"]) >= 4  # the tiny part size forces several parts
    assert all(p.stat().st_size <= 16_000 for p in out.iterdir() if ".part" in p.name)
    assert "gpu_run.json" in written and "results-demo.manifest.json" in written
    for part in manifest["parts"]:
        assert sha256_file(out / part["name"]) == part["sha256"]
    summary = json.loads((out / "gpu_run.json").read_text())
    assert summary["seconds"] == 12.5 and summary["git_commit"] == manifest["git_commit"]
    assert manifest["git_commit"]

    fresh = tmp_path / "fresh"
    restored = unpack(out, fresh)
    after = files_of(fresh / PROFILE)
    assert {k: v for k, v in after.items() if k != "gpu_run.json"} == before
    assert json.loads(after["gpu_run.json"]) == summary
    assert sorted(restored) == sorted(fresh / PROFILE / k for k in after)
    assert not [p for p in fresh.iterdir() if p.name.startswith(".unpack-")]  # temp dir removed


def test_unpack_defaults_to_results_dir(results, tmp_path):
    out, _ = packed(tmp_path)
    (results / "runs" / "a-123.csv").unlink()
    (results / "timings.csv").write_text("changed\n")
    unpack(out)
    assert (results / "runs" / "a-123.csv").is_file()
    assert (results / "timings.csv").read_bytes() != b"changed\n"


def test_since_packs_only_new_files(results, tmp_path):
    old = time.time() - 3600
    for path in results.rglob("*"):
        os.utime(path, (old, old))
    start = time.time() - 1
    (results / "runs" / "b-456.csv").write_text("new\n")
    _, manifest = packed(tmp_path, since=start)
    assert [f["path"] for f in manifest["files"]] == ["runs/b-456.csv"]


def test_too_big_fails_before_writing(results, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ArchiveError, match="does not fit in 6 parts.*leave out the largest.*pred_test"):
        pack_results(PROFILE, out, max_part_bytes=4_000, summary={})
    assert not out.exists()


def test_stale_parts_are_replaced(results, tmp_path):
    out, first = packed(tmp_path, max_part_bytes=10_000)
    (results / "teacher" / "pred_test.part000.npy").unlink()
    _, second = packed(tmp_path, max_part_bytes=10_000)
    assert len(second["parts"]) < len(first["parts"])
    assert len(list(out.glob("*.part*"))) == len(second["parts"])
    unpack(out, tmp_path / "fresh")


def test_corrupt_part_is_refused(results, tmp_path):
    out, manifest = packed(tmp_path)
    part = out / manifest["parts"][1]["name"]
    data = bytearray(part.read_bytes())
    data[100] ^= 0xFF
    part.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=f"part {part.name} is corrupt") as err:
        unpack(out, tmp_path / "fresh")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "fresh" / PROFILE).exists()


def test_missing_and_extra_parts_are_refused(results, tmp_path):
    out, manifest = packed(tmp_path)
    last = out / manifest["parts"][-1]["name"]
    extra = out / "results-demo.tar.gz.part99"
    extra.write_bytes(b"x")
    with pytest.raises(ArchiveError, match="part results-demo.tar.gz.part99 .*not listed"):
        unpack(out, tmp_path / "fresh")
    extra.unlink()
    last.unlink()
    with pytest.raises(ArchiveError, match=f"part {last.name} is missing"):
        unpack(out, tmp_path / "fresh")


def _forge(out, members: list[tuple[str, bytes | None]]):
    """A one-part archive with a valid manifest around arbitrary members (data None: a symlink)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    blob = gzip.compress(buf.getvalue())
    out.mkdir()
    name = "results-demo.tar.gz.part00"
    (out / name).write_bytes(blob)
    sha = hashlib.sha256(blob).hexdigest()
    manifest = {"format": archive.FORMAT, "profile": PROFILE, "archive": "results-demo.tar.gz",
                "bytes": len(blob), "sha256": sha, "parts": [{"name": name, "bytes": len(blob), "sha256": sha}],
                "files": [{"path": "x.csv", "bytes": 1, "sha256": hashlib.sha256(b"x").hexdigest()}]}
    (out / "results-demo.manifest.json").write_text(json.dumps(manifest))


def test_forged_archive_with_valid_members_unpacks(tmp_path):
    _forge(tmp_path / "out", [("results/demo/x.csv", b"x")])
    assert unpack(tmp_path / "out", tmp_path / "fresh") == [tmp_path / "fresh" / PROFILE / "x.csv"]


@pytest.mark.parametrize("name", ["results/demo/../../evil.txt", "/etc/evil", "results/other/x.csv",
                                  "results/demo/../demo2/x.csv", "../evil.txt"])
def test_path_traversal_is_refused(tmp_path, name):
    out = tmp_path / "out"
    _forge(out, [("results/demo/x.csv", b"x"), (name, b"evil")])
    with pytest.raises(ArchiveError, match="escapes results/demo/") as err:
        unpack(out, tmp_path / "fresh")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "fresh" / PROFILE).exists()


def test_link_member_is_refused(tmp_path):
    _forge(tmp_path / "out", [("results/demo/x.csv", b"x"), ("results/demo/link", None)])
    with pytest.raises(ArchiveError, match="'results/demo/link' is not a regular file"):
        unpack(tmp_path / "out", tmp_path / "fresh")


def test_cli_pack_and_unpack_exit_codes(results, tmp_path, capsys, monkeypatch):
    assert archive in cli.COMMAND_MODULES
    monkeypatch.setattr(cli, "COMMAND_MODULES", (archive,))  # only the commands this test runs
    out = tmp_path / "out"
    assert cli.main(["pack", "--profile", PROFILE, "--out", str(out)]) == 0
    assert cli.main(["unpack", str(out), "--dest", str(tmp_path / "fresh")]) == 0
    assert "restored 5 files" in capsys.readouterr().out
    manifest = json.loads((out / "results-demo.manifest.json").read_text())
    (out / manifest["parts"][0]["name"]).write_bytes(b"broken")
    assert cli.main(["unpack", str(out), "--dest", str(tmp_path / "fresh2")]) != 0
    err = capsys.readouterr().err
    assert "is corrupt" in err and len(err.strip().splitlines()) == 2  # the error + the debug hint
    assert cli.main(["unpack", str(tmp_path / "nowhere")]) != 0
