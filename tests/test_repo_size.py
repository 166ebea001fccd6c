"""The tracked tree stays small enough to send to the GPU machine (≤ 64 MiB there).

Full-profile teacher predictions and checkpoints come back from the GPU inside the packed
archive (``python -m ecodistill unpack``) and stay out of git (see ``.gitignore``).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from ecodistill.utils import REPO_ROOT

MAX_TREE_BYTES = 40 * 10**6  # 40 MB: leaves room below the GPU machine's 64 MiB for wheels/ and COMMIT
MAX_FILE_BYTES = 16 * 2**20  # nothing bigger can come back from the GPU machine either
MAX_STUDENT_CKPT_BYTES = 8 * 10**6


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, check=False)


@pytest.fixture(scope="module")
def tracked() -> dict[str, int]:
    """Tracked path -> size in bytes (files deleted in the working tree are left out)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    top = _git("rev-parse", "--show-toplevel")
    if top.returncode != 0 or Path(top.stdout.decode().strip()).resolve() != REPO_ROOT.resolve():
        pytest.skip("not the project's own git checkout")
    names = _git("ls-files", "-z").stdout.decode().split("\0")
    sizes = {}
    for name in filter(None, names):
        path = REPO_ROOT / name
        if path.is_file() and not path.is_symlink():
            sizes[name] = path.stat().st_size
    return sizes


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def test_tracked_tree_under_40_mb(tracked):
    total = sum(tracked.values())
    largest = sorted(tracked.items(), key=lambda kv: -kv[1])[:5]
    assert total < MAX_TREE_BYTES, (
        f"tracked tree is {_mb(total)} (limit {_mb(MAX_TREE_BYTES)}); largest: "
        + ", ".join(f"{k} ({_mb(v)})" for k, v in largest))


def test_no_tracked_file_over_16_mib(tracked):
    big = {k: v for k, v in tracked.items() if v > MAX_FILE_BYTES}
    assert not big, f"tracked files over 16 MiB: {big}"


def test_checkpoints_are_small_students_only(tracked):
    bad = {k: v for k, v in tracked.items() if k.endswith((".pt", ".pth", ".ckpt"))
           and not (PurePosixPath(k).match("results/*/students/*.pt") and v <= MAX_STUDENT_CKPT_BYTES)}
    assert not bad, f"only student checkpoints of ≤ 8 MB under results/<profile>/students/ may be committed: {bad}"


def test_full_profile_predictions_are_not_tracked(tracked):
    bad = [k for k in tracked if PurePosixPath(k).match("results/full/teacher/pred_*")
           or k.startswith("results/full/teacher/pred_") or (k.startswith("results/full/") and k.endswith(".npy"))]
    assert not bad, f"full-profile teacher predictions are never committed: {bad[:5]}"


@pytest.mark.parametrize("path", [
    "results/full/teacher/pred_train.part000.npy", "results/full/teacher/pred_test.manifest.json",
    "results/full/teacher/pred_teacher-afno_pretrained-abc/pred_test.manifest.json",
    "results/full/teacher/pred_teacher-afno_pretrained-abc/run.json",
    "results/cpu/teacher/.staging-pred_teacher-x-123/pred_test.manifest.json",
    "results/full/checkpoints/teacher.pt", ".cache/full/checkpoints/teacher-x.pt", "results/full/x.npy",
    "wheels/tqdm-4.70.1-py3-none-any.whl", ".gpu_site/tqdm/__init__.py", "COMMIT",
])
def test_large_outputs_are_ignored(tracked, path):
    assert _git("check-ignore", "-q", "--no-index", path).returncode == 0, f"{path} is not git-ignored"


@pytest.mark.parametrize("path", [
    "results/full/runs/teacher-afno-abc.csv", "results/full/teacher/teacher.json",
    "results/full/gpu_run.json", "results/cpu/students/kd-mlp_s-final-abc.pt",
    "results/cpu/teacher/pred_teacher-afno_pretrained-abc/pred_test.manifest.json",
])
def test_result_files_are_not_ignored(tracked, path):
    assert _git("check-ignore", "-q", "--no-index", path).returncode == 1, f"{path} is git-ignored"
