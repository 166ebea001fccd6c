"""Readers for real data, producing the schema of :mod:`ecodistill.data.schema`.

* :func:`read_era5` -- ERA5 NetCDF as downloaded from the Copernicus Climate Data Store
  {cite:p}`hersbach2020era5`: single-levels files (t2m, tp, ssrd, u10, v10, msl, tcwv, swvl1)
  and pressure-levels files (z, t, r on levels 500/850 hPa). Both the new CDS layout
  (``valid_time``, ``pressure_level``) and the old one (``time``, ``level``) are read.
* :func:`read_ndvi` -- NDVI NetCDF with GIMMS NDVI3g naming {cite:p}`tucker2005gimms`
  (``ndvi``, int16 x 10000, quality flags in ``percentile = 2000 * flag + percentile``)
  or Copernicus Global Land naming (``NDVI``, packed uint8 with ``scale_factor``,
  ``add_offset`` and flag values above ``valid_range``).
* :func:`read_fourcastnet_h5` -- the per-year HDF5 files of the FourCastNet /
  Global-Ecosystem-Modeling pipeline: a ``fields`` dataset ``(time, channel, lat, lon)``
  and a channel list.

Every reader takes a path, a glob pattern (``"era5_single_levels_*.nc"``, expanded and
sorted) or a list of either. Documented conversions (each tested): latitude descending ->
ascending; longitude 0..360 -> -180..180, a duplicated seam column (both 0 and 360, or
-180 and 180) dropped; the time step inferred from the coordinate, sub-daily -> daily per
variable and CF calendars -> standard (:mod:`ecodistill.data.timeaxis`: monthly data and
the 360_day calendar are refused); units through the CF units registry
(:mod:`ecodistill.data.units`: °C, hPa, mm, kg m-2 s-1, W m-2, geopotential height,
RH fraction, ...). Anything else is an error that names the file or variable and the fix:
a missing variable, an unknown or ambiguous unit, NaN/Inf (only ``swvl1`` may be NaN, over
the sea, where it becomes 0, and NDVI may be NaN).

Explained in book/generated/02_data.ipynb ("Real data").
"""
from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .schema import PLAUSIBLE, VAR_ATTRS
from .timeaxis import to_daily, to_standard_index
from .units import ACCUMULATED, convert_units, is_rate

SINGLE = ("t2m", "tp", "ssrd", "u10", "v10", "msl", "tcwv", "swvl1")
PRESSURE = {"z500": ("z", 500), "t850": ("t", 850), "r850": ("r", 850)}
CDS_NAMES = {"t2m": "2m_temperature", "tp": "total_precipitation", "ssrd": "surface_solar_radiation_downwards",
             "u10": "10m_u_component_of_wind", "v10": "10m_v_component_of_wind", "msl": "mean_sea_level_pressure",
             "tcwv": "total_column_water_vapour", "swvl1": "volumetric_soil_water_layer_1",
             "z": "geopotential", "t": "temperature", "r": "relative_humidity"}
FCN_CHANNELS = ("u10", "v10", "t2m", "sp", "msl", "t850", "u1000", "v1000", "z1000", "u850", "v850", "z850",
                "u500", "v500", "z500", "t500", "z50", "r500", "r850", "tcwv")
__all__ = ["CDS_NAMES", "FCN_CHANNELS", "convert_units", "expand_paths", "read_era5",
           "read_fourcastnet_h5", "read_ndvi", "standardise", "to_daily"]


def expand_paths(paths, what: str = "file") -> list[Path]:
    """Files named by ``paths``: a path, a glob pattern, or a list of them (each pattern's
    matches sorted; order of the list kept).

    Raises:
        FileNotFoundError: a pattern matching nothing, or a missing file (naming it).
    """
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise FileNotFoundError(f"no {what} given: pass a path, a glob pattern or a list of paths")
    out = []
    for item in items:
        text = str(item)
        if glob.has_magic(text):
            found = sorted(glob.glob(text))
            if not found:
                raise FileNotFoundError(f"no {what} matches {text!r} (relative to {Path.cwd()}); "
                                        "check the pattern and the folder")
            out += [Path(f) for f in found]
        elif not Path(text).is_file():
            raise FileNotFoundError(f"{what} {text} not found; check the path")
        else:
            out.append(Path(text))
    return out


def _label(paths: list[Path]) -> str:
    return str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} more)"


