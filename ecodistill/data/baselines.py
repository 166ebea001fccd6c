r"""How hard is the task? Baselines for NDVI and a forecastability check for the weather.

NDVI baselines (scored over the NDVI domain with :func:`ecodistill.evaluate.per_region`):

* **climatology** -- the per-cell daily climatology of the training years;
* **persistence** -- the last observed NDVI before the day (forward-filled over gaps for up
  to a year; the climatology where there is none). It uses past *NDVI*, which the models
  never see: an upper reference for what memory alone gives, not a fair competitor;
* **linear** -- the climatology plus a ridge regression of the anomaly on the model
  inputs of each pixel-day (the same channels as the teacher and students),
  :math:`\hat y = c + X\hat w`, :math:`\hat w = (X^\top X + \lambda n I)^{-1} X^\top (y - c)`,
  with :math:`\lambda` chosen on the validation years, fitted on the training years
  (every ``stride``-th day) by accumulating the normal equations in float64.

Forecastability: tomorrow's standardised weather from today's, per variable, by
persistence and by ridge regression on today's fields in the 5 x 5 neighbourhood of the
cell (so moving systems can be followed), on all cells of the test years.

Explained in book/generated/02_data.ipynb ("How hard is the task?").
"""
from __future__ import annotations

import io

import numpy as np
import pandas as pd

from .. import evaluate
from ..config import to_dict
from ..store import runs
from ..utils import atomic_write_text, results_dir
from .loader import DayDataset, split_arrays
from .prepare import Prepared

LAMBDAS = (1e-4, 1e-2, 1.0)
#: Persistence latencies [days] of the nowcast use (``persistence`` is L = 1).
LATENCIES = (16, 30)
METHODS = ("climatology", "persistence", *(f"persistence-{L}d" for L in LATENCIES), "linear")
#: The achievable ceiling (simulated data only): the noise-free NDVI and the Bayes predictor.
CEILINGS = {"ceiling-noise-free": "ndvi_true", "ceiling-bayes": "ndvi_bayes"}


def _chunks(n: int, size: int = 64):
    return (np.arange(i, min(n, i + size)) for i in range(0, n, size))


def climatology_pred(prep: Prepared, split: str) -> np.ndarray:
    """``(n, 1, h, w)`` climatology of every day of ``split`` (NaN off-domain)."""
    return prep.clim[prep.doy[prep.split_days(split)] - 1][:, None]


def persistence_pred(prep: Prepared, split: str, latency: int = 1, lookback: int = 365) -> np.ndarray:
    """``(n, 1, h, w)`` the last valid NDVI observation made at least ``latency`` days before
    each day (at most ``lookback`` days before it; the climatology where there is none): a
    nowcast whose observations arrive ``latency`` days late."""
    if latency < 1:
        raise ValueError(f"latency={latency}: persistence uses observations made at least 1 day before")
    days = prep.split_days(split)
    # before reading day t, ``last`` holds the newest observation of the days < t: day d's
    # nowcast is read at t = d - latency + 1 (observations of days <= d - latency)
    wanted = {int(d) - latency + 1: i for i, d in enumerate(days)}
    start = max(0, min(wanted) - lookback)
    stop = max(wanted) + 1
    last = np.full(prep.land_mask.shape, np.nan, np.float32)
    out = np.full((days.size,) + last.shape, np.nan, np.float32)
    for t0 in range(start, stop, 366):
        block = np.arange(t0, min(stop, t0 + 366))
        y = prep.target(block)
        for k, t in enumerate(block):
            if int(t) in wanted:
                out[wanted[int(t)]] = last
            ok = np.isfinite(y[k])
            last = np.where(ok, y[k], last)
    clim = climatology_pred(prep, split)[:, 0]
    return np.where(np.isfinite(out), out, clim)[:, None]


def ceiling_pred(prep: Prepared, split: str, name: str) -> np.ndarray:
    """``(n, 1, h, w)`` the simulator's own NDVI: ``ndvi_true`` (noise- and gap-free) or
    ``ndvi_bayes`` (its expected observation): what no model can beat on average."""
    return prep.target(prep.split_days(split), name, labelled_only=False)[:, None]


