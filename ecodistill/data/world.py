"""World versions of the simulated Earth: what each simulates, writes and hashes.

* ``v1`` -- the first world (:mod:`ecodistill.data.weather`, :mod:`ecodistill.data.vegetation`,
  :func:`ecodistill.data.simulate.simulate_years`): AR(1) weather systems with a few days of
  memory, a two-layer bucket of which models saw the top 7 cm (``swvl1``). Kept unchanged,
  so its datasets (and every result computed on them) are reproduced bit for bit by
  version and seed, with the same dataset hash.
* ``v2`` -- the realistic world (:mod:`ecodistill.data.atmosphere`, :mod:`ecodistill.data.land`):
  travelling, longer-lived weather systems whose next day can be learned; four soil layers
  at ERA5's depths and snow, given to models as a reanalysis estimates them
  (``swvl1``-``swvl4``, ``sd``); the NDVI driven by root-zone water. Its parameters were
  revised toward the realism targets of :data:`ecodistill.data.realism.TARGETS`.

Every world yields the same ``(year, days, {var: (ndays, nlat, nlon)})`` blocks; the dataset
writer and the hash read :func:`output_vars` and :func:`hash_parts` for the version.
Explained in book/generated/02_data.ipynb ("World versions").
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd

from ..config import DataConfig
from . import atmosphere, land, spectral, vegetation, weather
from .schema import ATMOSPHERE_VARS, LAND_VARS, WEATHER_VARS
from .static import static_maps

WORLDS = ("v1", "v2")
#: Simulator diagnostics beside the observation: controls and the data chapter only, never inputs.
DIAGNOSTICS = {"v1": ("ndvi_true",),
               "v2": ("ndvi_true", "ndvi_bayes", "rootzone_availability", "gsi")}


def check_world(name: str) -> str:
    """``name`` when it is a known world version.

    Raises:
        ValueError: listing the versions.
    """
    if name not in WORLDS:
        raise ValueError(f"unknown world {name!r}: choose one of {WORLDS} (v1 reproduces the first "
                         "simulated Earth, v2 is the realistic one)")
    return name


def output_vars(world: str) -> tuple[str, ...]:
    """The time-varying variables a world writes, inputs first (ERA5 names), then ``ndvi``
    and the diagnostics."""
    check_world(world)
    if world == "v1":
        return WEATHER_VARS + ("ndvi",) + DIAGNOSTICS["v1"]
    return ATMOSPHERE_VARS + LAND_VARS + ("d2m", "ndvi") + DIAGNOSTICS["v2"]


def code_parts(world: str) -> tuple:
    """The modules and functions whose code makes the world (their digests enter the hash)."""
    check_world(world)
    if world == "v1":
        return (spectral, weather, vegetation, _simulate_block, simulate_years, one_blas_thread)
    return (spectral, weather, vegetation, atmosphere, land, _block_v2, simulate_years_v2, one_blas_thread)


def param_parts(world: str) -> dict:
    """The constants of a world (JSON-ready; they enter the hash)."""
    check_world(world)
    base = {"weather": weather.WEATHER_PARAMS, "land": vegetation.LAND_PARAMS,
            "root": vegetation.ROOT_CAPACITY.tolist()}
    if world == "v1":
        return base
    return {**base, "atmosphere": atmosphere.ATMOSPHERE_PARAMS, "land_v2": land.LAND_V2_PARAMS,
            "roots": land.ROOT_FRACTIONS.tolist(), "layers": land.LAYER_DEPTHS_M.tolist()}


def one_blas_thread():
    """A context pinning BLAS/OpenMP pools to one thread (a no-op with a warning when
    ``threadpoolctl`` is missing: the values may then differ from other hosts by ~1e-6)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        warnings.warn("threadpoolctl is not installed: BLAS threads are not pinned, so the "
                      "simulated values may differ from other hosts by ~1e-6 (pip install "
                      "threadpoolctl==3.8.0)",
                      stacklevel=2)
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def days_of(years: tuple[int, int]) -> pd.DatetimeIndex:
    """All days of the inclusive year span."""
    return pd.date_range(f"{years[0]}-01-01", f"{years[1]}-12-31", freq="D")


def _simulate_block(gen, land, static, doy, z_obs) -> dict[str, np.ndarray]:
    """One block of days: weather, then the land model day by day on the land cells."""
    w = gen.block(doy)
    n = len(doy)
    nlat, nlon = land.shape
    cells = land.cells
    flat = {k: w[k].reshape(n, -1)[:, cells] for k in ("t2m", "tp", "ssrd", "_rh", "_cloud")}
    q_toa = np.repeat(w["_q_toa"], nlon, axis=1).reshape(n, -1)[:, cells]
    swvl1 = np.zeros((n, nlat * nlon), np.float32)
    truth = np.full((n, cells.size), np.nan, np.float32)
    snow = np.zeros((n, cells.size), np.float32)
    for d in range(n):
        out = land.step(flat["t2m"][d], flat["tp"][d], flat["ssrd"][d], flat["_rh"][d],
                        flat["_cloud"][d], q_toa[d], int(doy[d]))
        swvl1[d, cells] = out["swvl1"]
        truth[d] = out["ndvi_true"]
        snow[d] = out["_snow"]
    obs = land.observe(truth, flat["_cloud"], snow, z_obs)
    block = {k: w[k] for k in WEATHER_VARS if k in w}
    block["swvl1"] = swvl1.reshape(n, nlat, nlon)
    for name, vals in (("ndvi_true", truth), ("ndvi", obs)):
        full = np.full((n, nlat * nlon), np.nan, np.float32)
        full[:, cells] = vals
        block[name] = full.reshape(n, nlat, nlon)
    return block


