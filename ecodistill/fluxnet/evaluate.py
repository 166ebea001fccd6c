"""Skill of one model's predictions on a fold, as ``(split, region, metric, value)`` tuples.

Metrics: ``r2`` = 1 - SSE / SST about the mean of the evaluated
observations; ``rmse``; ``bias`` = mean(prediction - observation); ``r2_anom`` / ``rmse_anom``
on anomalies, where each test site's own mean seasonal cycle (over its labelled months,
calendar months seen at least twice) is removed from observations and predictions alike;
``fidelity_r2`` = R2 of a student's predictions against its teacher's on every test-site
month, labelled or not. Regions: ``global`` (all test sites), ``site-group:<IGBP>`` (test
sites of one class, >= ``MIN_GROUP`` labelled months), ``site-group:heldout-period`` (test sites
in the held-out years) and ``site-group:heldout-period-train-sites`` (training sites in the
held-out years: time extrapolation only). Explained in book/generated/06_fluxnet.ipynb.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .benchmark import Split, Table

MIN_GROUP = 12


def skill(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """``r2``, ``rmse``, ``bias`` of predictions ``p`` (n,) against observations ``y`` (n,).

    ``r2`` is left out when fewer than two observations or no variance (it is undefined).
    """
    if len(y) == 0:
        return {}
    err = p - y
    out = {"rmse": float(np.sqrt(np.mean(err ** 2))), "bias": float(np.mean(err))}
    sst = float(np.sum((y - y.mean()) ** 2))
    if len(y) >= 2 and sst > 0:
        out["r2"] = 1.0 - float(np.sum(err ** 2)) / sst
    return out


def anomalies(values: np.ndarray, site: np.ndarray, month: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``values`` minus their per-(site, calendar month) mean; NaN where that month has < 2 values.

    ``keep`` (n,) bool marks the rows the means are taken over (the labelled rows).
    """
    frame = pd.DataFrame({"v": values, "s": site, "m": month})[keep]
    grouped = frame.groupby(["s", "m"])["v"]
    mean = grouped.transform("mean").where(grouped.transform("size") >= 2)
    return (frame["v"] - mean).to_numpy()


def metric_rows(table: Table, split: Split, target: str, pred: np.ndarray,
                teacher: np.ndarray | None = None) -> list[tuple[str, str, str, float]]:
    """Every metric of one model on one fold (see the module docstring).

    Args:
        pred: (n,) predictions for every row of ``table`` (original units).
        teacher: (n,) the teacher's predictions, for ``fidelity_r2`` (students only).
    """
    y = table.y[target]
    rows: list[tuple[str, str, str, float]] = []

    def add(split_name: str, region: str, mask: np.ndarray) -> None:
        for metric, value in skill(y[mask], pred[mask]).items():
            rows.append((split_name, region, metric, value))

    add("val", "global", split.val)
    add("test", "global", split.test)
    for cls in sorted(set(table.igbp[split.test])):
        group = split.test & (table.igbp == cls)
        if group.sum() >= MIN_GROUP:
            add("test", f"site-group:{cls}", group)
    add("test", "site-group:heldout-period", split.heldout_test)
    add("test", "site-group:heldout-period-train-sites", split.heldout_train)
    obs_a = anomalies(y, table.site, table.month, split.test)
    pred_a = anomalies(pred, table.site, table.month, split.test)
    ok = ~np.isnan(obs_a) & ~np.isnan(pred_a)
    for metric, value in skill(obs_a[ok], pred_a[ok]).items():
        if metric != "bias":  # anomalies have zero mean by construction
            rows.append(("test", "global", f"{metric}_anom", value))
    if teacher is not None:
        fid = skill(teacher[split.test_all], pred[split.test_all])
        if "r2" in fid:
            rows.append(("test", "global", "fidelity_r2", fid["r2"]))
    return rows
