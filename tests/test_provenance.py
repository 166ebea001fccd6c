"""``git_commit``: the project's own commit, whatever tree ran (ecodistill.utils)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from ecodistill import utils

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
SHA_A = "0123456789abcdef0123456789abcdef01234567"


def git(cwd, *args) -> str:
    out = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def tiny_tree(path):
    (path / "ecodistill").mkdir(parents=True)
    (path / "ecodistill" / "core.py").write_text("x = 1\n")
    (path / "README.md").write_text("readme\n")
    return path


def tiny_repo(path):
    tiny_tree(path)
    git(path, "init", "-q")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "init")
    return git(path, "rev-parse", "--short=12", "HEAD")


@pytest.fixture
def project(monkeypatch):
    """Point ``git_commit`` at a given root, with a clean cache and no inherited stamp."""
    monkeypatch.delenv(utils.COMMIT_ENV, raising=False)
    monkeypatch.setattr(utils, "_COMMIT_CACHE", {})

    def use(root):
        monkeypatch.setattr(utils, "REPO_ROOT", root)
        utils._COMMIT_CACHE.clear()
        return root
    return use


def test_own_checkout_clean_then_dirty(tmp_path, project):
    sha = tiny_repo(project(tmp_path / "proj"))
    assert utils.git_commit() == sha
    (tmp_path / "proj" / "README.md").write_text("changed\n")  # outside ecodistill/: still clean
    (tmp_path / "proj" / "ecodistill" / "new.py").write_text("")  # untracked: still clean
    project(tmp_path / "proj")
    assert utils.git_commit() == sha
    (tmp_path / "proj" / "ecodistill" / "core.py").write_text("x = 2\n")
    project(tmp_path / "proj")
    assert utils.git_commit() == sha + "+dirty"


def test_own_checkout_wins_over_stamps(tmp_path, project, monkeypatch):
    sha = tiny_repo(project(tmp_path / "proj"))
    (tmp_path / "proj" / "COMMIT").write_text(SHA_A)
    monkeypatch.setenv(utils.COMMIT_ENV, SHA_A)
    assert utils.git_commit() == sha


def test_copy_inside_another_repository_never_reports_its_commit(tmp_path, project, monkeypatch):
    outer = tiny_repo(tmp_path / "outer")
    root = project(tiny_tree(tmp_path / "outer" / "vendored" / "proj"))
    assert utils.git_commit() == "unknown"
    (root / "COMMIT").write_text(SHA_A + "\n")
    project(root)
    assert utils.git_commit() == SHA_A[:12]
    monkeypatch.setenv(utils.COMMIT_ENV, "abcdef1+dirty")
    assert utils.git_commit() == "abcdef1+dirty"  # the environment beats the file
    assert outer not in utils.git_commit()


def test_plain_copy_env_file_unknown(tmp_path, project, monkeypatch):
    root = project(tiny_tree(tmp_path / "copy"))
    assert utils.git_commit() == "unknown"
    (root / "COMMIT").write_text(f"{SHA_A[:12]}+dirty\n")
    project(root)
    assert utils.git_commit() == SHA_A[:12] + "+dirty"
    monkeypatch.setenv(utils.COMMIT_ENV, SHA_A.upper())
    assert utils.git_commit() == SHA_A[:12]


def test_malformed_stamp_is_ignored_with_a_warning(tmp_path, project, monkeypatch):
    root = project(tiny_tree(tmp_path / "copy"))
    (root / "COMMIT").write_text(SHA_A)
    monkeypatch.setenv(utils.COMMIT_ENV, "main")
    with pytest.warns(UserWarning, match="ECODISTILL_COMMIT"):
        assert utils.git_commit() == SHA_A[:12]


def test_result_is_cached_per_process(tmp_path, project, monkeypatch):
    tiny_repo(project(tmp_path / "proj"))
    first = utils.git_commit()
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    assert [utils.git_commit() for _ in range(100)] == [first] * 100
    assert calls == []


def test_project_itself_records_its_commit(monkeypatch):
    """The real checkout (when this is one) records the HEAD that git reports."""
    monkeypatch.setattr(utils, "_COMMIT_CACHE", {})
    try:
        top = git(utils.REPO_ROOT, "rev-parse", "--show-toplevel")
    except subprocess.CalledProcessError:
        pytest.skip("not a git checkout")
    if top != str(utils.REPO_ROOT.resolve()):
        pytest.skip("the project is not the top of its checkout")
    before = git(utils.REPO_ROOT, "rev-parse", "--short=12", "HEAD")
    commit = utils.git_commit()
    after = git(utils.REPO_ROOT, "rev-parse", "--short=12", "HEAD")  # others may commit meanwhile
    assert commit.split("+")[0] in {before, after}
