"""The dataset schema shared by the simulated Earth and the real-data readers.

A dataset is an ``xarray.Dataset`` on ``(time, lat, lon)`` -- daily steps, latitude
ascending (degrees north), longitude in [-180, 180) (degrees east) -- holding the ERA5
short names and units below, the NDVI target (``ndvi``, NaN where missing) and the static
maps of :func:`ecodistill.data.static.static_maps`. Accumulated ERA5 fields are *daily*
accumulations (``tp`` in m per day, ``ssrd`` in J m-2 per day).

Explained in book/generated/02_data.ipynb ("The dataset").
"""
from __future__ import annotations

import numpy as np
import xarray as xr

#: The atmosphere: FourCastNet-style channels the simulated Earth and ERA5 both provide.
ATMOSPHERE_VARS = ("t2m", "tp", "ssrd", "u10", "v10", "msl", "z500", "t850", "r850", "tcwv")
#: The land state as ERA5 gives it: volumetric soil water of the four layers of the ECMWF land
#: model (0-7, 7-28, 28-100, 100-289 cm) and snow depth in m of water equivalent.
LAND_VARS = ("swvl1", "swvl2", "swvl3", "swvl4", "sd")
#: The inputs of the first simulated world (``world="v1"``): the atmosphere and the top soil layer.
WEATHER_VARS = ATMOSPHERE_VARS + ("swvl1",)
#: Named input sets (``DataConfig.inputs``): which dynamic variables a model sees.
#: ``anchor`` is FourCastNet's atmospheric channels with no land state (Janetzky et al. 2024);
#: ``era5`` adds the land state as ERA5 gives it.
INPUT_SETS = {"v1": WEATHER_VARS, "anchor": ATMOSPHERE_VARS, "era5": ATMOSPHERE_VARS + LAND_VARS}
VAR_ATTRS = {
    "t2m": {"units": "K", "long_name": "2 metre temperature, daily mean", "standard_name": "air_temperature"},
    "tp": {"units": "m", "long_name": "total precipitation, daily total",
           "standard_name": "lwe_thickness_of_precipitation_amount"},
    "ssrd": {"units": "J m-2", "long_name": "surface solar radiation downwards, daily accumulation",
             "standard_name": "integral_wrt_time_of_surface_downwelling_shortwave_flux_in_air"},
    "u10": {"units": "m s-1", "long_name": "10 metre U wind component, daily mean", "standard_name": "eastward_wind"},
    "v10": {"units": "m s-1", "long_name": "10 metre V wind component, daily mean",
            "standard_name": "northward_wind"},
    "msl": {"units": "Pa", "long_name": "mean sea level pressure, daily mean",
            "standard_name": "air_pressure_at_mean_sea_level"},
    "z500": {"units": "m2 s-2", "long_name": "geopotential at 500 hPa, daily mean", "standard_name": "geopotential"},
    "t850": {"units": "K", "long_name": "temperature at 850 hPa, daily mean", "standard_name": "air_temperature"},
    "r850": {"units": "%", "long_name": "relative humidity at 850 hPa, daily mean",
             "standard_name": "relative_humidity"},
    "tcwv": {"units": "kg m-2", "long_name": "total column water vapour, daily mean",
             "standard_name": "atmosphere_mass_content_of_water_vapor"},
    "swvl1": {"units": "m3 m-3", "long_name": "volumetric soil water layer 1 (0-7 cm), daily mean",
              "standard_name": "volume_fraction_of_condensed_water_in_soil"},
    "swvl2": {"units": "m3 m-3", "long_name": "volumetric soil water layer 2 (7-28 cm), daily mean",
              "standard_name": "volume_fraction_of_condensed_water_in_soil"},
    "swvl3": {"units": "m3 m-3", "long_name": "volumetric soil water layer 3 (28-100 cm), daily mean",
              "standard_name": "volume_fraction_of_condensed_water_in_soil"},
    "swvl4": {"units": "m3 m-3", "long_name": "volumetric soil water layer 4 (100-289 cm), daily mean",
              "standard_name": "volume_fraction_of_condensed_water_in_soil"},
    "sd": {"units": "m", "long_name": "snow depth, daily mean (m of water equivalent)",
           "standard_name": "lwe_thickness_of_surface_snow_amount"},
    "d2m": {"units": "K", "long_name": "2 metre dewpoint temperature, daily mean", "standard_name": "dew_point_temperature"},
    "rootzone_availability": {"units": "1", "long_name": "root-zone plant-available water of the simulator, "
                              "root-weighted (0 at wilting point, 1 unstressed; diagnostics only)"},
    "gsi": {"units": "1", "long_name": "21-day Growing Season Index of the simulator (diagnostics only)"},
    "ndvi": {"units": "1", "long_name": "observed NDVI (NaN = missing: cloud, snow, ocean, no label)"},
    "ndvi_true": {"units": "1", "long_name": "noise- and gap-free NDVI of the simulator (controls only)"},
    "ndvi_bayes": {"units": "1", "long_name": "expected observed NDVI given the simulator's state: the noise-free "
                   "NDVI minus the expected cloud bias (the best possible prediction; ceiling only)"},
}
STATIC_VARS = ("land_fraction", "land_mask", "igbp", "biome", "orography", "ndvi_max", "ndvi_min",
               "ndvi_domain")
