"""Baselines through the result store, forecastability, and the ``data`` command line."""
from __future__ import annotations

import numpy as np
import pytest

from ecodistill import cli
from ecodistill.config import DataConfig
from ecodistill.data import baselines, load_dataset, prepare
from ecodistill.store import runs

CFG = DataConfig(nlat=12, nlon=24, seed=2, train_years=(2001, 2003), val_years=(2004, 2004),
                 test_years=(2005, 2005), extra_years=None)


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECODISTILL_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("ECODISTILL_RESULTS", str(tmp_path_factory.mktemp("results")))
        yield prepare(load_dataset(CFG), CFG, patch_size=4)


def test_baselines_are_written_and_linear_beats_climatology(prep):
    frame = baselines.run_baselines(prep, "smoke")
    assert set(frame["method"]) == set(baselines.available_methods(prep))
    assert "ceiling-noise-free" in set(frame["method"]) and "ceiling-bayes" not in set(frame["method"])  # a v1 world
    assert set(frame["kind"]) == {"baseline"} and set(frame["family"]) == {"baseline"}
    assert {"r2", "rmse", "rmse_latw", "r2_anom", "rmse_anom"} <= set(frame["metric"])
    assert any(r.startswith("biome:") for r in frame["region"])
    test = frame[(frame.split == "test") & (frame.region == "global")]
    value = test.pivot_table(index="method", columns="metric", values="value")
    assert abs(value.loc["climatology", "r2_anom"]) < 0.1
    assert value.loc["climatology", "r2_anom"] < value.loc["linear", "r2_anom"] < 0.8  # room to learn
    assert value.loc["linear", "rmse"] < value.loc["climatology", "rmse"]
    assert value.loc["ceiling-noise-free", "r2_anom"] > value.loc["linear", "r2_anom"]  # the ceiling is above
    # older observations persist worse: latency 1 > 16 > 30 days
    lat = [value.loc[m, "r2_anom"] for m in ("persistence", "persistence-16d", "persistence-30d")]
    assert lat[0] > lat[1] > lat[2], lat
    again = baselines.run_baselines(prep, "smoke")  # reused, not recomputed
    assert len(again) == len(frame)
    assert len(runs.read_runs("smoke", kind="baseline")) == len(frame)


def test_persistence_forward_fills_gaps(prep):
    pred = baselines.persistence_pred(prep, "test")[:, 0]
    dom = prep.ndvi_domain
    assert np.isfinite(pred[:, dom]).all()
    obs = prep.target(prep.days["test"])
    t = 100
    ok = np.isfinite(obs[t - 1]) & dom
    np.testing.assert_array_equal(pred[t][ok], obs[t - 1][ok])


def test_next_day_weather_beats_persistence(prep):
    table = baselines.forecastability(prep).set_index("variable")
    for var in ("t2m", "msl", "z500", "u10", "tp"):
        assert table.loc[var, "rmse_linear"] < table.loc[var, "rmse_persistence"], var
    assert (table["skill"] < 1).all()


def test_cli_build_prints_path_hash_and_size(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_CACHE", str(tmp_path))
    parser = cli.build_parser()
    args = parser.parse_args(["data", "build", "--profile", "smoke", "--format", "npy"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "path:" in out and "hash:" in out and "size:" in out and str(tmp_path) in out
    with pytest.raises(SystemExit):
        parser.parse_args(["data", "build", "--profile", "huge"])


def test_persistence_latency_uses_only_observations_old_enough(prep):
    """The nowcast at latency L on day d is the last observation of the days <= d - L."""
    days = prep.split_days("test")
    obs = prep.target(np.arange(days[-1] + 1))
    for latency in (1, 16):
        pred = baselines.persistence_pred(prep, "test", latency=latency)[:, 0]
        i = 200
        cell = np.argwhere(prep.ndvi_domain)[5]
        seen = obs[: days[i] - latency + 1, cell[0], cell[1]]
        last = seen[np.isfinite(seen)][-1]
        assert pred[i, cell[0], cell[1]] == last
    with pytest.raises(ValueError, match="latency=0"):
        baselines.persistence_pred(prep, "test", latency=0)
