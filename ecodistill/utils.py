"""Small shared helpers: paths, seeding, atomic writes, hashing, provenance.

Every module that writes a file goes through :func:`atomic_write_bytes` (or one of
its wrappers), so an interrupted run never leaves a half-written result or
checkpoint behind.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import random
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def repo_root() -> Path:
    """The project root (the folder holding ``ecodistill/``, ``book/``, ``results/``)."""
    return REPO_ROOT


def results_dir(profile: str) -> Path:
    """``results/<profile>/`` under the project root (override with ``ECODISTILL_RESULTS``)."""
    base = Path(os.environ.get("ECODISTILL_RESULTS", REPO_ROOT / "results"))
    return base / profile


def cache_dir() -> Path:
    """Where built datasets and checkpoints are cached (``ECODISTILL_CACHE`` or ``.cache/``)."""
    path = Path(os.environ.get("ECODISTILL_CACHE", REPO_ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def shared_data_dir() -> Path:
    """The real-data folder: ``ECODISTILL_SHARED_DATA`` or ``../shared/data`` beside the root.

    Raises:
        FileNotFoundError: with the download instructions, when the folder is absent.
    """
    path = Path(os.environ.get("ECODISTILL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        raise FileNotFoundError(
            f"real-data folder {path} not found. Put the data beside the project as "
            "../shared/data, or set ECODISTILL_SHARED_DATA; see README.md 'Data' for where "
            "to download each set."
        )
    return path


def seed_everything(seed: int) -> None:
    """Seed ``random``, NumPy and torch (CPU and CUDA); make cuDNN deterministic."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Atomic text write (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Atomic JSON write, keys sorted, so equal objects give equal files."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` into memory, then an atomic write: a checkpoint is whole or absent."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def stable_hash(obj: Any, n: int = 10) -> str:
    """Short hex hash of a JSON-serialisable object (sorted keys): a run's identity."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


#: Where :func:`git_commit` looks when the project tree that runs is not its own git checkout.
COMMIT_ENV = "ECODISTILL_COMMIT"
COMMIT_FILE = "COMMIT"
_COMMIT_RE = re.compile(r"([0-9a-f]{7,40})(\+dirty)?")
_COMMIT_CACHE: dict[tuple[str, str], str] = {}
#: Git variables that would point git at another repository than the project root.
_GIT_REDIRECTS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR")


def git_commit() -> str:
    """The project's own commit, as result rows record it: ``<sha>`` or ``<sha>+dirty``.

    Found once per process (and project root), first match wins:

    1. git, only when the git checkout's top level *is* the project root, so a copy of the
       tree inside another repository never reports that repository's commit; ``+dirty``
       when tracked files under ``ecodistill/`` have uncommitted changes;
    2. the ``ECODISTILL_COMMIT`` environment variable;
    3. a ``COMMIT`` file at the project root, written by whoever copied the tree without its
       ``.git`` (``scripts/fetch_gpu_wheels.sh`` writes it before a GPU command);
    4. ``unknown``.

    Values from 2 and 3 must look like a commit (7-40 hex digits, optionally ``+dirty``;
    longer than 12 digits is shortened to 12, as git gives it); others are ignored with a
    warning. Explained in the README ("The full profile on a GPU").
    """
    key = (str(REPO_ROOT), os.environ.get(COMMIT_ENV, ""))
    if key not in _COMMIT_CACHE:
        _COMMIT_CACHE[key] = _own_git_commit(REPO_ROOT) or _stamped_commit(REPO_ROOT) or "unknown"
    return _COMMIT_CACHE[key]


def _own_git_commit(root: Path) -> str | None:
    """``git rev-parse`` of ``root`` when ``root`` is the top of its own checkout, else None."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REDIRECTS}

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "--no-optional-locks", "-C", str(root), *args], env=env,
                              capture_output=True, text=True, timeout=10, check=False)

    try:
        out = git("rev-parse", "--show-toplevel", "--short=12", "HEAD")
        lines = out.stdout.split()
        if out.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != root.resolve():
            return None
        status = git("status", "--porcelain", "--untracked-files=no", "--", "ecodistill")
        dirty = status.returncode != 0 or bool(status.stdout.strip())
        return lines[1] + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _stamped_commit(root: Path) -> str | None:
    """The commit named by ``ECODISTILL_COMMIT`` or the ``COMMIT`` file, when it looks like one."""
    import warnings

    sources = [(f"${COMMIT_ENV}", os.environ.get(COMMIT_ENV, ""))]
    path = root / COMMIT_FILE
    try:
        sources.append((str(path), path.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        pass
    for where, text in sources:
        value = text.strip().lower()
        if not value:
            continue
        match = _COMMIT_RE.fullmatch(value)
        if match is None:
            warnings.warn(f"ignoring {where}={value[:60]!r}: not a git commit (7-40 hex digits, "
                          "optionally '+dirty')", stacklevel=3)
            continue
        return match.group(1)[:12] + (match.group(2) or "")
    return None


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide the numbers (for configs and timings)."""
    import importlib.metadata as md
    import platform

    names = ["torch", "numpy", "xarray", "onnxruntime", "scikit-learn", "pandas"]
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (x86 ``model name``; a Pi's ``Model``)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for key in ("model name", "Model", "Hardware", "CPU part"):
        for line in text.splitlines():
            if line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def host_info() -> dict:
    """Host facts for an execution record: host name, machine, Python, core count, CPU model."""
    return {"host": platform.node(), "machine": platform.machine(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "processor": cpu_model()}