BOOL_VARS = ("land_mask", "ndvi_domain")
#: Physical domain of every variable in its schema unit, after unit conversion (daily values):
#: every value read -- not a median or a sample -- must lie inside, or the reader refuses the
#: file naming the count and the place of the values outside (:mod:`ecodistill.data.domain`).
#: Bounds are physical limits with a margin, not climatological ranges: t2m and t850 from the
#: coldest and hottest daily means on record; tp up to 2 m per day (the record is 1.8 m);
#: ssrd up to the daily top-of-atmosphere insolation at the summer pole (~4.9e7 J m-2 at perihelion);
#: msl 850-1100 hPa (records 870 and 1084 hPa); 500 hPa geopotential 4.0e4-6.2e4 m2 s-2
#: (heights of ~4,100-6,300 m); relative humidity 0-110 % (ERA5's humidity is relative to ice
#: below -23 °C, so values a little above 100 % occur); soil water between 0 and a porosity of
#: 0.8 m3 m-3 (ERA5's most porous soil holds 0.766); snow depth up to 11 m of water equivalent
#: (ERA5 caps glacier snow at 10 m); NDVI in [-1, 1].
DOMAIN = {"t2m": (170.0, 340.0), "t850": (170.0, 330.0), "tp": (0.0, 2.0), "ssrd": (0.0, 5.0e7),
          "u10": (-80.0, 80.0), "v10": (-80.0, 80.0), "msl": (8.5e4, 1.1e5), "z500": (4.0e4, 6.2e4),
          "r850": (0.0, 110.0), "tcwv": (0.0, 100.0), "swvl1": (0.0, 0.8), "swvl2": (0.0, 0.8),
          "swvl3": (0.0, 0.8), "swvl4": (0.0, 0.8), "sd": (0.0, 11.0), "ndvi": (-1.0, 1.0),
          "ndvi_true": (-1.0, 1.0), "ndvi_bayes": (-1.0, 1.0)}
#: Domains of the other FourCastNet channels (ERA5 units; :func:`~ecodistill.data.readers.read_fourcastnet_h5`).
CHANNEL_DOMAIN = {"sp": (4.5e4, 1.1e5), "u1000": (-80.0, 80.0), "v1000": (-80.0, 80.0), "z1000": (-7.0e3, 5.0e3),
                  "u850": (-100.0, 100.0), "v850": (-100.0, 100.0), "z850": (7.0e3, 1.8e4),
                  "u500": (-150.0, 150.0), "v500": (-150.0, 150.0), "t500": (190.0, 290.0),
                  "z50": (1.7e5, 2.2e5), "r500": (0.0, 150.0)}
#: Values this close outside a bound are packing noise and are set to the bound (ERA5's GRIB
#: packing leaves accumulations and land fields a few 1e-9 below zero).
DOMAIN_TOLERANCE = {"tp": 1e-6, "ssrd": 1.0, "swvl1": 1e-6, "swvl2": 1e-6, "swvl3": 1e-6, "swvl4": 1e-6,
                    "sd": 1e-6, "tcwv": 1e-6}
