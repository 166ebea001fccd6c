"""Figures of the FLUXNET chapter (book/generated/06_fluxnet.ipynb): the site map, labelled
months per year and skill against student size.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .base import log_x, setup


def site_map(ax: plt.Axes, lon: np.ndarray, lat: np.ndarray, groups: np.ndarray,
             land: np.ndarray | None = None, land_lat: np.ndarray | None = None,
             land_lon: np.ndarray | None = None) -> None:
    """Sites on a plate-carree lat/lon plane, coloured by group (e.g. IGBP class).

    Args:
        lon, lat, groups: (n,) per site. land, land_lat, land_lon: optional (nlat, nlon) mask and
            its (nlat,), (nlon,) axes, drawn as a coastline (no offline coastline otherwise).
    """
    setup()
    if land is not None:
        ax.contour(land_lon, land_lat, land.astype(float), levels=[0.5], colors="0.4",
                   linewidths=0.6)
    cmap = plt.get_cmap("tab20")
    for i, g in enumerate(sorted(set(groups))):
        sel = groups == g
        ax.scatter(lon[sel], lat[sel], s=14, color=cmap(i % 20), label=f"{g} ({sel.sum()})",
                   zorder=3)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-60, 85)
    ax.set_aspect("equal")
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.legend(ncol=6, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18))


def coverage_bars(ax: plt.Axes, table) -> None:
    """Grouped bars of labelled counts: ``table`` index = year, one column per target."""
    setup()
    width = 0.8 / max(len(table.columns), 1)
    for i, col in enumerate(table.columns):
        offset = (i - (len(table.columns) - 1) / 2) * width
        ax.bar(np.asarray(table.index) + offset, table[col], width, label=col)
    ax.set_xlabel("year")
    ax.set_ylabel("labelled site-months")
    ax.legend()


def skill_vs_size(ax: plt.Axes, summary, teacher: float | None = None,
                  ylabel: str = "test R²") -> None:
    """Mean ± std (error bars) of a skill against parameters (log x), one line per ``method``.

    Args:
        summary: frame with columns method, n_params, mean, std (e.g. ``stats.summarise``).
        teacher: the teacher's mean skill, drawn as a dashed line.
    """
    setup()
    by_method = summary.sort_values("n_params").groupby("method", sort=False)
    for i, (method, rows) in enumerate(by_method):
        ax.errorbar(rows["n_params"] * (1 + 0.04 * (i - 1)), rows["mean"],
                    yerr=rows["std"].fillna(0), marker="o", capsize=3, label=method)
    if teacher is not None:
        ax.axhline(teacher, ls="--", color="0.3", lw=1, label="teacher")
    log_x(ax)
    ax.set_xlabel("student parameters (log)")
    ax.set_ylabel(ylabel)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()

