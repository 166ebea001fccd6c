r"""Distilled vs from scratch (chapter 4): the student table, the seed-paired comparison, the
selection on the validation years (alpha sweep, loss ablation, learning-rate trials), the
controls, per-biome skill and error maps.

Reads the result rows of :func:`ecodistill.report.read_results`, the validation selection of
:func:`ecodistill.report.read_selection` (``selection.json``) and, for :func:`error_maps`,
the stored ``results/<profile>/maps/<run_id>.npz``; nothing is trained or built, so the
chapter re-renders from committed results in seconds. With nothing there yet, each builder
returns a table with no rows whose ``attrs["missing"]`` names the command that makes them.

The comparison protocol (DESIGN.md): test numbers come from the ``-final-`` runs only;
retained skill is :math:`(S_{student} - S_{clim}) / (S_{teacher} - S_{clim})` on the anomaly
:math:`R^2` (:func:`ecodistill.evaluate.retained_skill`); the gap closed
:math:`(e_{scratch} - e_{kd}) / (e_{scratch} - e_{teacher})` is reported only where the gap
exceeds twice the seed spread (:func:`ecodistill.evaluate.gap_closed`); seeds are paired
(same seed, scratch vs distilled) for a Wilcoxon signed-rank test, and the 95% interval of
the mean RMSE difference resamples seeds and test months (:mod:`ecodistill.stats`).

Explained in book/generated/04_results.ipynb.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import evaluate, stats
from ..utils import results_dir
from .frames import (
    SETTING,
    SIZE,
    aggregate,
    aggregate_columns,
    climatology_skill,
    empty_table,
    labelled,
    month_table,
    parse_run_id,
    profile_of,
    students,
    teacher_means,
    wide,
)
from .text import no_results_message

RATIOS = ["retained_skill", "r2_ratio", "params_ratio", "flops_ratio"]
PAIR_COLUMNS = [*SIZE, "method", "alpha", "n_pairs", "rmse_scratch", "rmse_distilled",
                "rmse_teacher", "diff", "wins", "p_value", "ci_low", "ci_high", "gap_closed",
                "gap_reason"]
CONTROL_KEYS = ["control", "condition", "init", "label_years"]
SWEEP_COLUMNS = ["init", "method", "alpha", "lr_scale", "val_rmse", "n"]


def _missing(frame: pd.DataFrame) -> str:
    return no_results_message(profile_of(frame))


def student_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Test skill per student size x setting (mean ± std over seeds), the teachers' rows,
    retained skill and compression ratios.

    Columns: ``student, family, n_params, flops_per_map, init, method, alpha, n_seeds,
    rmse_mean, rmse_std, r2_mean, r2_std, r2_anom_mean, r2_anom_std, retained_skill``
    (anomaly R² above climatology, relative to the pre-trained teacher), ``r2_ratio``
    (raw R² relative to the teacher), ``params_ratio`` and ``flops_ratio`` (teacher /
    student). ``attrs["notes"]`` says where :math:`S_{clim}` came from.
    """
    keys = SIZE + SETTING
    final = students(frame, "final")
    teacher = teacher_means(frame)
    s_clim, source = climatology_skill(frame)
    notes = [f"S_clim = {s_clim:.3g} ({source})"]
    if teacher is None:
        notes.append("no pre-trained teacher row: ratios are NaN")
    if final.empty:
        table = empty_table(aggregate_columns(keys, ("rmse", "r2", "r2_anom")) + RATIOS,
                            _missing(frame))
        table.attrs["notes"] = notes
        return table
    parts = [aggregate(final, keys)]
    w = wide(frame)
    for init, label in (("pretrained", "teacher"), ("scratch", "teacher (scratch)")):
        rows = w[(w["kind"] == "teacher") & (w["init"] == init)]
        if not rows.empty:
            rows = rows.assign(student=label, method=rows["method"].iloc[0], alpha=np.nan)
            parts.append(aggregate(rows, keys))
    table = pd.concat(parts, ignore_index=True)
    if teacher is not None:
        table["retained_skill"] = evaluate.retained_skill(
            table["r2_anom_mean"], teacher.get("r2_anom", np.nan), s_clim)
        table["r2_ratio"] = table["r2_mean"] / teacher.get("r2", np.nan)
        table["params_ratio"] = teacher["n_params"] / table["n_params"]
        table["flops_ratio"] = teacher["flops_per_map"] / table["flops_per_map"]
    else:
        table[RATIOS] = np.nan
    table = table.sort_values(["family", "n_params", "init"], ascending=[True, False, True])
    table = labelled(table.reset_index(drop=True), _missing(frame))
    table.attrs["notes"] = notes
    return table


