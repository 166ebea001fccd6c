"""The simulated Earth: schema, determinism (also across BLAS thread counts), physical
consistency, caching with content fingerprints."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ecodistill.config import DataConfig
from ecodistill.data import fingerprint, schema, simulate, store
from ecodistill.data.weather import solar

TINY = DataConfig(nlat=12, nlon=24, seed=3, train_years=(2001, 2001), val_years=(2002, 2002),
                  test_years=(2003, 2003), extra_years=(2000, 2000))


@pytest.fixture(scope="module")
def tiny():
    return simulate.simulate_earth(TINY)


def test_schema_units_and_coordinates(tiny):
    assert dict(tiny.sizes) == {"time": 4 * 365 + 1, "lat": 12, "lon": 24}
    schema.validate(tiny)
    for name in schema.WEATHER_VARS + ("ndvi", "ndvi_true"):
        assert tiny[name].dtype == np.float32
        assert tiny[name].attrs["units"] == schema.VAR_ATTRS[name]["units"]
    for name in schema.WEATHER_VARS:
        values = tiny[name].values
        assert np.isfinite(values).all(), name
        lo, hi = schema.PLAUSIBLE[name]
        assert lo <= np.median(values) <= hi, name
    assert tiny.attrs["dataset_hash"] == simulate.dataset_hash(TINY)


def test_ndvi_domain_gaps_bounds_and_unlabelled_years(tiny):
    dom = tiny["ndvi_domain"].values
    truth, obs = tiny["ndvi_true"].values, tiny["ndvi"].values
    assert np.isnan(truth[:, ~dom]).all() and np.isfinite(truth[:, dom]).all()
    lo, hi = tiny["ndvi_min"].values, tiny["ndvi_max"].values
    assert (truth[:, dom] >= lo[dom] - 1e-5).all() and (truth[:, dom] <= hi[dom] + 1e-5).all()
    year = tiny["time"].dt.year.values
    assert np.isnan(obs[year == 2000]).all()  # extra years carry no labels
    labelled = obs[year > 2000][:, dom]
    gaps = np.isnan(labelled).mean()
    assert 0.05 < gaps < 0.8
    # clouds bias the observation low
    assert np.nanmean(labelled - truth[year > 2000][:, dom]) < 0


def test_deterministic_per_seed():
    a = simulate.simulate_earth(TINY)
    b = simulate.simulate_earth(TINY)
    np.testing.assert_array_equal(a["msl"].values, b["msl"].values)
    np.testing.assert_array_equal(a["ndvi"].values, b["ndvi"].values)
    other = DataConfig(**{**TINY.__dict__, "seed": 4})
    assert simulate.dataset_hash(other) != simulate.dataset_hash(TINY)


def test_winds_follow_pressure_gradients(tiny):
    msl, v = (tiny[k].values.astype(np.float64) for k in ("msl", "v10"))
    lat = tiny["lat"].values
    nh = (lat > 30) & (lat < 70)
    dpdx = np.roll(msl, -1, axis=2) - np.roll(msl, 1, axis=2)
    # northern hemisphere: geostrophic v ∝ +dp/dx (low pressure to the left of the wind)
    corr = np.corrcoef(dpdx[:, nh].ravel(), v[:, nh].ravel())[0, 1]
    assert corr > 0.7


def test_rain_cloud_radiation_and_temperature_are_consistent(tiny):
    tp, r850 = tiny["tp"].values, tiny["r850"].values
    weather = tiny[list(schema.WEATHER_VARS)]
    anom = weather.groupby("time.month") - weather.groupby("time.month").mean()
    wet = r850 > 80
    assert tp[wet].mean() > 5 * tp[r850 < 40].mean()
    low = anom["msl"].values < -500
    assert tp[low].mean() > tp[anom["msl"].values > 500].mean()
    # radiation is lower under cloud (humid days) than clear days, at the same day of year
    assert np.corrcoef(anom["r850"].values.ravel(), anom["ssrd"].values.ravel())[0, 1] < -0.2
    orog, t2m = tiny["orography"].values, tiny["t2m"].values.mean(0)
    tropics = np.abs(tiny["lat"].values) < 30
    high = orog[tropics] > 1000
    assert t2m[tropics][high].mean() < t2m[tropics][~high].mean() - 3
    assert t2m[np.abs(tiny["lat"].values) < 20].mean() > t2m[np.abs(tiny["lat"].values) > 60].mean() + 20


def test_weather_systems_move_east_in_midlatitudes(tiny):
    lat = tiny["lat"].values
    band = (lat > 35) & (lat < 60)
    p = tiny["msl"].values[:, band].astype(np.float64)
    spec = np.fft.rfft(p - p.mean(axis=0), axis=2)[:, :, 1:5]  # zonal wavenumbers 1-4
    cross = (spec[1:] * np.conj(spec[:-1])).sum(axis=(0, 1))
    shift_deg = -np.degrees(np.angle(cross)) / np.arange(1, 5)  # f(x - s) <-> F e^{-i m s}
    assert (shift_deg[1:] > 2).all() and (shift_deg[1:] < 25).all()  # a few degrees east per day


def test_insolation_formula():
    q, daylength = solar(np.array([0.0, 89.0, -89.0]), np.array([172]))
    assert 380 < q[0, 0] < 440 and q[0, 1] > 500 and q[0, 2] == 0  # June solstice
    assert daylength[0, 0] == pytest.approx(12.0, abs=0.1) and daylength[0, 1] == pytest.approx(24.0)


@pytest.mark.parametrize("fmt", ["netcdf", "npy"])
def test_build_and_open_equal_in_memory(tiny, tmp_path, fmt):
    path = simulate.build_dataset(TINY, tmp_path / ("d.nc" if fmt == "netcdf" else "d.npy"), fmt=fmt)
    ds = store.open_dataset(path)
    for name in ("t2m", "ndvi", "swvl1"):
        np.testing.assert_array_equal(ds[name].values, tiny[name].values)
    assert ds["land_mask"].dtype == bool and ds.attrs["dataset_hash"] == tiny.attrs["dataset_hash"]
    assert not list(tmp_path.glob(".*tmp"))  # no temporary left behind
    assert (tmp_path / (path.name + ".fingerprint.json")).is_file()


def test_load_dataset_builds_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_CACHE", str(tmp_path))
    ds = simulate.load_dataset(TINY)
    path = simulate.dataset_path(TINY)
    assert path.exists() and str(path).startswith(str(tmp_path))
    mtime = path.stat().st_mtime_ns
    again = simulate.load_dataset(TINY)
    assert path.stat().st_mtime_ns == mtime and again.attrs["dataset_hash"] == ds.attrs["dataset_hash"]
    with pytest.raises(FileNotFoundError, match="data build"):
        simulate.load_dataset(DataConfig(**{**TINY.__dict__, "seed": 99}), build=False)


_ONE_YEAR = """
import sys
import numpy as np
from ecodistill.config import DataConfig
from ecodistill.data import simulate
cfg = DataConfig(nlat=64, nlon=128, seed=1, train_years=(2001, 2001), val_years=(2002, 2002),
                 test_years=(2003, 2003), extra_years=None)
