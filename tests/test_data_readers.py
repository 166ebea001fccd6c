"""Real-data readers on small files written here in the real formats (CDS ERA5 NetCDF,
GIMMS / Copernicus NDVI NetCDF, FourCastNet per-year HDF5), and every bad-input case:
time steps and CF calendars, CF unit spellings and unitless variables, seam columns, globs
(issue 14, cases 2, 3 and 7)."""
from __future__ import annotations

import sys

import h5netcdf
import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ecodistill.config import DataConfig
from ecodistill.data import (
    FCN_CHANNELS,
    VAR_ATTRS,
    WEATHER_VARS,
    coarsen_fn,
    convert_units,
    load_dataset,
    make_dataset,
    prepare,
    read_era5,
    read_fourcastnet_h5,
    read_ndvi,
    regrid_dataset,
    write_dataset,
)

LAT = np.linspace(90, -90, 19)  # 10°, descending with both poles, like ERA5
LON = np.arange(0, 360, 10.0)  # 0..350, like ERA5
BASE = {"t2m": 285.0, "tp": 1e-4, "ssrd": 3.6e5, "u10": 3.0, "v10": -1.0, "msl": 101000.0, "tcwv": 20.0,
        "swvl1": 0.3}
UNITS = {"t2m": "K", "tp": "m", "ssrd": "J m**-2", "u10": "m s**-1", "v10": "m s**-1", "msl": "Pa",
         "tcwv": "kg m**-2", "swvl1": "m**3 m**-3"}


def _single(times, new_layout=True, units=None, base=None, drop=()):
    tname, la, lo = ("valid_time", "latitude", "longitude")
    shape = (len(times), LAT.size, LON.size)
    lon_pattern = np.broadcast_to(LON / 36.0, shape)  # lets the test find where longitudes went
    data = {}
    for name, value in (base or BASE).items():
        if name in drop:
            continue
        arr = np.full(shape, value, np.float32)
        if name == "t2m":
            arr = arr + lon_pattern
        if name == "swvl1":
            arr[:, 0, :] = np.nan  # "sea"
        data[name] = ((tname, la, lo), arr, {"units": (units or UNITS)[name]})
    coords = {tname: times, la: LAT, lo: LON}
    if new_layout:
        coords.update(number=0, expver=("valid_time", np.array(["0001"] * len(times))))
    else:
        coords = {"time": times, la: LAT, lo: LON}
        data = {k: (("time", la, lo), v[1], v[2]) for k, v in data.items()}
    return xr.Dataset(data, coords=coords)


def _pressure(times, new_layout=True, levels=(500, 850), z_units="m**2 s**-2", r_units="%"):
    tname, lev = ("valid_time", "pressure_level") if new_layout else ("time", "level")
    shape = (len(times), len(levels), LAT.size, LON.size)
    lv = np.asarray(levels, float)[None, :, None, None]
    z = 50000.0 + lv if z_units != "m" else 5000.0 + lv  # geopotential, or geopotential height
    r = lv / 10 if r_units != "1" else lv / 1000
    data = {"z": ((tname, lev, "latitude", "longitude"), np.broadcast_to(z, shape).astype(np.float32),
                  {"units": z_units}),
            "t": ((tname, lev, "latitude", "longitude"), np.broadcast_to(200.0 + lv / 10, shape).astype(np.float32),
                  {"units": "K"}),
            "r": ((tname, lev, "latitude", "longitude"), np.broadcast_to(r, shape).astype(np.float32),
                  {"units": r_units} if r_units is not None else {})}
    return xr.Dataset(data, coords={tname: times, lev: list(levels), "latitude": LAT, "longitude": LON})


def _write(ds, path):
    ds.to_netcdf(path, engine="h5netcdf")
    return path


@pytest.fixture
def era5_new(tmp_path):
    # two whole days: 00 UTC of Jan 1 .. 00 UTC of Jan 3 (the last step closes Jan 2's totals)
    times = pd.date_range("2010-01-01", periods=49, freq="h")
    return _write(_single(times), tmp_path / "sl.nc"), _write(_pressure(times), tmp_path / "pl.nc")


