"""What every figure shares: rcParams (set once), the sentence drawn in place of a figure
whose results are missing, saving, a plate-carree map, a log axis and the colours of the arms.

Used by every chapter module of :mod:`ecodistill.plots`.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from ..utils import repo_root

FIGURE_DIR = repo_root() / "book" / "generated" / "figures"
_DONE = False


def setup() -> None:
    """Set the book's rcParams once (idempotent)."""
    global _DONE
    if _DONE:
        return
    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 130, "figure.figsize": (7.0, 3.6),
        "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
        "grid.alpha": 0.3, "font.size": 9.5, "axes.titlesize": 10, "legend.frameon": False,
        "image.cmap": "viridis",
    })
    _DONE = True


def missing_text(table, default: str = "no results yet") -> str:
    """The sentence a table of :mod:`ecodistill.report` carries for when it is empty."""
    return getattr(table, "attrs", {}).get("missing", default)


def no_data(ax: plt.Axes, text: str) -> None:
    """Draw ``text`` (what is missing and which command makes it) in place of a plot; a
    figure holding only these axes shrinks to one line's height."""
    setup()
    if len(ax.figure.axes) == 1:
        ax.figure.set_size_inches(ax.figure.get_figwidth(), 1.0)
    ax.set_axis_off()
    wrapped = textwrap.fill(text, 70, break_long_words=False, break_on_hyphens=False)
    ax.text(0.5, 0.5, wrapped, ha="center", va="center", fontsize=9, color="0.35",
            transform=ax.transAxes)


def message_figure(text: str, width: float = 6.5) -> plt.Figure:
    """A small figure holding only ``text``: what a figure helper returns without results."""
    setup()
    fig, ax = plt.subplots(figsize=(width, 1.0))
    no_data(ax, text)
    return fig


def savefig(fig: plt.Figure, name: str) -> Path:
    """Save ``fig`` as ``book/generated/figures/<name>.png`` and return the path."""
    FIGURE_DIR.mkdir(parents=True, exist_ok=True)
    path = FIGURE_DIR / f"{name}.png"
    fig.savefig(path, bbox_inches="tight")
    return path


def global_map(ax: plt.Axes, field: np.ndarray, lat: np.ndarray, lon: np.ndarray,
               land: np.ndarray | None = None, **kwargs) -> matplotlib.collections.QuadMesh:
    """Draw a (lat, lon) field on a plate-carree axis with a coastline from the land mask.

    Args:
        field: (nlat, nlon) values; NaN cells are left blank.
        lat, lon: (nlat,), (nlon,) cell centres in degrees (lon in -180..180 or 0..360).
        land: optional (nlat, nlon) boolean land mask whose edge is drawn as the coastline.
    """
    setup()
    mesh = ax.pcolormesh(lon, lat, field, shading="nearest", **kwargs)
    if land is not None:
        ax.contour(lon, lat, land.astype(float), levels=[0.5], colors="0.25", linewidths=0.5)
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_aspect("equal")
    ax.grid(False)
    return mesh


#: One colour per arm in every figure (teacher-free controls share the scratch colour family).
INIT_COLORS = {"scratch": "C0", "distilled": "C1", "teacher": "0.2"}
FAMILY_MARKERS = {"afno": "o", "unet": "s", "cnn": "^", "mlp": "D"}


def tick_label(x: float) -> str:
    """A tick value for people, in the same style as the tables: ``500``, ``2 k``, ``10 M``."""
    for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= scale:
            return f"{x / scale:g}{suffix}"
    return f"{x:g}"


def log_x(ax: plt.Axes) -> None:
    """Log x axis (call after plotting) labelled at decades and, over less than two decades,
    also at 2 and 5 times them, every label in one style (:func:`tick_label`: ``2 k``,
    ``10 M``), never a mix of ``2e0`` and ``10⁰``."""
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()

    def major(x: float, _pos) -> str:
        return tick_label(x)

    def minor(x: float, _pos) -> str:
        mantissa = x / 10 ** np.floor(np.log10(x))
        return tick_label(x) if hi < 100 * lo and round(mantissa) in (2, 5) else ""

    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(major))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(minor))


#: Offsets (points) and alignments tried, in order, for a point's label.
_LABEL_SPOTS = [((4, 4), "left", "bottom"), ((4, -4), "left", "top"), ((-4, 4), "right", "bottom"),
                ((-4, -4), "right", "top"), ((0, 9), "center", "bottom"), ((0, -9), "center", "top"),
                ((10, 0), "left", "center"), ((-10, 0), "right", "center")]


def label_points(ax: plt.Axes, xs, ys, labels, fontsize: float = 7) -> None:
    """Annotate points without overlapping labels: each label takes the first of a few spots
    around its point whose box overlaps no label placed before it (the last spot otherwise)."""
    renderer = ax.figure.canvas.get_renderer()
    placed = []
    for x, y, label in zip(xs, ys, labels):
        for k, (offset, ha, va) in enumerate(_LABEL_SPOTS):
            text = ax.annotate(str(label), (x, y), xytext=offset, textcoords="offset points",
                               ha=ha, va=va, fontsize=fontsize)
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(other) for other in placed) or k == len(_LABEL_SPOTS) - 1:
                placed.append(box)
                break
            text.remove()
