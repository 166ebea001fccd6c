"""Readers for real data, producing the schema of :mod:`ecodistill.data.schema`.

* :func:`read_era5` -- ERA5 as downloaded from the Copernicus Climate Data Store
  {cite:p}`hersbach2020era5`, NetCDF or GRIB: single-levels files (t2m, tp, ssrd, u10, v10,
  msl, tcwv, the land state swvl1-swvl4 and sd) and pressure-levels files (z, t, r on levels
  500/850 hPa). Both CDS NetCDF layouts (since 2024: ``valid_time``, ``pressure_level``;
  before: ``time``, ``level``), ERA5T beside ERA5 (``expver``) and GRIB through cfgrib are
  read (:mod:`ecodistill.data.files`).
* :func:`~ecodistill.data.ndvi.read_ndvi` -- NDVI NetCDF with GIMMS NDVI3g or Copernicus
  Global Land naming, every encoding from attributes or explicit arguments
  (:mod:`ecodistill.data.ndvi`).
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
RH fraction, ...) from the ``units`` attribute or the ``units=`` argument, never guessed;
then **every value** checked against its physical domain (:mod:`ecodistill.data.domain`).
Anything else is an error that names the file or variable and the fix: a missing
variable, a missing, unknown or wrong unit, a value outside the domain, NaN/Inf (only NDVI
may have gaps; the land state may be NaN over the sea -- where the file's land-sea mask
``lsm`` says sea, or in a cell NaN on every step -- and stays NaN there until
:func:`~ecodistill.data.realdata.make_dataset` sets it to 0 over the sea).

Explained in book/generated/02_data.ipynb ("Real data").
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .domain import check_missing, check_range
from .files import expand_paths, open_files, snap_grid, standardise
from .ndvi import read_ndvi
from .schema import LAND_VARS, VAR_ATTRS, WEATHER_VARS
from .timeaxis import to_daily
from .units import ACCUMULATED, convert_units, is_rate

SINGLE = ("t2m", "tp", "ssrd", "u10", "v10", "msl", "tcwv") + LAND_VARS
PRESSURE = {"z500": ("z", 500), "t850": ("t", 850), "r850": ("r", 850)}
CDS_NAMES = {"t2m": "2m_temperature", "tp": "total_precipitation", "ssrd": "surface_solar_radiation_downwards",
             "u10": "10m_u_component_of_wind", "v10": "10m_v_component_of_wind", "msl": "mean_sea_level_pressure",
             "tcwv": "total_column_water_vapour", "swvl1": "volumetric_soil_water_layer_1",
             "swvl2": "volumetric_soil_water_layer_2", "swvl3": "volumetric_soil_water_layer_3",
             "swvl4": "volumetric_soil_water_layer_4", "sd": "snow_depth", "lsm": "land_sea_mask",
             "z": "geopotential", "t": "temperature", "r": "relative_humidity"}
FCN_CHANNELS = ("u10", "v10", "t2m", "sp", "msl", "t850", "u1000", "v1000", "z1000", "u850", "v850", "z850",
                "u500", "v500", "z500", "t500", "z50", "r500", "r850", "tcwv")
__all__ = ["CDS_NAMES", "FCN_CHANNELS", "convert_units", "expand_paths", "read_era5",
           "read_fourcastnet_h5", "read_ndvi", "standardise", "to_daily"]


def _check_units_arg(units: dict | None) -> dict:
    units = dict(units or {})
    unknown = sorted(set(units) - set(VAR_ATTRS))
    if unknown:
        raise ValueError(f"units={units}: {unknown} are not schema variables; key the units by the schema "
                         f"names {sorted(n for n in VAR_ATTRS if not n.startswith('ndvi'))}")
    return units


def _land(sl: xr.Dataset) -> np.ndarray | None:
    """``(lat, lon)`` True over land from the file's land-sea mask ``lsm``, when it has one."""
    if "lsm" not in sl:
        return None
    lsm = sl["lsm"]
    if "time" in lsm.dims:
        lsm = lsm.isel(time=0)
    return np.asarray(lsm.values) >= 0.5