def test_read_era5_new_cds_layout(era5_new):
    with pytest.warns(UserWarning, match="dropped 2 incomplete day"):  # Jan 3 (1 step), Dec 31 (tp)
        ds = read_era5(*era5_new)
    assert dict(ds.sizes) == {"time": 2, "lat": 19, "lon": 36}
    assert list(ds.indexes["time"]) == list(pd.to_datetime(["2010-01-01", "2010-01-02"]))
    assert set(ds.data_vars) == set(WEATHER_VARS)
    assert np.all(np.diff(ds["lat"].values) > 0) and ds["lon"].min() == -180 and ds["lon"].max() == 170
    # longitude 270 (=-90) kept its value through the 0..360 -> -180..180 conversion
    assert float(ds["t2m"].sel(lon=-90).isel(time=0, lat=5)) == pytest.approx(285 + 270 / 36, abs=1e-4)
    assert float(ds["tp"].max()) == pytest.approx(24 * 1e-4, rel=1e-5)  # daily sum of hourly accumulations
    assert float(ds["ssrd"].max()) == pytest.approx(24 * 3.6e5, rel=1e-5)
    assert float(ds["z500"].max()) == pytest.approx(50500.0) and float(ds["t850"].max()) == pytest.approx(285.0)
    assert float(ds["r850"].max()) == pytest.approx(85.0)
    assert np.isnan(ds["swvl1"].sel(lat=90)).all()  # the sea stays NaN (make_dataset sets it to 0 there)
    assert ds["tp"].attrs["units"] == "m" and ds["ssrd"].attrs["units"] == "J m-2"


def test_read_era5_old_layout_with_unit_conversions(tmp_path):
    times = pd.date_range("2010-01-01", periods=3, freq="D")
    units = {**UNITS, "t2m": "degC", "msl": "hPa", "tp": "mm", "ssrd": "W m**-2"}
    base = {**BASE, "t2m": 12.0, "msl": 1010.0, "tp": 2.0, "ssrd": 100.0}
    sl = _write(_single(times, new_layout=False, units=units, base=base), tmp_path / "sl.nc")
    pl = _write(_pressure(times, new_layout=False, z_units="m"), tmp_path / "pl.nc")
    ds = read_era5(sl, pl)
    assert float(ds["t2m"].min()) == pytest.approx(285.15, abs=1e-3)
    assert float(ds["msl"].max()) == pytest.approx(101000.0)
    assert float(ds["tp"].max()) == pytest.approx(0.002)
    assert float(ds["ssrd"].max()) == pytest.approx(8.64e6)  # daily-mean W m-2 -> J m-2 per day
    assert float(ds["z500"].max()) == pytest.approx(5500.0 * 9.80665, rel=1e-6)  # height -> geopotential


@pytest.mark.parametrize("case, match", [
    ("missing", "swvl1.*volumetric_soil_water_layer_1"),
    ("nan", "t2m holds .* NaN"),
    ("units", "furlongs"),
    ("six_hourly", "24 hours are needed"),
    ("level", "850 hPa"),
])
@pytest.mark.filterwarnings("ignore:.*incomplete day")
def test_read_era5_bad_input(tmp_path, case, match):
    times = pd.date_range("2010-01-01", periods=25 if case != "six_hourly" else 8,
                          freq="h" if case != "six_hourly" else "6h")
    sl = _single(times, drop=("swvl1",) if case == "missing" else ())
    if case == "nan":
        sl["t2m"][0, 3, 3] = np.nan
    if case == "units":
        sl["u10"].attrs["units"] = "furlongs"
    pl = _pressure(times, levels=(500, 700) if case == "level" else (500, 850))
    with pytest.raises(ValueError, match=match):
        read_era5(_write(sl, tmp_path / "sl.nc"), _write(pl, tmp_path / "pl.nc"))


