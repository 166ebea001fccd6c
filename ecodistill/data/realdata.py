"""Real data on the project grid: regridding, NDVI alignment, static maps, one file.

:func:`make_dataset` combines daily weather (:func:`~ecodistill.data.readers.read_era5` or
:func:`~ecodistill.data.readers.read_fourcastnet_h5`) and NDVI
(:func:`~ecodistill.data.readers.read_ndvi`) into a schema dataset on an ``nlat`` x ``nlon``
grid: conservative regridding, NDVI composites spread over their compositing period,
the static maps of :func:`~ecodistill.data.static.static_maps`, NDVI kept only on the NDVI
domain. Written with :func:`write_dataset` (with its content fingerprint beside it, and
``dataset_hash`` = the first 12 hex digits of the SHA-256 of its values), it is used
through ``DataConfig(source="<path>")`` or ``ECODISTILL_DATA=<path>`` exactly like the
simulated Earth. Weather must be daily on the standard calendar (the readers make it so;
:func:`~ecodistill.data.timeaxis.require_daily` converts CF calendars and refuses monthly
or sub-daily data given directly).

Explained in book/generated/02_data.ipynb ("Real data").
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .domain import check_missing, check_range
from .fingerprint import content_hash
from .regrid import Regridder, grid_centres
from .schema import LAND_ONLY, STATIC_VARS, VAR_ATTRS, WEATHER_VARS, coord_attrs, validate
from .static import static_maps
from .store import DatasetWriter, default_format
from .timeaxis import require_daily, to_standard_index


class _Coarsen:
    """Callable regridding ``(..., lat, lon)`` from a source grid to the project grid."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray, nlat: int, nlon: int) -> None:
        lat, lon = np.asarray(lat, float), np.asarray(lon, float)
        lon = np.round(((lon + 180) % 360) - 180, 6)
        lon[lon == 180.0] = -180.0
        _, first = np.unique(lon, return_index=True)  # sorted, a duplicated seam column dropped
        self.lat_order, self.lon_order = np.argsort(lat), first
        self.coords = grid_centres(nlat, nlon)
        self.rg = Regridder(lat[self.lat_order], lon[self.lon_order], *self.coords)

    def __call__(self, field: np.ndarray, min_cover: float = 0.0) -> np.ndarray:
        f = np.asarray(field)[..., self.lat_order, :][..., self.lon_order]
        return self.rg(f, min_cover=min_cover)


def coarsen_fn(nlat: int, nlon: int):
    """A ``regridder`` for :func:`~ecodistill.data.readers.read_fourcastnet_h5`."""
    return lambda lat, lon: _Coarsen(lat, lon, nlat, nlon)


def regrid_dataset(ds: xr.Dataset, nlat: int, nlon: int, min_cover: float = 0.25,
                   block: int = 32) -> xr.Dataset:
    """Area-conservative regridding of every ``(time, lat, lon)`` variable, ``block`` days at
    a time (NaN left out; cells with less than ``min_cover`` valid area become NaN)."""
    co = _Coarsen(ds["lat"].values, ds["lon"].values, nlat, nlon)
    lat, lon = co.coords
    out = {}
    for name, da in ds.data_vars.items():
        if da.dims != ("time", "lat", "lon"):
            continue
        parts = [co(da.isel(time=slice(t, t + block)).values, min_cover)
                 for t in range(0, da.sizes["time"], block)]
        out[name] = (("time", "lat", "lon"), np.concatenate(parts).astype(np.float32), da.attrs)
    return xr.Dataset(out, coords={"time": ds["time"].values, "lat": lat.astype(np.float32),
                                   "lon": lon.astype(np.float32)})


def daily_ndvi(ndvi: xr.DataArray, days: pd.DatetimeIndex) -> xr.DataArray:
    """NDVI composites on daily steps: each day takes the composite whose period holds it
    (the period is the spacing of the composites: ~15 days for GIMMS, 10 for Copernicus);
    days outside the record are NaN (unlabelled)."""
    t = ndvi.indexes["time"]
    if len(t) > 1:
        period = pd.Series(t).diff().median()
        return ndvi.reindex(time=days, method="ffill", tolerance=period)
    return ndvi.reindex(time=days, method="nearest", tolerance=pd.Timedelta("0D"))


def _check_ndvi(ndvi: xr.DataArray, days: pd.DatetimeIndex) -> xr.DataArray:
    """NDVI given to :func:`make_dataset`: in its domain, not all missing, overlapping the weather."""
    if not np.isfinite(ndvi.values).any():
        raise ValueError("ndvi: every value is NaN (nothing observed): check the NDVI files' fill values, "
                         "valid_range and scale (read_ndvi names them) and max_flag")
    ndvi = check_range(ndvi, "ndvi", "ndvi: ", fix="read it with read_ndvi, which applies the file's scale "
                       "(or pass ndvi_scale=)")
    t = ndvi.indexes["time"]
    period = pd.Series(t).diff().median() if len(t) > 1 else pd.Timedelta("0D")
    if t.max() + period < days[0] or t.min() > days[-1]:
        raise ValueError(f"weather and NDVI share no day: the weather covers {days[0].date()}..{days[-1].date()}, "
                         f"the NDVI {t.min().date()}..{t.max().date()}; read both for the same years")
    return ndvi