def _design(x: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Pixel-day rows ``(n * n_cells, c + 1)`` (inputs plus a constant) of the chosen cells."""
    n, c = x.shape[:2]
    flat = x.reshape(n, c, -1)[:, :, cells].transpose(0, 2, 1).reshape(-1, c)
    return np.concatenate([flat, np.ones((flat.shape[0], 1), flat.dtype)], axis=1).astype(np.float64)


def _anomaly(b: dict, cells: np.ndarray) -> np.ndarray:
    """NDVI minus climatology of a batch, flattened like :func:`_design` rows."""
    n = len(b["y"])
    return (b["y"] - b["clim"]).reshape(n, -1)[:, cells].ravel().astype(np.float64)


def linear_fit(prep: Prepared, stride: int = 1) -> np.ndarray:
    """Ridge weights ``(c_in + 1,)`` of the anomaly on the training years (lambda by validation)."""
    cells = np.flatnonzero(prep.ndvi_domain.ravel())
    xtx, xty, n = 0.0, 0.0, 0
    train = DayDataset(prep, "train")
    for pos in _chunks(len(train)):
        b = train.batch(pos[::stride] if stride > 1 else pos)
        a, y, ok = _design(b["x"], cells), _anomaly(b, cells), b["mask"].reshape(len(b["y"]), -1)[:, cells].ravel()
        xtx, xty, n = xtx + a[ok].T @ a[ok], xty + a[ok].T @ y[ok], n + int(ok.sum())
    eye = np.eye(xtx.shape[0])
    eye[-1, -1] = 0.0  # the intercept is not shrunk
    weights = [np.linalg.solve(xtx + lam * n * eye, xty) for lam in LAMBDAS]
    val = DayDataset(prep, "val")
    sse = np.zeros(len(LAMBDAS))
    for pos in _chunks(len(val)):
        b = val.batch(pos)
        a, y, ok = _design(b["x"], cells), _anomaly(b, cells), b["mask"].reshape(len(b["y"]), -1)[:, cells].ravel()
        sse += [float(((a[ok] @ w - y[ok]) ** 2).sum()) for w in weights]
    return weights[int(np.argmin(sse))]


def linear_pred(prep: Prepared, split: str, weights: np.ndarray) -> np.ndarray:
    """``(n, 1, h, w)`` climatology plus ridge anomaly (NaN off-domain)."""
    ds = DayDataset(prep, split)
    out = np.full((len(ds),) + prep.land_mask.shape, np.nan, np.float32)
    for pos in _chunks(len(ds)):
        b = ds.batch(pos)
        out[pos] = b["clim"][:, 0] + np.einsum("nchw,c->nhw", b["x"], weights[:-1].astype(np.float32)) + weights[-1]
    return np.where(prep.ndvi_domain, out, np.nan)[:, None]


def baseline_rows(prep: Prepared, method: str, splits=("val", "test"), stride: int = 1) -> list[tuple]:
    """``(split, region, metric, value)`` tuples of one baseline (global and per biome)."""
    if method not in METHODS + tuple(CEILINGS):
        raise ValueError(f"unknown baseline {method!r}: choose one of {METHODS + tuple(CEILINGS)}")
    weights = linear_fit(prep, stride) if method == "linear" else None
    rows = []
    for split in splits:
        truth = split_arrays(prep, split)
        if method == "climatology":
            pred = climatology_pred(prep, split)
        elif method.startswith("persistence"):
            latency = int(method.split("-")[1][:-1]) if "-" in method else 1
            pred = persistence_pred(prep, split, latency)
        elif method in CEILINGS:
            pred = ceiling_pred(prep, split, CEILINGS[method])
        else:
            pred = linear_pred(prep, split, weights)
        pred = np.where(truth["mask"], pred, 0.0)  # off-mask cells are never scored
        table = evaluate.per_region(pred, truth["y"], truth["mask"], truth["clim"], prep.lat_weights,
                                    prep.biome, prep.biome_names)
        rows += evaluate.to_rows(table, split)
    return rows


def available_methods(prep: Prepared) -> tuple[str, ...]:
    """:data:`METHODS`, and the ceilings whose variables the dataset holds (simulated data)."""
    return METHODS + tuple(m for m, var in CEILINGS.items() if var in prep.ds)


def run_baselines(prep: Prepared, profile: str, methods=None, stride: int | None = None,
                  force: bool = False) -> pd.DataFrame:
    """Compute (or reuse) the baseline runs of ``profile`` and return their rows.

    Each method (default: :func:`available_methods`) is one run in ``results/<profile>/runs/``
    (kind=baseline, init=scratch, family=baseline, target=ndvi), keyed by the dataset hash
    and the method.
    """
    methods = available_methods(prep) if methods is None else methods
    if stride is None:
        stride = max(1, prep.days["train"].size // 1500)
    for method in methods:
        config = {"profile": profile, "method": method, "dataset_hash": prep.dataset_hash,
                  "data": to_dict(prep.cfg), "stride": stride if method == "linear" else 1,
                  "lambdas": list(LAMBDAS) if method == "linear" else []}
        run_id = runs.make_run_id(f"baseline-{method}", config)
        if runs.has_run(profile, run_id) and not force:
            continue
        meta = {"run_id": run_id, "dataset_hash": prep.dataset_hash, "target": "ndvi", "kind": "baseline",
                "init": "scratch", "method": method, "family": "baseline",
                "n_params": len(prep.input_channels) + 1 if method == "linear" else 0}
        runs.write_run(profile, runs.make_rows(meta, baseline_rows(prep, method, stride=stride)), config)
    return runs.read_runs(profile, kind="baseline", target="ndvi", dataset_hash=prep.dataset_hash)


def _neighbours(x: np.ndarray, radius: int = 2) -> np.ndarray:
    """``(n, (2r + 1)² c + 1, h, w)``: the fields at every cell within ``radius`` rows and
    columns (longitude periodic, latitude edges repeated) and a constant."""
    h = x.shape[2]
    parts = []
    for di in range(-radius, radius + 1):
        rows = np.clip(np.arange(h) + di, 0, h - 1)
        shifted = x[:, :, rows]
        parts += [np.roll(shifted, -dj, axis=3) for dj in range(-radius, radius + 1)]
    parts.append(np.ones_like(x[:, :1]))
    return np.concatenate(parts, axis=1)


def forecastability(prep: Prepared, stride: int | None = None, lam: float = 1e-3, radius: int = 2,
                    bands: int = 8) -> pd.DataFrame:
    """Next-day weather on the test years: RMSE (in training standard deviations) of
    persistence and of a ridge forecast from today's fields in the ``(2 radius + 1)²``
    neighbourhood of each cell (5 x 5: systems travel up to ~1500 km a day), with its own
    weights in each of ``bands`` latitude bands (the flow that carries the systems changes
    with latitude).

    Returns:
        One row per variable: ``variable, rmse_persistence, rmse_linear, skill`` with
        ``skill = 1 - rmse_linear / rmse_persistence``.
    """
    k = len(prep.weather_vars)
    band = np.minimum(np.arange(prep.land_mask.shape[0]) * bands // prep.land_mask.shape[0], bands - 1)

    def design(days):
        """``(bands, cells, features)`` of today's neighbourhoods and ``(bands, cells, k)`` of tomorrow."""
        a = _neighbours(prep.weather(days), radius).transpose(2, 0, 3, 1)  # (h, n, w, f)
        y = prep.weather(days + 1).transpose(2, 0, 3, 1)
        return ([a[band == b].reshape(-1, a.shape[-1]) for b in range(bands)],
                [y[band == b].reshape(-1, k) for b in range(bands)])

    train = prep.split_days("train", task="forecast")
    stride = stride or max(1, train.size // 150)  # ~150 days x every cell: ample rows for the weights
    xtx = [0.0] * bands
    xty = [0.0] * bands
    for d in np.array_split(train[::stride], max(1, train[::stride].size // 32)):
        a, y = design(d)
        for b in range(bands):
            xtx[b] = xtx[b] + a[b].T.astype(np.float64) @ a[b]
            xty[b] = xty[b] + a[b].T.astype(np.float64) @ y[b]
    w = [np.linalg.solve(m + lam * np.trace(m) / m.shape[0] * np.eye(m.shape[0]), v) for m, v in zip(xtx, xty)]
    test = prep.split_days("test", task="forecast")
    se_p, se_l, n = np.zeros(k), np.zeros(k), 0
    centre = (2 * radius + 1) ** 2 // 2  # the cell itself: persistence
    for d in np.array_split(test, max(1, test.size // 32)):
        a, y = design(d)
        for b in range(bands):
            se_p += ((a[b][:, centre * k:(centre + 1) * k] - y[b]) ** 2).sum(0)
            se_l += ((a[b] @ w[b] - y[b]) ** 2).sum(0)
            n += y[b].shape[0]
    rp, rl = np.sqrt(se_p / n), np.sqrt(se_l / n)
    return pd.DataFrame({"variable": prep.weather_vars, "rmse_persistence": rp, "rmse_linear": rl,
                         "skill": 1 - rl / rp})


def forecastability_table(prep: Prepared, profile: str, force: bool = False) -> pd.DataFrame:
    """:func:`forecastability`, cached as ``results/<profile>/data/forecastability.csv``."""
    path = results_dir(profile) / "data" / "forecastability.csv"
    if path.is_file() and not force:
        frame = pd.read_csv(path, dtype={"dataset_hash": str})  # a hash of digits stays text
        if (frame["dataset_hash"] == prep.dataset_hash).all():
            return frame
    frame = forecastability(prep)
    frame.insert(0, "dataset_hash", prep.dataset_hash)
    frame.insert(1, "split", "test")
    buf = io.StringIO()
    frame.to_csv(buf, index=False, float_format="%.6g")
    atomic_write_text(path, buf.getvalue())
    return frame
