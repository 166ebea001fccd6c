"""Figures of the headroom ladder and the uses (book/generated/04_results.ipynb): skill against
size at every history with the teacher, LightGBM and the two reference lines, and the nowcast
against persistence at each latency."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .base import FAMILY_MARKERS, log_x, missing_text, no_data, setup

#: One colour per history setting, the same in every figure of the chapter.
HISTORY_COLORS = {"today": "C2", "short": "C4", "long": "C0", "recurrent": "C3", "stack": "C5", "sequence": "C6"}


def ladder_plot(ax: plt.Axes, table) -> None:
    """Test anomaly R² (mean ± seed std) against parameters (log) for every history: the scratch
    students as a line, the teacher as a star at its size, LightGBM as a short dotted line at the
    right edge; the ceiling (noise-free NDVI) as a solid line and persistence at one day (the
    nowcast's reference) as a dashed one, from ``table.attrs["refs"]``.

    Args:
        table: :func:`ecodistill.report.ladder.ladder_table`.
    """
    setup()
    if table.empty:
        no_data(ax, missing_text(table))
        return
    refs = table.attrs.get("refs", {})
    for history, part in table.groupby("history", sort=False):
        colour = HISTORY_COLORS.get(history, "0.5")
        students = part[part["role"] == "scratch"].sort_values("n_params")
        ax.errorbar(students["n_params"], students["r2_anom_mean"], yerr=students["r2_anom_std"].fillna(0),
                    color=colour, marker="o", capsize=3, lw=1.4, label=f"{history}: scratch students")
        for _, s in students.iterrows():
            ax.plot(s["n_params"], s["r2_anom_mean"], marker=FAMILY_MARKERS.get(s["family"], "o"), color=colour,
                    mfc="white", ls="none")
        teacher = part[part["role"] == "teacher"]
        if len(teacher):
            ax.plot(teacher["n_params"], teacher["r2_anom_mean"], marker="*", ms=13, color=colour, ls="none",
                    mec="black", mew=0.6, label=f"{history}: teacher (one run)")
        trees = part[part["role"] == "LightGBM"]
        for _, t in trees.iterrows():
            ax.axhline(t["r2_anom_mean"], xmin=0.9, xmax=1.0, color=colour, ls=":", lw=2)
    if len(table[table["role"] == "LightGBM"]):
        ax.plot([], [], color="0.3", ls=":", lw=2, label="LightGBM (at the right edge, colour = history)")
    log_x(ax)
    for key, style, label in (("ceiling", {"color": "black", "lw": 1.2}, "ceiling: noise-free NDVI"),
                              ("persistence", {"color": "0.45", "ls": "--", "lw": 1.0},
                               "persistence, 1 day (nowcast reference)")):
        value = refs.get(key, np.nan)
        if np.isfinite(value):
            ax.axhline(value, **style, label=f"{label} ({value:.3f})")
    ax.set_xlabel("parameters (log)")
    ax.set_ylabel("test anomaly R²")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))


def nowcast_plot(ax: plt.Axes, table) -> None:
    """Test anomaly R² of the model with an NDVI input (mean ± seed std) beside persistence of the
    same observation, at each latency.

    Args:
        table: :func:`ecodistill.report.cases.nowcast_table`.
    """
    setup()
    if table.empty:
        no_data(ax, missing_text(table))
        return
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["persistence"], width=0.4, color="0.6", label="persistence")
    ax.bar(x + 0.2, table["model_mean"], width=0.4, yerr=table["model_std"].fillna(0), capsize=3, color="C0",
           label="model with the NDVI input (scratch)")
    ax.set_xticks(x, [f"L = {int(v)} d" for v in table["latency"]])
    ax.axhline(0, color="0.3", lw=0.6)
    ax.set_ylabel("test anomaly R²")
    ax.legend(fontsize=7, loc="lower left")
