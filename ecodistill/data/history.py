r"""History features of the model inputs: what the past days add to today's weather.

Every feature is computed from the dataset in one streamed pass, cached beside it as
memory-mapped ``.npy`` files (decades never sit in memory), and read per day:

* **trailing means** (``t2m@30d``: the mean of the last 30 days including today), from
  cumulative sums of each variable minus a per-cell offset :math:`o`, two reads per window:
  :math:`\bar x_{t,w} = (C_{t+1} - C_{t+1-w}) / w + o`, :math:`C_{t} = \sum_{s<t} (x_s - o)`;
* **stacked past days** (``t2m@-8d``: the field 8 days ago; FourCastNet's ``n_history``);
* **leaky integrators** (``t2m@ema64d``): the per-pixel state a recurrent model carries,
  :math:`s_t = a s_{t-1} + (1 - a) x_t`, :math:`a = e^{-1/\tau}`, started at :math:`o`
  (:class:`ecodistill.models.recurrent.LeakyIntegrator` runs the same recursion on a device);
* **NDVI memory** for the nowcast use (``ndvi@-16d``, ``ndvi_age``): the last NDVI observed at
  least :math:`L` days before, and how old it is (:math:`\log(1 + \mathrm{age}/1\,\mathrm{d})`).

Precipitation enters as :math:`\log(1 + tp/1\,\mathrm{mm})` (:func:`transform`) after averaging.

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
AGE_CAP = 365  # days: an NDVI older than this (or none yet) counts as this old


def transform(var: str, a: np.ndarray) -> np.ndarray:
    """Input transform before standardisation: log(1 + mm) for precipitation."""
    return np.log1p(np.maximum(a, 0.0) * 1000.0) if var == "tp" else a


def channel_names(names: tuple[str, ...], windows: tuple[int, ...], stack: tuple[int, int],
                  taus: tuple[float, ...], ndvi_latency: int) -> list[str]:
    """Names of the history channels after today's ``names``, in the order of :func:`fill`."""
    steps, stride = stack
    out = [f"{v}@{w}d" for w in windows for v in names]
    out += [f"{v}@-{k * stride}d" for k in range(1, steps + 1) for v in names]
    out += [f"{v}@ema{tau:g}d" for tau in taus for v in names]
    if ndvi_latency:
        out += [f"ndvi@-{ndvi_latency}d", "ndvi_age"]
    return out


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


def ema_path(folder: Path, var: str, tau: float) -> Path:
    return folder / f"ema{tau:g}-{var}.npy"


def build_ema(reader: DayReader, var: str, tau: float, n_time: int, shape, offset: np.ndarray,
              out: Path | None) -> np.ndarray:
    """``(n_time, h, w)`` leaky integral of ``var`` with time constant ``tau`` days, started at
    ``offset``: :math:`s_t = a s_{t-1} + (1 - a) x_t` (memory-mapped in ``out``, or in memory)."""
    a = float(np.exp(-1.0 / tau))
    if out is None:
        arr, tmp = np.empty((n_time,) + shape, np.float32), None
    else:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".ema{tau:g}-{var}.{os.getpid()}.npy"
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_time,) + shape)
    state = offset.astype(np.float64)
    for t0 in range(0, n_time, CHUNK):
        block = reader.read(var, np.arange(t0, min(n_time, t0 + CHUNK))).astype(np.float64)
        check_finite(var, block)
        for k in range(block.shape[0]):
            state = a * state + (1 - a) * block[k]
            arr[t0 + k] = state
    if tmp is not None:
        arr.flush()
        del arr
        os.replace(tmp, ema_path(out, var, tau))
        arr = np.load(ema_path(out, var, tau), mmap_mode="r")
    return arr