def test_convert_units_without_attribute_is_refused_naming_the_argument():
    da = xr.DataArray(np.full((2, 3), 288.0), dims=("time", "x"))
    with pytest.raises(ValueError, match="t2m has no units attribute.*'K' or 'degC'.*units=\\{'t2m'"):
        convert_units(da, "t2m")  # even values that look like kelvin: never guessed
    assert convert_units(da, "t2m", units="K").attrs["units"] == "K"
    np.testing.assert_allclose(convert_units(da - 273.15, "t2m", units="degC").values, 288.0)


def _nc(path, name, dtype, values, attrs, fill, times, time_attrs):
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"time": len(times), "lat": 4, "lon": 8}
        t = f.create_variable("time", ("time",), "f8")
        t[:] = times
        t.attrs.update(time_attrs)
        f.create_variable("lat", ("lat",), "f4")[:] = [67.5, 22.5, -22.5, -67.5]  # descending
        f.create_variable("lon", ("lon",), "f4")[:] = np.arange(-157.5, 180, 45)
        v = f.create_variable(name, ("time", "lat", "lon"), dtype, fillvalue=fill)
        v[:] = values
        v.attrs.update(attrs)


def test_read_ndvi_gimms_naming(tmp_path):
    raw = np.full((4, 4, 8), 5000, np.int16)
    raw[0, 0, 0] = -32768  # fill
    path = tmp_path / "ndvi3g_geo_v1_1990_0106.nc4"
    _nc(path, "ndvi", "i2", raw, {}, np.int16(-32768), [1, 1.5, 2, 2.5], {"units": "month"})
    with h5netcdf.File(path, "a") as f:
        f.attrs["Year"] = 1990
        pct = f.create_variable("percentile", ("time", "lat", "lon"), "i2")
        flags = np.zeros((4, 4, 8), np.int16)
        flags[1, 1, 1] = 2
        pct[:] = 2000 * flags + 500
    with pytest.raises(ValueError, match="no scale_factor.*x 10\\^4.*ndvi_scale=1e-4"):
        read_ndvi(path)  # int16 without scale_factor: the scale is never guessed
    nd = read_ndvi(path, product="gimms3g")
    assert list(nd.indexes["time"]) == list(pd.to_datetime(["1990-01-01", "1990-01-16", "1990-02-01",
                                                            "1990-02-16"]))
    assert np.all(np.diff(nd["lat"].values) > 0)
    v = nd.values
    assert np.nanmax(v) == pytest.approx(0.5) and np.isnan(v).sum() == 2  # fill + flag 2
    assert np.isfinite(read_ndvi(path, max_flag=2, ndvi_scale=1e-4).values).sum() == v.size - 1


def test_read_ndvi_copernicus_naming(tmp_path):
    raw = np.zeros((2, 4, 8), np.uint8)
    raw[:, 0, :] = 250
    raw[0, 1, 1] = 252  # a flag value above valid_range
    raw[0, 1, 2] = 255  # fill
    attrs = {"scale_factor": 0.004, "add_offset": -0.08, "valid_range": np.array([0, 250], np.uint8)}
    path = tmp_path / "c_gls_NDVI.nc"
    _nc(path, "NDVI", "u1", raw, attrs, np.uint8(255), [0, 10], {"units": "days since 2015-01-01"})
    nd = read_ndvi(path)
    assert str(nd.indexes["time"][1].date()) == "2015-01-11"
    v = nd.values
    assert np.isnan(v).sum() == 2
    assert np.nanmax(v) == pytest.approx(0.92) and np.nanmin(v) == pytest.approx(-0.08)


def _fcn_file(path, n_days, channels=FCN_CHANNELS, nlat=9, nlon=16):
    typical = {"u10": 3, "v10": -1, "t2m": 285, "sp": 98000, "msl": 101000, "t850": 275, "u1000": 3, "v1000": 0,
               "z1000": 900, "u850": 6, "v850": 0, "z850": 14000, "u500": 12, "v500": 0, "z500": 55000,
               "t500": 255, "z50": 200000, "r500": 40, "r850": 70, "tcwv": 20}
    steps = (np.arange(n_days * 4) % 4)[:, None]
    values = np.array([typical.get(c, 1.0) for c in channels])[None, :] + steps
    fields = np.broadcast_to(values[:, :, None, None], (n_days * 4, len(channels), nlat, nlon))
    with h5py.File(path, "w") as f:
        f.create_dataset("fields", data=fields.astype(np.float32))  # one write: strided ones are slow
    return path


