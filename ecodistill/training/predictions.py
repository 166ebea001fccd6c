"""Predictions for whole splits, and their compact, checksummed storage.

:func:`predict` runs a model over a loader (eval mode, no gradients, bf16 autocast on CUDA);
:func:`predict_land` keeps land cells only; :func:`save_predictions` writes them as
``<=16 MiB`` ``.npy`` chunks with a sha256 manifest and :func:`load_predictions` verifies
every chunk on the way back: what the teacher leaves for offline distillation.

Explained in book/generated/02_teacher.ipynb ("Predictions for the students").
"""
from __future__ import annotations

import io
import json
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.batch import Batch
from ..utils import atomic_write_bytes, atomic_write_json, sha256_file

_NP_DTYPES = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


def _batches_out(model: nn.Module, loader: Any, device: str | torch.device) -> Any:
    """Yield ``(b, c, h, w)`` float32 outputs of ``model`` over ``loader`` (eval, no grad)."""
    dev = torch.device(device)
    model = model.to(dev)
    was_training = model.training
    model.eval()
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else nullcontext()
    try:
        with torch.no_grad(), amp:
            for batch in loader:
                x = batch.x if isinstance(batch, Batch) else batch["x"] if isinstance(batch, Mapping) else batch
                yield model(x.to(dev, non_blocking=True)).float()
    finally:
        model.train(was_training)


def predict(model: nn.Module, loader: Any, device: str | torch.device = "cpu",
            dtype: torch.dtype = torch.float16) -> np.ndarray:
    """Predictions ``(n, c, h, w)`` for a whole split, in ``dtype`` (NumPy).

    Runs in eval mode without gradients (bf16 autocast on CUDA); the loader must not shuffle
    (its order is the output's order). Batches are :class:`~ecodistill.data.batch.Batch` es,
    dicts with ``x`` or plain tensors.
    """
    if dtype not in _NP_DTYPES:
        raise ValueError(f"predict: dtype {dtype} has no NumPy equivalent; use float16/32/64")
    parts = [out.to(dtype).cpu().numpy() for out in _batches_out(model, loader, device)]
    if not parts:
        raise ValueError("predict: the loader yielded no batches (empty split?)")
    return np.concatenate(parts)


def predict_land(model: nn.Module, loader: Any, land_mask: Any, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float16) -> np.ndarray:
    """Compact predictions on land cells only: ``(n, n_land)`` (``(n, c, n_land)`` if c > 1).

    Args:
        land_mask: ``(h, w)`` bool; cells are taken in row-major order (as ``field[land_mask]``).
    """
    land = torch.as_tensor(np.asarray(land_mask, dtype=bool))
    if land.ndim != 2 or not land.any():
        raise ValueError("predict_land: land_mask must be a (h, w) bool map with at least one land cell")
    parts = []
    for out in _batches_out(model, loader, device):
        if out.shape[-2:] != land.shape:
            raise ValueError(f"predict_land: model output grid {tuple(out.shape[-2:])} != land_mask "
                             f"{tuple(land.shape)}; pass the land mask of this grid")
        comp = out[..., land.to(out.device)].to(dtype).cpu().numpy()  # (b, c, n_land)
        parts.append(comp[:, 0] if comp.shape[1] == 1 else comp)
    if not parts:
        raise ValueError("predict_land: the loader yielded no batches (empty split?)")
    return np.concatenate(parts)


def unpack_land(compact: np.ndarray, land_mask: Any, fill: float = np.nan) -> np.ndarray:
    """Inverse of :func:`predict_land`: ``(n, n_land)`` -> ``(n, 1, h, w)`` float32 (``fill``
    off land); ``(n, c, n_land)`` -> ``(n, c, h, w)``."""
    land = np.asarray(land_mask, dtype=bool)
    comp = compact[:, None] if compact.ndim == 2 else compact
    if comp.shape[-1] != land.sum():
        raise ValueError(f"unpack_land: {comp.shape[-1]} values per map but the mask has {land.sum()} "
                         "land cells; use the land mask the predictions were made with")
    out = np.full(comp.shape[:2] + land.shape, fill, dtype=np.float32)
    out[..., land] = comp
    return out


