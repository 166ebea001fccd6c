"""Figures of the data chapter (book/generated/02_data.ipynb): static maps, a weather sequence,
NDVI maps and seasonal cycles.
"""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from .base import global_map, message_figure, setup


def static_panels(static) -> plt.Figure:
    """2x2 maps of the static inputs: biome group (one colour per group, named in a legend),
    orography, NDVI annual max and min.

    Args:
        static: :func:`ecodistill.data.static_maps` output (or a dataset holding its fields).
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap

    setup()
    lat, lon, land = static["lat"].values, static["lon"].values, static["land_mask"].values
    fig, axes = plt.subplots(2, 2, figsize=(10, 5.6), constrained_layout=True)
    names = json.loads(static.attrs["biome_names"])
    biome = np.where(land, static["biome"].values, np.nan)
    present = [i for i in range(1, len(names)) if (static["biome"].values[land] == i).any()]
    colours = [plt.get_cmap("tab20")(k % 20) for k in range(len(present))]
    index = np.full_like(biome, np.nan)  # biome number -> position in the legend
    for k, i in enumerate(present):
        index[biome == i] = k
    ndvi = {"cmap": "YlGn", "vmin": 0, "vmax": 0.9}
    categorical = {"cmap": ListedColormap(colours or ["0.5"]),
                   "norm": BoundaryNorm(np.arange(len(present) + 1) - 0.5, max(len(present), 1))}
    panels = [(index, "biome group", categorical),
              (static["orography"].values, "orography (m)",
               {"cmap": "terrain", "vmin": -500, "vmax": 5000}),
              (static["ndvi_max"].values, "NDVI annual maximum", ndvi),
              (static["ndvi_min"].values, "NDVI annual minimum", ndvi)]
    for ax, (field, label, kw) in zip(axes.ravel(), panels):
        mesh = global_map(ax, field, lat, lon, land, **kw)
        ax.set_title(label)
        if label == "biome group":
            handles = [Patch(color=c, label=names[i].replace("_", " ")) for c, i in zip(colours, present)]
            ax.legend(handles=handles, fontsize=6.5, ncol=1, loc="center left",
                      bbox_to_anchor=(1.02, 0.5), frameon=False)
        else:
            fig.colorbar(mesh, ax=ax, shrink=0.8)
    return fig


def weather_sequence(ds, t0: int, n: int = 4) -> plt.Figure:
    """``n`` consecutive days of the mean-sea-level pressure anomaly (colours; departure from
    the 31-day mean around them, so moving systems stand out) and the 10-m wind (arrows).

    Args:
        ds: a schema dataset (``msl``, ``u10``, ``v10``, ``land_mask``).
        t0: index of the first day (at least 15 days from either end of the record).
    """
    setup()
    lat, lon, land = ds["lat"].values, ds["lon"].values, ds["land_mask"].values
    window = ds["msl"].isel(time=slice(max(0, t0 - 15), t0 + 16)).values / 100.0
    msl = ds["msl"].isel(time=slice(t0, t0 + n)).values / 100.0 - window.mean(0)
    u, v = (ds[k].isel(time=slice(t0, t0 + n)).values for k in ("u10", "v10"))
    step = max(1, len(lon) // 32)
    ncol = 2 if n > 1 else 1
    fig, axes = plt.subplots(-(-n // ncol), ncol, figsize=(5.2 * ncol, 2.6 * -(-n // ncol)),
                             constrained_layout=True, squeeze=False)
    lim = np.percentile(np.abs(msl), 98)
    for i, ax in enumerate(axes.ravel()[:n]):
        mesh = global_map(ax, msl[i], lat, lon, land, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.quiver(lon[::step], lat[::step], u[i, ::step, ::step], v[i, ::step, ::step], scale=250,
                  width=0.003)
        ax.set_title(str(ds["time"].values[t0 + i])[:10])
    fig.colorbar(mesh, ax=axes, shrink=0.6, label="msl anomaly (hPa)")
    return fig


def ndvi_panels(fields: dict, lat: np.ndarray, lon: np.ndarray, land: np.ndarray) -> plt.Figure:
    """One NDVI map per entry of ``fields`` (title -> ``(h, w)``; NaN = gap, shown blank)."""
    setup()
    fig, axes = plt.subplots(1, len(fields), figsize=(5 * len(fields), 2.8),
                             constrained_layout=True)
    for ax, (title, field) in zip(np.atleast_1d(axes), fields.items()):
        mesh = global_map(ax, field, lat, lon, land, cmap="YlGn", vmin=0, vmax=0.9)
        ax.set_title(title)
    fig.colorbar(mesh, ax=axes, shrink=0.8, label="NDVI")
    return fig


def seasonal_cycles(curves, ncols: int = 4) -> plt.Figure:
    """Mean seasonal NDVI per biome: one panel per biome, one line per source.

    Args:
        curves: DataFrame with columns ``biome, doy, source, ndvi`` (e.g. truth, observed,
            climatology).
    """
    setup()
    biomes = list(dict.fromkeys(curves["biome"]))
    nrows = -(-len(biomes) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.0 * nrows), sharex=True,
                             constrained_layout=True, squeeze=False)
    for ax, biome in zip(axes.ravel(), biomes):
        for source, part in curves[curves["biome"] == biome].groupby("source", sort=False):
            ax.plot(part["doy"], part["ndvi"], lw=1.2, label=source)
        ax.set_title(biome.replace("_", " "), fontsize=8)
    for ax in axes.ravel()[len(biomes):]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("day of year")
    return fig



def land_cell(ds, band: tuple[float, float] = (25.0, 60.0)) -> tuple[int, int]:
    """``(i, j)`` of the land cell within the latitude ``band`` (either hemisphere) whose deepest
    soil layer (``swvl4``) varies most from year to year: where the land state's memory shows."""
    land = ds["land_mask"].values
    lat = np.abs(ds["lat"].values)[:, None] * np.ones_like(land, dtype=float)
    annual = ds["swvl4"].groupby("time.year").mean().std("year").values
    spread = np.where(land & (lat >= band[0]) & (lat <= band[1]) & np.isfinite(annual), annual, -np.inf)
    i, j = np.unravel_index(int(np.argmax(spread)), spread.shape)
    return int(i), int(j)