def chosen_method(frame: pd.DataFrame, selection: dict | None = None) -> tuple[str, float] | None:
    """The distilled setting the comparison reports: validation's choice when ``selection``
    is given, else the only (most frequent) final distilled setting. None when none exists."""
    final = students(frame, "final")
    distilled = final[final["init"] == "distilled"]
    if distilled.empty:
        return None
    if selection is not None:
        want = distilled[distilled["method"].str.startswith(f"kd-{selection['loss']}-")
                         & np.isclose(distilled["alpha"], selection["alpha"])]
        if not want.empty:
            return str(want["method"].iloc[0]), float(want["alpha"].iloc[0])
    counts = distilled.groupby(["method", "alpha"]).size().sort_values(ascending=False)
    method, alpha = counts.index[0]
    return str(method), float(alpha)


def paired_comparison(frame: pd.DataFrame, selection: dict | None = None,
                      n_boot: int = 2000) -> pd.DataFrame:
    """Scratch vs distilled at every student size, seed-paired.

    Columns: ``student, family, n_params, flops_per_map, method, alpha, n_pairs, rmse_scratch,
    rmse_distilled, rmse_teacher, diff`` (mean scratch − distilled test RMSE over paired
    seeds; > 0 means distillation helps), ``wins`` (seeds where distilled is better),
    ``p_value`` (two-sided Wilcoxon signed-rank), ``ci_low, ci_high`` (95% bootstrap over
    seeds x test months of the same difference; NaN without monthly rows), ``gap_closed``
    and ``gap_reason`` (why it is NaN: no gap, or a gap within twice the scratch seed std).
    """
    chosen = chosen_method(frame, selection)
    final = students(frame, "final")
    if chosen is None or final.empty:
        return empty_table(PAIR_COLUMNS, _missing(frame))
    method, alpha = chosen
    teacher = teacher_means(frame)
    teacher_rmse = float(teacher["rmse"]) if teacher is not None else np.nan
    out = []
    for size, rows in final.groupby(SIZE):
        scratch = rows[rows["init"] == "scratch"].set_index("seed")
        distilled = rows[(rows["method"] == method)
                         & np.isclose(rows["alpha"], alpha)].set_index("seed")
        seeds = sorted(set(scratch.index) & set(distilled.index))
        if not seeds:
            continue
        scratch_rmse = scratch.loc[seeds, "rmse"].to_numpy(float)
        distilled_rmse = distilled.loc[seeds, "rmse"].to_numpy(float)
        test = stats.paired_test(distilled_rmse, scratch_rmse)  # b - a = scratch - distilled
        spread = float(np.std(scratch_rmse, ddof=1)) if len(seeds) > 1 else None
        gap, reason = evaluate.gap_closed(scratch_rmse, distilled_rmse, teacher_rmse, spread=spread)
        if teacher is None:
            gap, reason = np.nan, "no teacher row"
        months = (month_table(frame, scratch.loc[seeds, "run_id"])
                  - month_table(frame, distilled.loc[seeds, "run_id"]))
        ci = (stats.bootstrap_ci(months.to_numpy(), n_boot=n_boot) if months.size
              else {"low": np.nan, "high": np.nan})
        out.append(dict(zip(SIZE, size), method=method, alpha=alpha, n_pairs=test["n"],
                        rmse_scratch=scratch_rmse.mean(), rmse_distilled=distilled_rmse.mean(),
                        rmse_teacher=teacher_rmse, diff=test["mean_diff"], wins=test["wins"],
                        p_value=test["p_value"], ci_low=ci["low"], ci_high=ci["high"],
                        gap_closed=gap, gap_reason=reason))
    if not out:
        return empty_table(PAIR_COLUMNS, _missing(frame))
    table = pd.DataFrame(out).sort_values(["family", "n_params"], ascending=[True, False])
    return labelled(table.reset_index(drop=True), _missing(frame))


def _tune(frame: pd.DataFrame) -> pd.DataFrame:
    return students(frame, "tune", split="val")