def _check_weather(w: xr.Dataset, weather_vars, land: np.ndarray) -> xr.Dataset:
    """Every weather value on the project grid: finite (the land state may be NaN over the sea,
    where it becomes 0) and in its physical domain."""
    for name in weather_vars:
        check_missing(w[name], name, "weather: ", land=land if name in LAND_ONLY else None,
                      fix="read the files with read_era5 and give weather covering the whole grid")
        if name in LAND_ONLY:
            w[name] = w[name].fillna(0.0)  # the sea: ERA5 leaves the land state undefined there
        w[name] = check_range(w[name], name, "weather: ", fix="convert it to the schema unit (read_era5 "
                              "does) or correct the source values")
    return w


def make_dataset(weather: xr.Dataset, ndvi: xr.DataArray, nlat: int, nlon: int,
                 weather_vars=WEATHER_VARS) -> xr.Dataset:
    """A schema dataset from real weather and NDVI on the ``nlat`` x ``nlon`` grid.

    Every value is checked on the project grid (:mod:`~ecodistill.data.domain`): weather
    finite and in its domain (the land state may be NaN over the sea of the project's land
    mask, and is set to 0 there), NDVI in [-1, 1].

    Raises:
        ValueError: when a weather variable is missing (naming it and where to get it), the
            weather is not daily (monthly, sub-daily, missing days, a 360_day calendar), a
            value lies outside its domain or is NaN over land, all NDVI is missing, the two
            share no day, or the NDVI has no value over the NDVI domain on the shared days.
    """
    missing = [v for v in weather_vars if v not in weather]
    if missing:
        raise ValueError(f"weather lacks {missing}: add them from ERA5 single levels (read_era5), "
                         "or use fewer inputs with prepare(..., weather_vars=[...])")
    lat, lon = grid_centres(nlat, nlon)
    w = require_daily(weather[list(weather_vars)], "weather")
    ndvi = ndvi.assign_coords(time=to_standard_index(ndvi.indexes["time"], "ndvi"))
    if w.sizes["lat"] != nlat or w.sizes["lon"] != nlon or not np.allclose(w["lat"], lat):
        w = regrid_dataset(w, nlat, nlon, min_cover=0.0)
    days = pd.DatetimeIndex(w.indexes["time"]).normalize()
    w = w.assign_coords(time=days)
    ndvi = _check_ndvi(ndvi, days)
    nd = ndvi
    if nd.sizes["lat"] != nlat or nd.sizes["lon"] != nlon:
        nd = regrid_dataset(nd.to_dataset(name="ndvi"), nlat, nlon)["ndvi"]
    nd = daily_ndvi(nd.assign_coords(lat=lat.astype(np.float32), lon=lon.astype(np.float32)), days)
    static = static_maps(nlat, nlon)
    domain = static["ndvi_domain"].values
    if not np.isfinite(nd.values[:, domain]).any():
        raise ValueError(f"ndvi has no valid value over the NDVI domain (land with NDVI extremes) on the "
                         f"days shared with the weather ({days[0].date()}..{days[-1].date()}): check that "
                         "the NDVI covers land in these years")
    ds = w.assign_coords(lat=lat.astype(np.float32), lon=lon.astype(np.float32))
    ds = _check_weather(ds, weather_vars, static["land_mask"].values.astype(bool))
    ds["ndvi"] = nd.where(domain).astype(np.float32).assign_attrs(VAR_ATTRS["ndvi"])
    for name in STATIC_VARS:
        ds[name] = (("lat", "lon"), static[name].values, static[name].attrs)
    ds.attrs.update(static.attrs, source="real", title="ecodistill real dataset (ERA5 + NDVI)",
                    Conventions="CF-1.8")
    validate(coord_attrs(ds), weather_vars)
    ds.attrs["dataset_hash"] = content_hash(ds)[:12]
    return ds


def write_dataset(ds: xr.Dataset, path: str | Path, fmt: str | None = None) -> Path:
    """Write a schema dataset (atomically) so ``DataConfig(source=path)`` can use it.

    ``dataset_hash`` is set from the values written (a kept label of edited data is
    replaced) and the fingerprint sidecar ``<path>.fingerprint.json`` is written after it.
    """
    dyn = [n for n in ds.data_vars if ds[n].dims == ("time", "lat", "lon")]
    static = {n: (ds[n].values, dict(ds[n].attrs)) for n in ds.data_vars if ds[n].dims == ("lat", "lon")}
    attrs = {k: v for k, v in ds.attrs.items() if isinstance(v, (str, int, float))}
    writer = DatasetWriter(path, ds["time"].values, ds["lat"].values, ds["lon"].values,
                           {n: dict(ds[n].attrs) for n in dyn}, static, {**attrs, "source": "real"},
                           fmt or default_format(), content_id=True)
    try:
        for t0 in range(0, ds.sizes["time"], 366):
            writer.write(t0, {n: ds[n].isel(time=slice(t0, t0 + 366)).values.astype(np.float32) for n in dyn})
    except BaseException:
        writer.abort()
        raise
    return writer.close()
