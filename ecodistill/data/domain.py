"""Every value in its physical domain: the read-time checks of every input path.

Each variable has a physical domain in its schema unit (:data:`~ecodistill.data.schema.DOMAIN`,
after unit conversion). The readers (ERA5 NetCDF and GRIB, FourCastNet HDF5, NDVI) and the
opening of a dataset file (``ECODISTILL_DATA``) check **every value**, never a median or a
sample, a block of days at a time:

* :func:`check_range` -- values outside the domain are counted and the first one is located
  (time, latitude, longitude) in a one-line error naming the file, the variable, the unit it
  was read in and the fix. Values within :data:`~ecodistill.data.schema.DOMAIN_TOLERANCE`
  of a bound are packing noise and are set to the bound. A record whose largest value stays
  below :data:`~ecodistill.data.schema.FLOOR` is in another unit that the domain cannot tell
  apart (relative humidity as a fraction labelled ``%``): refused, naming ``units=``.
* :func:`check_missing` -- NaN is an error unless the variable is gappy
  (:data:`~ecodistill.data.schema.GAPPY`: NDVI). Land-only variables
  (:data:`~ecodistill.data.schema.LAND_ONLY`: soil water, snow) may be NaN over the sea:
  where a land mask is known, NaN on a land cell is an error; without one, a cell must be NaN
  on every step or on none (a cell missing on some days only is a gap, not the sea).

Explained in book/generated/02_data.ipynb ("Real data").
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from .schema import CHANNEL_DOMAIN, DOMAIN, DOMAIN_TOLERANCE, FLOOR, GAPPY, LAND_ONLY, VAR_ATTRS

BLOCK = 366  # steps per block when a variable is read lazily


def domain_of(name: str) -> tuple[float, float] | None:
    """The physical domain of ``name`` in its schema unit (None for an unknown channel)."""
    return DOMAIN.get(name) or CHANNEL_DOMAIN.get(name)


def _blocks(da: xr.DataArray):
    """``(offset, values)`` blocks along the first dimension (all of it for small arrays)."""
    n = da.shape[0] if da.ndim else 1
    if da.ndim < 3 or n <= BLOCK:
        yield 0, np.asarray(da.values)
        return
    for t0 in range(0, n, BLOCK):
        yield t0, np.asarray(da.isel({da.dims[0]: slice(t0, t0 + BLOCK)}).values)


def locate(da: xr.DataArray, index: tuple[int, ...]) -> str:
    """``time 2010-01-05, lat 52.25, lon -1.5`` for a position of ``da``."""
    parts = []
    for dim, i in zip(da.dims, index):
        if dim in da.coords:
            value = da[dim].values[i]
            if np.issubdtype(np.asarray(value).dtype, np.datetime64):
                text = str(np.datetime_as_string(value, unit="h")).replace("T00", "")
            elif isinstance(value, (float, np.floating)):
                text = f"{float(value):.6g}"
            else:
                text = str(value)
        else:
            text = f"#{i}"
        parts.append(f"{dim} {text}")
    return ", ".join(parts)


def check_range(da: xr.DataArray, name: str, where: str = "", read_as: str | None = None,
                fix: str | None = None) -> xr.DataArray:
    """Refuse values of ``da`` (schema unit) outside the domain of ``name``; NaN is left to
    :func:`check_missing`.

    Args:
        da: the variable in its schema unit, any dims (time first when there is one).
        name: its schema name (``t2m``, ``r850``, ...) or a FourCastNet channel.
        where: a prefix for messages (``"era5_sl.nc: "``).
        read_as: the unit the values were stored in, for the message (e.g. ``"mm"``).
        fix: the fix to name (default: the units attribute, or ``units=``).

    Returns:
        ``da`` with values within the packing tolerance of a bound set to the bound.

    Raises:
        ValueError: one line naming the variable, the count and first place of values
            outside the domain, and the fix (the units attribute, or ``units=``).
    """
    dom = domain_of(name)
    if dom is None:
        return da
    lo, hi = dom
    tol = DOMAIN_TOLERANCE.get(name, 0.0)
    unit = VAR_ATTRS.get(name, {}).get("units", "")
    unit = "" if unit == "1" else unit
    count, first, vmin, vmax, clip = 0, None, np.inf, -np.inf, False
    for t0, block in _blocks(da):
        finite = np.isfinite(block)
        if not finite.any():
            continue
        vals = block[finite]
        vmin, vmax = min(vmin, float(vals.min())), max(vmax, float(vals.max()))
        bad = finite & ((block < lo - tol) | (block > hi + tol))
        n = int(bad.sum())
        if n and first is None:
            idx = np.unravel_index(int(np.flatnonzero(bad)[0]), block.shape)
            first = (idx[0] + t0,) + tuple(idx[1:]) if block.ndim else ()
            first_value = float(block[idx])
        count += n
        clip = clip or bool((finite & ((block < lo) | (block > hi))).any())
    stored = f" read as {read_as!r}" if read_as else ""
    fix = fix or f"fix the file's units attribute or pass units={{{name!r}: '<unit>'}}"
    if count:
        place = locate(da, first) if first else "?"
        share = count / max(da.size, 1)
        raise ValueError(
            f"{where}{name}{stored} has {count} value(s) ({share:.2%}) outside its physical domain "
            f"{lo:g}..{hi:g} {unit} (range {vmin:.4g}..{vmax:.4g}; the first, {first_value:.4g}, at "
            f"{place}): the unit or the scale is wrong, or the values are damaged; {fix}")
    floor = FLOOR.get(name)
    if floor is not None and np.isfinite(vmax) and vmax < floor:
        raise ValueError(
            f"{where}{name}{stored} never exceeds {vmax:.4g} {unit} (a real record reaches at least "
            f"{floor:g} {unit}): it is in another unit, e.g. a fraction labelled %; {fix} (e.g. "
            f"units={{{name!r}: '1'}} for a fraction)")
    if clip:
        return da.clip(lo, hi).assign_attrs(da.attrs)
    return da


def check_missing(da: xr.DataArray, name: str, where: str = "", land: np.ndarray | None = None,
                  fix: str = "fill or drop the affected days/cells in the source files") -> None:
    """Refuse NaN/Inf in ``da`` by the rules of the module docstring.

    Args:
        da: ``(time, lat, lon)`` (or ``(lat, lon)``) values.
        name: the schema name.
        where: a prefix for messages.
        land: ``(lat, lon)`` bool, True over land, when known.
        fix: what to do about it, for the message.

    Raises:
        ValueError: one line naming the variable, the count and first place of the bad
            values, and the fix.
    """
    if name in GAPPY:
        inf = 0
        for _, block in _blocks(da):
            inf += int(np.isinf(block).sum())
        if inf:
            raise ValueError(f"{where}{name} holds {inf} infinite value(s); only NaN marks a gap: {fix}")
        return
    count, first, ever, always = 0, None, None, None
    land_only = name in LAND_ONLY and da.ndim >= 2
    for t0, block in _blocks(da):
        bad = ~np.isfinite(block)
        if land_only:
            nan = np.isnan(block)
            bad = np.isinf(block)
            if land is not None:
                bad = bad | (nan & np.broadcast_to(land, block.shape))
            if block.ndim == 3:
                now_any, now_all = nan.any(0), nan.all(0)
                ever = now_any if ever is None else ever | now_any
                always = now_all if always is None else always & now_all
        n = int(bad.sum())
        if n and first is None:
            idx = np.unravel_index(int(np.flatnonzero(bad)[0]), block.shape)
            first = (idx[0] + t0,) + tuple(idx[1:])
        count += n
    if count:
        what = "NaN over land" if land_only else "NaN/Inf value(s)"
        raise ValueError(f"{where}{name} holds {count} {what} (the first at {locate(da, first)}); only "
                         f"{', '.join(GAPPY)} may have gaps: {fix}")
    if land_only and ever is not None and land is None:
        partial = ever & ~always
        if partial.any():
            i, j = (int(k[0]) for k in np.nonzero(partial))
            cell = locate(da.isel({da.dims[0]: 0}), (i, j))
            raise ValueError(f"{where}{name} is NaN on some days only in {int(partial.sum())} cell(s) (the "
                             f"first at {cell}): a gap, not the sea (which is NaN on every day); {fix}")


def check_variable(da: xr.DataArray, name: str, where: str = "", land: np.ndarray | None = None,
                   read_as: str | None = None) -> xr.DataArray:
    """:func:`check_missing` then :func:`check_range`; returns ``da`` (bounds clipped within tolerance)."""
    check_missing(da, name, where, land)
    return check_range(da, name, where, read_as)