def alpha_sweep(frame: pd.DataFrame, selection: dict | None = None) -> pd.DataFrame:
    """Validation RMSE of the MSE output loss vs alpha, and the scratch trials (``-tune-`` runs).

    Columns: ``init, method, alpha, lr_scale`` (scratch trials, from ``selection``),
    ``val_rmse, n``. The scratch row with the lowest ``val_rmse`` is the equal-budget
    scratch reference.
    """
    tune = _tune(frame)
    if tune.empty:
        return empty_table(SWEEP_COLUMNS, _missing(frame))
    lr = {t["run_id"]: t["lr_scale"] for t in (selection or {}).get("trials", [])}
    distilled = tune[tune["method"].str.startswith("kd-mse-")]
    scratch = tune[tune["init"] == "scratch"].assign(lr_scale=lambda x: x["run_id"].map(lr))
    parts = [distilled.groupby(["init", "method", "alpha"])["rmse"].agg(["mean", "count"])
             .reset_index(),
             scratch.groupby(["init", "method", "run_id"], dropna=False)
             .agg(alpha=("alpha", "first"), lr_scale=("lr_scale", "first"),
                  mean=("rmse", "mean"), count=("rmse", "count"))
             .reset_index().drop(columns="run_id")]
    out = pd.concat(parts, ignore_index=True).rename(columns={"mean": "val_rmse", "count": "n"})
    out = out[SWEEP_COLUMNS].sort_values(["init", "alpha", "lr_scale"]).reset_index(drop=True)
    return labelled(out, _missing(frame))


def loss_ablation(frame: pd.DataFrame, selection: dict | None = None) -> pd.DataFrame:
    """Validation RMSE per distillation loss at the chosen alpha, plus the best scratch trial.

    The alpha is ``selection["alpha"]`` or, without a selection, the best one of the sweep.
    Columns: ``method, alpha, val_rmse, n, chosen`` (the loss validation picked).
    """
    sweep = alpha_sweep(frame, selection)
    if not (sweep["init"] == "distilled").any():
        return empty_table(["method", "alpha", "val_rmse", "n", "chosen"], _missing(frame))
    swept = sweep[sweep["init"] == "distilled"]
    alpha = (selection["alpha"] if selection
             else float(swept.loc[swept["val_rmse"].idxmin(), "alpha"]))
    tune = _tune(frame)
    distilled = tune[(tune["init"] == "distilled") & np.isclose(tune["alpha"], alpha)]
    out = distilled.groupby(["method", "alpha"])["rmse"].agg(["mean", "count"]).reset_index()
    scratch = sweep[sweep["init"] == "scratch"]
    if not scratch.empty:
        best = scratch.loc[scratch["val_rmse"].idxmin()]
        out.loc[len(out)] = ["scratch (best lr)", np.nan, best["val_rmse"], best["n"]]
    out = out.rename(columns={"mean": "val_rmse", "count": "n"})
    pick = (f"kd-{selection['loss']}-" if selection
            else out.loc[out["val_rmse"].idxmin(), "method"])
    out["chosen"] = out["method"].str.startswith(pick) & out["alpha"].notna()
    return labelled(out.sort_values("val_rmse").reset_index(drop=True), _missing(frame))


def lr_trials(selection: dict | None, profile: str | None = None) -> pd.DataFrame:
    """Every learning-rate trial of both arms at their selected setting, from ``selection``.

    Distilled: the chosen (loss, alpha) at the profile's learning rate and at the refinement
    multipliers; scratch: its log-spaced grid and its refinement around the grid's best.
    Columns: ``arm, lr_scale, val_rmse, stage, chosen``. ``profile`` only names the command
    in the message of an empty table.
    """
    columns = ["arm", "lr_scale", "val_rmse", "stage", "chosen"]
    trials = pd.DataFrame((selection or {}).get("trials", []))
    missing = no_results_message(profile or profile_of(trials))
    if selection and "stage" not in trials:
        missing = f"the validation selection records no learning-rate trials; {missing}"
    if trials.empty or "stage" not in trials:
        return empty_table(columns, missing)
    distilled = trials[(trials["mode"] != "scratch") & (trials["loss"] == selection["loss"])
                       & np.isclose(trials["alpha"], selection["alpha"])]
    distilled = distilled[(distilled["stage"] == "lr-refine")
                          | np.isclose(distilled["lr_scale"], 1.0)].drop_duplicates("lr_scale")
    scratch = trials[trials["mode"] == "scratch"]
    out = pd.concat([distilled.assign(arm="distilled"), scratch.assign(arm="scratch")],
                    ignore_index=True)
    picked = {"distilled": selection.get("kd_lr_scale", 1.0),
              "scratch": selection.get("scratch_lr_scale")}
    out["chosen"] = [np.isclose(v, picked[arm]) for arm, v in zip(out["arm"], out["lr_scale"])]
    return labelled(out[columns].sort_values(["arm", "lr_scale"]).reset_index(drop=True), missing)