def standardise(ds: xr.Dataset) -> xr.Dataset:
    """Rename CDS/CF dims to ``time, lat, lon, level``; latitude ascending; longitude in
    [-180, 180) ascending, a duplicated seam column dropped; singleton extra dims
    (``number``, ``expver``) dropped."""
    names = {"valid_time": "time", "latitude": "lat", "longitude": "lon", "pressure_level": "level",
             "isobaricInhPa": "level"}
    ds = ds.rename({k: v for k, v in names.items() if k in ds.dims or k in ds.coords})
    for dim in [d for d in ds.dims if d not in ("time", "lat", "lon", "level") and ds.sizes[d] == 1]:
        ds = ds.squeeze(dim, drop=True)
    for c in ("number", "expver"):
        if c in ds.coords and c not in ds.dims:
            ds = ds.drop_vars(c)
    missing = [d for d in ("lat", "lon") if d not in ds.dims]
    if missing:
        raise ValueError(f"no {missing} dimension (found {list(ds.dims)}); rename it to lat/lon")
    lon = ((ds["lon"].values.astype(np.float64) + 180.0) % 360.0) - 180.0
    lon = np.where(np.isclose(lon, 180.0), -180.0, lon)
    ds = ds.assign_coords(lon=lon)
    _, first = np.unique(np.round(lon, 6), return_index=True)
    if first.size < lon.size:  # the seam stored twice (0 and 360, or -180 and 180)
        ds = ds.isel(lon=np.sort(first))
    return ds.sortby(["lat", "lon"])


def _open(paths: list[Path]) -> xr.Dataset:
    if len(paths) == 1:
        return xr.open_dataset(paths[0])
    return xr.open_mfdataset(paths, combine="by_coords")


def _finite(da: xr.DataArray, name: str, where: str = "") -> xr.DataArray:
    bad = int((~np.isfinite(da)).sum())
    if bad:
        raise ValueError(f"{where}input {name} holds {bad} NaN/Inf value(s); inputs must be "
                         "finite: fill or drop the affected days/cells in the source files")
    return da


def read_era5(single_levels, pressure_levels) -> xr.Dataset:
    """Daily ERA5 weather in the schema (``(time, lat, lon)``, schema units, float32).

    Args:
        single_levels: path, glob pattern or list of CDS NetCDF with t2m, tp, ssrd, u10, v10,
            msl, tcwv, swvl1 (hourly, 6-hourly with mean rates, or daily).
        pressure_levels: path(s) or pattern with z, t, r on (at least) the 500 and 850 hPa levels.

    Raises:
        FileNotFoundError: a pattern that matches nothing or a missing file.
        ValueError: naming the file and a missing variable/level, an unknown or ambiguous
            unit, NaN/Inf input, monthly data or an unsupported calendar.
    """
    sl_paths = expand_paths(single_levels, "ERA5 single-levels file")
    pl_paths = expand_paths(pressure_levels, "ERA5 pressure-levels file")
    sl_where, pl_where = _label(sl_paths), _label(pl_paths)
    sl = standardise(_open(sl_paths))
    sl = sl.rename({v: k for k, v in CDS_NAMES.items() if v in sl and k in SINGLE})
    missing = [v for v in SINGLE if v not in sl]
    if missing:
        raise ValueError(f"{sl_where}: ERA5 single-levels file lacks {missing}; add "
                         f"{[CDS_NAMES[m] for m in missing]} to the CDS request")
    pl = standardise(_open(pl_paths))
    pl = pl.rename({v: k for k, v in CDS_NAMES.items() if v in pl and k in ("z", "t", "r")})
    if "level" not in pl.dims:
        raise ValueError(f"{pl_where}: pressure-levels file has no pressure_level/level dimension")
    levels = pl["level"].values.astype(float)
    hpa = levels / 100.0 if levels.max() > 2000 else levels  # levels given in Pa
    out = {}
    for name, (var, level) in PRESSURE.items():
        if var not in pl:
            raise ValueError(f"{pl_where}: ERA5 pressure-levels file lacks {var!r} "
                             f"({CDS_NAMES[var]}), needed for {name}")
        if not np.isclose(hpa, level).any():
            raise ValueError(f"{pl_where}: ERA5 pressure-levels file lacks the {level} hPa level "
                             f"(has {sorted(hpa)}), needed for {name}; add it to the CDS request")
        out[name] = pl[var].isel(level=int(np.argmin(np.abs(hpa - level))), drop=True)
    if not sl.indexes["time"].equals(pl.indexes["time"]):
        raise ValueError(f"{sl_where} and {pl_where} have different time steps ({sl.sizes['time']} "
                         f"vs {pl.sizes['time']}); download both for the same dates and hours")
    ds = xr.Dataset({**{v: sl[v] for v in SINGLE}, **out})
    ds["swvl1"] = ds["swvl1"].fillna(0.0)  # ERA5 soil water is undefined over the sea
    for name in ds.data_vars:  # before averaging, which would hide a NaN
        _finite(ds[name], name, f"{sl_where if name in SINGLE else pl_where}: ")
    for name in ACCUMULATED:
        if not ds[name].attrs.get("units"):
            raise ValueError(f"{sl_where}: {name} has no units attribute, so it is unknown whether "
                             "to sum (an amount, J m-2 or m) or average it (a rate, W m-2); set "
                             "its units")
    amounts = [v for v in ACCUMULATED if not is_rate(ds[v], v)]
    ds = to_daily(ds, amounts=amounts, where=f"{sl_where}")
    for name in list(SINGLE) + list(PRESSURE):
        prefix = f"{sl_where if name in SINGLE else pl_where}: "
        ds[name] = convert_units(ds[name], name, prefix).astype(np.float32)
        ds[name].attrs = dict(VAR_ATTRS[name])
    return ds.transpose("time", "lat", "lon")


