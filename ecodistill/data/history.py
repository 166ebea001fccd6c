r"""History features of the model inputs: what the past days add to today's weather.

Trailing means (``t2m@30d``: the mean of the last 30 days including today) come from
cumulative sums of each variable minus a per-cell offset, built in one streamed pass and
cached beside the dataset as memory-mapped ``.npy`` files, so a day's trailing mean costs
two reads per variable and window whatever the window, and decades never sit in memory:
:math:`\bar x_{t,w} = (C_{t+1} - C_{t+1-w}) / w + o`, :math:`C_{t} = \sum_{s<t} (x_s - o)`.

Explained in book/generated/02_data.ipynb ("From data to model inputs").
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from ..utils import cache_dir
from .schema import check_finite

CHUNK = 366  # days per streamed block


class DayReader(Protocol):
    """Reads ``(len(days), lat, lon)`` float32 of a variable for sorted day indices."""

    def read(self, var: str, days: np.ndarray) -> np.ndarray: ...


def cum_dir(digest: str) -> Path:
    return cache_dir() / "data" / f"prep-{digest}"


def cumsum_one(reader: DayReader, v: str, n_time: int, shape, out: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative sums of ``v - offset`` (offset: per-cell mean of the first year), into an
    atomically renamed ``.npy`` memory map in ``out``, or into memory when ``out`` is None."""
    first = reader.read(v, np.arange(min(365, n_time)))
    check_finite(v, first)
    off = first.astype(np.float64).mean(0)
    if out is None:
        arr, tmp = np.empty((n_time + 1,) + shape, np.float32), None
    else:
        tmp = out / f".{v}.{os.getpid()}.npy"
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_time + 1,) + shape)
    arr[0] = 0.0
    run = np.zeros(shape, np.float64)
    for t0 in range(0, n_time, CHUNK):
        block = reader.read(v, np.arange(t0, min(n_time, t0 + CHUNK)))
        check_finite(v, block)
        c = np.cumsum(block - off, axis=0) + run
        arr[t0 + 1:t0 + 1 + block.shape[0]] = c
        run = c[-1]
    if tmp is not None:
        arr.flush()
        del arr
        os.replace(tmp, out / f"{v}.npy")
        arr = np.load(out / f"{v}.npy", mmap_mode="r")
    return arr, off.astype(np.float32)


def build_cumsums(reader: DayReader, names, n_time: int, shape, out: Path | None,
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Cumulative sums and offsets of every variable, one thread per variable (NumPy releases
    the GIL in the reads and sums); written under ``out``, or kept in memory (``out=None``)."""
    from concurrent.futures import ThreadPoolExecutor

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(len(names), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        done = list(pool.map(lambda v: cumsum_one(reader, v, n_time, shape, out), names))
    cums = {v: arr for v, (arr, _) in zip(names, done)}
    offsets = {v: off for v, (_, off) in zip(names, done)}
    if out is not None:
        np.savez(out / "offsets.npz", **offsets)
    return cums, offsets
