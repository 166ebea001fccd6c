r"""Skill metrics over masked (land, valid NDVI) cells: R², RMSE, latitude-weighted RMSE,
anomaly skill, fidelity to the teacher, per-biome and per-month tables, error maps.

Everything is NumPy with float64 accumulation. Fields are ``(n, h, w)`` or ``(n, 1, h, w)``
(time, lat, lon); masks broadcast against them (``(n, h, w)``, ``(n, 1, h, w)`` or ``(h, w)``).
Cells where the mask is False or the truth is NaN are left out; a NaN/Inf *prediction* inside
the mask is an error (a diverged model must not look skilful by losing cells).

Tables become result rows through :func:`to_rows` and :func:`ecodistill.store.runs.make_rows`.
The comparison helpers :func:`retained_skill` and :func:`gap_closed` are the project's
comparison measures (book chapter 4, "The protocol").

Explained in book/generated/02_teacher.ipynb ("Evaluation") and book/generated/04_results.ipynb.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .store.runs import METRICS

_SAFE = re.compile(r"[^A-Za-z0-9_ .\-/]")


def latitude_weights(lat_deg: Any) -> np.ndarray:
    r"""``cos(lat)`` per grid row, ``(h,)`` float64 (0 at the poles, never negative).

    Pass it as ``lat_weights`` to :func:`metrics` or to :func:`ecodistill.training.loop.fit`;
    both normalise it themselves.
    """
    lat = np.asarray(lat_deg, dtype=np.float64)
    if lat.ndim != 1 or np.abs(lat).max() > 90:
        raise ValueError("latitude_weights: lat must be a 1-d array of degrees in [-90, 90]")
    return np.clip(np.cos(np.deg2rad(lat)), 0.0, None)


def _field(a: Any, name: str) -> np.ndarray:
    """``(n, h, w)`` view of an ``(n, h, w)`` or ``(n, 1, h, w)`` array."""
    a = np.asarray(a)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3:
        raise ValueError(f"{name}: expected (n, h, w) or (n, 1, h, w), got shape {a.shape}; "
                         "evaluate one channel at a time")
    return a


def _broadcast(a: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    try:
        return np.broadcast_to(a, shape)
    except ValueError:
        raise ValueError(f"{name}: shape {a.shape} does not broadcast to the fields' {shape}") from None


def _lat_grid(lat_weights: Any, shape: tuple[int, ...]) -> np.ndarray:
    w = np.asarray(lat_weights, dtype=np.float64)
    if w.ndim == 1:
        if w.shape[0] != shape[1]:
            raise ValueError(f"lat_weights: {w.shape[0]} rows but the grid has {shape[1]} latitudes")
        w = w[:, None]
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("lat_weights: must be finite and non-negative (use latitude_weights(lat))")
    return _broadcast(w, shape, "lat_weights")


def _select(y_hat: Any, y: Any, mask: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(valid, y_hat[valid], y[valid], y_hat field) with valid = mask & finite truth."""
    yh, yt = _field(y_hat, "y_hat"), _field(y, "y")
    if yh.shape != yt.shape:
        raise ValueError(f"y_hat {yh.shape} and y {yt.shape} differ in shape")
    valid = _broadcast(mask, yt.shape, "mask").astype(bool) & np.isfinite(yt)
    if not valid.any():
        raise ValueError("empty evaluation mask: no cell is both masked-in and finite in the truth; "
                         "check the land/valid mask and that the split holds data")
    bad = int((~np.isfinite(yh[valid])).sum())
    if bad:
        raise ValueError(f"y_hat holds {bad} NaN/Inf value(s) inside the mask: the model diverged or "
                         "the prediction was unpacked with the wrong land mask")
    return valid, yh[valid].astype(np.float64), yt[valid].astype(np.float64), yh


def _r2(pred: np.ndarray, truth: np.ndarray) -> float:
    sst = float(np.sum((truth - truth.mean()) ** 2))
    return 1.0 - float(np.sum((pred - truth) ** 2)) / sst if sst > 0 else float("nan")