def _decode_packed(raw: xr.DataArray) -> xr.DataArray:
    """CF-packed integers -> floats; fill, out-of-``valid_range`` and flag values -> NaN."""
    a = raw.attrs
    vals = raw.astype(np.float64)
    ok = xr.ones_like(vals, dtype=bool)
    if "_FillValue" in raw.encoding or "_FillValue" in a:
        ok &= raw != raw.encoding.get("_FillValue", a.get("_FillValue"))
    if "valid_range" in a:
        lo, hi = np.asarray(a["valid_range"], dtype=float)[:2]
        ok &= (raw >= lo) & (raw <= hi)
    elif "valid_max" in a:
        ok &= raw <= float(a["valid_max"])
    vals = vals * float(a.get("scale_factor", 1.0)) + float(a.get("add_offset", 0.0))
    return vals.where(ok)


def _ndvi_time(ds: xr.Dataset, year: int | None, where: str) -> xr.Dataset:
    """A standard time axis: CF calendars converted (:mod:`~ecodistill.data.timeaxis`), or
    GIMMS v1 months given as numbers (7, 7.5, ... = 1st and 16th) with a ``Year``."""
    index = ds.indexes["time"]
    if isinstance(index, (pd.DatetimeIndex, xr.CFTimeIndex)):
        return ds.assign_coords(time=to_standard_index(index, where))
    year = year or int(ds.attrs.get("Year", 0))
    if not year:
        raise ValueError(f"{where}: NDVI time axis is not a date and the file has no 'Year' "
                         "attribute; pass year=")
    m = ds["time"].values.astype(float)
    dates = [pd.Timestamp(year, int(v), 1 if v % 1 == 0 else 16) for v in m]
    return ds.assign_coords(time=dates)


