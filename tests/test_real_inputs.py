"""Issue 20 (items 1, 2 and 7) and issue 21 (item 5): real files built as a hostile but
realistic user would, each refused with its cause named (file, variable, fix) or read right.

Every bad input is written here (tmp_path): NDVI encodings without the attributes that
settle them, precipitation in mm labelled m, humidity as a fraction labelled %, values
outside the physical domain, missing land values, empty and HTML files, ERA5T beside ERA5,
the 2024 CDS layout, grids that differ by float noise, GRIB as the CDS delivers it (written
here with eccodes, and the real shared sample when present), and the land state.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import h5netcdf
import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ecodistill.data import read_era5, read_fourcastnet_h5, read_ndvi
from ecodistill.data.schema import INPUT_SETS, LAND_VARS
from ecodistill.utils import REPO_ROOT

LAT = np.linspace(60, 40, 9)  # descending, 2.5 degrees
LON = np.arange(0, 20, 2.5)
UNITS = {"t2m": "K", "tp": "m", "ssrd": "J m**-2", "u10": "m s**-1", "v10": "m s**-1", "msl": "Pa",
         "tcwv": "kg m**-2", "swvl1": "m**3 m**-3", "swvl2": "m**3 m**-3", "swvl3": "m**3 m**-3",
         "swvl4": "m**3 m**-3", "sd": "m of water equivalent"}
BASE = {"t2m": 285.0, "tp": 1e-4, "ssrd": 3.6e5, "u10": 3.0, "v10": -1.0, "msl": 101000.0, "tcwv": 20.0,
        "swvl1": 0.3, "swvl2": 0.32, "swvl3": 0.34, "swvl4": 0.36, "sd": 0.05}


def one_line(excinfo, *names):
    """The error is one line and names each of ``names``."""
    text = str(excinfo.value)
    assert "\n" not in text, text
    for name in names:
        assert str(name) in text, (name, text)


def single(times, tname="valid_time", values=None, units=None, land=True):
    shape = (len(times), LAT.size, LON.size)
    data = {}
    for name, base in BASE.items():
        arr = np.full(shape, base, np.float32) if values is None or name not in values else values[name]
        data[name] = ((tname, "latitude", "longitude"), arr, {"units": (units or UNITS)[name]})
    coords = {tname: times, "latitude": LAT, "longitude": LON}
    if land is not None:
        data["lsm"] = ((tname, "latitude", "longitude"), np.ones(shape, np.float32), {"units": "(0 - 1)"})
    return xr.Dataset(data, coords=coords)


def pressure(times, tname="valid_time", lev="pressure_level", r=70.0, r_units="%"):
    shape = (len(times), 2, LAT.size, LON.size)

    def var(value, unit):
        return (tname, lev, "latitude", "longitude"), np.full(shape, value, np.float32), {"units": unit}

    data = {"z": var(55000.0, "m**2 s**-2"), "t": var(275.0, "K"), "r": var(r, r_units)}
    return xr.Dataset(data, coords={tname: times, lev: [500, 850], "latitude": LAT, "longitude": LON})


def write(ds, path):
    ds.to_netcdf(path, engine="h5netcdf")
    return path


DAYS = pd.date_range("2010-01-01", periods=3, freq="D")


def pair(tmp_path, sl=None, pl=None, tag=""):
    sl = single(DAYS) if sl is None else sl
    pl = pressure(DAYS) if pl is None else pl
    return write(sl, tmp_path / f"sl{tag}.nc"), write(pl, tmp_path / f"pl{tag}.nc")


# --- NDVI: never a guessed scale or fill (issue 20, item 1) -------------------------------

def ndvi_file(path, raw, attrs=None, fill=None, dtype=None):
    raw = np.asarray(raw)
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"time": raw.shape[0], "lat": raw.shape[1], "lon": raw.shape[2]}
        t = f.create_variable("time", ("time",), "f8")
        t[:] = np.arange(raw.shape[0]) * 16.0
        t.attrs["units"] = "days since 2001-01-01"
        f.create_variable("lat", ("lat",), "f4")[:] = np.linspace(50, 40, raw.shape[1])
        f.create_variable("lon", ("lon",), "f4")[:] = np.linspace(0, 10, raw.shape[2])
        v = f.create_variable("ndvi", ("time", "lat", "lon"), dtype or raw.dtype, fillvalue=fill)
        v[:] = raw
        v.attrs.update(attrs or {})
    return path


def gimms_like(fill_value=-3000):
    raw = np.full((3, 4, 5), 2470, np.int16)  # NDVI 0.247 x 10^4
    raw[:, 0, 0] = fill_value
    return raw


def test_int16_ndvi_with_undeclared_fill_is_refused_naming_ndvi_fill(tmp_path):
    path = ndvi_file(tmp_path / "ndvi.nc", gimms_like(), {"scale_factor": 1e-4})
    with pytest.raises(ValueError, match="declares no fill value.*ndvi_fill=") as err:
        read_ndvi(path)  # before: the fill -3000 became NDVI -0.30
    one_line(err, path, "ndvi")
    nd = read_ndvi(path, ndvi_fill=-3000)
    assert np.isnan(nd.sel(lat=50, lon=0).values).all() and np.nanmin(nd.values) == pytest.approx(0.247)
    assert float(np.nanmean(read_ndvi(path, product="modis").values)) == pytest.approx(0.247)


@pytest.mark.parametrize("raw, dtype, candidates", [
    (np.full((3, 4, 5), 63, np.uint8), "u1", "byte coding"),  # 0..255 (0.247 x 255)
    (np.full((3, 4, 5), 24.7, np.float32), "f4", "percent"),  # 0..100
    (np.full((3, 4, 5), 2470, np.int16), "i2", "ndvi_scale=1e-4"),  # x 10^4 without scale_factor
])
def test_ndvi_without_scale_factor_is_refused_naming_the_candidates(tmp_path, raw, dtype, candidates):
    raw = raw.copy()
    raw[0, 0, 0] = 200 if dtype != "f4" else 90.0
    fill = np.array(255 if dtype == "u1" else -32768, dtype=raw.dtype) if dtype != "f4" else np.float32(np.nan)
    path = ndvi_file(tmp_path / "ndvi.nc", raw, fill=fill)
    with pytest.raises(ValueError, match=f"no scale_factor.*{candidates}.*ndvi_scale=") as err:
        read_ndvi(path)  # before: 0..255 and 0..100 were divided by 10^4 (mean 0.006 / 0.002, not 0.247)
    one_line(err, path)


def test_percent_ndvi_from_its_units_attribute_and_explicit_scales(tmp_path):
    raw = np.full((3, 4, 5), 24.7, np.float32)
    assert float(read_ndvi(ndvi_file(tmp_path / "p.nc", raw, {"units": "%"})).mean()) == pytest.approx(0.247)
    byte = ndvi_file(tmp_path / "b.nc", np.full((3, 4, 5), 82, np.uint8), fill=np.uint8(255))
    nd = read_ndvi(byte, ndvi_scale=0.004, ndvi_offset=-0.08)
    assert float(nd.mean()) == pytest.approx(0.248, abs=1e-6)
    with pytest.raises(ValueError, match="outside its physical domain -1..1.*ndvi_scale="):
        read_ndvi(byte, ndvi_scale=0.1)  # a wrong explicit scale is caught by the domain


def test_all_nan_ndvi_names_the_real_cause(tmp_path):
    raw = np.full((3, 4, 5), -32768, np.int16)
    path = ndvi_file(tmp_path / "ndvi.nc", raw, {"scale_factor": 1e-4}, fill=np.int16(-32768))
    with pytest.raises(ValueError, match="every value is missing once decoded") as err:
        read_ndvi(path)  # before: "weather and NDVI share no day: check the years"
    one_line(err, path, "_FillValue")


def test_make_dataset_names_all_nan_ndvi_and_years_apart():
    from ecodistill.data import make_dataset

    times = pd.date_range("2001-01-01", periods=40, freq="D")
    lat, lon = np.arange(-85.0, 90, 10.0), np.arange(-175.0, 180, 10.0)  # global: make_dataset regrids
    weather = xr.Dataset({"t2m": (("time", "lat", "lon"), np.full((40, lat.size, lon.size), 285.0, np.float32))},
                         coords={"time": times, "lat": lat, "lon": lon})
    comp = pd.date_range("2001-01-01", periods=3, freq="16D")
    ndvi = xr.DataArray(np.full((3, lat.size, lon.size), np.nan, np.float32), dims=("time", "lat", "lon"),
                        coords={"time": comp, "lat": lat, "lon": lon})
    with pytest.raises(ValueError, match="ndvi: every value is NaN"):
        make_dataset(weather, ndvi, 12, 24, weather_vars=("t2m",))
    later = ndvi.fillna(0.4).assign_coords(time=pd.date_range("2005-01-01", periods=3, freq="16D"))
    with pytest.raises(ValueError, match="share no day: the weather covers 2001-01-01..2001-02-09, the NDVI 2005"):
        make_dataset(weather, later, 12, 24, weather_vars=("t2m",))


# --- every value in its domain (issue 20, item 2) ---------------------------------------

def test_precipitation_in_mm_labelled_m_is_refused_from_every_value(tmp_path):
    rng = np.random.default_rng(1)
    shape = (3, LAT.size, LON.size)
    mm = rng.gamma(0.3, 1.6, shape).astype(np.float32)  # median ~0.2 mm: a median check passes it
    mm[1, 4, 3] = 16.8
    sl, pl = pair(tmp_path, single(DAYS, values={"tp": mm}))
    with pytest.raises(ValueError, match=r"tp read as 'm' has \d+ value\(s\).*outside its physical domain 0..2 m"
                                         r" \(range .*\.\.16.8; the first, .* at time 2010-01-0\d, lat .*units=\{'tp'") as err:
        read_era5(sl, pl)
    one_line(err, sl)
    ds = read_era5(sl, pl, units={"tp": "mm"})  # the argument that settles it
    assert float(ds["tp"].max()) == pytest.approx(0.0168, rel=1e-5)


def test_relative_humidity_fraction_labelled_percent_is_refused(tmp_path):
    sl, pl = pair(tmp_path, pl=pressure(DAYS, r=0.6))
    with pytest.raises(ValueError, match="r850 read as '%' never exceeds 0.6 %.*units=") as err:
        read_era5(sl, pl)
    one_line(err, pl)
    assert float(read_era5(sl, pl, units={"r850": "1"})["r850"].max()) == pytest.approx(60.0)


@pytest.mark.parametrize("name, value, match", [
    ("t2m", 500.0, "t2m read as 'K' has 1 value"), ("ssrd", -5e4, "ssrd read as 'J m\\*\\*-2' has 1 value"),
    ("swvl2", 35.0, "swvl2 read as 'm\\*\\*3 m\\*\\*-3' has 1 value"), ("sd", -0.2, "sd read as"),
    ("msl", 1013.0, "msl read as 'Pa' has 1 value"),
])
def test_physically_impossible_values_are_refused_with_count_and_place(tmp_path, name, value, match):
    arr = np.full((3, LAT.size, LON.size), BASE[name], np.float32)
    arr[2, 1, 5] = value
    sl, pl = pair(tmp_path, single(DAYS, values={name: arr}))
    with pytest.raises(ValueError, match=f"{match}.*time 2010-01-03, lat 57.5, lon 12.5") as err:
        read_era5(sl, pl)
    one_line(err, sl)


def test_missing_land_values_are_refused_but_the_sea_may_be_nan(tmp_path):
    arr = np.full((3, LAT.size, LON.size), 0.3, np.float32)
    arr[1, 2, 2] = np.nan  # a gap over land (the land-sea mask says land everywhere)
    sl, pl = pair(tmp_path, single(DAYS, values={"swvl1": arr}))
    with pytest.raises(ValueError, match="swvl1 holds 1 NaN over land.*time 2010-01-02") as err:
        read_era5(sl, pl)
    one_line(err, sl)
    # without a land-sea mask: a cell NaN on every day is the sea, on some days only a gap
    sea = np.full((3, LAT.size, LON.size), 0.3, np.float32)
    sea[:, 0, :] = np.nan
    ds = read_era5(*pair(tmp_path, single(DAYS, values={"swvl1": sea}, land=None), tag="s"))
    assert np.isnan(ds["swvl1"].sel(lat=60).values).all() and np.isfinite(ds["swvl1"].sel(lat=slice(40, 58)).values).all()
    with pytest.raises(ValueError, match="swvl1 is NaN on some days only in 1 cell"):
        read_era5(*pair(tmp_path, single(DAYS, values={"swvl1": arr}, land=None), tag="g"))
    t2m = np.full((3, LAT.size, LON.size), 285.0, np.float32)
    t2m[0, 8, 7] = np.nan
    with pytest.raises(ValueError, match="t2m holds 1 NaN/Inf"):
        read_era5(*pair(tmp_path, single(DAYS, values={"t2m": t2m}), tag="t"))


def test_land_state_units_and_domain(tmp_path):
    values = {"swvl3": np.full((3, LAT.size, LON.size), 34.0, np.float32),  # percent
              "sd": np.full((3, LAT.size, LON.size), 50.0, np.float32)}  # kg m-2
    units = {**UNITS, "swvl3": "%", "sd": "kg m**-2"}
    ds = read_era5(*pair(tmp_path, single(DAYS, values=values, units=units)))
    assert set(LAND_VARS) <= set(ds.data_vars)
    np.testing.assert_allclose(ds["swvl3"].values, 0.34, rtol=1e-6)
    np.testing.assert_allclose(ds["sd"].values, 0.05, rtol=1e-6)
    assert ds["sd"].attrs["units"] == "m" and ds["swvl3"].attrs["units"] == "m3 m-3"
    frac = single(DAYS, units={**UNITS, "swvl4": "%"})  # a fraction labelled %
    with pytest.raises(ValueError, match="swvl4 read as '%' never exceeds"):
        read_era5(*pair(tmp_path, frac, tag="f"))
    with pytest.raises(ValueError, match="lacks \\['sd'\\].*snow_depth"):
        read_era5(*pair(tmp_path, single(DAYS).drop_vars("sd"), tag="n"), variables=INPUT_SETS["era5"])


def test_fourcastnet_r850_fraction_is_refused(tmp_path):
    from ecodistill.data import FCN_CHANNELS

    typical = {"u10": 3, "v10": -1, "t2m": 285, "sp": 98000, "msl": 101000, "t850": 275, "u1000": 3, "v1000": 0,
               "z1000": 900, "u850": 6, "v850": 0, "z850": 14000, "u500": 12, "v500": 0, "z500": 55000,
               "t500": 255, "z50": 200000, "r500": 40, "r850": 0.7, "tcwv": 20}
    values = np.array([typical[c] for c in FCN_CHANNELS], np.float32)
    with h5py.File(tmp_path / "2001.h5", "w") as f:
        f.create_dataset("fields", data=np.broadcast_to(values[None, :, None, None], (365, 20, 5, 8)))
    with pytest.raises(ValueError, match="r850 read as '%' never exceeds 0.7 %.*units=") as err:
        read_fourcastnet_h5([tmp_path / "2001.h5"])  # before: taken as 0.7 %
    one_line(err, tmp_path / "2001.h5")
    ds = read_fourcastnet_h5([tmp_path / "2001.h5"], units={"r850": "1"})
    assert float(ds["r850"].max()) == pytest.approx(70.0)


# --- unclear files and layouts (issue 20, item 7) -----------------------------------------

@pytest.mark.parametrize("content, match", [
    (b"", "is empty \\(0 bytes\\).*download it again"),
    (b"<!DOCTYPE html><html><body>Please log in</body></html>", "is an HTML/XML page.*download it again"),
    (b'{"message": "quota exceeded"}', "is a JSON text"),
    (b"\x00\x01garbage" * 10, "is neither NetCDF, HDF5 nor GRIB"),
])
def test_empty_html_and_foreign_files_are_named(tmp_path, content, match):
    bad = tmp_path / "era5_sl.nc"
    bad.write_bytes(content)
    sl, pl = pair(tmp_path)
    with pytest.raises(ValueError, match=match) as err:
        read_era5(bad, pl)
    one_line(err, bad)
    with pytest.raises(ValueError, match=match):
        read_ndvi(bad)


def test_truncated_netcdf_is_named(tmp_path):
    sl, pl = pair(tmp_path)
    cut = tmp_path / "cut.nc"
    cut.write_bytes(sl.read_bytes()[:2000])
    with pytest.raises(ValueError, match="cut.nc") as err:
        read_era5(cut, pl)
    one_line(err)


@pytest.mark.parametrize("expver", [np.array([1, 5]), np.array(["0001", "0005"])])
def test_era5t_expver_dimension_is_combined_and_said_how(tmp_path, expver):
    base = single(DAYS, tname="time")
    final = base.copy(deep=True)
    prelim = base.copy(deep=True) + 0.0
    for v in base.data_vars:
        final[v][2] = np.nan  # the last day exists only as ERA5T
        prelim[v][:2] = np.nan
        prelim[v].attrs = base[v].attrs
        final[v].attrs = base[v].attrs
    prelim["t2m"][2] = 290.0
    sl = xr.concat([final, prelim], dim=xr.DataArray(expver, dims="expver", name="expver"))
    pl = pressure(DAYS, tname="time", lev="level")
    with pytest.warns(UserWarning, match="combined ERA5 and ERA5T.*1 step\\(s\\) from ERA5T, the first 2010-01-03"):
        ds = read_era5(write(sl, tmp_path / "sl.nc"), write(pl, tmp_path / "pl.nc"))  # before: a traceback
    np.testing.assert_allclose(ds["t2m"].values[:, 0, 0], [285.0, 285.0, 290.0])
    assert "ERA5 (expver" in ds.attrs["expver"] and "ERA5T" in ds.attrs["expver"]


def test_cds_2024_layout_with_number_and_expver_coordinates(tmp_path):
    times = pd.date_range("2010-01-01", periods=3, freq="D")
    sl = single(times).assign_coords(number=0, expver=("valid_time", np.array(["0001", "0001", "0005"])))
    sl = sl.assign_coords(time=("valid_time", times))  # some CDS files add a reference time beside it
    pl = pressure(times).assign_coords(number=0, expver=("valid_time", np.array(["0001", "0001", "0005"])))
    ds = read_era5(write(sl, tmp_path / "sl.nc"), write(pl, tmp_path / "pl.nc"))  # before: KeyError: 'time'
    assert ds.sizes["time"] == 3 and "1 step(s) from ERA5T" in ds.attrs["expver"]


def test_grids_differing_by_float_noise_are_snapped_and_said(tmp_path):
    sl = single(DAYS)
    pl = pressure(DAYS).assign_coords(latitude=LAT + 3e-6, longitude=LON - 3e-6)
    with pytest.warns(UserWarning, match="grid snapped.*3e-06 degrees.*0.001-degree tolerance"):
        ds = read_era5(*pair(tmp_path, sl, pl))  # before: "221184 NaN values"
    assert np.isfinite(ds["z500"].values).all() and ds.sizes["lat"] == LAT.size
    far = pressure(DAYS).assign_coords(latitude=LAT + 0.1)
    with pytest.raises(ValueError, match="different grids.*0.1 degrees") as err:
        read_era5(*pair(tmp_path, sl, far, tag="f"))
    one_line(err, "pl")


# --- GRIB as the CDS delivers it (issue 21, item 5) ---------------------------------------

SHARED = Path(os.environ.get("ECODISTILL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
SAMPLE = SHARED / "era5-sample" / "era5-2mt-2019-03-uk.grib"


@pytest.mark.skipif(not SAMPLE.is_file(), reason=f"the shared ERA5 GRIB sample {SAMPLE} is absent (it lies in "
                    "../shared/data/era5-sample; see README 'Data')")
def test_shared_grib_sample_reads_without_writing_an_index():
    before = sorted(os.listdir(SAMPLE.parent))
    digest = hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    ds = read_era5(SAMPLE, variables=("t2m",))
    assert dict(ds.sizes) == {"time": 31, "lat": 33, "lon": 49}
    assert str(ds.indexes["time"][0].date()) == "2019-03-01" and str(ds.indexes["time"][-1].date()) == "2019-03-31"
    assert 265 < float(ds["t2m"].min()) < float(ds["t2m"].max()) < 292 and ds["t2m"].attrs["units"] == "K"
    assert sorted(os.listdir(SAMPLE.parent)) == before  # no .idx beside the read-only file
    assert hashlib.sha256(SAMPLE.read_bytes()).hexdigest() == digest


def grib_message(fh, param, when, values, step=0, accum=False, level=None, soil=None):
    import eccodes as ec

    lats, lons = LAT, LON
    g = ec.codes_grib_new_from_samples("regular_ll_sfc_grib1")
    for key, value in (("centre", "ecmf"), ("Ni", lons.size), ("Nj", lats.size),
                       ("latitudeOfFirstGridPointInDegrees", lats[0]), ("latitudeOfLastGridPointInDegrees", lats[-1]),
                       ("longitudeOfFirstGridPointInDegrees", lons[0]),
                       ("longitudeOfLastGridPointInDegrees", lons[-1]),
                       ("iDirectionIncrementInDegrees", 2.5), ("jDirectionIncrementInDegrees", 2.5),
                       ("paramId", param)):
        ec.codes_set(g, key, value)
    if level is not None:
        ec.codes_set(g, "typeOfLevel", "isobaricInhPa")
        ec.codes_set(g, "level", level)
    if soil is not None:
        ec.codes_set(g, "typeOfLevel", "depthBelowLandLayer")
        ec.codes_set(g, "topLevel", soil[0])
        ec.codes_set(g, "bottomLevel", soil[1])
    ec.codes_set(g, "dataDate", int(when.strftime("%Y%m%d")))
    ec.codes_set(g, "dataTime", int(when.strftime("%H%M")))
    if accum:
        ec.codes_set(g, "stepType", "accum")
        ec.codes_set(g, "startStep", step - 1)
        ec.codes_set(g, "endStep", step)
    else:
        ec.codes_set(g, "step", step)
    ec.codes_set_values(g, np.broadcast_to(np.asarray(values, float), (lats.size, lons.size)).ravel())
    ec.codes_write(g, fh)
    ec.codes_release(g)


INSTANT = {"t2m": 167, "u10": 165, "v10": 166, "msl": 151, "tcwv": 137, "sd": 141}
SOIL = {"swvl1": (39, (0, 7)), "swvl2": (40, (7, 28)), "swvl3": (41, (28, 100)), "swvl4": (42, (100, 255))}
ACCUM = {"tp": 228, "ssrd": 169}


def era5_grib(path, hours: pd.DatetimeIndex):
    """ERA5 as the CDS delivers GRIB: analyses at every hour, accumulations as 06/18 UTC forecasts
    of hourly steps, the land state on soil layers, pressure levels -- all in one file."""
    pytest.importorskip("eccodes")
    with open(path, "wb") as fh:
        for when in hours:
            for name, param in INSTANT.items():
                grib_message(fh, param, when, BASE[name] + (when.hour if name == "t2m" else 0))
            for name, (param, layer) in SOIL.items():
                grib_message(fh, param, when, BASE[name], soil=layer)
            for var, param, value in (("z", 129, 55000.0), ("t", 130, 275.0), ("r", 157, 70.0)):
                for level in (500, 850):
                    grib_message(fh, param, when, value, level=level)
        for name, param in ACCUM.items():  # forecasts from 06 and 18 UTC, one-hour accumulations
            for when in hours:
                base = when.floor("12h") + pd.Timedelta(hours=6)
                base = base if base < when else base - pd.Timedelta(hours=12)
                step = int((when - base) / pd.Timedelta(hours=1))
                grib_message(fh, param, base, BASE[name] * (2 if when.hour == 12 else 1), step=step, accum=True)
    return path


def test_grib_written_here_reads_every_era5_input(tmp_path):
    hours = pd.date_range("2010-01-01 00:00", "2010-01-03 00:00", freq="h")
    path = era5_grib(tmp_path / "era5.grib", hours)
    tmp_path.chmod(0o555)  # read-only folder, like the shared data: no index may be written
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "dropped .* incomplete day")
            ds = read_era5(path, variables=INPUT_SETS["era5"])
    finally:
        tmp_path.chmod(0o755)
    assert sorted(os.listdir(tmp_path)) == ["era5.grib"]
    assert set(ds.data_vars) == set(INPUT_SETS["era5"])
    assert [str(t.date()) for t in ds.indexes["time"]] == ["2010-01-01", "2010-01-02"]
    np.testing.assert_allclose(ds["t2m"].values[0], 285.0 + 11.5, rtol=1e-5)  # mean of 00..23 UTC
    np.testing.assert_allclose(ds["tp"].values, 25 * 1e-4, rtol=1e-4)  # 01..24 UTC, 12 UTC doubled
    np.testing.assert_allclose(ds["ssrd"].values, 25 * 3.6e5, rtol=1e-4)
    np.testing.assert_allclose(ds["swvl4"].values, 0.36, rtol=1e-5)
    np.testing.assert_allclose(ds["sd"].values, 0.05, rtol=1e-5)
    np.testing.assert_allclose(ds["r850"].values, 70.0, rtol=1e-5)
    assert float(ds["lat"][0]) == 40.0 and ds.sizes["lon"] == LON.size


def test_damaged_grib_is_named(tmp_path):
    path = era5_grib(tmp_path / "era5.grib", pd.date_range("2010-01-01", periods=3, freq="h"))
    cut = tmp_path / "cut.grib"
    cut.write_bytes(path.read_bytes()[:150])
    with pytest.raises(ValueError, match="cut.grib") as err:
        read_era5(cut, variables=("t2m",))
    one_line(err)


def test_real_files_never_leave_an_index_or_a_temporary_beside_them(tmp_path):
    sl, pl = pair(tmp_path)
    read_era5(sl, pl)
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["pl.nc", "sl.nc"]
