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
* ``tcwv`` given as a depth (``mm``): times the density of water;
* snow depth ``sd`` given as a mass per area (``kg m-2``): divided by the density of water
  (ERA5 writes its unit as ``m of water equivalent``, read as ``m``).

A variable **without** a units attribute is refused, naming the units it could be in and
the argument that settles it (``units={"r850": "%"}`` of the readers): a scale is never
guessed from the values. After every conversion each value must lie in the variable's
physical domain (:func:`ecodistill.data.domain.check_range`: all values, not a median), which
catches a wrong units attribute, e.g. precipitation in mm labelled ``m``.

Explained in book/generated/02_data.ipynb ("Real data").
"""
from __future__ import annotations

import functools

import xarray as xr

from .domain import check_range
from .schema import VAR_ATTRS

G = 9.80665  # m s-2, standard gravity (geopotential height -> geopotential)
RHO_WATER = 1000.0  # kg m-3 (water mass per area <-> depth)
#: Units each variable is often stored in besides its schema unit (named in messages).
ALTERNATIVES = {"t2m": ("degC",), "t850": ("degC",), "tp": ("mm", "kg m-2 s-1"), "ssrd": ("W m-2",),
                "msl": ("hPa",), "z500": ("m",), "r850": ("1",), "tcwv": ("mm",), "swvl1": ("%",),
                "swvl2": ("%",), "swvl3": ("%",), "swvl4": ("%",), "sd": ("mm",), "u10": ("km h-1",),
                "v10": ("km h-1",)}
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


#: Spellings of ERA5 files that are not CF units (ERA5 writes "m of water equivalent" for
#: snow depth, "(0 - 1)" for fractions).
ALIASES = {"m of water equivalent": "m", "(0 - 1)": "1", "0-1": "1", "~": "1"}


def _parse(text: str, name: str):
    ureg = registry()
    text = ALIASES.get(str(text).strip(), str(text).strip())
    try:
        return ureg.Unit(text)
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
            "z500": [(g, False)], "tcwv": [(rho, False)], "sd": [(1 / rho, False)]}.get(name, [])


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


def unit_of(da: xr.DataArray, name: str, where: str = "", units: str | None = None) -> str:
    """The unit ``da`` is stored in: ``units`` when given (an explicit override), else its
    ``units`` attribute.

    Raises:
        ValueError: no unit either way (naming the candidates and ``units=``).
    """
    unit = units if units is not None else da.attrs.get("units")
    if unit is None or str(unit).strip() == "":
        known = [VAR_ATTRS[name]["units"], *ALTERNATIVES.get(name, ())]
        raise ValueError(f"{where}{name} has no units attribute, and its values cannot tell which unit it "
                         f"is in (e.g. {' or '.join(repr(k) for k in known)}): set the attribute in the file, "
                         f"or pass units={{{name!r}: '<unit>'}} to the reader")
    return str(unit).strip()


def is_rate(da: xr.DataArray, name: str, units: str | None = None) -> bool:
    """True when ``da`` (``tp``/``ssrd``) holds a rate or flux (averaged), not an amount."""
    unit = units if units is not None else da.attrs.get("units")
    return name in ACCUMULATED and unit is not None and str(unit).strip() != "" and conversion(unit, name)[2]


def convert_units(da: xr.DataArray, name: str, where: str = "", units: str | None = None) -> xr.DataArray:
    """``da`` in the schema unit of ``name`` (daily values; conversions above), every value
    checked against its physical domain.

    Args:
        da: the variable, daily (rates already averaged over the day, amounts summed).
        name: its schema name (``t2m``, ``tp``, ...).
        where: a prefix for messages (e.g. ``"era5_sl.nc: "``).
        units: the unit it is stored in, overriding (or standing in for) its attribute.

    Raises:
        ValueError: an unreadable or inconvertible unit, a variable without units, or a value
            outside the physical domain after conversion (the units attribute is wrong) --
            each naming the variable and the fix.
    """

    want = VAR_ATTRS[name]["units"]
    unit = unit_of(da, name, where, units)
    factor, offset, _ = conversion(unit, name)
    out = da if (factor, offset) == (1.0, 0.0) else da * factor + offset
    out = out.assign_attrs({**da.attrs, "units": want})
    return check_range(out, name, where, read_as=unit)