def read_ndvi(paths, max_flag: int = 1, year: int | None = None) -> xr.DataArray:
    """NDVI ``(time, lat, lon)`` float32 in [-1, 1], NaN where missing or flagged.

    Args:
        paths: NetCDF file(s), a glob pattern (``"ndvi3g_*.nc4"``) or a list, with GIMMS
            (``ndvi``) or Copernicus (``NDVI``) naming.
        max_flag: GIMMS quality flags kept: 0 good, 1 spline-interpolated, 2 seasonal
            profile (possible snow/cloud) -- default keeps 0 and 1.
        year: the year of GIMMS files whose time axis holds month numbers.
    """
    parts = []
    for p in expand_paths(paths, "NDVI file"):
        ds = standardise(xr.open_dataset(p, mask_and_scale=False, decode_times=False))
        try:
            ds = xr.decode_cf(ds, mask_and_scale=False)
        except ValueError:
            pass
        name = "ndvi" if "ndvi" in ds else "NDVI" if "NDVI" in ds else None
        if name is None:
            raise ValueError(f"{p} holds no 'ndvi' (GIMMS) or 'NDVI' (Copernicus) variable; found "
                             f"{list(ds.data_vars)}")
        da = _decode_packed(ds[name])
        if name == "ndvi" and "scale_factor" not in ds[name].attrs and float(np.nanmax(np.abs(da))) > 1.5:
            da = da / 10000.0  # GIMMS NDVI3g stores NDVI x 10000 as int16
        if "percentile" in ds:
            da = da.where(ds["percentile"] // 2000 <= max_flag)
        da = da.where((da >= -1) & (da <= 1))
        one = da.to_dataset(name="ndvi").assign_attrs(ds.attrs)
        parts.append(_ndvi_time(one, year, str(p))["ndvi"])
    out = xr.concat(parts, dim="time").sortby("time") if len(parts) > 1 else parts[0]
    return out.astype(np.float32).transpose("time", "lat", "lon").assign_attrs(VAR_ATTRS["ndvi"])


def _fcn_coords(f, nlat: int, nlon: int) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes/longitudes stored in the file, else FourCastNet's grid: 90 -> -90 (721 rows,
    poles included) or 90 -> -89.75 (720 rows), longitude 0 -> 359.75."""
    for la, lo in (("lat", "lon"), ("latitude", "longitude")):
        if la in f and lo in f:
            return np.asarray(f[la][:], float), np.asarray(f[lo][:], float)
    lat = np.linspace(90, -90, nlat) if nlat % 2 else 90 - np.arange(nlat) * 180.0 / nlat
    return lat, np.arange(nlon) * 360.0 / nlon


def read_fourcastnet_h5(paths, channels=FCN_CHANNELS, regridder=None) -> xr.Dataset:
    """Daily means of FourCastNet-style per-year HDF5 files (``<year>.h5`` with ``fields``).

    Args:
        paths: files named by their year (``1982.h5``, ...): paths, a glob pattern or a list.
        channels: names of the ``fields`` channels, in order (default: FourCastNet's 20).
        regridder: optional callable ``(lat, lon) -> f(field (..., lat, lon))`` applied to each
            day right after reading (keeps memory small at 0.25°); see
            :func:`ecodistill.data.realdata.coarsen_fn`.

    Returns:
        Dataset of every channel ``(time, lat, lon)``, ERA5 units (schema names where they exist).
    """
    import h5py

    blocks, times, coords = [], [], None
    for p in sorted(expand_paths(paths, "FourCastNet HDF5 file")):
        try:
            year = int(p.stem)
        except ValueError:
            raise ValueError(f"{p.name}: FourCastNet files are named by year (e.g. "
                             "1982.h5)") from None
        with h5py.File(p, "r") as f:
            if "fields" not in f:
                raise ValueError(f"{p} has no 'fields' dataset (found {list(f)})")
            fields = f["fields"]
            nt, nc, nlat, nlon = fields.shape
            if nc != len(channels):
                raise ValueError(f"{p}: 'fields' has {nc} channels but {len(channels)} names were "
                                 "given")
            days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
            if nt % len(days):
                raise ValueError(f"{p}: {nt} steps is not a whole number per day of {year} "
                                 f"({len(days)} days)")
            spd = nt // len(days)
            lat, lon = _fcn_coords(f, nlat, nlon)
            coarse = regridder(lat, lon) if regridder else None
            for d in range(len(days)):
                day = np.asarray(fields[d * spd:(d + 1) * spd], dtype=np.float64).mean(0)
                blocks.append(coarse(day) if coarse else day)
            times.append(days)
            coords = coarse.coords if coarse else (lat, lon)
    data = np.stack(blocks).astype(np.float32)
    ds = xr.Dataset({c: (("time", "lat", "lon"), data[:, i]) for i, c in enumerate(channels)},
                    coords={"time": times[0].append(times[1:]), "lat": coords[0], "lon": coords[1]})
    for name in ds.data_vars:
        if name in VAR_ATTRS:
            _finite(ds[name], name)
            med, (lo, hi) = float(np.median(ds[name].values[0])), PLAUSIBLE[name]
            if not lo <= med <= hi:
                raise ValueError(f"channel {name} has median {med:.4g}, outside {lo}..{hi} "
                                 f"{VAR_ATTRS[name]['units']}: is the channel list in the file's "
                                 "order?")
            ds[name].attrs.update(VAR_ATTRS[name])
    return standardise(ds)