def metrics(y_hat: Any, y: Any, mask: Any, clim: Any = None, lat_weights: Any = None) -> dict[str, float]:
    r"""Skill of ``y_hat`` against ``y`` over the valid cells :math:`M` (mask & finite truth).

    .. math::
        R^2 = 1 - \frac{\sum_M (\hat y - y)^2}{\sum_M (y - \bar y_M)^2}, \quad
        \mathrm{RMSE} = \sqrt{\tfrac{1}{|M|}\sum_M (\hat y - y)^2}, \quad
        \mathrm{bias} = \tfrac{1}{|M|}\sum_M (\hat y - y),

    .. math::
        \mathrm{RMSE}_{lat} = \sqrt{\tfrac{1}{|M|}\sum_{i \in M} L_i (\hat y_i - y_i)^2}, \quad
        L_i = \frac{\cos\varphi_i}{\tfrac{1}{|M|}\sum_{j\in M}\cos\varphi_j},

    the latitude weighting of FourCastNet / WeatherBench {cite:p}`pathak2022fourcastnet`
    with the weights normalised to mean 1 over the masked cells (pooled over time and
    space, like RMSE). With ``clim`` the anomalies :math:`a = y - c`, :math:`\hat a =
    \hat y - c` give ``r2_anom`` (:math:`R^2` of :math:`\hat a` vs :math:`a`, i.e. skill above
    the climatology) and ``rmse_anom`` (equal to RMSE wherever ``clim`` is finite, since
    the same climatology is removed from both).

    Args:
        y_hat, y: ``(n, h, w)`` or ``(n, 1, h, w)``.
        mask: bool, broadcastable to the fields (``(h, w)`` for a land mask).
        clim: climatology broadcastable to the fields, or None.
        lat_weights: ``(h,)`` (e.g. :func:`latitude_weights`) or ``(h, w)``, or None
            (then ``rmse_latw`` is left out).

    Returns:
        ``{"n_cells", "r2", "rmse", "bias"[, "rmse_latw"][, "r2_anom", "rmse_anom"]}``.

    Raises:
        ValueError: for an empty mask, NaN predictions inside it, or mismatched shapes.
    """
    valid, p, t, yh = _select(y_hat, y, mask)
    err = p - t
    out = {"n_cells": int(valid.sum()), "r2": _r2(p, t), "rmse": float(np.sqrt(np.mean(err**2))),
           "bias": float(np.mean(err))}
    if lat_weights is not None:
        w = _lat_grid(lat_weights, yh.shape)[valid]
        if w.sum() <= 0:
            raise ValueError("lat_weights are all 0 over the masked cells (only poles selected?)")
        out["rmse_latw"] = float(np.sqrt(np.sum(w * err**2) / np.sum(w)))
    if clim is not None:
        c = _broadcast(clim, yh.shape, "clim")[valid].astype(np.float64)
        ok = np.isfinite(c)
        if not ok.any():
            raise ValueError("clim is NaN on every masked cell: compute the climatology on the training years")
        a, a_hat = t[ok] - c[ok], p[ok] - c[ok]
        out["r2_anom"] = _r2(a_hat, a)
        out["rmse_anom"] = float(np.sqrt(np.mean((a_hat - a) ** 2)))
    return out


def fidelity(y_student: Any, y_teacher: Any, mask: Any) -> dict[str, float]:
    r"""How well the student reproduces the teacher: :math:`R^2` of student vs teacher,
    :math:`1 - \sum_M (s - t)^2 / \sum_M (t - \bar t_M)^2`, over the masked cells."""
    _, s, t, _ = _select(y_student, y_teacher, mask)
    return {"fidelity_r2": _r2(s, t)}


def safe_region_name(name: str) -> str:
    """``name`` with characters the result store refuses replaced by ``_``."""
    return _SAFE.sub("_", str(name)).strip() or "unnamed"


def per_region(y_hat: Any, y: Any, mask: Any, clim: Any, lat_weights: Any, regions: Any,
               names: Mapping[int, str], min_cells: int = 4) -> list[tuple[str, dict]]:
    """Metrics for ``global`` and for ``biome:<name>`` of every labelled class.

    Args:
        regions: ``(h, w)`` int class labels (e.g. IGBP land cover).
        names: label -> class name; labels not in ``names`` (e.g. water) are skipped.
        min_cells: a class needs at least this many grid cells with valid data.

    Returns:
        ``[("global", metrics), ("biome:<name>", metrics), ...]`` (see :func:`metrics`).
    """
    yt = _field(y, "y")
    labels = np.asarray(regions)
    if labels.shape != yt.shape[1:]:
        raise ValueError(f"regions {labels.shape} != grid {yt.shape[1:]}; pass the (h, w) class map")
    valid = _broadcast(mask, yt.shape, "mask").astype(bool) & np.isfinite(yt)
    rows = [("global", metrics(y_hat, y, mask, clim, lat_weights))]
    for label, name in sorted(names.items()):
        cell = labels == label
        if int((valid.any(axis=0) & cell).sum()) < min_cells:
            continue
        rows.append((f"biome:{safe_region_name(name)}", metrics(y_hat, y, valid & cell, clim, lat_weights)))
    return rows


