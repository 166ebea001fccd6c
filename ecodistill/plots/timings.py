"""Figures of the Raspberry Pi chapter (book/generated/05_pi_timings.ipynb): skill against
measured latency with its Pareto front.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .base import label_points, log_x, missing_text, no_data, setup


def pareto(ax: plt.Axes, table, x: str = "torch_fp32_ms", y: str = "test_r2",
           label: str = "model") -> None:
    """Skill vs latency (log x) per model; the Pareto front (faster *and* better) joined by a
    line; labels placed so that they do not overlap.

    Args:
        table: a frame with columns ``x`` (ms per map), ``y`` (skill; rows without it are
            listed under the axes as "no skill result", not drawn at an invented height) and
            ``label``; without timed rows, its ``attrs["missing"]`` is drawn instead.
    """
    setup()
    d = table.dropna(subset=[x]).sort_values(x) if x in table else table.iloc[0:0]
    have = d.dropna(subset=[y]) if y in d else d.iloc[0:0]
    if have.empty:
        no_data(ax, missing_text(table, "no timings yet") if d.empty
                else "no timed model has a skill result yet")
        return
    runtime = x.replace("_ms", "").replace("_", " ")
    ax.set_xlabel(f"measured latency per global map ({runtime}, ms, log)")
    teacher = have["kind"] == "teacher" if "kind" in have else np.zeros(len(have), bool)
    ax.scatter(have.loc[~teacher, x], have.loc[~teacher, y], s=25, zorder=3, label="students")
    if teacher.any():
        ax.scatter(have.loc[teacher, x], have.loc[teacher, y], s=120, marker="*", color="0.2",
                   zorder=3, label="teacher")
    front, best = [], -np.inf
    for i, r in have.iterrows():
        if r[y] > best:
            front.append(i)
            best = r[y]
    ax.set_ylabel({"test_r2": "test R² (global)", "test_r2_anom": "test anomaly R² (global)"}.get(y, y))
    log_x(ax)
    # the axis spans the unpruned models; a pruned model far below sits on the lower edge,
    # marked and labelled with its value, so it does not squash the differences that matter
    core = have[~have[label].astype(str).str.contains("-pruned")] if len(have) > 2 else have
    core = core if len(core) >= 2 else have
    span = max(core[y].max() - core[y].min(), 1e-3)
    low, high = core[y].min() - 0.6 * span, core[y].max() + 0.25 * span
    ax.set_ylim(low, high)
    below = have[y] < low
    shown_y = have[y].where(~below, low + 0.04 * (high - low))
    if below.any():
        ax.scatter(have.loc[below, x], shown_y[below], marker="v", s=40, color="0.45", zorder=4,
                   label="below the axis (value in label)")
    ax.plot(have.loc[front, x], shown_y[front], color="0.4", lw=1, zorder=2, label="Pareto front")
    names = [f"{n} ({v:.2f})".replace("-0", "−0") if b else str(n) for n, v, b in zip(have[label], have[y], below)]
    ax.figure.canvas.draw()
    label_points(ax, have[x], shown_y, names)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    missing = d[~d.index.isin(have.index)]
    if len(missing):
        names = ", ".join(str(m) for m in missing[label])
        ax.text(0.0, -0.28, f"timed, no skill result: {names}", transform=ax.transAxes, fontsize=7,
                color="0.4", va="top", wrap=True)
