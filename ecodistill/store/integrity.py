"""Reading back what was kept: JSON/NPY files and checkpoints that say what is wrong.

Every reader here turns a missing, empty, truncated or malformed file into **one line**
that names the file, what it is, and how to make it again (``fix``), instead of a
traceback from deep inside ``json``, NumPy or ``torch.load``:

* :func:`read_json`, :func:`read_npy`, :func:`read_npz` -- metadata, arrays and archives;
* :func:`save_verified` / :func:`load_verified` -- ``torch.save`` with a SHA-256 sidecar
  (``<file>.sha256``, the ``sha256sum`` format, so ``sha256sum -c`` checks it too), written
  after the checkpoint and atomically; the loader checks the sidecar (or an expected hash)
  and reads with ``weights_only=True``, so a checkpoint can never run code;
* :func:`write_sha256`, :func:`verify_sha256` -- the sidecar alone, for any file.

Explained in the README ("Your own data and a real FourCastNet checkpoint").
"""
from __future__ import annotations

import json
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import atomic_torch_save, atomic_write_text, sha256_file

__all__ = ["load_verified", "read_json", "read_npy", "read_npz", "save_verified", "sha256_path",
           "verify_sha256", "write_sha256"]


def _missing(path: Path, what: str, fix: str) -> FileNotFoundError:
    return FileNotFoundError(f"{what} {path} not found; {fix}")


def _empty_or_missing(path: Path, what: str, fix: str) -> None:
    if not path.is_file():
        raise _missing(path, what, fix)
    if path.stat().st_size == 0:
        raise ValueError(f"{what} {path} is empty (0 bytes: an interrupted write?); {fix}")


def read_json(path: str | Path, what: str = "JSON file", fix: str = "write it again") -> Any:
    """The parsed JSON of ``path``.

    Args:
        path: the file.
        what: what the file is, for the message (e.g. ``"run record"``).
        fix: how to make the file again (e.g. ``"rerun `python -m ecodistill teacher`"``).

    Raises:
        FileNotFoundError: the file is missing (one line: file, what, fix).
        ValueError: the file is empty, truncated or not JSON (one line, with line/column).
    """
    path = Path(path)
    _empty_or_missing(path, what, fix)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{what} {path} is not UTF-8 text (byte {err.start}); {fix}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {path} is not valid JSON ({err.msg} at line {err.lineno} column "
                         f"{err.colno}: truncated or edited?); {fix}") from None


def read_npy(path: str | Path, what: str = "array file", fix: str = "write it again",
             mmap_mode: str | None = None) -> np.ndarray:
    """``np.load`` of one ``.npy`` file (no pickles), with one-line errors.

    Raises:
        FileNotFoundError, ValueError: as :func:`read_json`.
    """
    path = Path(path)
    _empty_or_missing(path, what, fix)
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{what} {path} is damaged or truncated ({_first_line(err)}); "
                         f"{fix}") from None


