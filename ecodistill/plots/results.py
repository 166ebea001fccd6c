"""Figures of the comparison (book/generated/04_results.ipynb; the error maps also chapters 2
and 3): scaling curves, the alpha sweep, the loss trials, the label budgets, biomes and maps.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .base import FAMILY_MARKERS, INIT_COLORS, global_map, log_x, message_figure, missing_text, no_data, setup


def scaling_curves(table, metric: str = "r2_anom", method: str | None = None) -> plt.Figure:
    """Test skill (mean ± seed std) vs parameters and vs FLOPs per map (log x), one line per
    family x {scratch, distilled}; the pre-trained teacher as a dashed horizontal line.

    Args:
        table: :func:`ecodistill.report.student_table` (columns ``student, family, init,
            method, n_params, flops_per_map, <metric>_mean, <metric>_std``); without student
            rows the figure holds its ``attrs["missing"]``.
        method: keep only this distilled method (the validated one); None keeps all.
    """
    setup()
    students = table[table["init"].isin(["scratch", "distilled"])
                     & ~table["student"].astype(str).str.startswith("teacher")]
    if method is not None:
        students = students[(students["init"] == "scratch") | (students["method"] == method)]
    if students.empty:
        return message_figure(missing_text(table))
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.4), sharey=True)
    teacher = table[table["student"] == "teacher"]
    for ax, x, label in zip(axes, ["n_params", "flops_per_map"], ["parameters", "FLOPs per map"]):
        for (family, init), rows in students.sort_values(x).groupby(["family", "init"]):
            ax.errorbar(rows[x], rows[f"{metric}_mean"], yerr=rows[f"{metric}_std"].fillna(0),
                        capsize=3, marker=FAMILY_MARKERS.get(family, "o"),
                        color=INIT_COLORS[init], label=f"{family}, {init}",
                        mfc="white" if init == "scratch" else INIT_COLORS[init])
        for _, t in teacher.iterrows():
            ax.axhline(t[f"{metric}_mean"], ls="--", color=INIT_COLORS["teacher"], lw=1,
                       label="teacher")
        log_x(ax)
        ax.set_xlabel(f"{label} (log)")
    axes[0].set_ylabel(f"test {metric.replace('_anom', ' (anomalies)').replace('r2', 'R²')}")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def alpha_sweep_plot(ax: plt.Axes, sweep, selected: float | None = None) -> None:
    """Validation RMSE vs alpha at the distilled arm's tuned loss and learning rate, against the
    scratch arm at its own tuned loss and learning rate (dotted line): like with like.

    Args:
        sweep: :func:`ecodistill.report.alpha_sweep` (``init, method, alpha, lr_scale,
            val_rmse``; the scratch row is the reference).
        selected: the alpha validation chose (drawn as a filled marker).
    """
    setup()
    if sweep.empty:
        no_data(ax, missing_text(sweep))
        return
    distilled = sweep[sweep["init"] == "distilled"].sort_values("alpha")
    if len(distilled):
        method = str(distilled["method"].iloc[0]).replace("kd-", "").replace("-offline", "")
        lr = distilled["lr_scale"].iloc[0]
        ax.plot(distilled["alpha"], distilled["val_rmse"], marker="o", mfc="white",
                color=INIT_COLORS["distilled"], label=f"distilled ({method} loss, lr x{lr:g})")
        if selected is not None and np.isclose(distilled["alpha"], selected).any():
            pick = distilled[np.isclose(distilled["alpha"], selected)]
            ax.plot(pick["alpha"], pick["val_rmse"], marker="o", ls="", ms=7,
                    color=INIT_COLORS["distilled"], label=f"selected alpha = {selected:g}")
    for _, row in sweep[sweep["init"] == "scratch"].iterrows():
        ax.axhline(row["val_rmse"], ls=":", color=INIT_COLORS["scratch"],
                   label=f"{row['method']}, lr x{row['lr_scale']:g} (tuned)")
    ax.set_xlabel("alpha (weight of the teacher term; 0 = observations only)")
    ax.set_ylabel("validation RMSE")
    ax.legend(fontsize=7)


def loss_trials_plot(ax: plt.Axes, trials) -> None:
    """Validation RMSE of every loss tried by each arm at the profile's learning rate (a dot
    plot: no bar baseline to truncate); the chosen loss of each arm filled.

    Args:
        trials: :func:`ecodistill.report.loss_trials` (``arm, loss, alpha, val_rmse, chosen``).
    """
    setup()
    if trials.empty:
        no_data(ax, missing_text(trials))
        return
    rows = trials.sort_values(["arm", "val_rmse"], ascending=[True, False]).reset_index(drop=True)
    labels = [f"{r.arm}: {r.loss}" + ("" if r.arm == "scratch" else f", alpha {r.alpha:g}")
              for r in rows.itertuples()]
    y = np.arange(len(rows))
    excluded = rows["excluded"].astype(bool) if "excluded" in rows else np.zeros(len(rows), bool)
    for arm in rows["arm"].unique():
        mine = rows["arm"] == arm
        colour = INIT_COLORS.get(arm, "0.4")
        ax.hlines(y[mine], rows.loc[mine, "val_rmse"].min(), rows.loc[mine, "val_rmse"],
                  color=colour, lw=0.8, alpha=0.5)
        for chosen, face in ((False, "white"), (True, colour)):
            pick = mine & (rows["chosen"] == chosen) & ~excluded
            ax.plot(rows.loc[pick, "val_rmse"], y[pick], "o", color=colour, mfc=face, ls="",
                    label=f"{arm}{' (chosen)' if chosen else ''}")
    if excluded.any():
        ax.plot(rows.loc[excluded, "val_rmse"], y[excluded], "D", color="0.45", mfc="white", ls="",
                label="not admitted to the choice\n(needs the live teacher)")
    ax.set_yticks(y, labels, fontsize=7)
    span = rows["val_rmse"].max() - rows["val_rmse"].min()
    ax.set_xlim(rows["val_rmse"].min() - 0.1 * span - 1e-9, rows["val_rmse"].max() + 0.1 * span + 1e-9)
    ax.set_xlabel("validation RMSE (seed 0, base learning rate)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


#: Arms of the label-budget control and how they are drawn.
BUDGET_STYLE = {"scratch": (INIT_COLORS["scratch"], "o", "white"),
                "distilled, all-label teacher": (INIT_COLORS["distilled"], "o", None),
                "distilled, same-label teacher": (INIT_COLORS["distilled"], "s", "white")}


def label_budget_plot(ax: plt.Axes, ctrl, all_years: int) -> None:
    """Test RMSE (mean ± seed std) vs labelled training years: scratch, distilled from the
    teacher of all labels, and distilled from a teacher adapted on the same restricted labels.

    Args:
        ctrl: :func:`ecodistill.report.controls` (rows with ``control == "budget"``).
        all_years: the number of training years, where "all" is drawn.
    """
    setup()
    rows = ctrl[ctrl["control"] == "budget"]
    if rows.empty:
        no_data(ax, missing_text(ctrl) if ctrl.empty else "no label-budget runs in these results")
        return
    years = rows["label_years"].astype(float).fillna(all_years)
    rows = rows.assign(years=years).sort_values("years")
    for k, (arm, r) in enumerate(rows.groupby("arm", sort=False)):
        colour, marker, face = BUDGET_STYLE.get(arm, ("0.4", "^", None))
        ax.errorbar(r["years"] * (1 + 0.03 * (k - 1)), r["rmse_mean"], yerr=r["rmse_std"].fillna(0),
                    marker=marker, capsize=3, color=colour, mfc=face or colour, label=arm)
    log_x(ax)
    ax.set_xlabel(f"training years with NDVI labels (log; {all_years} = all)")
    ax.set_ylabel("test RMSE")
    ax.legend(fontsize=7)


def biome_panels(ax: plt.Axes, biomes, xlim: tuple[float, float] = (-0.5, 1.0)) -> None:
    """Horizontal bars of test anomaly R² (mean ± seed std) per biome: teacher, scratch and
    distilled. A model with one run (the adapted teacher) gets no error bar.

    Means below ``xlim[0]`` are clipped there and marked "<" so one poor biome does not squash
    the rest.

    Args:
        biomes: :func:`ecodistill.report.biome_table` (``biome, model, r2_anom_mean,
            r2_anom_std``).
    """
    setup()
    if biomes.empty:
        no_data(ax, missing_text(biomes))
        return
    names = sorted(biomes["biome"].unique())
    models = [m for m in ("teacher", "scratch", "distilled") if m in set(biomes["model"])]
    height = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        rows = biomes[biomes["model"] == model].set_index("biome").reindex(names)
        y = np.arange(len(names)) + (i - (len(models) - 1) / 2) * height
        mean = rows["r2_anom_mean"].to_numpy(float)
        std = rows["r2_anom_std"].to_numpy(float)  # NaN for one run: no bar to draw
        ax.barh(y, np.clip(mean, *xlim) - xlim[0], height, left=xlim[0], color=INIT_COLORS[model],
                xerr=std if np.isfinite(std).any() else None, capsize=2,
                label=model if np.isfinite(std).any() else f"{model} (one run)")
        for yy in y[mean < xlim[0]]:
            ax.text(xlim[0], yy, "<", va="center", ha="right", fontsize=6)
    ax.set_yticks(np.arange(len(names)), names)
    ax.set_xlim(*xlim)
    ax.set_xlabel("test anomaly R² (students: mean ± std over seeds)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))


def error_maps(maps: dict, land: np.ndarray | None = None,
               missing: str = "no error maps stored yet",
               difference: tuple[str, str] | None = None) -> plt.Figure:
    """Test RMSE maps side by side on one colour scale (e.g. teacher, scratch, distilled), and
    optionally the difference of two of them on a diverging scale.

    Args:
        maps: label -> ``(h, w)`` RMSE over the test days per cell (NaN off land), as stored
            in ``results/<profile>/maps/<run_id>.npz``.
        land: optional ``(h, w)`` land mask for the coastline (default: where any map is finite).
        missing: what the figure says when ``maps`` is empty (which command makes them).
        difference: ``(a, b)`` labels of ``maps``: adds a panel ``a - b`` (blue: ``a`` has
            the lower error), where the error maps look alike.
    """
    from ..data.regrid import grid_centres

    setup()
    if not maps:
        return message_figure(missing)
    fields = list(maps.values())
    lat, lon = grid_centres(*fields[0].shape)
    land = np.isfinite(fields[0]) if land is None else land
    vmax = float(np.nanpercentile(np.stack(fields), 99))
    diff = None
    if difference and all(k in maps for k in difference):
        diff = maps[difference[0]] - maps[difference[1]]
    n = len(maps)
    fig = plt.figure(figsize=(3.3 * n + 0.9, 2.3 * (1 + (diff is not None))), layout="constrained")
    top, bottom = fig.subfigures(2, 1) if diff is not None else (fig, None)
    axes = np.atleast_1d(top.subplots(1, n))
    for i, (ax, (label, field)) in enumerate(zip(axes, maps.items())):
        mesh = global_map(ax, field, lat, lon, land, vmin=0.0, vmax=vmax, cmap="magma_r")
        ax.set_title(label, fontsize=9)  # a panel label; the caption comes from the cell metadata
        if i:
            ax.set_ylabel("")
    top.colorbar(mesh, ax=axes.tolist(), shrink=0.8, label="test RMSE (NDVI)")
    if diff is not None:
        below = np.atleast_1d(bottom.subplots(1, n))
        for ax in below[:-1]:
            ax.set_visible(False)
        lim = float(np.nanpercentile(np.abs(diff), 99)) or 1e-6
        mesh = global_map(below[-1], diff, lat, lon, land, vmin=-lim, vmax=lim, cmap="RdBu_r")
        below[-1].set_title(f"{difference[0]} − {difference[1]}", fontsize=9)
        bottom.colorbar(mesh, ax=below.tolist(), shrink=0.8, label="RMSE difference")
    return fig
