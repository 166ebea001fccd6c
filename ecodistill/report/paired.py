"""Paired differences (chapter 4 and the abstract): one arm against a reference, seed by seed,
with the sign convention of the whole book (:data:`SIGN_CONVENTION`: arm − reference) and
95% intervals from a bootstrap that respects dependence.

Intervals resample whole seeds and whole biomes (the land-cover blocks every run is scored on,
weighted by their share of the land cells: :func:`ecodistill.report.frames.biome_weights`),
a two-way cluster bootstrap (:func:`ecodistill.stats.cluster_bootstrap`); the months of one
test year are not independent, so they are not the blocks. The per-run result files store
biomes but not hemispheres, so biome x hemisphere blocks would need the evaluation to write
them. Explained in book/generated/04_results.ipynb ("The protocol").
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import stats
from .frames import biome_weights, block_table

#: The sign convention of every difference in the book, stated once (glued into the
#: introduction and the protocol): arm minus reference, here distilled minus scratch.
SIGN_CONVENTION = ("Every difference in this book is *arm − reference*: for the central comparison, "
                   "Δ = distilled − scratch. A negative ΔRMSE (a lower error) and a positive ΔR² "
                   "(more skill) mean that distillation helps.")

_NO_PAIR = {"n_pairs": 0, "rmse_base": np.nan, "rmse_arm": np.nan, "diff": np.nan, "wins": 0,
            "p_value": np.nan, "ci_low": np.nan, "ci_high": np.nan, "r2_anom_base": np.nan,
            "r2_anom_arm": np.nan, "d_r2_anom": np.nan, "d_r2_anom_low": np.nan,
            "d_r2_anom_high": np.nan, "n_blocks": 0, "identical": False, "seeds": []}


def _variance(rmse_anom: np.ndarray, r2_anom: np.ndarray) -> np.ndarray:
    """The target's anomaly variance implied by each run's anomaly RMSE and R² (NaN where
    either is missing): ``rmse² / (1 − R²)``, the same for every run scored on one target."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(rmse_anom, float) ** 2 / (1 - np.asarray(r2_anom, float))


def _block_intervals(frame: pd.DataFrame, base: pd.DataFrame, arm: pd.DataFrame, seeds: list,
                     weights: pd.Series | None, n_boot: int) -> dict:
    """95% intervals of ΔRMSE and ΔR² of anomalies (arm − base) from a two-way cluster
    bootstrap over seeds and biomes (:func:`ecodistill.stats.cluster_bootstrap`); over seeds
    alone (one block: the global values) where the biome rows cannot be used."""
    sides = {"base": base.loc[seeds], "arm": arm.loc[seeds]}
    tables = {m: {k: block_table(frame, rows["run_id"], m).reindex(seeds) for k, rows in sides.items()}
              for m in ("rmse", "rmse_anom", "r2_anom")}
    cols = [] if weights is None else [c for c in weights.index if all(
        c in t and t[c].notna().all() for t in tables["rmse"].values())]
    glob = {m: {k: rows[m].to_numpy(float)[:, None] if m in rows else np.full((len(seeds), 1), np.nan)
                for k, rows in sides.items()} for m in ("rmse", "rmse_anom", "r2_anom")}
    if cols:
        w = weights[cols].to_numpy(float)
        pick = {m: {k: t[k].reindex(columns=cols).to_numpy(float) for k in t} for m, t in tables.items()}
    else:
        w, pick = np.ones(1), glob
    out = {"n_blocks": len(cols), "d_r2_anom_low": np.nan, "d_r2_anom_high": np.nan}
    rmse = stats.cluster_bootstrap({"base": pick["rmse"]["base"] ** 2, "arm": pick["rmse"]["arm"] ** 2, "w": w},
                                   stats.pooled_rmse_diff, n_boot=n_boot)
    out.update(ci_low=rmse["low"], ci_high=rmse["high"])
    # per-block anomaly variance, scaled so that all blocks together give the global one
    var = np.nanmedian(np.concatenate([_variance(pick["rmse_anom"][k], pick["r2_anom"][k]) for k in sides]), axis=0)
    total = np.nanmedian(np.concatenate([_variance(glob["rmse_anom"][k], glob["r2_anom"][k]) for k in sides]))
    anom = {k: pick["rmse_anom"][k] ** 2 for k in sides}
    if np.isfinite(var).all() and np.isfinite(total) and all(np.isfinite(a).all() for a in anom.values()):
        var = var * total / float((w * var).sum() / w.sum())
        r2 = stats.cluster_bootstrap({**anom, "w": w, "var": var}, stats.pooled_r2_diff, n_boot=n_boot)
        out.update(d_r2_anom_low=r2["low"], d_r2_anom_high=r2["high"])
    out["identical_blocks"] = all(np.array_equal(t["base"].to_numpy(), t["arm"].to_numpy(), equal_nan=True)
                                  for t in tables.values())
    return out


