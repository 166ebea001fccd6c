"""ecodistill.stats: spread over seeds x folds, paired tests, two-way block bootstrap."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from ecodistill import stats


def _rows():
    return pd.DataFrame({"method": ["a"] * 4 + ["b"] * 4, "seed": [0, 0, 1, 1] * 2, "fold": [0, 1, 0, 1] * 2,
                         "metric": "r2", "value": [0.5, 0.6, 0.7, 0.8, 0.6, 0.7, 0.9, 0.85]})


def test_summarise_mean_std_ci():
    frame = pd.concat([_rows(), _rows().assign(metric="rmse")])
    out = stats.summarise(frame, ["method"], "r2").set_index("method")
    a = np.array([0.5, 0.6, 0.7, 0.8])
    assert out.loc["a", "mean"] == pytest.approx(a.mean()) and out.loc["a", "std"] == pytest.approx(a.std(ddof=1))
    assert out.loc["a", "n"] == 4
    assert out.loc["a", "ci95"] == pytest.approx(sps.t.ppf(0.975, 3) * a.std(ddof=1) / 2)
    assert stats.summarise(frame, ["method"], "bias").empty
    with pytest.raises(KeyError, match="nope"):
        stats.summarise(frame, ["nope"], "r2")


def test_paired_aligns_and_tests():
    pairs = stats.paired(_rows(), ["seed", "fold"], "method", "a", "b")
    assert len(pairs) == 4 and list(pairs.columns) == ["seed", "fold", "a", "b"]
    res = stats.paired_test(pairs["a"], pairs["b"])
    assert res["n"] == 4 and res["wins"] == 4 and res["mean_diff"] == pytest.approx(0.1125)
    assert res["p_value"] == pytest.approx(sps.wilcoxon(pairs["a"], pairs["b"]).pvalue)
    with pytest.raises(ValueError, match="several"):
        stats.paired(_rows(), ["seed"], "method", "a", "b")


def test_paired_test_edge_cases():
    assert np.isnan(stats.paired_test([1.0], [2.0])["p_value"])
    assert np.isnan(stats.paired_test([1.0, 2.0], [1.0, 2.0])["p_value"])  # all differences zero
    with pytest.raises(ValueError, match="paired"):
        stats.paired_test([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        stats.paired_test([1.0, np.nan], [1.0, 2.0])


def test_bootstrap_ci_resamples_seeds_and_blocks():
    rng = np.random.default_rng(0)
    table = 0.6 + rng.normal(0, 0.05, (3, 12))
    ci = stats.bootstrap_ci(table, n_boot=500, seed=1)
    assert ci["low"] < ci["estimate"] < ci["high"] and (ci["n_seeds"], ci["n_blocks"]) == (3, 12)
    assert ci == stats.bootstrap_ci(table, n_boot=500, seed=1)  # seeded: reproducible
    wide = stats.bootstrap_ci(0.6 + rng.normal(0, 0.2, (3, 12)), n_boot=500, seed=1)
    assert wide["high"] - wide["low"] > ci["high"] - ci["low"]
    const = stats.bootstrap_ci(np.full((2, 5), 0.3), n_boot=50)
    assert const["low"] == const["high"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="n_seeds"):
        stats.bootstrap_ci(np.ones(4))
    with pytest.raises(ValueError, match="level"):
        stats.bootstrap_ci(np.ones((2, 2)), level=1.5)


def test_wilcoxon_cannot_go_below_its_floor_with_5_seeds():
    """With 5 seeds the exact two-sided Wilcoxon test cannot reach p < 0.05: the smallest p,
    every pair on one side, is 2 / 2**5 = 0.0625, however large the effect."""
    assert stats.wilcoxon_min_p(5) == pytest.approx(0.0625)
    assert stats.wilcoxon_min_p(3) == pytest.approx(0.25) and stats.wilcoxon_min_p(10) < 0.002
    huge = stats.paired_test(np.zeros(5), np.arange(1.0, 6.0) * 100)  # every seed far on one side
    assert huge["p_value"] == pytest.approx(stats.wilcoxon_min_p(5)) and huge["p_value"] > 0.05
    assert np.isnan(stats.wilcoxon_min_p(0))


def test_block_weights_recover_each_blocks_share():
    rng = np.random.default_rng(0)
    share = np.array([0.5, 0.3, 0.2])
    parts = rng.uniform(0.001, 0.01, (40, 3))  # per-block MSE of 40 runs
    w = stats.block_weights(parts @ share, parts)
    assert w == pytest.approx(share, rel=1e-6)
    assert stats.block_weights(parts @ share + rng.normal(0, 1e-3, 40), parts) is None  # not a partition
    assert stats.block_weights(parts[:2] @ share, parts[:2]) is None  # fewer runs than blocks


def test_cluster_bootstrap_resamples_seeds_and_blocks():
    """ΔRMSE pooled over weighted biomes: exact at the full sample, an interval that holds the
    estimate, reproducible, wider when the blocks disagree, degenerate when every cell agrees."""
    rng = np.random.default_rng(1)
    w = np.array([0.5, 0.3, 0.2])
    base = rng.uniform(0.001, 0.002, (5, 3))
    arm = base * 1.1  # the arm's error is 10 % higher everywhere
    ci = stats.cluster_bootstrap({"base": base, "arm": arm, "w": w}, stats.pooled_rmse_diff, n_boot=500)
    pooled = np.sqrt(base @ w / w.sum())
    assert ci["estimate"] == pytest.approx(((np.sqrt(1.1) - 1) * pooled).mean())
    assert 0 < ci["low"] <= ci["estimate"] <= ci["high"] and (ci["n_seeds"], ci["n_blocks"]) == (5, 3)
    assert ci == stats.cluster_bootstrap({"base": base, "arm": arm, "w": w}, stats.pooled_rmse_diff, n_boot=500)
    mixed = base * np.array([0.8, 1.1, 1.4])  # blocks disagree about the sign
    wide = stats.cluster_bootstrap({"base": base, "arm": mixed, "w": w}, stats.pooled_rmse_diff, n_boot=500)
    assert wide["low"] < 0 < wide["high"]
    same = stats.cluster_bootstrap({"base": np.ones((3, 2)), "arm": np.full((3, 2), 4.0), "w": np.ones(2)},
                                   stats.pooled_rmse_diff, n_boot=50)
    assert same["low"] == same["high"] == pytest.approx(1.0)
    var = np.full(3, 0.01)
    r2 = stats.cluster_bootstrap({"base": base, "arm": arm, "w": w, "var": var}, stats.pooled_r2_diff, n_boot=200)
    assert r2["estimate"] < 0 and r2["high"] < 0  # higher error, less skill
    with pytest.raises(ValueError, match="one shape"):
        stats.cluster_bootstrap({"base": base, "arm": arm[:2]}, stats.pooled_rmse_diff)
    with pytest.raises(ValueError, match="per-block"):
        stats.cluster_bootstrap({"base": base, "arm": arm, "w": np.ones(4)}, stats.pooled_rmse_diff)
    with pytest.raises(ValueError, match="level"):
        stats.cluster_bootstrap({"base": base, "arm": arm, "w": w}, stats.pooled_rmse_diff, level=2)
