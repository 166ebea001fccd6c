"""Aggregating result rows: spread over seeds x folds, paired tests, block-bootstrap intervals.

Every reading notebook turns the tidy rows of :mod:`ecodistill.store.runs` into claims through
these few functions, so "mean +- std over N runs", "p from a Wilcoxon signed-rank test over
N seed x fold pairs" and "95% interval of a cluster bootstrap over seeds x spatial blocks"
mean the same thing in every chapter. :func:`cluster_bootstrap` resamples whole seeds and
whole spatial blocks (biomes, weighted by their share of the land cells: :func:`block_weights`)
and is what chapter 4 uses; :func:`wilcoxon_min_p` says how small a p the number of pairs
allows at all. Explained in book/generated/04_results.ipynb ("The protocol") and
book/generated/06_fluxnet.ipynb.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

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


def wilcoxon_min_p(n_pairs: int) -> float:
    """The smallest two-sided p the exact Wilcoxon signed-rank test can give with ``n_pairs``
    non-zero paired differences: every pair on one side, ``2 / 2**n`` (capped at 1).

    With 5 seeds it is 0.0625: no 5-seed comparison can reach p < 0.05, however large the
    effect, so the intervals carry the evidence and "not significant" is no verdict.
    """
    if n_pairs < 1:
        return float("nan")
    return min(1.0, 2.0 / 2.0**n_pairs)


def block_weights(totals: np.ndarray, parts: np.ndarray, tol: float = 1e-3) -> np.ndarray | None:
    """Each block's share of a pooled mean, recovered from runs that report both.

    A run's global mean squared error is the cell-weighted mean of its per-block ones, with
    weights (the blocks' shares of the evaluated cells) that are the same for every run on one
    mask. Solving ``totals ≈ parts @ w`` by non-negative least squares over many runs gives
    ``w``; None when the blocks do not partition the total (relative residual above ``tol``),
    or there are fewer runs than blocks.

    Args:
        totals: ``(n_runs,)`` global values (e.g. MSE).
        parts: ``(n_runs, n_blocks)`` the same runs' per-block values.
    """
    from scipy.optimize import nnls

    totals, parts = np.asarray(totals, float), np.asarray(parts, float)
    ok = np.isfinite(totals) & np.isfinite(parts).all(axis=1)
    totals, parts = totals[ok], parts[ok]
    if parts.ndim != 2 or len(totals) < parts.shape[1] or not len(totals):
        return None
    w, _ = nnls(parts, totals)
    rel = np.abs(parts @ w - totals).max() / max(np.abs(totals).mean(), 1e-300)
    return w if rel <= tol and w.sum() > 0 else None


def cluster_bootstrap(tables: Mapping[str, np.ndarray], stat: Callable[[dict[str, np.ndarray]], np.ndarray],
                      n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Percentile interval of ``stat`` under a two-way cluster bootstrap: each replicate draws
    whole seeds and whole spatial blocks (e.g. biomes) with replacement, independently.

    Neither seeds nor blocks are independent units inside themselves (pixels of one biome share
    its weather, months of one year share its anomalies), so they are resampled whole; what
    varies between replicates is which seeds and which blocks enter the statistic.

    Args:
        tables: named arrays, ``(n_seeds, n_blocks)`` per-seed, per-block values, or
            ``(n_blocks,)`` per-block constants (weights, variances); all with the same blocks.
        stat: a vectorised statistic: given the arrays of a batch of replicates,
            ``(n, n_seeds, n_blocks)`` and ``(n, n_blocks)``, it returns ``(n,)`` values.
        n_boot: replicates; seed: generator seed (same seed -> same interval); level: coverage.

    Returns:
        ``estimate`` (``stat`` of the full tables), ``low``, ``high``, ``n_seeds``, ``n_blocks``.

    Raises:
        ValueError: for tables of different shapes, an empty table, or a level outside (0, 1).
    """
    if not 0 < level < 1:
        raise ValueError(f"cluster_bootstrap: level={level} outside (0, 1)")
    arrays = {k: np.asarray(v, float) for k, v in tables.items()}
    cubes = [v for v in arrays.values() if v.ndim == 2]
    if not cubes or any(v.shape != cubes[0].shape for v in cubes) or not cubes[0].size:
        raise ValueError("cluster_bootstrap: need non-empty (n_seeds, n_blocks) tables of one shape, got "
                         f"{ {k: v.shape for k, v in arrays.items()} }")
    n_s, n_b = cubes[0].shape
    if any(v.ndim != 1 or len(v) != n_b for v in arrays.values() if v.ndim != 2):
        raise ValueError(f"cluster_bootstrap: per-block arrays must have {n_b} values")

    def pick(rows: np.ndarray, cols: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[rows[:, :, None], cols[:, None, :]] if v.ndim == 2 else v[cols] for k, v in arrays.items()}

    rng = np.random.default_rng(seed)
    estimate = float(stat(pick(np.arange(n_s)[None], np.arange(n_b)[None]))[0])
    reps = stat(pick(rng.integers(0, n_s, (n_boot, n_s)), rng.integers(0, n_b, (n_boot, n_b))))
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(reps, [tail, 100 - tail])
    return {"estimate": estimate, "low": float(low), "high": float(high), "n_seeds": n_s, "n_blocks": n_b}


def pooled_rmse_diff(t: Mapping[str, np.ndarray]) -> np.ndarray:
    """Statistic for :func:`cluster_bootstrap`: seed-mean of ``RMSE(arm) − RMSE(base)``, each
    RMSE pooled over the drawn blocks with their weights: ``sqrt(Σ w·mse / Σ w)``. Tables:
    ``base``, ``arm`` (per-block MSE) and ``w`` (block weights)."""
    w = t["w"][:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):  # a draw of weightless blocks: NaN, skipped
        pooled = {k: np.sqrt((t[k] * w).sum(-1) / w.sum(-1)) for k in ("base", "arm")}
    return (pooled["arm"] - pooled["base"]).mean(-1)


def pooled_r2_diff(t: Mapping[str, np.ndarray]) -> np.ndarray:
    """Statistic for :func:`cluster_bootstrap`: seed-mean of ``R²(arm) − R²(base)``, with
    ``R² = 1 − Σ w·mse / Σ w·var`` over the drawn blocks. Tables: ``base``, ``arm`` (per-block
    MSE), ``w`` (block weights) and ``var`` (per-block target variance, scaled so that the full
    set of blocks gives the global variance)."""
    w = t["w"][:, None, :]
    var = (t["var"][:, None, :] * w).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):  # a draw of weightless blocks: NaN, skipped
        r2 = {k: 1 - (t[k] * w).sum(-1) / var for k in ("base", "arm")}
    return (r2["arm"] - r2["base"]).mean(-1)