def test_read_fourcastnet_h5(tmp_path):
    ds = read_fourcastnet_h5([_fcn_file(tmp_path / "2001.h5", 365)])
    assert dict(ds.sizes) == {"time": 365, "lat": 9, "lon": 16}
    assert float(ds["t2m"].isel(time=10).mean()) == pytest.approx(286.5)  # mean of 4 six-hourly steps
    assert np.all(np.diff(ds["lat"].values) > 0) and float(ds["lon"].min()) == -180
    assert ds["z500"].attrs["units"] == "m2 s-2" and "sp" in ds
    coarse = read_fourcastnet_h5([tmp_path / "2001.h5"], regridder=coarsen_fn(6, 12))
    assert dict(coarse.sizes) == {"time": 365, "lat": 6, "lon": 12}
    np.testing.assert_allclose(coarse["msl"].values, 101001.5, rtol=1e-6)


@pytest.mark.parametrize("case, match", [("name", "named by year"), ("channels", "19 channels but 20 names"),
                                         ("order", "channel list"), ("steps", "whole number")])
def test_read_fourcastnet_bad_input(tmp_path, case, match):
    if case == "name":
        path = _fcn_file(tmp_path / "data.h5", 365)
    elif case == "steps":
        path = _fcn_file(tmp_path / "2001.h5", 365)
        with h5py.File(path, "a") as f:
            del f["fields"]
            f.create_dataset("fields", (1000, 20, 9, 16), "f4")
    else:  # a file with 19 channels, or FourCastNet's 20 in reverse order
        path = _fcn_file(tmp_path / "2001.h5", 365, channels=FCN_CHANNELS[::-1] if case == "order"
                         else FCN_CHANNELS[:19])
    with pytest.raises(ValueError, match=match):
        read_fourcastnet_h5([path], channels=FCN_CHANNELS)


def _real_sources(years=(2001, 2004)):
    times = pd.date_range(f"{years[0]}-01-01", f"{years[1]}-12-31", freq="D")
    rng = np.random.default_rng(0)
    shape = (len(times), LAT.size, LON.size)
    data = {v: (("time", "lat", "lon"), np.abs(BASE.get(v, 0) + rng.normal(0, 0.01, shape)).astype(np.float32))
            for v in ("t2m", "tp", "ssrd", "u10", "v10", "msl", "tcwv", "swvl1")}  # amounts stay >= 0
    data.update(z500=(("time", "lat", "lon"), np.full(shape, 55000, np.float32)),
                t850=(("time", "lat", "lon"), np.full(shape, 275, np.float32)),
                r850=(("time", "lat", "lon"), np.full(shape, 70, np.float32)))
    weather = xr.Dataset(data, coords={"time": times, "lat": LAT[::-1], "lon": LON - 180})
    comp = pd.date_range(f"{years[0]}-01-01", f"{years[1]}-12-31", freq="SMS")  # 1st and 15th: GIMMS-like
    nd_lat, nd_lon = np.arange(-87.5, 90, 5.0), np.arange(-177.5, 180, 5.0)
    ndvi = xr.DataArray(rng.uniform(0.2, 0.8, (len(comp), nd_lat.size, nd_lon.size)).astype(np.float32),
                        dims=("time", "lat", "lon"), coords={"time": comp, "lat": nd_lat, "lon": nd_lon})
    return weather, ndvi


def test_regrid_dataset_is_conservative():
    weather, _ = _real_sources((2001, 2001))
    out = regrid_dataset(weather[["t2m"]].isel(time=slice(0, 5)), 12, 24)
    w_in = np.cos(np.deg2rad(weather["lat"].values))
    w_in[[0, -1]] = np.sin(np.deg2rad(2.5))  # half-width polar cells
    src = float((weather["t2m"].isel(time=0).mean("lon") * w_in).sum() / w_in.sum())
    w_out = np.cos(np.deg2rad(out["lat"].values))
    dst = float((out["t2m"].isel(time=0).mean("lon") * w_out).sum() / w_out.sum())
    assert dst == pytest.approx(src, abs=1e-3)


