"""Units of real input files, converted through a units library (no hand-written table).

Units attributes are parsed by the CF/UDUNITS-aware ``pint`` registry of ``cf-xarray``
(``cf_xarray.units``), so every CF spelling is read: ``K``, ``degC``, ``degree_Celsius``,
``hPa``, ``m**2 s**-2``, ``W m-2``, ``J m**-2``, ``kg m-2 s-1``, ``mm day-1``, ``1``, ``%``,
... Converting to the schema unit (:data:`~ecodistill.data.schema.VAR_ATTRS`) is dimensional
analysis by ``pint``; the only physics added is named here:

* precipitation ``tp``: water mass per area -> depth by the density of water
  (1000 kg m-3, so 1 kg m-2 = 1 mm), and a *rate* (``kg m-2 s-1``, ``mm day-1``) is a daily
  mean rate, times one day for the daily total;
* radiation ``ssrd``: a flux (``W m-2``) is a daily mean, times one day (86,400 s) for the
  daily accumulation in J m-2;
* ``z500`` given as geopotential *height* (``m``, ``gpm``): times standard gravity
  9.80665 m s-2;
* ``tcwv`` given as a depth (``mm``): times the density of water.

A variable **without** a units attribute is accepted only where its values make the unit
unambiguous: the median of the first day must be typical of the schema unit and atypical
of each unit the variable is commonly stored in (:data:`ALTERNATIVES`), e.g. relative
humidity 0-1 (a fraction) versus 0-100 (%). Otherwise the error names the variable and the
fix (set ``da.attrs["units"]``). After every conversion the median must be plausible
(:data:`~ecodistill.data.schema.PLAUSIBLE`), which catches a wrong units attribute.

Explained in book/generated/02_data.ipynb ("Real data").
"""
from __future__ import annotations

import functools

import numpy as np
import xarray as xr

from .schema import PLAUSIBLE, VAR_ATTRS

G = 9.80665  # m s-2, standard gravity (geopotential height -> geopotential)
RHO_WATER = 1000.0  # kg m-3 (water mass per area <-> depth)
# Typical medians (over the grid, one day) in the schema unit, narrower than PLAUSIBLE: a
# unitless variable is taken in the schema unit only when its median lies here ...
TYPICAL = {"t2m": (200, 320), "t850": (200, 310), "tp": (1e-5, 0.05), "ssrd": (1e5, 4e7),
           "msl": (9.5e4, 1.06e5), "z500": (4.5e4, 6.2e4), "r850": (2, 100), "tcwv": (0.5, 80),
           "swvl1": (0, 0.7), "u10": (-40, 40), "v10": (-40, 40)}
# ... and outside TYPICAL once read in each unit the variable is often stored in.
ALTERNATIVES = {"t2m": ("degC",), "t850": ("degC",), "tp": ("mm", "kg m-2 s-1"), "ssrd": ("W m-2",),
                "msl": ("hPa",), "z500": ("m",), "r850": ("1",), "tcwv": (), "swvl1": ("%",),
                "u10": (), "v10": ()}
ACCUMULATED = ("tp", "ssrd")


@functools.lru_cache(maxsize=1)
def registry():
    """The CF-aware pint registry of ``cf_xarray`` (imported on first use: optional)."""
    import logging

    log = logging.getLogger("pint.util")
    level = log.level
    log.setLevel(logging.ERROR)  # cf_xarray redefines a few pint units on import, on purpose
    try:
        from cf_xarray.units import units
    except ImportError as err:
        raise ImportError("reading real files needs cf-xarray and pint: pip install "
                          "cf-xarray==0.11.3 pint==0.25.3 (pinned in requirements.txt)") from err
    finally:
        log.setLevel(level)
    return units


def _parse(text: str, name: str):
    ureg = registry()
    try:
        return ureg.Unit(str(text).strip())
    except Exception:  # noqa: BLE001 -- pint raises several types; one message for all
        raise ValueError(f"{name} has units {text!r}, which the CF units registry cannot read; fix "
                         "the units attribute (CF/UDUNITS spelling, e.g. "
                         f"{VAR_ATTRS[name]['units']!r})") from None