def per_month(y_hat: Any, y: Any, mask: Any, clim: Any, months: Any,
              lat_weights: Any = None) -> list[tuple[str, dict]]:
    """Metrics for each calendar month present: ``[("month:<m>", metrics), ...]``.

    Args:
        months: ``(n,)`` int month (1-12) of every time step.
    """
    yt = _field(y, "y")
    months = np.asarray(months).astype(int)
    if months.shape != (yt.shape[0],):
        raise ValueError(f"months has shape {months.shape}; need one month per time step ({yt.shape[0]},)")
    valid = _broadcast(mask, yt.shape, "mask").astype(bool) & np.isfinite(yt)
    rows = []
    for m in np.unique(months):
        sel = valid & (months == m)[:, None, None]
        if sel.any():
            rows.append((f"month:{m}", metrics(y_hat, y, sel, clim, lat_weights)))
    return rows


def _cell_sums(y_hat: Any, y: Any, mask: Any) -> tuple[np.ndarray, np.ndarray]:
    """(errors with 0 off the valid cells, count of valid time steps per cell)."""
    valid, _, _, yh = _select(y_hat, y, mask)
    yt = _field(y, "y")
    err = np.where(valid, yh.astype(np.float64) - np.nan_to_num(yt.astype(np.float64)), 0.0)
    return err, valid.sum(axis=0)


def error_map(y_hat: Any, y: Any, mask: Any) -> np.ndarray:
    """RMSE over time per cell, ``(h, w)``; NaN where a cell has no valid data."""
    err, n = _cell_sums(y_hat, y, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.sqrt((err**2).sum(axis=0) / n), np.nan)


def bias_map(y_hat: Any, y: Any, mask: Any) -> np.ndarray:
    """Mean error (prediction - truth) over time per cell, ``(h, w)``; NaN where no valid data."""
    err, n = _cell_sums(y_hat, y, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, err.sum(axis=0) / n, np.nan)


def to_rows(metrics_by_region: Iterable[tuple[str, Mapping[str, float]]] | Mapping[str, Mapping[str, float]],
            split: str) -> list[tuple[str, str, str, float]]:
    """``(split, region, metric, value)`` tuples for :func:`ecodistill.store.runs.make_rows`.

    Only the result store's metric names are kept (``n_cells`` and the like are dropped).
    """
    items = metrics_by_region.items() if isinstance(metrics_by_region, Mapping) else metrics_by_region
    return [(split, region, name, float(value))
            for region, table in items for name, value in table.items() if name in METRICS]


def retained_skill(s_student: Any, s_teacher: Any, s_clim: Any = 0.0) -> Any:
    r"""Share of the teacher's skill above climatology that the student keeps:
    :math:`(S_{student} - S_{clim}) / (S_{teacher} - S_{clim})`; NaN where the teacher has no
    skill above climatology. Works on scalars and arrays."""
    num = np.asarray(s_student, dtype=np.float64) - np.asarray(s_clim, dtype=np.float64)
    den = np.asarray(s_teacher, dtype=np.float64) - np.asarray(s_clim, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out


def gap_closed(err_scratch: Any, err_kd: Any, err_teacher: Any,
               spread: float | None = None) -> tuple[float, str]:
    r"""Share of the scratch-to-teacher error gap that distillation closes:
    :math:`(e_{scratch} - e_{kd}) / (e_{scratch} - e_{teacher})`.

    Each error may be a scalar or per-seed values (their mean is used). The gap must be
    resolvable: larger than twice the seed ``spread`` (default: the standard deviation of
    the scratch errors over seeds, when more than one is given).

    Returns:
        ``(value, "")``, or ``(nan, reason)`` when the gap is not positive or not resolvable.
    """
    scratch = np.asarray(err_scratch, dtype=np.float64)
    s, k, t = float(scratch.mean()), float(np.mean(err_kd)), float(np.mean(err_teacher))
    if spread is None and scratch.size > 1:
        spread = float(scratch.std(ddof=1))
    gap = s - t
    if not np.isfinite(gap) or gap <= 0:
        return float("nan"), f"teacher not better than scratch (gap {gap:.3g} <= 0)"
    if spread is not None and gap <= 2 * spread:
        return float("nan"), f"gap {gap:.3g} <= 2 x seed spread {spread:.3g}: not resolvable"
    return (s - k) / gap, ""
