"""Real-data readers on small files written here in the real formats (CDS ERA5 NetCDF,
GIMMS / Copernicus NDVI NetCDF, FourCastNet per-year HDF5), and every bad-input case:
time steps and CF calendars, CF unit spellings and unitless variables, seam columns, globs
(issue 14, cases 2, 3 and 7)."""
from __future__ import annotations

import h5netcdf
import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ecodistill.config import DataConfig
from ecodistill.data import (
    FCN_CHANNELS,
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
    assert float(ds["swvl1"].sel(lat=90).max()) == 0.0  # NaN over the sea -> 0
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


def test_convert_units_without_attribute_checks_the_range():
    da = xr.DataArray(np.full((2, 3), 15.0), dims=("time", "x"))
    with pytest.raises(ValueError, match="no units attribute"):
        convert_units(da, "t2m")
    assert convert_units(da + 273.15, "t2m").attrs["units"] == "K"


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
    nd = read_ndvi(path)
    assert list(nd.indexes["time"]) == list(pd.to_datetime(["1990-01-01", "1990-01-16", "1990-02-01",
                                                            "1990-02-16"]))
    assert np.all(np.diff(nd["lat"].values) > 0)
    v = nd.values
    assert np.nanmax(v) == pytest.approx(0.5) and np.isnan(v).sum() == 2  # fill + flag 2
    assert np.isfinite(read_ndvi(path, max_flag=2).values).sum() == v.size - 1


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
    data = {v: (("time", "lat", "lon"), (BASE.get(v, 0) + rng.normal(0, 0.01, shape)).astype(np.float32))
            for v in ("t2m", "tp", "ssrd", "u10", "v10", "msl", "tcwv", "swvl1")}
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