def read_era5(single_levels, pressure_levels=None, *, variables=None, units: dict | None = None) -> xr.Dataset:
    """Daily ERA5 weather in the schema (``(time, lat, lon)``, schema units, float32).

    Args:
        single_levels: path, glob pattern or list of CDS NetCDF or GRIB files with t2m, tp,
            ssrd, u10, v10, msl, tcwv, swvl1 (and swvl2-swvl4, sd for the land state; hourly,
            6-hourly with mean rates, or daily).
        pressure_levels: path(s) or pattern with z, t, r on (at least) the 500 and 850 hPa
            levels; None: the same files as ``single_levels`` (e.g. one GRIB file with both).
        variables: the schema variables to read (default: the first world's inputs
            :data:`~ecodistill.data.schema.WEATHER_VARS` plus every land-state variable the
            files hold); each must be present.
        units: ``{schema name: unit}`` for variables whose ``units`` attribute is missing or
            wrong (e.g. ``{"r850": "1"}`` for relative humidity stored as a fraction).

    Raises:
        FileNotFoundError: a pattern that matches nothing or a missing file.
        ValueError: naming the file and a missing variable/level, an empty, HTML or damaged
            file, a missing, unknown or wrong unit, a value outside its physical domain,
            NaN/Inf input, grids that differ, monthly data or an unsupported calendar.
    """
    units = _check_units_arg(units)
    sl, sl_where = open_files(single_levels, "ERA5 single-levels file")
    sl = sl.rename({v: k for k, v in CDS_NAMES.items() if v in sl and k not in sl})
    if pressure_levels is None:
        pl, pl_where = sl, sl_where
    else:
        pl, pl_where = open_files(pressure_levels, "ERA5 pressure-levels file")
        pl = pl.rename({v: k for k, v in CDS_NAMES.items() if v in pl and k in ("z", "t", "r") and k not in pl})
        pl = snap_grid(pl, sl, pl_where, sl_where)
    wanted = tuple(variables) if variables is not None else \
        WEATHER_VARS + tuple(v for v in LAND_VARS if v in sl and v not in WEATHER_VARS)
    bad = [v for v in wanted if v not in SINGLE and v not in PRESSURE]
    if bad:
        raise ValueError(f"read_era5(variables=...): {bad} are not ERA5 inputs of the schema; choose from "
                         f"{list(SINGLE) + list(PRESSURE)}")
    missing = [v for v in wanted if v in SINGLE and v not in sl]
    if missing:
        raise ValueError(f"{sl_where}: ERA5 single-levels file lacks {missing}; add "
                         f"{[CDS_NAMES[m] for m in missing]} to the CDS request")
    out = {v: sl[v] for v in wanted if v in SINGLE}
    needed = [v for v in wanted if v in PRESSURE]
    if needed and "level" not in pl.dims:
        raise ValueError(f"{pl_where}: pressure-levels file has no pressure_level/level dimension; pass the "
                         "pressure-levels files as pressure_levels=")
    if needed:
        levels = pl["level"].values.astype(float)
        hpa = levels / 100.0 if levels.max() > 2000 else levels  # levels given in Pa
    for name in needed:
        var, level = PRESSURE[name]
        if var not in pl:
            raise ValueError(f"{pl_where}: ERA5 pressure-levels file lacks {var!r} "
                             f"({CDS_NAMES[var]}), needed for {name}")
        if not np.isclose(hpa, level).any():
            raise ValueError(f"{pl_where}: ERA5 pressure-levels file lacks the {level} hPa level "
                             f"(has {sorted(hpa)}), needed for {name}; add it to the CDS request")
        out[name] = pl[var].isel(level=int(np.argmin(np.abs(hpa - level))), drop=True)
    if needed and pl is not sl and not sl.indexes["time"].equals(pl.indexes["time"]):
        raise ValueError(f"{sl_where} and {pl_where} have different time steps ({sl.sizes['time']} "
                         f"vs {pl.sizes['time']}); download both for the same dates and hours")
    ds = xr.Dataset(out)
    where = {v: (pl_where if v in PRESSURE else sl_where) + ": " for v in wanted}
    land = _land(sl)
    for name in ds.data_vars:  # every value, before averaging (which would hide a NaN)
        check_missing(ds[name], name, where[name], land)
    for name in ACCUMULATED:
        if name in ds and not units.get(name) and not ds[name].attrs.get("units"):
            raise ValueError(f"{sl_where}: {name} has no units attribute, so it is unknown whether "
                             "to sum (an amount, J m-2 or m) or average it (a rate, W m-2); set "
                             f"its units, or pass units={{{name!r}: '<unit>'}}")
    amounts = [v for v in ACCUMULATED if v in ds and not is_rate(ds[v], v, units.get(v))]
    ds = to_daily(ds, amounts=amounts, where=sl_where)
    for name in wanted:
        ds[name] = convert_units(ds[name], name, where[name], units.get(name)).astype(np.float32)
        ds[name].attrs = dict(VAR_ATTRS[name])
    if sl.attrs.get("expver"):
        ds.attrs["expver"] = sl.attrs["expver"]
    return ds.transpose("time", "lat", "lon")