def simulate_years(cfg: DataConfig) -> Iterator[tuple[int, pd.DatetimeIndex, dict[str, np.ndarray]]]:
    """Yield ``(year, days, {var: (ndays, nlat, nlon) float32})`` for every year of the data
    (computed with BLAS pinned to one thread: :func:`one_blas_thread`)."""
    with one_blas_thread():
        static = static_maps(cfg.nlat, cfg.nlon)
        climate = weather.Climate(static)
        seeds = np.random.SeedSequence(cfg.seed).spawn(2)
        rng_w, rng_obs = (np.random.default_rng(s) for s in seeds)
        gen = weather.WeatherGenerator(climate, rng_w)
        land = vegetation.LandModel(static, climate.daylength)
    y0, y1 = cfg.all_years
    extra = set(range(cfg.extra_years[0], cfg.extra_years[1] + 1)) if cfg.extra_years else set()
    for year in range(y0 - 1, y1 + 1):  # the first year spins the states up and is dropped
        days = days_of((year, year))
        with one_blas_thread():  # per block: the consumer between yields keeps its own threads
            z = rng_obs.standard_normal((3, len(days), land.cells.size), dtype=np.float32)
            block = _simulate_block(gen, land, static, days.day_of_year.values, z)
        if year < y0:
            continue
        if year in extra:
            block["ndvi"][:] = np.nan
        yield year, days, block


def _on_land(values: np.ndarray, cells: np.ndarray, n_grid: int, fill: float | np.ndarray = np.nan) -> np.ndarray:
    """``(n, n_grid)`` with ``values`` ``(n, n_cells)`` on the land cells, ``fill`` elsewhere."""
    out = np.empty((values.shape[0], n_grid), np.float32)
    out[:] = fill
    out[:, cells] = values
    return out


def _block_v2(atmos, surface, errors, doy, z_obs) -> dict[str, np.ndarray]:
    """One block of days of world v2: weather, then the land day by day on the land cells."""
    w = atmos.block(doy)
    n = len(doy)
    nlat, nlon = surface.shape
    cells = surface.cells
    flat = {k: w[k].reshape(n, -1)[:, cells] for k in ("t2m", "tp", "ssrd", "_rh", "_cloud")}
    q_toa = np.repeat(w["_q_toa"], nlon, axis=1).reshape(n, -1)[:, cells]
    keys = ("swvl", "sd", "snow_mm", "ndvi_true", "rh2m", "stress", "gsi", "ndvi_bayes", "theta1")
    out = {k: np.empty((n, cells.size, 4) if k == "swvl" else (n, cells.size), np.float32) for k in keys}
    for d in range(n):
        day = surface.step(flat["t2m"][d], flat["tp"][d], flat["ssrd"][d], flat["_rh"][d],
                           flat["_cloud"][d], q_toa[d], int(doy[d]))
        out["swvl"][d], out["sd"][d] = errors.estimate(day["theta"], day["sd"])
        out["theta1"][d] = day["theta"][:, 0]
        for k in ("snow_mm", "ndvi_true", "rh2m", "stress", "gsi"):
            out[k][d] = day[k]
        out["ndvi_bayes"][d] = surface.bayes(day["ndvi_true"], flat["_cloud"][d])
    obs = surface.observe(out["ndvi_true"], flat["_cloud"], out["snow_mm"], z_obs)
    block = {k: w[k] for k in ATMOSPHERE_VARS}
    block["_theta1_true"] = out["theta1"]  # (n, n_cells): for the realism check, never written
    grid = nlat * nlon
    for k in range(4):
        block[f"swvl{k + 1}"] = _on_land(out["swvl"][:, :, k], cells, grid, 0.0).reshape(n, nlat, nlon)
    block["sd"] = _on_land(out["sd"], cells, grid, 0.0).reshape(n, nlat, nlon)
    rh2m = atmosphere.near_surface_humidity(w["_rh"], 0.25).reshape(n, -1)  # over the sea: the column's air
    rh2m[:, cells] = out["rh2m"]
    block["d2m"] = atmosphere.dew_point(w["t2m"], rh2m.reshape(n, nlat, nlon)).astype(np.float32)
    for name, values in (("ndvi", obs), ("ndvi_true", out["ndvi_true"]), ("ndvi_bayes", out["ndvi_bayes"]),
                         ("rootzone_availability", out["stress"]), ("gsi", out["gsi"])):
        block[name] = _on_land(values, cells, grid).reshape(n, nlat, nlon)
    return block


def simulate_years_v2(cfg: DataConfig) -> Iterator[tuple[int, pd.DatetimeIndex, dict[str, np.ndarray]]]:
    """World v2: yield ``(year, days, {var: (ndays, nlat, nlon) float32})`` for every year of
    the data after one discarded spin-up year (BLAS pinned to one thread)."""
    with one_blas_thread():
        static = static_maps(cfg.nlat, cfg.nlon)
        climate = weather.Climate(static)
        rng_w, rng_obs, rng_err = (np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(3))
        atmos = atmosphere.Atmosphere(climate, rng_w)
        surface = land.LayeredLand(static, climate.daylength)
        errors = land.ReanalysisError(surface.orog, rng_err)
    y0, y1 = cfg.all_years
    extra = set(range(cfg.extra_years[0], cfg.extra_years[1] + 1)) if cfg.extra_years else set()
    for year in range(y0 - 1, y1 + 1):
        days = days_of((year, year))
        with one_blas_thread():
            z = rng_obs.standard_normal((3, len(days), surface.cells.size), dtype=np.float32)
            block = _block_v2(atmos, surface, errors, days.day_of_year.values, z)
        if year < y0:
            continue
        if year in extra:
            block["ndvi"][:] = np.nan
        yield year, days, block
