"""NDVI files: GIMMS NDVI3g and Copernicus Global Land naming, and every encoding, never guessed.

:func:`read_ndvi` returns NDVI ``(time, lat, lon)`` float32 in [-1, 1], NaN where missing or
flagged. NDVI is stored in many encodings (GIMMS and MODIS: int16 x 10^4; Copernicus: uint8
with ``scale_factor`` 0.004 and ``add_offset`` -0.08; bytes 0..255 with other scales; percent;
plain floats) and with many fill values (-32768, -3000, 255, ...). The scale and the fill
come from the file's attributes (``scale_factor``, ``add_offset``, ``_FillValue``,
``missing_value``, ``valid_range``/``valid_min``/``valid_max``, ``units`` = ``%``) or from
an explicit argument (``ndvi_scale``/``ndvi_offset``, ``ndvi_fill``, or ``product`` for a
documented product encoding); an argument overrides the attribute. Where they leave it open,
the file is refused, naming the file, the variable, the candidate encodings and the argument
that settles it:

* an integer variable without ``scale_factor`` (NDVI is never stored as plain integers);
* float values beyond [-1, 1] without ``scale_factor`` (percent? bytes? x 10^4?);
* an integer variable that declares no fill value (``_FillValue``, ``missing_value``,
  ``valid_range``, ``valid_min``/``valid_max``): a fill such as -3000 would otherwise become
  NDVI -0.30;
* any value outside [-1, 1] once decoded, and a file in which every value is missing.

Explained in book/generated/02_data.ipynb ("Real data").
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .domain import check_missing, check_range
from .files import combine_time, expand_paths, open_file
from .schema import VAR_ATTRS
from .timeaxis import to_standard_index

#: Documented product encodings for ``product=``: scale, offset and fill of the stored integers.
PRODUCTS = {"gimms3g": {"scale": 1e-4, "offset": 0.0, "fill": -32768},  # GIMMS NDVI3g v1 nc4
            "modis": {"scale": 1e-4, "offset": 0.0, "fill": -3000},  # MOD13 NDVI
            "copernicus": {"scale": 0.004, "offset": -0.08, "fill": 255}}  # CGLS NDVI 1 km v2/v3
_UNSET = object()


def _declared_fill(raw: xr.DataArray) -> list[float]:
    a, enc = raw.attrs, raw.encoding
    out = []
    for key in ("_FillValue", "missing_value"):
        value = enc.get(key, a.get(key))
        if value is not None:
            out += [float(v) for v in np.atleast_1d(value)]
    return out


def _candidates(vmax: float) -> str:
    if vmax <= 100:
        return ("percent (ndvi_scale=0.01), or a byte coding such as Copernicus' (ndvi_scale=0.004, "
                "ndvi_offset=-0.08)")
    if vmax <= 255:
        return ("a byte coding: Copernicus' (ndvi_scale=0.004, ndvi_offset=-0.08), values/250 "
                "(ndvi_scale=0.004), or (v-128)/128 (ndvi_scale=1/128, ndvi_offset=-1)")
    if vmax <= 10000:
        return "x 10^4 as GIMMS and MODIS store it (ndvi_scale=1e-4, or product='gimms3g' / 'modis')"
    return "none of the usual NDVI encodings (values beyond 10^4)"


def decode(raw: xr.DataArray, where: str, scale=None, offset: float = 0.0, fill=_UNSET) -> xr.DataArray:
    """Stored NDVI -> float NDVI with NaN where missing (rules in the module docstring).

    Args:
        raw: the variable as stored (opened with ``mask_and_scale=False``).
        where: the file, for messages.
        scale, offset: an explicit scale (NDVI = stored x scale + offset); overrides attributes.
        fill: an explicit fill value (a number, a list, or None for "no fill"); overrides
            and adds to the attributes.

    Raises:
        ValueError: the scale or the fill is ambiguous (module docstring), naming the argument.
    """
    a = raw.attrs
    integer = np.issubdtype(raw.dtype, np.integer)
    fills = _declared_fill(raw)
    if fill is not _UNSET:
        fills += [float(v) for v in np.atleast_1d(fill)] if fill is not None else []
    has_range = any(k in a for k in ("valid_range", "valid_min", "valid_max"))
    if integer and fill is _UNSET and not fills and not has_range:
        raise ValueError(f"{where}: integer NDVI ({raw.dtype}) declares no fill value (_FillValue, missing_value "
                         "or valid_range), so a fill such as -3000 would be read as NDVI: pass ndvi_fill=<the "
                         "fill value> (e.g. -3000 MODIS, -32768 GIMMS; ndvi_fill=None if no cell is missing), "
                         "or product='gimms3g' / 'modis' / 'copernicus'")
    vals = raw.values.astype(np.float64)
    ok = np.ones(vals.shape, bool)
    for f in fills:
        ok &= vals != f
    if "valid_range" in a:
        lo, hi = np.asarray(a["valid_range"], dtype=float)[:2]
        ok &= (vals >= lo) & (vals <= hi)
    else:
        if "valid_min" in a:
            ok &= vals >= float(a["valid_min"])
        if "valid_max" in a:
            ok &= vals <= float(a["valid_max"])
    ok &= np.isfinite(vals)
    if scale is not None:
        factor, shift = float(scale), float(offset)
    elif "scale_factor" in a or "add_offset" in a:
        factor, shift = float(a.get("scale_factor", 1.0)), float(a.get("add_offset", 0.0))
    elif str(a.get("units", "")).strip().lower() in ("%", "percent"):
        factor, shift = 0.01, 0.0
    else:
        vmax = float(np.abs(vals[ok]).max()) if ok.any() else 0.0
        if integer or vmax > 1.0:
            raise ValueError(f"{where}: ndvi ({raw.dtype}, values up to {vmax:g}) has no scale_factor, so its "
                             f"scale is ambiguous -- candidates: {_candidates(vmax)}; pass ndvi_scale= (and "
                             "ndvi_offset=) to read_ndvi, or product=")
        factor, shift = 1.0, 0.0
    out = np.where(ok, vals * factor + shift, np.nan)
    return raw.copy(data=out).assign_attrs(units="1")


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


def read_ndvi(paths, max_flag: int = 1, year: int | None = None, *, ndvi_scale: float | None = None,
              ndvi_offset: float = 0.0, ndvi_fill=_UNSET, product: str | None = None) -> xr.DataArray:
    """NDVI ``(time, lat, lon)`` float32 in [-1, 1], NaN where missing or flagged.

    Args:
        paths: NetCDF file(s), a glob pattern (``"ndvi3g_*.nc4"``) or a list, with GIMMS
            (``ndvi``) or Copernicus (``NDVI``) naming.
        max_flag: GIMMS quality flags kept: 0 good, 1 spline-interpolated, 2 seasonal
            profile (possible snow/cloud) -- default keeps 0 and 1.
        year: the year of GIMMS files whose time axis holds month numbers.
        ndvi_scale, ndvi_offset: NDVI = stored x ndvi_scale + ndvi_offset, for files whose
            attributes do not say it (overrides ``scale_factor``/``add_offset``).
        ndvi_fill: the stored fill value(s) (None: no fill), for files that do not declare one.
        product: a documented encoding (:data:`PRODUCTS`: ``gimms3g``, ``modis``,
            ``copernicus``) giving scale, offset and fill at once.

    Raises:
        ValueError: an ambiguous scale or fill, a value outside [-1, 1] once decoded, or a
            file whose every value is missing -- one line naming the file and the fix.
    """
    if product is not None:
        if product not in PRODUCTS:
            raise ValueError(f"product={product!r} unknown: choose one of {sorted(PRODUCTS)}, or pass "
                             "ndvi_scale=, ndvi_offset= and ndvi_fill=")
        preset = PRODUCTS[product]
        ndvi_scale = preset["scale"] if ndvi_scale is None else ndvi_scale
        ndvi_offset = preset["offset"] if ndvi_offset == 0.0 else ndvi_offset
        ndvi_fill = preset["fill"] if ndvi_fill is _UNSET else ndvi_fill
    for name, value in (("ndvi_scale", ndvi_scale), ("ndvi_offset", ndvi_offset)):
        if value is not None and not (np.isfinite(value) and (name != "ndvi_scale" or value > 0)):
            raise ValueError(f"read_ndvi: {name}={value} must be a finite number (a scale > 0)")
    parts, files = [], expand_paths(paths, "NDVI file")
    for p in files:
        ds = open_file(p, "NDVI file", mask_and_scale=False, decode_times=False)
        try:
            ds = xr.decode_cf(ds, mask_and_scale=False)
        except ValueError:
            pass
        name = "ndvi" if "ndvi" in ds else "NDVI" if "NDVI" in ds else None
        if name is None:
            raise ValueError(f"{p} holds no 'ndvi' (GIMMS) or 'NDVI' (Copernicus) variable; found "
                             f"{list(ds.data_vars)}; rename the variable to ndvi")
        where = f"{p}: {name}"
        da = decode(ds[name], where, ndvi_scale, ndvi_offset, ndvi_fill)
        if "percentile" in ds:
            da = da.where(ds["percentile"] // 2000 <= max_flag)
        if not np.isfinite(da.values).any():
            raise ValueError(f"{where}: every value is missing once decoded (fill values, valid_range, quality "
                             f"flags above max_flag={max_flag}); check the file, its _FillValue and "
                             "valid_range, or max_flag")
        check_missing(da, "ndvi", f"{p}: ")
        da = check_range(da, "ndvi", f"{p}: ", read_as=f"scale {ndvi_scale}" if ndvi_scale else None,
                         fix="check the file's scale_factor/add_offset, or pass ndvi_scale= and ndvi_offset=")
        one = da.to_dataset(name="ndvi").assign_attrs(ds.attrs)
        parts.append(_ndvi_time(one, year, str(p)))
    out = combine_time(parts, files)["ndvi"]
    return out.astype(np.float32).transpose("time", "lat", "lon").assign_attrs(VAR_ATTRS["ndvi"])
