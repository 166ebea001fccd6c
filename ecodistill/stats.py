"""Aggregating result rows: spread over seeds x folds, paired tests, block-bootstrap intervals.

Every reading notebook turns the tidy rows of :mod:`ecodistill.store.runs` into claims through
these few functions, so "mean +- std over N runs", "p from a Wilcoxon signed-rank test over
N seed x fold pairs" and "95% bootstrap interval over seeds x blocks" mean the same thing in
every chapter. Explained in book/generated/06_fluxnet.ipynb (first used there).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd


def summarise(frame: pd.DataFrame, by: Sequence[str], metric: str, value: str = "value") -> pd.DataFrame:
    """Mean, standard deviation, count and 95% t-interval half-width of one metric per group.

    Args:
        frame: tidy rows (e.g. from :func:`ecodistill.store.runs.read_runs`) with a ``metric`` column.
        by: the grouping columns (e.g. ``["target", "method", "n_params"]``); every other
            varying column (seed, fold) is what the spread is taken over.
        metric: which metric's rows to summarise (e.g. ``"r2"``).

    Returns:
        One row per group: ``by`` columns plus ``mean, std, n, ci95`` (``std``/``ci95`` NaN when n = 1).

    Raises:
        KeyError: when a grouping column is missing.
    """
    from scipy import stats

    missing = [c for c in list(by) + ["metric", value] if c not in frame.columns]
    if missing:
        raise KeyError(f"summarise: frame lacks column(s) {missing}")
    rows = frame[frame["metric"] == metric]
    if rows.empty:
        return pd.DataFrame(columns=list(by) + ["mean", "std", "n", "ci95"])
    out = rows.groupby(list(by), dropna=False)[value].agg(["mean", "std", "count"]).reset_index()
    out = out.rename(columns={"count": "n"})
    tcrit = np.where(out["n"] > 1, stats.t.ppf(0.975, np.maximum(out["n"] - 1, 1)), np.nan)
    out["ci95"] = tcrit * out["std"] / np.sqrt(out["n"])
    return out


def paired(frame: pd.DataFrame, on: Sequence[str], arm: str, a: str, b: str,
           value: str = "value") -> pd.DataFrame:
    """Align two arms row by row: one row per key ``on`` present in both, columns ``a`` and ``b``.

    Example: ``paired(rows, on=["seed", "fold"], arm="method", a="scratch", b="kd-mse")``.

    Raises:
        ValueError: when a key holds several rows of one arm (``on`` is not a full key).
    """
    left = frame[frame[arm] == a].set_index(list(on))[value]
    right = frame[frame[arm] == b].set_index(list(on))[value]
    for name, side in ((a, left), (b, right)):
        if side.index.has_duplicates:
            raise ValueError(f"paired: several {name!r} rows per {list(on)}; add columns to `on`")
    return pd.concat([left.rename(a), right.rename(b)], axis=1, join="inner").reset_index()


def paired_test(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Wilcoxon signed-rank test of ``b - a`` over paired values (e.g. seed x fold pairs).

    Returns:
        ``n`` pairs, ``mean_diff`` and ``median_diff`` of ``b - a``, ``wins`` (pairs with
        b > a), ``statistic`` and two-sided ``p_value`` (NaN when n < 2 or all differences are 0).

    Raises:
        ValueError: when ``a`` and ``b`` differ in length or hold NaN.
    """
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"paired_test: {a.shape} vs {b.shape}; the values must be paired")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("paired_test: NaN among the values; drop incomplete pairs first")
    d = b - a
    out = {"n": int(d.size), "mean_diff": float(d.mean()) if d.size else np.nan,
           "median_diff": float(np.median(d)) if d.size else np.nan, "wins": int((d > 0).sum()),
           "statistic": np.nan, "p_value": np.nan}
    if d.size >= 2 and np.any(d != 0):
        res = stats.wilcoxon(a, b)
        out["statistic"], out["p_value"] = float(res.statistic), float(res.pvalue)
    return out


def bootstrap_ci(values_by_seed_and_block: np.ndarray, n_boot: int = 2000, seed: int = 0,
                 level: float = 0.95, stat: Callable[[np.ndarray], float] = np.nanmean) -> dict[str, float]:
    """Percentile interval of ``stat`` when seeds and (time) blocks are both resampled.

    Pixels or months are not independent, so each bootstrap replicate draws whole seeds and
    whole blocks (e.g. test months, or years) with replacement, independently (a two-way
    cluster bootstrap), and applies ``stat`` to the resulting (seeds, blocks) sub-table.

    Args:
        values_by_seed_and_block: (n_seeds, n_blocks) per-seed, per-block values of a score
            (NaN allowed for missing cells; the default ``stat`` ignores them).
        n_boot: bootstrap replicates; seed: generator seed (same seed -> same interval).
        level: coverage, e.g. 0.95.

    Returns:
        ``estimate`` (``stat`` of the full table), ``low``, ``high``, ``n_seeds``, ``n_blocks``.

    Raises:
        ValueError: for a table that is not 2-D, is empty, or for a level outside (0, 1).
    """
    values = np.asarray(values_by_seed_and_block, float)
    if values.ndim != 2 or values.size == 0:
        raise ValueError("bootstrap_ci: need a non-empty (n_seeds, n_blocks) table, "
                         f"got shape {values.shape}")
    if not 0 < level < 1:
        raise ValueError(f"bootstrap_ci: level={level} outside (0, 1)")
    rng = np.random.default_rng(seed)
    n_s, n_b = values.shape
    reps = np.empty(n_boot)
    for i in range(n_boot):
        rows = rng.integers(0, n_s, n_s)
        cols = rng.integers(0, n_b, n_b)
        reps[i] = stat(values[np.ix_(rows, cols)])
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(reps, [tail, 100 - tail])
    return {"estimate": float(stat(values)), "low": float(low), "high": float(high),
            "n_seeds": n_s, "n_blocks": n_b}