def _physics(name: str) -> list[tuple[object, bool]]:
    """``(multiplier, is_rate)`` pairs (pint quantities) that may join ``name``'s stored unit
    to its schema unit, tried after plain conversion."""
    q = registry().Quantity
    day, rho, g = q(1.0, "day"), q(RHO_WATER, "kg m-3"), q(G, "m s-2")
    return {"tp": [(1 / rho, False), (day, True), (day / rho, True)], "ssrd": [(day, True)],
            "z500": [(g, False)], "tcwv": [(rho, False)]}.get(name, [])


def conversion(units: str, name: str) -> tuple[float, float, bool]:
    """``(factor, offset, is_rate)``: schema value = stored value x factor + offset.

    ``is_rate`` tells that the stored unit is per time (a flux or rate) where the schema
    holds a daily amount (``tp``, ``ssrd``): such values are averaged over a day, amounts
    summed (:func:`ecodistill.data.timeaxis.to_daily`).

    Raises:
        ValueError: the unit is unreadable or cannot be converted (naming both units).
    """
    want = _parse(VAR_ATTRS[name]["units"], name)
    src = _parse(units, name)
    ureg = registry()
    if src.dimensionality == want.dimensionality:  # plain (also offset units such as degC)
        zero = ureg.Quantity(0.0, src).to(want).magnitude
        one = ureg.Quantity(1.0, src).to(want).magnitude
        return float(one - zero), float(zero), False
    for extra, rate in _physics(name):
        q = ureg.Quantity(1.0, src) * extra
        if q.dimensionality == want.dimensionality:
            return float(q.to(want).magnitude), 0.0, rate
    raise ValueError(f"{name} has units {units!r} ({src.dimensionality}), which cannot become "
                     f"{VAR_ATTRS[name]['units']!r}; fix the units attribute or convert the "
                     "variable first")


def is_rate(da: xr.DataArray, name: str) -> bool:
    """True when ``da`` (``tp``/``ssrd``) holds a rate or flux (averaged), not an amount."""
    units = da.attrs.get("units")
    return name in ACCUMULATED and units is not None and conversion(units, name)[2]


def _median(da: xr.DataArray) -> float:
    first = da.isel({da.dims[0]: 0}) if da.ndim > 2 else da
    return float(np.nanmedian(np.asarray(first.values, dtype=np.float64)))


def assumed_units(da: xr.DataArray, name: str, where: str = "") -> str:
    """The schema unit for a variable without units, when its values leave no doubt.

    Raises:
        ValueError: naming the variable, its median and the units it could be in.
    """
    want = VAR_ATTRS[name]["units"]
    med = _median(da)
    lo, hi = TYPICAL[name]
    fits = [u for u in ALTERNATIVES[name] if TYPICAL[name][0] <= med * conversion(u, name)[0]
            + conversion(u, name)[1] <= TYPICAL[name][1]]
    if not lo <= med <= hi or fits:
        could = ([want] if lo <= med <= hi else []) + fits
        known = [want, *ALTERNATIVES[name]]
        guess = f"it could be in {could}" if could else f"typical of none of {known}"
        raise ValueError(f"{where}{name} has no units attribute and a median of {med:.4g}: "
                         f"{guess}; set da.attrs['units'] to the unit it is in (e.g. {want!r})")
    return want


def convert_units(da: xr.DataArray, name: str, where: str = "") -> xr.DataArray:
    """``da`` in the schema unit of ``name`` (daily values; conversions above).

    Args:
        da: the variable, daily (rates already averaged over the day, amounts summed).
        name: its schema name (``t2m``, ``tp``, ...).
        where: a prefix for messages (e.g. ``"era5_sl.nc: "``).

    Raises:
        ValueError: an unreadable or inconvertible unit, a variable without units whose
            values are ambiguous, or an implausible median after conversion (the units
            attribute is wrong) -- each naming the variable and the fix.
    """
    want = VAR_ATTRS[name]["units"]
    units = da.attrs.get("units")
    if units is None or str(units).strip() == "":
        units = assumed_units(da, name, where)
    factor, offset, _ = conversion(units, name)
    out = da if (factor, offset) == (1.0, 0.0) else da * factor + offset
    out = out.assign_attrs({**da.attrs, "units": want})
    med, (lo, hi) = _median(out), PLAUSIBLE[name]
    if not lo <= med <= hi:
        raise ValueError(f"{where}{name} in {units!r} has a median of {med:.4g} {want} after "
                         f"conversion, outside {lo}..{hi}: the units attribute looks wrong; fix it")
    return out