year, days, block = next(simulate.simulate_years(cfg))  # spin-up year + the first year
np.savez(sys.argv[1], **block)
"""


def test_values_do_not_depend_on_the_blas_thread_count(tmp_path):
    """The full grid (64x128) is where multi-threaded BLAS changes the sums (~1e-6 relative,
    up to 0.5% in NDVI after 35 years); smaller grids stay single-threaded in OpenBLAS, so
    they would not catch a simulator that forgot to pin BLAS to one thread."""
    import os
    import subprocess
    import sys

    out = {}
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
               "MKL_NUM_THREADS": threads}
        out[threads] = tmp_path / f"t{threads}.npz"
        subprocess.run([sys.executable, "-c", _ONE_YEAR, str(out[threads])], env=env, check=True, timeout=300)
    a, b = np.load(out["1"]), np.load(out["2"])
    assert set(a.files) == set(simulate.OUTPUT_VARS)
    for name in a.files:
        assert a[name].tobytes() == b[name].tobytes(), name  # bit for bit


def test_build_writes_a_fingerprint_and_the_hash_follows_blas_pinning(tmp_path):
    path = simulate.build_dataset(TINY, tmp_path / "d.nc")
    side = tmp_path / "d.nc.fingerprint.json"
    record = json.loads(side.read_text())
    assert record["dataset_hash"] == simulate.dataset_hash(TINY) and record["source"] == "simulated"
    assert len(record["fingerprint"]["sample_days"]) == 32 and len(record["content_sha256"]) == 64
    ds = store.open_dataset(path)
    assert ds.attrs["content_check"] == "fingerprint"
    assert fingerprint.content_hash(ds) == record["content_sha256"]