def build_ndvi_memory(reader: DayReader, n_time: int, shape, extra_days: np.ndarray,
                      out: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """``(last, age)``, each ``(n_time, h, w)`` float32: the last NDVI observed on or before each
    day (NaN where none yet; never from the unlabelled extra years) and its age in days."""
    arrays = []
    for name in ("ndvi_last", "ndvi_age"):
        if out is None:
            arrays.append(np.empty((n_time,) + shape, np.float32))
        else:
            out.mkdir(parents=True, exist_ok=True)
            arrays.append(np.lib.format.open_memmap(out / f".{name}.{os.getpid()}.npy", mode="w+",
                                                    dtype=np.float32, shape=(n_time,) + shape))
    last_arr, age_arr = arrays
    last = np.full(shape, np.nan, np.float32)
    age = np.full(shape, float(AGE_CAP), np.float32)
    extra = set(int(d) for d in extra_days)
    for t0 in range(0, n_time, CHUNK):
        days = np.arange(t0, min(n_time, t0 + CHUNK))
        block = reader.read("ndvi", days)
        for k, t in enumerate(days):
            age = np.minimum(age + 1, AGE_CAP)
            if int(t) not in extra:
                seen = np.isfinite(block[k])
                last = np.where(seen, block[k], last)
                age = np.where(seen, 0.0, age).astype(np.float32)
            last_arr[t], age_arr[t] = last, age
    if out is not None:
        for name, arr in zip(("ndvi_last", "ndvi_age"), arrays):
            arr.flush()
            os.replace(out / f".{name}.{os.getpid()}.npy", out / f"{name}.npy")
        return (np.load(out / "ndvi_last.npy", mmap_mode="r"), np.load(out / "ndvi_age.npy", mmap_mode="r"))
    return last_arr, age_arr


def history_channels(prep, days: np.ndarray):
    """The history channels of a :class:`~ecodistill.data.prepare.Prepared` on sorted ``days``,
    each ``(n, h, w)``, transformed but not standardised, in the order of :func:`channel_names`."""
    cfg, names = prep.cfg, prep.weather_vars
    for w in cfg.history_windows:
        lo = np.maximum(days + 1 - w, 0)
        n = (days + 1 - lo).astype(np.float32)[:, None, None]
        for v in names:
            c = prep.cumsum(v)
            yield transform(v, (np.asarray(c[days + 1]) - np.asarray(c[lo])) / n + prep.offsets[v])
    steps, stride = cfg.history_stack
    for k in range(1, steps + 1):
        unique, back = np.unique(np.maximum(days - k * stride, 0), return_inverse=True)
        for v in names:
            yield transform(v, prep.reader.read(v, unique)[back])
    for tau in cfg.history_ema:
        for v in names:
            yield transform(v, np.asarray(prep.ema(v, tau)[days]))
    if cfg.ndvi_latency:
        last, age = prep.__dict__["_ndvi_memory"]
        past = days - cfg.ndvi_latency
        known = (past >= 0)[:, None, None]
        seen = np.where(known, np.asarray(last[np.maximum(past, 0)]), np.nan)
        yield np.where(np.isfinite(seen), seen, ndvi_fill(prep))
        old = np.where(known, np.asarray(age[np.maximum(past, 0)]) + cfg.ndvi_latency, AGE_CAP)
        yield np.log1p(np.minimum(old, AGE_CAP)).astype(np.float32)


def ndvi_fill(prep) -> np.ndarray:
    """``(h, w)`` the NDVI assumed where none was observed yet: the middle of the cell's
    annual range (0 off the NDVI domain)."""
    if "_ndvi_fill" not in prep.__dict__:
        mid = 0.5 * (prep.ds["ndvi_min"].values + prep.ds["ndvi_max"].values)
        prep.__dict__["_ndvi_fill"] = np.nan_to_num(np.where(prep.ndvi_domain, mid, 0.0)).astype(np.float32)
    return prep.__dict__["_ndvi_fill"]


def open_history_state(prep, in_memory: bool) -> None:
    """Build (or open the cached) leaky integrals and NDVI memory the config's history needs."""
    cfg, shape, n = prep.cfg, prep.land_mask.shape, prep.n_time
    out = None if in_memory else prep.cum_dir
    emas = prep.__dict__.setdefault("_emas", {})
    for tau in cfg.history_ema:
        for v in prep.weather_vars:
            if in_memory or not ema_path(prep.cum_dir, v, tau).is_file():
                emas[(v, tau)] = build_ema(prep.reader, v, tau, n, shape, prep.offsets[v], out)
    if cfg.ndvi_latency:
        files = [prep.cum_dir / f"{k}.npy" for k in ("ndvi_last", "ndvi_age")]
        if not in_memory and all(f.is_file() for f in files):
            prep.__dict__["_ndvi_memory"] = tuple(np.load(f, mmap_mode="r") for f in files)
        else:
            prep.__dict__["_ndvi_memory"] = build_ndvi_memory(prep.reader, n, shape, prep.days["extra"], out)


def state_bytes_per_pixel(cfg, n_vars: int, itemsize: int = 4) -> int:
    """What a device must keep per pixel between days to compute ``cfg``'s history channels
    on line: a ring buffer of the longest window's days (trailing means), of the stacked
    days (``steps x stride``), the leaky integrators' states, and the last NDVI observed with
    its age (nowcast). Windows and stacks share one buffer of the longest span."""
    steps, stride = cfg.history_stack
    span = max([0, *cfg.history_windows, steps * stride])
    integrators = len(cfg.history_ema)
    return itemsize * (n_vars * (span + integrators) + (2 if cfg.ndvi_latency else 0))