def test_make_dataset_write_and_train_on_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_CACHE", str(tmp_path / "cache"))
    weather, ndvi = _real_sources()
    ds = make_dataset(weather, ndvi, 12, 24)
    assert np.isnan(ds["ndvi"].values[:, ~ds["ndvi_domain"].values]).all()
    path = write_dataset(ds, tmp_path / "real.nc")
    cfg = DataConfig(source=str(path), nlat=12, nlon=24, train_years=(2002, 2002), val_years=(2003, 2003),
                     test_years=(2004, 2004), extra_years=(2001, 2001))
    loaded = load_dataset(cfg)
    assert loaded.attrs["dataset_hash"] == ds.attrs["dataset_hash"]
    from ecodistill.data import make_loader

    prep = prepare(loaded, cfg, patch_size=4)
    batch = next(iter(make_loader(prep, "train", batch_size=4)))
    assert batch.x.shape == (4, len(prep.input_channels), 12, 24) and batch.mask.any()
    with pytest.raises(ValueError, match="lacks.*tp"):
        make_dataset(weather.drop_vars("tp"), ndvi, 12, 24)


# --- time steps and calendars (issue 14, cases 2 and 3) -------------------------------------

def _pair(tmp_path, times, tag="", units=None, base=None, **pressure):
    sl = _write(_single(times, units={**UNITS, **(units or {})}, base={**BASE, **(base or {})}),
                tmp_path / f"sl{tag}.nc")
    return sl, _write(_pressure(times, **pressure), tmp_path / f"pl{tag}.nc")


def _one_line_error(excinfo, *names):
    text = str(excinfo.value)
    assert "\n" not in text, text
    for name in names:
        assert str(name) in text, (name, text)


def test_hourly_fluxes_and_rates_are_averaged_not_summed(tmp_path):
    times = pd.date_range("2010-01-01", periods=48, freq="h")
    ds = read_era5(*_pair(tmp_path, times, units={"ssrd": "W m**-2", "tp": "kg m**-2 s**-1"},
                          base={"ssrd": 100.0, "tp": 1e-5}))
    assert ds.sizes["time"] == 2
    # a mean flux of 100 W m-2 over a day is 8.64 MJ m-2 (summing 24 hourly values gave 24x that)
    np.testing.assert_allclose(ds["ssrd"].values, 100.0 * 86400, rtol=1e-6)
    np.testing.assert_allclose(ds["tp"].values, 1e-5 * 86400 / 1000, rtol=1e-6)  # kg m-2 s-1 -> m per day


def test_hourly_accumulations_sum_the_hours_ending_at_each_step(tmp_path):
    times = pd.date_range("2010-01-01", periods=49, freq="h")
    sl = _single(times)
    sl["tp"][24] = 5e-4  # valid at 00 UTC Jan 2: the rain of 23-24 UTC Jan 1
    paths = _write(sl, tmp_path / "sl.nc"), _write(_pressure(times), tmp_path / "pl.nc")
    with pytest.warns(UserWarning, match="incomplete day"):
        ds = read_era5(*paths)
    np.testing.assert_allclose(ds["tp"].sel(time="2010-01-01").values, 23 * 1e-4 + 5e-4, rtol=1e-5)
    np.testing.assert_allclose(ds["tp"].sel(time="2010-01-02").values, 24 * 1e-4, rtol=1e-5)