#: The smallest plausible *maximum* of a whole record: a variable whose every value stays below
#: it is in another unit that its domain cannot tell apart (relative humidity stored as a
#: fraction but labelled %, soil water as a fraction labelled %); refused, naming ``units=``.
FLOOR = {"r850": 2.0, "swvl1": 0.01, "swvl2": 0.01, "swvl3": 0.01, "swvl4": 0.01}
#: Variables whose NaN means "not observed" (clouds, snow, no label): the only ones that may be
#: NaN over land. Every other NaN over land is an error.
GAPPY = ("ndvi",)
#: Variables defined over land only: NaN over the sea (a cell NaN on every day) is allowed and
#: becomes 0 in a dataset; NaN over land, or on some days only, is an error.
LAND_ONLY = LAND_VARS
# Plausible ranges of daily means (the simulated Earth's tests; readers check DOMAIN).
PLAUSIBLE = {"t2m": (150, 350), "t850": (150, 340), "tp": (0, 1.0), "ssrd": (0, 5e7), "msl": (8e4, 1.2e5),
             "z500": (3.5e4, 6.5e4), "r850": (0, 150), "tcwv": (0, 150), "swvl1": (0, 1),
             "swvl2": (0, 1), "swvl3": (0, 1), "swvl4": (0, 1), "sd": (0, 11), "d2m": (150, 340),
             "u10": (-150, 150), "v10": (-150, 150)}


def coord_attrs(ds: xr.Dataset) -> xr.Dataset:
    """Set the CF attributes of the time, lat and lon coordinates."""
    ds["lat"].attrs.update(units="degrees_north", standard_name="latitude", long_name="latitude", axis="Y")
    ds["lon"].attrs.update(units="degrees_east", standard_name="longitude", long_name="longitude", axis="X")
    if "time" in ds.coords:
        ds["time"].attrs.update(standard_name="time", long_name="time (day)", axis="T")
    return ds


def validate(ds: xr.Dataset, weather_vars=WEATHER_VARS, need_ndvi: bool = True) -> None:
    """Check a dataset against the schema (cheap checks only: names, dims, units, order).

    Raises:
        ValueError: naming the missing variable, wrong unit or wrong coordinate and the fix.
    """
    missing = [v for v in weather_vars if v not in ds]
    if need_ndvi and "ndvi" not in ds:
        missing.append("ndvi")
    missing += [v for v in STATIC_VARS if v not in ds]
    if missing:
        raise ValueError(
            f"dataset lacks variable(s) {missing}. Weather must use ERA5 short names "
            f"{list(WEATHER_VARS)}; read real files with ecodistill.data.readers (read_era5, "
            "read_ndvi, make_dataset), which also add the static maps.")
    for name in list(weather_vars) + (["ndvi"] if need_ndvi else []):
        dims = ds[name].dims
        if dims != ("time", "lat", "lon"):
            raise ValueError(f"{name} has dims {dims}; expected ('time', 'lat', 'lon') "
                             "(transpose it, and rename latitude/longitude to lat/lon)")
        want = VAR_ATTRS[name]["units"]
        got = ds[name].attrs.get("units")
        if got is not None and got != want:
            raise ValueError(f"{name} has units {got!r}, expected {want!r}; convert it with "
                             "ecodistill.data.readers.convert_units")
    lat, lon = ds["lat"].values, ds["lon"].values
    if not np.all(np.diff(lat) > 0):
        raise ValueError("latitude must ascend; use ds.sortby('lat') (readers.standardise does it)")
    if lon.min() < -180 or lon.max() >= 180 or not np.all(np.diff(lon) > 0):
        raise ValueError("longitude must ascend within [-180, 180); convert 0..360 with "
                         "ecodistill.data.readers.standardise")


def check_finite(name: str, values: np.ndarray) -> None:
    """Raise a ValueError naming ``name`` when ``values`` hold NaN or Inf."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"input {name} holds {int(bad.sum())} NaN/Inf value(s); inputs must be finite "
                         "(fill gaps in the source, or drop the affected days) -- only ndvi may be NaN")