def controls(frame: pd.DataFrame, selection: dict | None = None) -> pd.DataFrame:
    """The protocol's controls at the student they were run for, on the test years.

    ``control`` is ``noise`` (scratch on noise-free targets vs scratch vs distilled),
    ``extra`` (distilled with vs without teacher-labelled extra years) or ``budget``
    (scratch and distilled with 1, 3, 10 labelled years; ``label_years`` NaN = all years).
    Columns: ``control, condition, init, label_years, n_seeds, rmse_mean, rmse_std,
    r2_anom_mean, r2_anom_std``.
    """
    metrics = ("rmse", "r2_anom")
    empty = empty_table(aggregate_columns(CONTROL_KEYS, metrics), _missing(frame))
    w = wide(frame)
    w = w[(w["kind"] == "student") & (w["method"] != "headroom")]
    special = w[w["tag"].isin(["noisefree", "noextra"]) | w["tag"].str.startswith("budget")]
    if special.empty:
        return empty
    w = w[w["student"] == special["student"].iloc[0]]
    chosen = chosen_method(frame, selection)
    w = w[(w["init"] == "scratch") | ((w["method"] == chosen[0]) if chosen else True)]
    w = w.assign(label_years=w["label_years"].where(w["label_years"] > 0, np.nan))
    final, noisefree = w[w["tag"] == "final"], w[w["tag"] == "noisefree"]
    distilled = final[final["init"] == "distilled"]
    groups = [("noise", "scratch, noise-free targets", noisefree),
              ("noise", "scratch", final[final["init"] == "scratch"]),
              ("noise", "distilled", distilled),
              ("extra", "distilled, with extra years", distilled),
              ("extra", "distilled, no extra years", w[w["tag"] == "noextra"])]
    budget = pd.concat([w[w["tag"].str.startswith("budget")], final])
    for (init, years), rows in budget.groupby(["init", "label_years"], dropna=False):
        label = "all" if np.isnan(years) else int(years)
        groups.append(("budget", f"{init}, {label} label years", rows))
    parts = [aggregate(rows.assign(control=control, condition=condition), CONTROL_KEYS, metrics)
             for control, condition, rows in groups if not rows.empty]
    if not parts:
        return empty
    return labelled(pd.concat(parts, ignore_index=True), _missing(frame))


def biome_table(frame: pd.DataFrame, student: str, selection: dict | None = None) -> pd.DataFrame:
    """Test anomaly R² per biome for the teacher and ``student`` (scratch, distilled).

    Columns: ``biome, model`` (teacher | scratch | distilled), ``r2_anom_mean, r2_anom_std, n``.
    """
    empty = empty_table(["biome", "model", "r2_anom_mean", "r2_anom_std", "n"], _missing(frame))
    chosen = chosen_method(frame, selection)
    rows = frame[(frame["target"] == "ndvi") & (frame["split"] == "test")
                 & (frame["metric"] == "r2_anom")
                 & frame["region"].astype(str).str.startswith("biome:")]
    if rows.empty:
        return empty
    parsed = rows["run_id"].map(parse_run_id)
    rows = rows.assign(student=parsed.str[0], tag=parsed.str[1])
    teacher = rows[(rows["kind"] == "teacher") & (rows["init"] == "pretrained")]
    mine = rows[(rows["student"] == student) & (rows["tag"] == "final")]
    scratch = mine[mine["init"] == "scratch"]
    distilled = mine[(mine["init"] == "distilled")
                     & ((mine["method"] == chosen[0]) if chosen else True)]
    picked = pd.concat([teacher.assign(model="teacher"), scratch.assign(model="scratch"),
                        distilled.assign(model="distilled")], ignore_index=True)
    if picked.empty:
        return empty
    out = stats.summarise(picked.assign(biome=picked["region"].str[6:]), ["biome", "model"],
                          "r2_anom")
    out = out.rename(columns={"mean": "r2_anom_mean", "std": "r2_anom_std"}).drop(columns="ci95")
    return labelled(out, _missing(frame))


def error_maps(profile: str, frame: pd.DataFrame, student: str, seed: int = 0,
               selection: dict | None = None) -> dict[str, np.ndarray]:
    """Stored test RMSE maps ``(h, w)`` of the teacher and ``student`` (scratch, distilled) at
    ``seed``: label -> array for each ``results/<profile>/maps/<run_id>.npz`` that exists."""
    w = wide(frame)
    if w.empty:
        return {}
    chosen = chosen_method(frame, selection)
    final = w[(w["student"] == student) & (w["tag"] == "final") & (w["seed"] == seed)]
    picks = {"teacher": w[(w["kind"] == "teacher") & (w["init"] == "pretrained")],
             f"scratch ({student})": final[final["init"] == "scratch"],
             f"distilled ({student})": final[(final["init"] == "distilled")
                                             & (final["method"] == (chosen[0] if chosen else ""))]}
    out = {}
    for label, rows in picks.items():
        for run_id in rows["run_id"]:
            path = results_dir(profile) / "maps" / f"{run_id}.npz"
            if path.is_file():
                with np.load(path) as arrays:
                    out[label] = arrays["rmse"]
                break
    return out