def test_six_hourly_states_and_mean_rates(tmp_path):
    times = pd.date_range("2010-01-01", periods=8, freq="6h")
    sl = _single(times, units={**UNITS, "ssrd": "W m-2", "tp": "mm day-1"}, base={**BASE, "ssrd": 50.0, "tp": 3.0})
    sl["t2m"][:4] = 280.0  # day 1: 280 K at every step; day 2: 285 K + the longitude pattern
    ds = read_era5(_write(sl, tmp_path / "sl.nc"), _write(_pressure(times), tmp_path / "pl.nc"))
    assert ds.sizes["time"] == 2 and float(ds["t2m"].isel(time=0).max()) == pytest.approx(280.0)
    np.testing.assert_allclose(ds["ssrd"].values, 50.0 * 86400, rtol=1e-6)
    np.testing.assert_allclose(ds["tp"].values, 0.003, rtol=1e-6)


@pytest.mark.parametrize("freq", ["MS", "7D"])
def test_monthly_or_weekly_era5_is_refused(tmp_path, freq):
    times = pd.date_range("2010-01-01", periods=12, freq=freq)
    sl, pl = _pair(tmp_path, times, units={"ssrd": "W m-2", "tp": "m day-1"}, base={"ssrd": 150.0, "tp": 0.002})
    with pytest.raises(ValueError, match="daily or sub-daily data is needed") as err:
        read_era5(sl, pl)
    _one_line_error(err, sl, "monthly" if freq == "MS" else "7-daily")


def test_cmip_monthly_noleap_file_is_refused_by_make_dataset():
    weather, ndvi = _real_sources((2001, 2001))
    months = xr.date_range("2001-01-16", periods=12, freq="MS", calendar="noleap", use_cftime=True)
    monthly = weather.isel(time=slice(0, 12)).assign_coords(time=months)  # a CMIP Amon file
    with pytest.raises(ValueError, match="weather: time step is .* days \\(monthly\\); daily") as err:
        make_dataset(monthly, ndvi, 12, 24)
    _one_line_error(err, "monthly")


@pytest.mark.parametrize("calendar, start, expected", [
    ("standard", "2000-02-27", ["2000-02-27", "2000-02-28", "2000-02-29", "2000-03-01"]),
    ("proleptic_gregorian", "2000-02-27", ["2000-02-27", "2000-02-28", "2000-02-29", "2000-03-01"]),
    ("noleap", "2000-02-27", ["2000-02-27", "2000-02-28", "2000-02-29", "2000-03-01", "2000-03-02"]),
    ("365_day", "2000-02-27", ["2000-02-27", "2000-02-28", "2000-02-29", "2000-03-01", "2000-03-02"]),
    ("all_leap", "2001-02-27", ["2001-02-27", "2001-02-28", "2001-03-01"]),
    ("366_day", "2001-02-27", ["2001-02-27", "2001-02-28", "2001-03-01"]),
    ("julian", "2000-02-27", ["2000-03-11", "2000-03-12", "2000-03-13", "2000-03-14"]),  # same instants
])
def test_cf_calendars_become_standard_days(tmp_path, calendar, start, expected):
    times = xr.date_range(start, periods=4, freq="D", calendar=calendar, use_cftime=True)
    sl = _single(times)
    sl["t2m"][:] = np.array([280.0, 282.0, 284.0, 286.0], np.float32)[:, None, None]
    ds = read_era5(_write(sl, tmp_path / "sl.nc"), _write(_pressure(times), tmp_path / "pl.nc"))
    assert [str(t.date()) for t in ds.indexes["time"]] == expected
    t2m = ds["t2m"].isel(lat=0, lon=0).values
    if calendar in ("noleap", "365_day"):  # Feb 29 inserted as the mean of Feb 28 and Mar 1
        np.testing.assert_allclose(t2m, [280, 282, 283, 284, 286])
    elif calendar in ("all_leap", "366_day"):  # Feb 29 of 2001 does not exist: dropped
        np.testing.assert_allclose(t2m, [280, 282, 286])
    else:
        np.testing.assert_allclose(t2m, [280, 282, 284, 286])


def test_360_day_calendar_is_refused_naming_the_file(tmp_path):
    times = xr.date_range("2000-02-27", periods=5, freq="D", calendar="360_day", use_cftime=True)
    sl, pl = _pair(tmp_path, times)
    with pytest.raises(ValueError, match="360_day.*convert_calendar") as err:
        read_era5(sl, pl)
    _one_line_error(err, sl)