def save_predictions(path_prefix: str | Path, array: np.ndarray,
                     max_bytes: int = 16 * 2**20) -> list[dict]:
    """Write ``array`` as ``<prefix>.partNNN.npy`` chunks of at most ``max_bytes`` each (split
    along axis 0) plus ``<prefix>.manifest.json``; all writes atomic.

    Returns:
        One dict per chunk: ``path`` (str), ``sha256``, ``shape``, ``dtype``; the manifest
        stores the same with paths relative to its folder.

    Raises:
        ValueError: when one item along axis 0 alone exceeds ``max_bytes``.
    """
    prefix = Path(path_prefix)
    arr = np.ascontiguousarray(array)
    row = max(1, arr[:1].nbytes)
    header = 256  # .npy header bound for ordinary shapes
    rows = (max_bytes - header) // row
    if arr.ndim == 0 or rows < 1:
        raise ValueError(f"save_predictions: one item is {row} bytes > max_bytes={max_bytes}; "
                         "save fewer channels per array or raise max_bytes")
    chunks = []
    for i, lo in enumerate(range(0, max(1, len(arr)), rows)):
        buf = io.BytesIO()
        np.save(buf, arr[lo:lo + rows], allow_pickle=False)
        path = prefix.parent / f"{prefix.name}.part{i:03d}.npy"
        atomic_write_bytes(path, buf.getvalue())
        chunks.append({"path": str(path), "sha256": sha256_file(path),
                       "shape": list(arr[lo:lo + rows].shape), "dtype": str(arr.dtype)})
    manifest = {"shape": list(arr.shape), "dtype": str(arr.dtype),
                "chunks": [dict(c, path=Path(c["path"]).name) for c in chunks]}
    atomic_write_json(prefix.parent / f"{prefix.name}.manifest.json", manifest)
    keep = {Path(c["path"]).name for c in chunks}
    for stale in prefix.parent.glob(f"{prefix.name}.part*.npy"):  # left by an earlier, longer save
        if stale.name not in keep:
            stale.unlink()
    return chunks


def load_predictions(manifest: str | Path | list[dict]) -> np.ndarray:
    """Read and concatenate the chunks of :func:`save_predictions`, verifying each sha256.

    Args:
        manifest: the ``<prefix>.manifest.json`` path, or the list ``save_predictions`` returned.

    Raises:
        FileNotFoundError: for a missing manifest or chunk.
        ValueError: for a chunk whose checksum, shape or dtype differs from the manifest.
    """
    if isinstance(manifest, (str, Path)):
        mpath = Path(manifest)
        if not mpath.is_file():
            raise FileNotFoundError(f"prediction manifest {mpath} not found; run the teacher's "
                                    "prediction step (e.g. the GPU run) or check the path")
        try:
            meta = json.loads(mpath.read_text())
            chunk_list = meta["chunks"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"prediction manifest {mpath} is damaged (truncated or not a manifest); "
                             "restore it (git) or re-run the teacher's prediction step") from None
        chunks = [dict(c, path=str(mpath.parent / c["path"])) for c in chunk_list]
    else:
        meta, chunks = None, list(manifest)
    parts = []
    for c in chunks:
        path = Path(c["path"])
        if not path.is_file():
            raise FileNotFoundError(f"prediction chunk {path} is missing; restore it (git) or re-run "
                                    "save_predictions")
        if sha256_file(path) != c["sha256"]:
            raise ValueError(f"prediction chunk {path}: sha256 mismatch (file corrupt or replaced); "
                             "restore it or re-run save_predictions")
        part = np.load(path, allow_pickle=False)
        if list(part.shape) != list(c["shape"]) or str(part.dtype) != c["dtype"]:
            raise ValueError(f"prediction chunk {path}: shape/dtype {part.shape}/{part.dtype} != manifest")
        parts.append(part)
    if not parts:
        raise ValueError("load_predictions: the manifest lists no chunks")
    out = np.concatenate(parts)
    if meta is not None and list(out.shape) != meta["shape"]:
        raise ValueError(f"load_predictions: shape {out.shape} != manifest {meta['shape']}")
    return out
