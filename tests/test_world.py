"""World versions: v1 reproduced by version and seed, v2's land state as ERA5 gives it,
its determinism across thread counts, the pre-training tasks and the realism statistics."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ecodistill.config import DataConfig, get_profile, to_dict
from ecodistill.data import land, realism, schema, simulate, world
from ecodistill.data.loader import DayDataset
from ecodistill.data.prepare import input_vars, prepare
from ecodistill.data.tasks import Forecast, pretrain_task
from ecodistill.store import runs

TINY_V2 = DataConfig(nlat=12, nlon=24, seed=5, train_years=(2001, 2002), val_years=(2003, 2003),
                     test_years=(2004, 2004), extra_years=(2000, 2000), world="v2", inputs="era5")


@pytest.fixture(scope="module")
def tiny_v2():
    ds = simulate.simulate_earth(TINY_V2)
    return ds


def test_v1_is_reproduced_by_version_with_its_recorded_hash():
    """The first world keeps its hash, so the committed v1 results stay identifiable."""
    v1 = get_profile("cpu").data if get_profile("cpu").data.world == "v1" else replace(
        get_profile("cpu").data, world="v1", inputs="v1")
    digest = simulate.dataset_hash(v1)
    recorded = runs.read_runs("cpu")["dataset_hash"].astype(str)
    assert digest in set(recorded), f"no committed cpu run on the v1 world {digest}"
    assert simulate.dataset_hash(replace(v1, world="v2", inputs="era5")) != digest
    assert world.output_vars("v1") == simulate.OUTPUT_VARS
    assert "world" not in to_dict(v1) and to_dict(replace(v1, world="v2"))["world"] == "v2"


def test_unknown_world_and_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown world 'v3'.*v1.*v2"):
        simulate.dataset_hash(replace(TINY_V2, world="v3"))
    with pytest.raises(ValueError, match="DataConfig.inputs='land' unknown.*anchor.*era5"):
        input_vars(replace(TINY_V2, inputs="land"))


def test_v2_holds_the_land_state_as_era5_gives_it(tiny_v2):
    for name in schema.LAND_VARS + ("d2m", "ndvi", "ndvi_true", "ndvi_bayes"):
        assert name in tiny_v2, name
        assert tiny_v2[name].attrs["units"] == schema.VAR_ATTRS[name]["units"]
    schema.validate(tiny_v2, schema.INPUT_SETS["era5"])
    landm = tiny_v2["land_mask"].values
    theta = np.stack([tiny_v2[f"swvl{k}"].values[:, landm] for k in range(1, 5)])
    assert (theta > 0).all() and (theta <= land.LV["theta_s"] + 1e-6).all()
    sd = tiny_v2["sd"].values
    assert (sd >= 0).all() and sd[:, landm].max() > 0.001  # snow somewhere, in m of water equivalent
    assert (tiny_v2["d2m"].values <= tiny_v2["t2m"].values + 1e-3).all()  # dew point never above temperature
    # the deep layers remember longer than the top one (lag-30 autocorrelation of anomalies)
    doy = tiny_v2["time"].dt.dayofyear.values
    lag30 = [np.nanmedian(realism.lag_correlation(realism.daily_anomalies(
        tiny_v2[f"swvl{k}"].values[:, landm], doy), 30)) for k in (1, 4)]
    assert lag30[1] > lag30[0] + 0.2, lag30
    # the Bayes predictor is the noise-free NDVI minus the expected cloud bias: never above it
    dom = tiny_v2["ndvi_domain"].values
    gap = tiny_v2["ndvi_true"].values[:, dom] - tiny_v2["ndvi_bayes"].values[:, dom]
    assert (gap >= 0).all() and gap.max() <= land.LV["cloud_bias"] * np.sqrt(2 / np.pi) + 1e-6


def _digest_in_subprocess(threads: int) -> str:
    code = ("import hashlib, numpy as np; from ecodistill.data import simulate; from tests.test_world import TINY_V2;"
            "ds = simulate.simulate_earth(TINY_V2); h = hashlib.sha256();"
            "[h.update(np.ascontiguousarray(ds[v].values).tobytes()) for v in sorted(ds.data_vars)];"
            "print(h.hexdigest())")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True,
                         check=True, timeout=600)
    return out.stdout.strip().splitlines()[-1]


def test_v2_is_deterministic_per_seed_and_across_thread_counts(tiny_v2):
    h = hashlib.sha256()
    for v in sorted(tiny_v2.data_vars):
        h.update(np.ascontiguousarray(tiny_v2[v].values).tobytes())
    assert _digest_in_subprocess(1) == _digest_in_subprocess(2) == h.hexdigest()
    other = simulate.simulate_earth(replace(TINY_V2, seed=6))
    assert not np.array_equal(other["swvl3"].values, tiny_v2["swvl3"].values)


def test_pretraining_tasks():
    names = schema.INPUT_SETS["era5"]
    assert pretrain_task("next_day", names) == Forecast.next_day(names)
    atm = pretrain_task("atmosphere", names)
    assert atm.inputs == schema.ATMOSPHERE_VARS and atm.max_lead == 1
    landf = pretrain_task("land", names, land_lead=10)
    assert dict(landf.targets)["swvl3"] == 10 and dict(landf.targets)["t2m"] == 1 and landf.max_lead == 10
    with pytest.raises(ValueError, match="forecasts the land state.*inputs='era5'"):
        pretrain_task("land", schema.INPUT_SETS["anchor"])
    with pytest.raises(ValueError, match="pretrain_task='soil' unknown"):
        pretrain_task("soil", names)


def test_forecast_targets_sit_at_their_leads(tiny_v2):
    ds = tiny_v2.assign_attrs(dataset_hash="tinyv2test")
    prep = prepare(ds, TINY_V2, patch_size=4, in_memory=True)
    task = pretrain_task("land", prep.weather_vars, land_lead=7)
    days = DayDataset(prep, "train", task=task, weather_only=True)
    assert days.days.max() + 7 <= prep.days["train"].max()  # no target beyond the split
    b = days.batch(np.arange(3))
    t = b["t"]
    assert b["x"].shape[1] == len(task.inputs) and b["y"].shape[1] == len(task.targets)
    k = [v for v, _ in task.targets].index("swvl4")
    np.testing.assert_array_equal(b["y"][:, k], prep.weather(np.sort(t) + 7, ("swvl4",))[:, 0][np.argsort(np.argsort(t))])
    j = [v for v, _ in task.targets].index("z500")
    np.testing.assert_array_equal(b["y"][:, j], prep.weather(np.sort(t) + 1, ("z500",))[:, 0][np.argsort(np.argsort(t))])


def test_realism_statistics_on_known_series():
    rng = np.random.default_rng(0)
    n, rho = 20000, 0.8
    x = np.zeros(n)
    for i in range(1, n):
        x[i] = rho * x[i - 1] + np.sqrt(1 - rho**2) * rng.standard_normal()
    assert realism.lag_correlation(x[:, None])[0] == pytest.approx(rho, abs=0.02)
    assert realism.efolding_days(x[:, None])[0] in (4.0, 5.0)  # 0.8^k < 1/e from k = 5 (4.48)
    month = np.tile(np.arange(1, 13), 30)
    seasonal = np.sin(2 * np.pi * month / 12)
    noise = 0.5 * rng.standard_normal(month.size)
    share = realism.monthly_variance_share(seasonal + noise, month)
    assert share == pytest.approx(0.25 / (0.5 + 0.25), abs=0.05)
    trend = np.arange(31.0)
    assert abs(realism.window_lag1(trend[:, None] + 0.01 * rng.standard_normal((31, 1)))[0]) < 0.5


def test_judging_realism_rows():
    rows = pd.DataFrame([
        {"source": "real", "statistic": "monthly variance share outside the seasonal cycle", "variable": "vpd",
         "value": 0.1},
        {"source": "v2", "statistic": "monthly variance share outside the seasonal cycle", "variable": "vpd",
         "value": 0.15},
        {"source": "v1", "statistic": "monthly variance share outside the seasonal cycle", "variable": "vpd",
         "value": 0.39},
        {"source": "v2", "statistic": "daily lag-1 autocorrelation", "variable": "z500", "value": 0.95},
        {"source": "real", "statistic": "monthly lag-1 autocorrelation of anomalies", "variable": "vegetation (LAI)",
         "value": 0.24},
        {"source": "v2", "statistic": "monthly lag-1 autocorrelation of anomalies", "variable": "vegetation",
         "value": 0.62}])
    table = realism.judge(rows).set_index(["statistic", "variable"])
    vpd = table.loc[("monthly variance share outside the seasonal cycle", "vpd")]
    assert (vpd["low"], vpd["high"]) == (0.05, 0.2) and vpd["within_v2"] and vpd["within_v1"] is False
    assert table.loc[("daily lag-1 autocorrelation", "z500"), "within_v2"] is False  # above 0.90
    assert table.loc[("monthly lag-1 autocorrelation of anomalies", "vegetation (LAI)"), "within_v2"] is False
    assert table.loc[("daily lag-1 autocorrelation", "t850"), "within_v2"] is None  # no value


@pytest.mark.slow
def test_realism_at_smoke_is_within_its_targets(tmp_path, monkeypatch):
    """The v2 world at smoke meets the literature targets and the FLUXNET ones it was revised
    toward; the misses are those the book states (vegetation against LAI; the one-month ERA5
    statistic, which a 7.5-degree grid cannot resolve)."""
    from ecodistill.experiments.realism import fluxval_sites, run_realism

    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    table = realism.judge(run_realism("smoke", ("v2",)), sources=("v2",))
    misses = table[table["within_v2"] == False]  # noqa: E712 -- None means not computed
    expected = {("monthly lag-1 autocorrelation of anomalies", "vegetation (LAI)"),
                ("monthly variance share outside the seasonal cycle", "vegetation (LAI)"),
                ("daily lag-1 autocorrelation, one March, British Isles", "t2m")}
    assert set(zip(misses["statistic"], misses["variable"])) <= expected, misses
    judged = int(table["within_v2"].notna().sum())
    assert table["within_v2"].eq(True).sum() >= judged - len(expected)
    assert judged >= 9  # the literature targets need no real data
    if fluxval_sites() is not None:  # with ../shared/data, the FLUXNET and ERA5 targets are judged too
        assert judged == len(table), table


#: The v2 world's known excursions beyond the physical domain (the book's Limitations): deep
#: polar lows of z500 and moisture of +20 K warm anomalies; about 2e-5 and 5e-6 of the cpu values.
EXCURSIONS = {"z500": 1e-4, "tcwv": 1e-4}


def test_the_v2_world_lies_in_its_physical_domain_bar_rare_stated_extremes(tiny_v2):
    """What the readers check on real files, on every value of the simulated world: no NaN over
    land but NDVI's, and values outside the domain only where stated, and rarely."""
    from ecodistill.data.domain import check_missing

    land = tiny_v2["land_mask"].values
    for name in schema.INPUT_SETS["era5"] + ("d2m", "ndvi"):
        check_missing(tiny_v2[name], name, "the v2 world", land=land)
        lo, hi = schema.DOMAIN.get(name, (-np.inf, np.inf))
        values = tiny_v2[name].values
        outside = np.isfinite(values) & ((values < lo) | (values > hi))
        assert outside.mean() <= EXCURSIONS.get(name, 0.0), (name, outside.sum())
