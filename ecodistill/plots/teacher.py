"""Figures of the teacher chapter (book/generated/02_teacher.ipynb): training curves, skill per
group (biome, IGBP class) and the headroom check; :func:`loss_curves` also serves chapter 3.
"""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from .base import INIT_COLORS, log_x, message_figure, missing_text, no_data, setup


def group_skill(ax: plt.Axes, table, xlim: tuple[float, float] = (-0.5, 1.0)) -> None:
    """Horizontal grouped bars: rows of ``table`` are groups (e.g. IGBP), columns are models.

    Values below ``xlim[0]`` are clipped there (and marked with "<") so one bad class does
    not squash the rest.
    """
    setup()
    n = max(len(table.columns), 1)
    height = 0.8 / n
    y = np.arange(len(table.index))
    for i, col in enumerate(table.columns):
        vals = table[col].to_numpy(float)
        ax.barh(y + (i - (n - 1) / 2) * height, np.clip(vals, *xlim), height, label=col)
        for yy, v in zip(y + (i - (n - 1) / 2) * height, vals):
            if v < xlim[0]:
                ax.text(xlim[0], yy, "<", va="center", ha="right", fontsize=6)
    ax.set_yticks(y, table.index)
    ax.set_xlim(*xlim)
    ax.set_xlabel("test R²")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.12))


def headroom_plot(ax: plt.Axes, headroom) -> None:
    """Test anomaly R² (mean ± seed std) of scratch AFNO models vs parameters, teachers as stars.

    Args:
        headroom: :func:`ecodistill.report.headroom_table`.
    """
    setup()
    sizes = headroom[headroom["model"] == "headroom"].sort_values("n_params")
    if sizes.empty:
        no_data(ax, missing_text(headroom))
        return
    ax.errorbar(sizes["n_params"], sizes["r2_anom_mean"], yerr=sizes["r2_anom_std"].fillna(0),
                marker="o", capsize=3, color=INIT_COLORS["scratch"], label="AFNO from scratch")
    for _, t in headroom[headroom["model"] != "headroom"].iterrows():
        longer = "2x steps" in str(t["model"])  # the same size as the scratch teacher: another marker
        ax.scatter(t["n_params"], t["r2_anom_mean"], marker="X" if longer else "*", s=90 if longer else 120,
                   zorder=3, color="0.2" if t["init"] == "pretrained" else "0.6", label=t["model"])
    log_x(ax)
    ax.set_xlabel("parameters (log)")
    ax.set_ylabel("test R² (anomalies)")
    ax.legend()


def loss_curves(ax: plt.Axes, histories: dict, ylabel: str = "loss", log: bool = True,
                missing: str = "no training history yet") -> None:
    """Training (dashed, open markers) and validation (solid) loss per epoch, one colour per label.

    Args:
        histories: label -> training history (:attr:`ecodistill.training.loop.FitResult.history`: one
            dict per epoch with ``epoch`` (from 0), ``train_loss``, ``val_loss``); empty ones
            are skipped.
        missing: what the axes say when every history is empty (which command makes them).
    """
    setup()
    if not any(histories.values()):
        no_data(ax, missing)
        return
    for i, (label, history) in enumerate(histories.items()):
        if not history:
            continue
        epoch = [int(r["epoch"]) + 1 for r in history]
        ax.plot(epoch, [r["train_loss"] for r in history], ls="--", marker="o", mfc="white", ms=4,
                color=f"C{i}", label=f"{label}, training")
        val = np.array([r.get("val_loss", np.nan) for r in history], dtype=float)
        if np.isfinite(val).any():
            ax.plot(epoch, val, marker="o", ms=4, color=f"C{i}", label=f"{label}, validation")
    if log:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)


def teacher_curves(curves: dict, missing: str = "no teacher training curves yet") -> plt.Figure:
    """The teacher's training: pre-training on next-day weather (left) and NDVI training of the
    adapted and the from-scratch teacher (right), from ``teacher.json``'s ``curves``
    (``pretrain``, ``adapt``, ``scratch`` histories); ``missing`` alone without any."""
    setup()
    if not any(curves.values()):
        return message_figure(missing)
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.2))
    loss_curves(axes[0], {"pre-training": curves.get("pretrain", [])},
                ylabel="next-day weather MSE (standardised)")
    loss_curves(axes[1], {"adapted": curves.get("adapt", []),
                          "from scratch": curves.get("scratch", [])},
                ylabel="NDVI MSE over land")
    return fig


def biome_skill(tables: dict, floor: float = -4.0) -> plt.Figure:
    """Per-biome skill side by side, one panel per metric (e.g. R² and anomaly R²).

    Args:
        tables: x-axis label -> table for :func:`group_skill` (rows biomes, columns models).
        floor: lowest x-axis limit; each panel starts at -0.5 or its lowest value (rounded down
            to a half), whichever is lower, but not below ``floor`` (lower values are clipped
            there and marked "<").

    Without rows in any table, the figure holds the first table's ``attrs["missing"]``.
    """
    setup()
    n = max(len(t.index) for t in tables.values())
    if n == 0:
        return message_figure(missing_text(next(iter(tables.values()))))
    fig, axes = plt.subplots(1, len(tables), figsize=(4.0 * len(tables), 0.3 * n + 1.4),
                             sharey=True, squeeze=False)
    for i, (ax, (label, table)) in enumerate(zip(axes[0], tables.items())):
        low = float(np.nanmin(table.to_numpy(float)))
        group_skill(ax, table, xlim=(max(floor, min(-0.5, np.floor(2 * low) / 2)), 1.0))
        ax.set_xlabel(label)
        if i < len(tables) - 1:
            ax.get_legend().remove()
        if i:
            ax.tick_params(labelleft=False)
    return fig