def read_npz(path: str | Path, what: str = "array archive", fix: str = "write it again") -> dict:
    """All arrays of an ``.npz`` archive (read eagerly, no pickles), with one-line errors.

    Raises:
        FileNotFoundError, ValueError: as :func:`read_json`.
    """
    path = Path(path)
    _empty_or_missing(path, what, fix)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise ValueError(f"{what} {path} is damaged or truncated ({_first_line(err)}); "
                         f"{fix}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:160]}" if text else type(err).__name__


def sha256_path(path: str | Path) -> Path:
    """The sidecar of ``path``: ``<path>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def write_sha256(path: str | Path) -> str:
    """Hash ``path`` and write ``<path>.sha256`` (``<hex>  <name>``) atomically; return the hex."""
    path = Path(path)
    digest = sha256_file(path)
    atomic_write_text(sha256_path(path), f"{digest}  {path.name}\n")
    return digest


def verify_sha256(path: str | Path, expected: str | None = None, what: str = "file",
                  fix: str = "make it again", require: bool = False) -> str | None:
    """Check ``path`` against ``expected`` or its ``.sha256`` sidecar.

    Args:
        path: the file.
        expected: a known SHA-256 (hex); else the sidecar's.
        what, fix: for the message.
        require: refuse a file that has neither (default: return None and check nothing).

    Returns:
        The file's SHA-256 when one was checked, else None.

    Raises:
        ValueError: the hashes differ, or a sidecar is unreadable (one line each).
    """
    path = Path(path)
    side = sha256_path(path)
    source = "the expected hash"
    if expected is None and side.is_file():
        text = side.read_text(encoding="utf-8", errors="replace").split()
        if not text or not re.fullmatch(r"[0-9a-fA-F]{64}", text[0]):
            raise ValueError(f"sidecar {side} does not hold a SHA-256 (damaged?); delete it and "
                             f"write it again with ecodistill.store.integrity.write_sha256, or {fix}")
        expected, source = text[0], str(side)
    if expected is None:
        if require:
            raise ValueError(f"{what} {path} has no SHA-256 sidecar {side.name}; {fix}")
        return None
    digest = sha256_file(path)
    if digest.lower() != expected.strip().lower():
        raise ValueError(f"{what} {path} is damaged: its SHA-256 {digest[:12]}... differs from "
                         f"{expected[:12]}... in {source}; {fix}")
    return digest


def save_verified(obj: Any, path: str | Path) -> Path:
    """``torch.save`` ``obj`` atomically, then its SHA-256 sidecar (atomically, after it).

    A crash between the two leaves a checkpoint without a sidecar: :func:`load_verified`
    loads it with a warning (or refuses it with ``unverified="refuse"``); a crash before
    leaves the previous checkpoint and its sidecar untouched.
    """
    path = atomic_torch_save(obj, path)
    write_sha256(path)
    return path


def load_verified(path: str | Path, map_location: Any = "cpu", what: str = "checkpoint",
                  fix: str = "make it again", sha256: str | None = None,
                  unverified: str = "warn") -> Any:
    """Load a torch file saved by :func:`save_verified` (or any plain ``torch.save`` file).

    Args:
        path: the file.
        map_location: as for ``torch.load``.
        what: what the file is (``"teacher checkpoint"``), for messages.
        fix: how to make it again (``"rerun `python -m ecodistill teacher --force`"``).
        sha256: a known SHA-256 to check instead of the sidecar (e.g. a published one).
        unverified: what to do with a file that has neither sidecar nor ``sha256``:
            ``"warn"`` (load it with a warning), ``"allow"`` (load it silently; e.g. a public
            checkpoint, checked by its content instead) or ``"refuse"``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: empty, damaged (hash mismatch), not a torch file, or holding Python
            objects other than tensors and plain containers -- one line naming the file.
    """
    import torch

    if unverified not in ("warn", "allow", "refuse"):
        raise ValueError(f"unverified={unverified!r}: use 'warn', 'allow' or 'refuse'")
    path = Path(path)
    _empty_or_missing(path, what, fix)
    checked = verify_sha256(path, sha256, what, fix, require=unverified == "refuse")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 -- every failure becomes one line naming the file
        raise ValueError(f"{what} {path} {_torch_problem(path, err)}; {fix}") from None
    if checked is None and unverified == "warn":
        warnings.warn(f"{what} {path} has no SHA-256 sidecar: loaded unverified", stacklevel=2)
    return obj


def _exists(dotted: str) -> bool:
    """True when ``dotted`` (``module.attr``) names something importable."""
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except (ImportError, ValueError):
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def _torch_problem(path: Path, err: Exception) -> str:
    """What went wrong in ``torch.load``, in a few words (never torch's multi-line hint)."""
    text = str(err)
    glob = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if glob and not _exists(glob.group(1)):
        return (f"is damaged: its contents name {glob.group(1)!r}, which exists nowhere (flipped or "
                "overwritten bytes)")
    if glob:
        return (f"holds the Python object {glob.group(1)}, which weights_only=True refuses (a "
                "checkpoint must hold only tensors and plain containers: re-save its state dicts "
                "alone)")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != b"PK\x03\x04" and not head.startswith(b"\x80"):  # zip (torch >= 1.6), old pickle
        return ("is not a PyTorch file (neither a zip archive nor a pickle: random or overwritten "
                "bytes?)")
    if "weights only load failed" in text.lower() or "weights_only" in text:
        return ("is damaged: it cannot be read as a PyTorch checkpoint (its header or contents are "
                "overwritten or truncated)")  # never torch's hint to load it with weights_only=False
    if isinstance(err, (RuntimeError, EOFError, OSError)) or "zip" in text.lower():
        return f"is damaged or truncated ({_first_line(err)})"
    return f"cannot be read ({_first_line(err)})"