def test_noleap_daily_weather_given_directly_to_make_dataset(tmp_path):
    weather, ndvi = _real_sources((2004, 2004))
    days = xr.date_range("2004-01-01", periods=365, freq="D", calendar="noleap", use_cftime=True)
    ds = make_dataset(weather.isel(time=slice(0, 365)).assign_coords(time=days), ndvi, 12, 24)
    assert ds.sizes["time"] == 366 and "2004-02-29" in {str(t.date()) for t in ds.indexes["time"]}


def test_missing_days_and_incomplete_days_are_refused(tmp_path):
    days = pd.date_range("2010-01-01", periods=6, freq="D").delete(3)
    sl, pl = _pair(tmp_path, days, tag="d")
    with pytest.raises(ValueError, match="missing day.*2010-01-04") as err:
        read_era5(sl, pl)
    _one_line_error(err, sl)
    hours = pd.date_range("2010-01-01", periods=73, freq="h").delete(30)
    sl, pl = _pair(tmp_path, hours, tag="h")
    with pytest.raises(ValueError, match="irregular time steps"):
        read_era5(sl, pl)


# --- units (issue 14, case 3) --------------------------------------------------------------

@pytest.mark.parametrize("name, units, value, expected", [
    ("t2m", "degree_Celsius", 12.0, 285.15), ("t2m", "degC", 12.0, 285.15), ("t2m", "degrees_Celsius", 12.0, 285.15),
    ("t2m", "K", 285.0, 285.0), ("t850", "celsius", 0.0, 273.15),
    ("msl", "hPa", 1010.0, 101000.0), ("msl", "mbar", 1010.0, 101000.0), ("msl", "Pa", 1e5, 1e5),
    ("z500", "m**2 s**-2", 55000.0, 55000.0), ("z500", "m2 s-2", 55000.0, 55000.0),
    ("z500", "gpm", 5600.0, 5600.0 * 9.80665),
    ("r850", "%", 70.0, 70.0), ("r850", "1", 0.7, 70.0), ("r850", "percent", 70.0, 70.0),
    ("tp", "m", 0.002, 0.002), ("tp", "mm", 2.0, 0.002), ("tp", "kg m-2", 2.0, 0.002),
    ("tp", "kg m-2 s-1", 2e-5, 2e-5 * 86.4), ("tp", "mm day-1", 2.0, 0.002),
    ("ssrd", "J m**-2", 1.5e7, 1.5e7), ("ssrd", "W m-2", 150.0, 150.0 * 86400), ("ssrd", "MJ m-2", 15.0, 1.5e7),
    ("tcwv", "kg m**-2", 20.0, 20.0), ("tcwv", "mm", 20.0, 20.0), ("swvl1", "m**3 m**-3", 0.3, 0.3),
    ("swvl1", "1", 0.3, 0.3), ("swvl1", "%", 30.0, 0.3), ("u10", "m s**-1", 5.0, 5.0), ("u10", "km h-1", 36.0, 10.0),
])
def test_cf_unit_spellings_convert(name, units, value, expected):
    da = xr.DataArray(np.full((2, 3, 4), value), dims=("time", "lat", "lon"), attrs={"units": units})
    out = convert_units(da, name)
    np.testing.assert_allclose(out.values, expected, rtol=1e-9)
    assert out.attrs["units"] == VAR_ATTRS[name]["units"]


def test_degree_celsius_file_reads(tmp_path):
    times = pd.date_range("2010-01-01", periods=3, freq="D")
    ds = read_era5(*_pair(tmp_path, times, units={"t2m": "degree_Celsius"}, base={"t2m": 12.0}))
    assert float(ds["t2m"].min()) == pytest.approx(285.15, abs=1e-3)


@pytest.mark.parametrize("r_units, value, ok", [(None, "fraction", False), (None, "percent", False),
                                                ("1", "percent", False), ("%", "fraction", False)])
