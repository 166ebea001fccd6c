"""Every figure of the book, drawn from result files or prepared arrays.

rcParams are set once here (:func:`setup`); notebooks call these functions and
caption figures through cell metadata, not titles. Figures a chapter references
with ``{figure}`` are saved under ``book/generated/figures/`` by :func:`savefig`.

Every chapter figure draws something when its results are missing: the sentence that says
which command makes them (a table's ``attrs["missing"]``, see :mod:`ecodistill.report`, or
the ``missing`` argument), in place of the plot, so notebook cells need no branch.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from .utils import repo_root

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


def pareto(ax: plt.Axes, table, x: str = "torch_fp32_ms", y: str = "test_r2",
           label: str = "model") -> None:
    """Skill vs latency (log x) per model; the Pareto front (faster *and* better) joined by a line.

    Args:
        table: a frame with columns ``x`` (ms per map), ``y`` (skill; NaN rows are drawn at
            the bottom as "skill not yet available") and ``label``; without timed rows, its
            ``attrs["missing"]`` is drawn instead.
    """
    setup()
    d = table.dropna(subset=[x]).sort_values(x) if x in table else table.iloc[0:0]
    if d.empty:
        no_data(ax, missing_text(table, "no timings yet"))
        return
    have = d.dropna(subset=[y])
    ax.set_xscale("log")
    runtime = x.replace("_ms", "").replace("_", " ")
    ax.set_xlabel(f"measured latency per global map ({runtime}, ms, log)")
    if len(have):
        ax.scatter(have[x], have[y], s=25, zorder=3)
        front, best = [], -np.inf
        for _, r in have.iterrows():
            if r[y] > best:
                front.append(r)
                best = r[y]
        ax.plot([r[x] for r in front], [r[y] for r in front], color="0.4", lw=1, zorder=2)
        for _, r in have.iterrows():
            ax.annotate(r[label], (r[x], r[y]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.set_ylabel("test R² (global)")
    missing = d[d[y].isna()] if y in d else d
    if len(missing):
        base = ax.get_ylim()[0] if len(have) else 0.0
        ax.scatter(missing[x], [base] * len(missing), marker="x", color="0.5", zorder=3,
                   label="skill not yet available")
        for _, r in missing.iterrows():
            ax.annotate(r[label], (r[x], base), fontsize=7, rotation=45, xytext=(2, 4),
                        textcoords="offset points")
        ax.legend(loc="best")
        if not len(have):
            ax.set_yticks([])
            ax.set_ylabel("test R² (not yet available)")


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
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels collide
    ax.set_xlabel("student parameters (log)")
    ax.set_ylabel(ylabel)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


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


# ---------------------------------------------------------------- distilled vs scratch (chapter 04)
INIT_COLORS = {"scratch": "C0", "distilled": "C1", "teacher": "0.2"}
FAMILY_MARKERS = {"afno": "o", "unet": "s", "cnn": "^", "mlp": "D"}


def _log_x(ax: plt.Axes) -> None:
    """Log x axis (call after plotting) labelled at decades and, over less than two decades,
    also at 2 and 5 times them; matplotlib's default minor labels collide over short ranges."""
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()

    def minor(x: float, _pos) -> str:
        mantissa = x / 10 ** np.floor(np.log10(x))
        return f"{x:.0e}".replace("e+0", "e") if hi < 100 * lo and round(mantissa) in (2, 5) else ""

    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(minor))


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
        _log_x(ax)
        ax.set_xlabel(f"{label} (log)")
    axes[0].set_ylabel(f"test {metric.replace('_anom', ' (anomalies)').replace('r2', 'R²')}")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def alpha_sweep_plot(ax: plt.Axes, sweep) -> None:
    """Validation RMSE vs alpha (MSE output loss), the best scratch trial as a dotted line.

    Args:
        sweep: :func:`ecodistill.report.alpha_sweep` (``init, alpha, val_rmse``).
    """
    setup()
    if sweep.empty:
        no_data(ax, missing_text(sweep))
        return
    distilled = sweep[sweep["init"] == "distilled"].sort_values("alpha")
    ax.plot(distilled["alpha"], distilled["val_rmse"], marker="o", color=INIT_COLORS["distilled"],
            label="distilled (MSE loss)")
    scratch = sweep[sweep["init"] == "scratch"]
    if len(scratch):
        ax.axhline(scratch["val_rmse"].min(), ls=":", color=INIT_COLORS["scratch"],
                   label=f"scratch, best of {len(scratch)} learning rates")
    ax.set_xlabel("alpha (weight of the teacher term)")
    ax.set_ylabel("validation RMSE")
    ax.legend()


def loss_ablation_plot(ax: plt.Axes, ablation) -> None:
    """Horizontal bars of validation RMSE per loss; the chosen one hatched, scratch in its colour.

    Args:
        ablation: :func:`ecodistill.report.loss_ablation` (``method, val_rmse, chosen``).
    """
    setup()
    if ablation.empty:
        no_data(ax, missing_text(ablation))
        return
    rows = ablation.sort_values("val_rmse", ascending=False)
    colors = [INIT_COLORS["scratch" if m.startswith("scratch") else "distilled"]
              for m in rows["method"]]
    bars = ax.barh(rows["method"], rows["val_rmse"], color=colors)
    for bar, chosen in zip(bars, rows["chosen"]):
        bar.set_hatch("//" if chosen else "")
    ax.set_xlim(0.95 * rows["val_rmse"].min(), 1.02 * rows["val_rmse"].max())
    ax.set_xlabel("validation RMSE (hatched: chosen)")