def paired_difference(frame: pd.DataFrame, base: pd.DataFrame, arm: pd.DataFrame,
                      n_boot: int = 2000, weights: pd.Series | None = None) -> dict:
    """Seed-paired test-RMSE difference ``arm − base`` (:data:`SIGN_CONVENTION`: negative means
    ``arm`` has the lower error), and the same for the anomaly R² (positive: ``arm`` has more skill).

    ``base`` and ``arm`` are :func:`wide` rows with a ``seed`` column (one run per seed each);
    ``weights`` the biomes' shares of the land (:func:`biome_weights`, computed when None).
    Returns ``n_pairs, rmse_base, rmse_arm, diff, wins`` (seeds where ``arm`` is better),
    ``p_value`` (two-sided Wilcoxon signed-rank), ``ci_low, ci_high`` (95% percentile interval
    of ``diff`` from a two-way cluster bootstrap that resamples seeds and biomes, the biomes
    weighted by their share of the land cells; over seeds alone without biome rows),
    ``r2_anom_base, r2_anom_arm, d_r2_anom`` with ``d_r2_anom_low, d_r2_anom_high`` (the same
    bootstrap), ``n_blocks`` (biomes resampled; 0: seeds only), ``identical`` (both sides score
    the same at every paired seed and biome: the same runs under two names, no evidence) and
    the paired ``seeds``.
    """
    base, arm = base.drop_duplicates("seed").set_index("seed"), arm.drop_duplicates("seed").set_index("seed")
    seeds = sorted(set(base.index) & set(arm.index))
    if not seeds:
        return dict(_NO_PAIR, seeds=[])
    a, b = base.loc[seeds, "rmse"].to_numpy(float), arm.loc[seeds, "rmse"].to_numpy(float)
    test = stats.paired_test(a, b)  # b - a = arm - base
    weights = biome_weights(frame) if weights is None else weights
    ci = _block_intervals(frame, base, arm, seeds, weights, n_boot)
    r2 = {k: float(rows.loc[seeds, "r2_anom"].mean()) if "r2_anom" in rows else np.nan
          for k, rows in (("base", base), ("arm", arm))}
    return {"n_pairs": test["n"], "rmse_base": float(a.mean()), "rmse_arm": float(b.mean()),
            "diff": test["mean_diff"], "wins": int((b < a).sum()), "p_value": test["p_value"],
            "ci_low": ci["ci_low"], "ci_high": ci["ci_high"], "r2_anom_base": r2["base"],
            "r2_anom_arm": r2["arm"], "d_r2_anom": r2["arm"] - r2["base"],
            "d_r2_anom_low": ci["d_r2_anom_low"], "d_r2_anom_high": ci["d_r2_anom_high"],
            "n_blocks": ci["n_blocks"], "identical": bool(np.array_equal(a, b) and ci["identical_blocks"]),
            "seeds": seeds}


def interval_method(table: pd.DataFrame, n_boot: int = 2000) -> str:
    """How the 95% intervals of ``table`` (:func:`paired_comparison`, :func:`contrasts`) were
    computed, for the sentence or caption beside them."""
    if table is None or table.empty or "n_blocks" not in table:
        return (f"95% percentile interval of a two-way cluster bootstrap over seeds and biomes ({n_boot} "
                "replicates; none computed yet: no paired runs)")
    blocks = sorted({int(b) for b in table["n_blocks"]})
    seeds = sorted({int(n) for n in table["n_pairs"]})
    seed_text = "/".join(map(str, seeds))
    if blocks == [0]:
        return (f"95% percentile interval of a bootstrap over the {seed_text} seeds ({n_boot} replicates; "
                "no per-biome rows, so no spatial blocks)")
    block_text = "/".join(str(b) for b in blocks if b)
    return (f"95% percentile interval of a two-way cluster bootstrap that resamples the {seed_text} seeds and "
            f"the {block_text} biomes, each biome weighted by its share of the land cells ({n_boot} replicates)")