def test_relative_humidity_without_or_with_a_wrong_unit(tmp_path, r_units, value, ok):
    times = pd.date_range("2010-01-01", periods=3, freq="D")
    pl = _pressure(times, r_units="1" if value == "fraction" else "%")  # values 0.85 or 85
    if r_units is None:
        del pl["r"].attrs["units"]
    else:
        pl["r"].attrs["units"] = r_units
    sl = _write(_single(times), tmp_path / "sl.nc")
    plp = _write(pl, tmp_path / "pl.nc")
    if ok:
        assert float(read_era5(sl, plp)["r850"].max()) == pytest.approx(85.0)
        return
    with pytest.raises(ValueError, match="r850") as err:
        read_era5(sl, plp)
    _one_line_error(err, plp, "units")


def test_unitless_subdaily_accumulation_is_refused(tmp_path):
    times = pd.date_range("2010-01-01", periods=25, freq="h")
    sl = _single(times)
    del sl["ssrd"].attrs["units"]
    with pytest.raises(ValueError, match="ssrd has no units.*sum.*average"):
        read_era5(_write(sl, tmp_path / "sl.nc"), _write(_pressure(times), tmp_path / "pl.nc"))


def test_unknown_unit_names_the_variable():
    da = xr.DataArray(np.ones((2, 3)), dims=("time", "x"), attrs={"units": "bananas per fortnight"})
    with pytest.raises(ValueError, match="tcwv has units 'bananas per fortnight'.*fix the units"):
        convert_units(da, "tcwv")


# --- seam column (issue 14, case 3) and globs (case 7) ------------------------------------

@pytest.mark.parametrize("lon", [np.arange(0, 360.1, 10.0), np.arange(-180, 180.1, 10.0)])
def test_duplicated_seam_column_is_dropped(tmp_path, monkeypatch, lon):
    monkeypatch.setattr(sys.modules[__name__], "LON", lon)
    times = pd.date_range("2010-01-01", periods=3, freq="D")
    ds = read_era5(*_pair(tmp_path, times))
    assert ds.sizes["lon"] == 36 and float(ds["lon"].min()) == -180 and float(ds["lon"].max()) == 170
    weather, ndvi = _real_sources((2001, 2001))
    seam = xr.concat([weather, weather.isel(lon=[0]).assign_coords(lon=[180.0])], dim="lon")  # -180 and 180
    assert make_dataset(seam, ndvi, 12, 24).sizes["lon"] == 24


def test_globs_and_lists_of_files(tmp_path):
    times = pd.date_range("2010-01-01", periods=49, freq="h")
    for i, part in enumerate((slice(0, 24), slice(24, 49))):
        _write(_single(times[part]), tmp_path / f"era5_single_levels_{i}.nc")
        _write(_pressure(times[part]), tmp_path / f"era5_pressure_levels_{i}.nc")
    with pytest.warns(UserWarning, match="incomplete day"):
        ds = read_era5(str(tmp_path / "era5_single_levels_*.nc"), [tmp_path / "era5_pressure_levels_*.nc"])
    assert ds.sizes["time"] == 2
    for year in (1990, 1991):
        path = tmp_path / f"ndvi3g_geo_v1_{year}_0106.nc4"
        _nc(path, "ndvi", "i2", np.full((2, 4, 8), 5000, np.int16), {}, np.int16(-32768), [1, 1.5],
            {"units": "month"})
        with h5netcdf.File(path, "a") as f:
            f.attrs["Year"] = year
    nd = read_ndvi(str(tmp_path / "ndvi3g_*.nc4"), ndvi_scale=1e-4)
    assert [str(t.date()) for t in nd.indexes["time"]] == ["1990-01-01", "1990-01-16", "1991-01-01", "1991-01-16"]
    with pytest.raises(FileNotFoundError, match="no NDVI file matches .*nothing_\\*.nc4"):
        read_ndvi(str(tmp_path / "nothing_*.nc4"))
    with pytest.raises(FileNotFoundError, match="ERA5 single-levels file .*absent.nc not found"):
        read_era5(tmp_path / "absent.nc", tmp_path / "era5_pressure_levels_0.nc")