def label_budget_plot(ax: plt.Axes, ctrl, all_years: int) -> None:
    """Test RMSE (mean ± seed std) vs labelled training years, scratch and distilled.

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
    for init, r in rows.groupby("init"):
        ax.errorbar(r["years"], r["rmse_mean"], yerr=r["rmse_std"].fillna(0), marker="o",
                    capsize=3, color=INIT_COLORS[init], label=init)
    _log_x(ax)
    ax.set_xlabel("training years with NDVI labels (log)")
    ax.set_ylabel("test RMSE")
    ax.legend()


def biome_panels(ax: plt.Axes, biomes, xlim: tuple[float, float] = (-0.5, 1.0)) -> None:
    """Horizontal bars of test anomaly R² (mean ± seed std) per biome: teacher, scratch and
    distilled.

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
        ax.barh(y, np.clip(mean, *xlim) - xlim[0], height, left=xlim[0],
                color=INIT_COLORS[model], xerr=rows["r2_anom_std"].fillna(0).to_numpy(float),
                capsize=2, label=model)
        for yy in y[mean < xlim[0]]:
            ax.text(xlim[0], yy, "<", va="center", ha="right", fontsize=6)
    ax.set_yticks(np.arange(len(names)), names)
    ax.set_xlim(*xlim)
    ax.set_xlabel("test anomaly R² (mean ± std over seeds)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))


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
        ax.scatter(t["n_params"], t["r2_anom_mean"], marker="*", s=120, zorder=3,
                   color="0.2" if t["init"] == "pretrained" else "0.6", label=t["model"])
    _log_x(ax)
    ax.set_xlabel("parameters (log)")
    ax.set_ylabel("test R² (anomalies)")
    ax.legend()


def error_maps(maps: dict, land: np.ndarray | None = None,
               missing: str = "no error maps stored yet") -> plt.Figure:
    """Test RMSE maps side by side on one colour scale (e.g. teacher, scratch, distilled).

    Args:
        maps: label -> ``(h, w)`` RMSE over the test days per cell (NaN off land), as stored
            in ``results/<profile>/maps/<run_id>.npz``.
        land: optional ``(h, w)`` land mask for the coastline (default: where any map is finite).
        missing: what the figure says when ``maps`` is empty (which command makes them).
    """
    from .data.regrid import grid_centres

    setup()
    if not maps:
        return message_figure(missing)
    fields = list(maps.values())
    lat, lon = grid_centres(*fields[0].shape)
    land = np.isfinite(fields[0]) if land is None else land
    vmax = float(np.nanpercentile(np.stack(fields), 99))
    fig, axes = plt.subplots(1, len(maps), figsize=(3.4 * len(maps), 2.4), squeeze=False)
    for i, (ax, (label, field)) in enumerate(zip(axes[0], maps.items())):
        mesh = global_map(ax, field, lat, lon, land, vmin=0.0, vmax=vmax, cmap="magma_r")
        ax.set_title(label)  # a panel label; the figure's caption comes from the cell metadata
        if i:
            ax.set_ylabel("")
    fig.colorbar(mesh, ax=axes[0].tolist(), shrink=0.8, label="test RMSE (NDVI)")
    return fig


# ----------------------------------------------------------------- data chapter (02_data)
def static_panels(static) -> plt.Figure:
    """2x2 maps of the static inputs: biome group, orography, NDVI annual max and min.

    Args:
        static: :func:`ecodistill.data.static_maps` output (or a dataset holding its fields).
    """
    import json

    setup()
    lat, lon, land = static["lat"].values, static["lon"].values, static["land_mask"].values
    fig, axes = plt.subplots(2, 2, figsize=(10, 5.2), constrained_layout=True)
    names = json.loads(static.attrs["biome_names"])
    biome = np.where(land, static["biome"].values, np.nan)
    ndvi = {"cmap": "YlGn", "vmin": 0, "vmax": 0.9}
    panels = [(biome, "biome group", {"cmap": "tab20", "vmin": -0.5, "vmax": 19.5}),
              (static["orography"].values, "orography (m)",
               {"cmap": "terrain", "vmin": -500, "vmax": 5000}),
              (static["ndvi_max"].values, "NDVI annual maximum", ndvi),
              (static["ndvi_min"].values, "NDVI annual minimum", ndvi)]
    for ax, (field, label, kw) in zip(axes.ravel(), panels):
        mesh = global_map(ax, field, lat, lon, land, **kw)
        ax.set_title(label)
        bar = fig.colorbar(mesh, ax=ax, shrink=0.8)
        if label == "biome group":
            biomes = static["biome"].values[land]
            present = [i for i in range(1, len(names)) if (biomes == i).any()]
            bar.set_ticks(present, labels=[names[i] for i in present], fontsize=6)
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


# ---------------------------------------------------------------- the teacher (02) and one run (03)
def loss_curves(ax: plt.Axes, histories: dict, ylabel: str = "loss", log: bool = True,
                missing: str = "no training history yet") -> None:
    """Training (dashed, open markers) and validation (solid) loss per epoch, one colour per label.

    Args:
        histories: label -> training history (:attr:`ecodistill.train.FitResult.history`: one
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