def land_state(ds, day: int, years: int = 5, cell: tuple[int, int] | None = None) -> plt.Figure:
    """The land state as models see it (ERA5 names, world v2): left, the daily anomalies of the
    top (``swvl1``, 0-7 cm) and deepest (``swvl4``, 100-289 cm) soil layers at one land cell over
    the last ``years`` years (the per-cell daily climatology removed); right, the snow depth
    ``sd`` (m of water equivalent) on day ``day`` (an index of ``ds.time``).

    Args:
        ds: a schema dataset of world v2 (``swvl1``, ``swvl4``, ``sd``, ``land_mask``).
        cell: ``(i, j)`` of the cell; default :func:`land_cell`.
    """
    from ..data.realism import daily_anomalies

    setup()
    if "swvl4" not in ds:
        return message_figure("this dataset has no layered land state (world v1 gives models only swvl1)")
    i, j = land_cell(ds) if cell is None else cell
    doy = ds["time"].dt.dayofyear.values
    n = min(ds.sizes["time"], 365 * years)
    fig, (ax, ax_map) = plt.subplots(1, 2, figsize=(11, 3.0), constrained_layout=True,
                                     gridspec_kw={"width_ratios": [1.1, 1]})
    times = ds["time"].values[-n:]
    for var, colour, label in (("swvl1", "#4c9be8", "swvl1 (0–7 cm)"), ("swvl4", "#7a4b16", "swvl4 (100–289 cm)")):
        anomaly = daily_anomalies(ds[var].values[:, i, j], doy)[-n:]
        ax.plot(times, anomaly, lw=0.9 if var == "swvl1" else 1.6, color=colour, label=label)
    ax.axhline(0, color="0.4", lw=0.6)
    ax.set_ylabel("anomaly (m³ m⁻³)")
    lat, lon = float(ds["lat"].values[i]), (float(ds["lon"].values[j]) + 180.0) % 360.0 - 180.0
    ax.set_title(f"soil water anomalies at {abs(lat):.0f}° {'N' if lat >= 0 else 'S'}, "
                 f"{abs(lon):.0f}° {'E' if lon >= 0 else 'W'}")
    ax.legend(loc="upper left", fontsize=8, ncol=2)
    snow = ds["sd"].isel(time=day).values
    mesh = global_map(ax_map, np.where(snow > 0, snow, np.nan), ds["lat"].values, ds["lon"].values,
                      ds["land_mask"].values, cmap="Blues", vmin=0, vmax=max(float(np.nanpercentile(snow, 99)), 1e-3))
    ax_map.plot(float(ds["lon"].values[j]), lat, marker="o", mfc="none", mec="crimson", ms=7)
    ax_map.set_title(f"snow depth sd, {str(ds['time'].values[day])[:10]}")
    fig.colorbar(mesh, ax=ax_map, shrink=0.85, label="m of water equivalent")
    return fig