def _fcn_coords(f, nlat: int, nlon: int) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes/longitudes stored in the file, else FourCastNet's grid: 90 -> -90 (721 rows,
    poles included) or 90 -> -89.75 (720 rows), longitude 0 -> 359.75."""
    for la, lo in (("lat", "lon"), ("latitude", "longitude")):
        if la in f and lo in f:
            return np.asarray(f[la][:], float), np.asarray(f[lo][:], float)
    lat = np.linspace(90, -90, nlat) if nlat % 2 else 90 - np.arange(nlat) * 180.0 / nlat
    return lat, np.arange(nlon) * 360.0 / nlon


def fcn_unit(channel: str) -> str | None:
    """ERA5's unit of a FourCastNet channel (the pipeline stores ERA5 values unchanged)."""
    if channel in VAR_ATTRS and channel not in ("tcwv",):
        return {"tp": "m", "ssrd": "J m**-2"}.get(channel, VAR_ATTRS[channel]["units"])
    if channel[0] in "uv" and channel[1:].isdigit():
        return "m s**-1"
    if channel[0] in "tzr" and channel[1:].isdigit():
        return {"t": "K", "z": "m**2 s**-2", "r": "%"}[channel[0]]
    return {"sp": "Pa", "msl": "Pa", "tcwv": "kg m**-2"}.get(channel)


def read_fourcastnet_h5(paths, channels=FCN_CHANNELS, regridder=None, *, units: dict | None = None) -> xr.Dataset:
    """Daily means of FourCastNet-style per-year HDF5 files (``<year>.h5`` with ``fields``).

    Args:
        paths: files named by their year (``1982.h5``, ...): paths, a glob pattern or a list.
        channels: names of the ``fields`` channels, in order (default: FourCastNet's 20).
        regridder: optional callable ``(lat, lon) -> f(field (..., lat, lon))`` applied to each
            day right after reading (keeps memory small at 0.25°); see
            :func:`ecodistill.data.realdata.coarsen_fn`.
        units: ``{schema name: unit}`` where a channel is not in ERA5's unit (:func:`fcn_unit`),
            e.g. ``{"r850": "1"}`` for relative humidity stored as a fraction.

    Returns:
        Dataset of every channel ``(time, lat, lon)``, ERA5 units (schema names where they exist).
    """
    import h5py

    units = _check_units_arg(units)
    blocks, times, coords = [], [], None
    files = sorted(expand_paths(paths, "FourCastNet HDF5 file"))
    for p in files:
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
    where = f"{files[0] if len(files) == 1 else f'{files[0]} (+{len(files) - 1} more)'}: "
    data = np.stack(blocks).astype(np.float32)
    ds = xr.Dataset({c: (("time", "lat", "lon"), data[:, i]) for i, c in enumerate(channels)},
                    coords={"time": times[0].append(times[1:]), "lat": coords[0], "lon": coords[1]})
    hint = " (or is the channel list in the file's order? pass channels=)"
    for name in list(ds.data_vars):
        try:
            check_missing(ds[name], name, where)
            if name in VAR_ATTRS:
                unit = units.get(name, fcn_unit(name))
                ds[name] = convert_units(ds[name], name, where, unit).astype(np.float32)
                ds[name].attrs = dict(VAR_ATTRS[name])
            else:
                ds[name] = check_range(ds[name], name, where, read_as=fcn_unit(name))
        except ValueError as err:
            raise ValueError(f"{err}{hint}") from None
    return standardise(ds)
