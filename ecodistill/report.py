r"""The distilled-vs-scratch chapter's tables and headline numbers, from result rows only.

Every function takes the tidy frame of :func:`ecodistill.runs.read_runs` (plus, where named,
the validation selection of :func:`read_selection`) and returns a small table; none trains
or reads anything else, so the chapter re-renders from committed results in seconds. With
nothing there yet, each returns an empty frame and :func:`no_results_message` says which
command makes the results.

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

import json
import re
from typing import Any

import numpy as np
import pandas as pd

from . import evaluate, runs, stats
from .utils import results_dir

META = ["kind", "init", "method", "family", "n_params", "flops_per_map", "alpha", "label_years", "seed"]
SIZE = ["student", "family", "n_params", "flops_per_map"]
SETTING = ["init", "method", "alpha"]
_NAME = re.compile(r"^(?:scratch-(?P<a>.+)|kd-[A-Za-z0-9_]+-[A-Za-z0-9_]+-(?P<b>.+)_from_teacher)"
                   r"-(?P<tag>[A-Za-z0-9]+)-[0-9a-f]+$")


def no_results_message(profile: str) -> str:
    """The line a chapter prints when ``results/<profile>`` holds no student runs yet."""
    return f"no {profile} results yet — run python -m ecodistill matrix --profile {profile}"


def read_selection(profile: str) -> dict | None:
    """``results/<profile>/selection.json`` (what validation chose, and its trials) or None."""
    path = results_dir(profile) / "selection.json"
    return json.loads(path.read_text()) if path.is_file() else None


def parse_run_id(run_id: str) -> tuple[str, str]:
    """``(student, tag)`` of a student run id, e.g. ``scratch-afno_s-final-<hash>`` ->
    ``("afno_s", "final")``; ``("", "")`` for teacher, baseline and headroom runs."""
    m = _NAME.match(str(run_id))
    return (m.group("a") or m.group("b"), m.group("tag")) if m else ("", "")


def wide(frame: pd.DataFrame, split: str = "test", region: str = "global") -> pd.DataFrame:
    """One row per NDVI run with its metadata, ``student``, ``tag`` and one column per metric."""
    f = frame[(frame["target"] == "ndvi") & (frame["split"] == split) & (frame["region"] == region)]
    if f.empty:
        return pd.DataFrame(columns=["run_id", "student", "tag", *META])
    values = f.pivot_table(index="run_id", columns="metric", values="value", aggfunc="first")
    out = f.drop_duplicates("run_id").set_index("run_id")[META].join(values).reset_index()
    parsed = out["run_id"].map(parse_run_id)
    out.insert(1, "student", parsed.str[0])
    out.insert(2, "tag", parsed.str[1])
    return out


def _students(frame: pd.DataFrame, tag: str, split: str = "test", region: str = "global") -> pd.DataFrame:
    w = wide(frame, split, region)
    return w[(w["kind"] == "student") & (w["method"] != "headroom") & (w["tag"] == tag)]


def _teacher(frame: pd.DataFrame, init: str = "pretrained", split: str = "test",
             region: str = "global") -> pd.Series | None:
    """Mean over seeds of the teacher's metrics (None when there is no such teacher row)."""
    w = wide(frame, split, region)
    t = w[(w["kind"] == "teacher") & (w["init"] == init)]
    if t.empty:
        return None
    return t.mean(numeric_only=True)


def climatology_skill(frame: pd.DataFrame) -> tuple[float, str]:
    """``(S_clim, source)``: the climatology baseline's test anomaly R², or 0 by construction."""
    w = wide(frame)
    c = w[(w["kind"] == "baseline") & (w["method"] == "climatology")]
    if not c.empty and "r2_anom" in c and c["r2_anom"].notna().any():
        return float(c["r2_anom"].mean()), "climatology baseline row"
    return 0.0, "no climatology row; 0 is the anomaly R² of the climatology by construction"


def _agg(rows: pd.DataFrame, keys: list[str], metrics: tuple[str, ...] = ("rmse", "r2", "r2_anom")) -> pd.DataFrame:
    """Mean and sample std (ddof 1, as :func:`ecodistill.stats.summarise`) over seeds of each
    metric per group, and ``n_seeds`` (runs in the group)."""
    metrics = [m for m in metrics if m in rows]
    g = rows.groupby(keys, dropna=False)
    out = g[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out.insert(0, "n_seeds", g.size())
    return out.reset_index()


def student_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Test skill per student size x setting (mean ± std over seeds), the teachers' rows,
    retained skill and compression ratios.

    Columns: ``student, family, n_params, flops_per_map, init, method, alpha, n_seeds,
    rmse_mean, rmse_std, r2_mean, r2_std, r2_anom_mean, r2_anom_std, retained_skill``
    (anomaly R² above climatology, relative to the pre-trained teacher), ``r2_ratio``
    (raw R² relative to the teacher), ``params_ratio`` and ``flops_ratio`` (teacher /
    student). ``attrs["notes"]`` says where :math:`S_{clim}` came from.
    """
    final = _students(frame, "final")
    if final.empty:
        return pd.DataFrame()
    table = _agg(final, SIZE + SETTING)
    rows = [table]
    for init, label in (("pretrained", "teacher"), ("scratch", "teacher (scratch)")):
        w = wide(frame)
        t = w[(w["kind"] == "teacher") & (w["init"] == init)]
        if not t.empty:
            t = t.assign(student=label, method=t["method"].iloc[0], alpha=np.nan)
            rows.append(_agg(t, SIZE + SETTING))
    table = pd.concat(rows, ignore_index=True)
    teacher = _teacher(frame)
    s_clim, source = climatology_skill(frame)
    if teacher is not None:
        table["retained_skill"] = evaluate.retained_skill(table["r2_anom_mean"], teacher.get("r2_anom", np.nan), s_clim)
        table["r2_ratio"] = table["r2_mean"] / teacher.get("r2", np.nan)
        table["params_ratio"] = teacher["n_params"] / table["n_params"]
        table["flops_ratio"] = teacher["flops_per_map"] / table["flops_per_map"]
    else:
        table[["retained_skill", "r2_ratio", "params_ratio", "flops_ratio"]] = np.nan
    table.attrs["notes"] = [f"S_clim = {s_clim:.3g} ({source})"] + \
        ([] if teacher is not None else ["no pre-trained teacher row: ratios are NaN"])
    return table.sort_values(["family", "n_params", "init"], ascending=[True, False, True]).reset_index(drop=True)


def chosen_method(frame: pd.DataFrame, selection: dict | None = None) -> tuple[str, float] | None:
    """The distilled setting the comparison reports: validation's choice when ``selection``
    is given, else the only (most frequent) final distilled setting. None when none exists."""
    final = _students(frame, "final")
    kd = final[final["init"] == "distilled"]
    if kd.empty:
        return None
    if selection is not None:
        want = kd[kd["method"].str.startswith(f"kd-{selection['loss']}-") & np.isclose(kd["alpha"], selection["alpha"])]
        if not want.empty:
            return str(want["method"].iloc[0]), float(want["alpha"].iloc[0])
    top = kd.groupby(["method", "alpha"]).size().sort_values(ascending=False).index[0]
    return str(top[0]), float(top[1])


def _month_table(frame: pd.DataFrame, run_ids: pd.Series) -> pd.DataFrame:
    """(seeds x months) test RMSE of the given runs, indexed by seed."""
    f = frame[frame["run_id"].isin(run_ids) & (frame["split"] == "test") & (frame["metric"] == "rmse")
              & frame["region"].astype(str).str.startswith("month:")]
    return f.pivot_table(index="seed", columns="region", values="value", aggfunc="first")


def paired_comparison(frame: pd.DataFrame, selection: dict | None = None, n_boot: int = 2000) -> pd.DataFrame:
    """Scratch vs distilled at every student size, seed-paired.

    Columns: ``student, family, n_params, flops_per_map, method, alpha, n_pairs, rmse_scratch,
    rmse_distilled, rmse_teacher, diff`` (mean scratch − distilled test RMSE over paired
    seeds; > 0 means distillation helps), ``wins`` (seeds where distilled is better),
    ``p_value`` (two-sided Wilcoxon signed-rank), ``ci_low, ci_high`` (95% bootstrap over
    seeds x test months of the same difference; NaN without monthly rows), ``gap_closed``
    and ``gap_reason`` (why it is NaN: no gap, or a gap within twice the scratch seed std).
    """
    chosen = chosen_method(frame, selection)
    final = _students(frame, "final")
    if chosen is None or final.empty:
        return pd.DataFrame()
    method, alpha = chosen
    teacher = _teacher(frame)
    t_rmse = float(teacher["rmse"]) if teacher is not None else np.nan
    out = []
    for size, rows in final.groupby(SIZE):
        scratch = rows[rows["init"] == "scratch"].set_index("seed")
        kd = rows[(rows["method"] == method) & np.isclose(rows["alpha"], alpha)].set_index("seed")
        seeds = sorted(set(scratch.index) & set(kd.index))
        if not seeds:
            continue
        s, k = scratch.loc[seeds, "rmse"].to_numpy(float), kd.loc[seeds, "rmse"].to_numpy(float)
        test = stats.paired_test(k, s)  # b - a = scratch - distilled
        gap, reason = evaluate.gap_closed(s, k, t_rmse, spread=float(np.std(s, ddof=1)) if len(s) > 1 else None)
        if teacher is None:
            gap, reason = np.nan, "no teacher row"
        d = _month_table(frame, scratch.loc[seeds, "run_id"]) - _month_table(frame, kd.loc[seeds, "run_id"])
        ci = stats.bootstrap_ci(d.to_numpy(), n_boot=n_boot) if d.size else {"low": np.nan, "high": np.nan}
        out.append(dict(zip(SIZE, size), method=method, alpha=alpha, n_pairs=test["n"], rmse_scratch=s.mean(),
                        rmse_distilled=k.mean(), rmse_teacher=t_rmse, diff=test["mean_diff"], wins=test["wins"],
                        p_value=test["p_value"], ci_low=ci["low"], ci_high=ci["high"], gap_closed=gap,
                        gap_reason=reason))
    return pd.DataFrame(out).sort_values(["family", "n_params"], ascending=[True, False]).reset_index(drop=True)


def _tune(frame: pd.DataFrame) -> pd.DataFrame:
    return _students(frame, "tune", split="val")


def alpha_sweep(frame: pd.DataFrame, selection: dict | None = None) -> pd.DataFrame:
    """Validation RMSE of the MSE output loss vs alpha, and the scratch trials (``-tune-`` runs).

    Columns: ``init, method, alpha, lr_scale`` (scratch trials, from ``selection``),
    ``val_rmse, n``. The scratch row with the lowest ``val_rmse`` is the equal-budget
    scratch reference.
    """
    tune = _tune(frame)
    if tune.empty:
        return pd.DataFrame()
    lr = {t["run_id"]: t["lr_scale"] for t in (selection or {}).get("trials", [])}
    kd = tune[tune["method"].str.startswith("kd-mse-")]
    scratch = tune[tune["init"] == "scratch"].assign(lr_scale=lambda x: x["run_id"].map(lr))
    parts = [kd.groupby(["init", "method", "alpha"])["rmse"].agg(["mean", "count"]).reset_index(),
             scratch.groupby(["init", "method", "run_id"], dropna=False)
             .agg(alpha=("alpha", "first"), lr_scale=("lr_scale", "first"), mean=("rmse", "mean"),
                  count=("rmse", "count")).reset_index().drop(columns="run_id")]
    out = pd.concat(parts, ignore_index=True).rename(columns={"mean": "val_rmse", "count": "n"})
    return out.sort_values(["init", "alpha", "lr_scale"]).reset_index(drop=True)


def loss_ablation(frame: pd.DataFrame, selection: dict | None = None) -> pd.DataFrame:
    """Validation RMSE per distillation loss at the chosen alpha, plus the best scratch trial.

    The alpha is ``selection["alpha"]`` or, without a selection, the best one of the sweep.
    Columns: ``method, alpha, val_rmse, n, chosen`` (the loss validation picked).
    """
    sweep = alpha_sweep(frame, selection)
    if sweep.empty or not (sweep["init"] == "distilled").any():
        return pd.DataFrame()
    kd_sweep = sweep[sweep["init"] == "distilled"]
    alpha = selection["alpha"] if selection else float(kd_sweep.loc[kd_sweep["val_rmse"].idxmin(), "alpha"])
    tune = _tune(frame)
    kd = tune[(tune["init"] == "distilled") & np.isclose(tune["alpha"], alpha)]
    out = kd.groupby(["method", "alpha"])["rmse"].agg(["mean", "count"]).reset_index()
    scratch = sweep[sweep["init"] == "scratch"]
    if not scratch.empty:
        best = scratch.loc[scratch["val_rmse"].idxmin()]
        out.loc[len(out)] = ["scratch (best lr)", np.nan, best["val_rmse"], best["n"]]
    out = out.rename(columns={"mean": "val_rmse", "count": "n"})
    pick = f"kd-{selection['loss']}-" if selection else out.loc[out["val_rmse"].idxmin(), "method"]
    out["chosen"] = out["method"].str.startswith(pick) & out["alpha"].notna()
    return out.sort_values("val_rmse").reset_index(drop=True)


def lr_trials(selection: dict | None) -> pd.DataFrame:
    """Every learning-rate trial of both arms at their selected setting, from ``selection``.

    Distilled: the chosen (loss, alpha) at the profile's learning rate and at the refinement
    multipliers; scratch: its log-spaced grid and its refinement around the grid's best.
    Columns: ``arm, lr_scale, val_rmse, stage, chosen``.
    """
    trials = pd.DataFrame((selection or {}).get("trials", []))
    cols = ["arm", "lr_scale", "val_rmse", "stage", "chosen"]
    if trials.empty or "stage" not in trials:
        return pd.DataFrame(columns=cols)
    kd = trials[(trials["mode"] != "scratch") & (trials["loss"] == selection["loss"])
                & np.isclose(trials["alpha"], selection["alpha"])]
    kd = kd[(kd["stage"] == "lr-refine") | np.isclose(kd["lr_scale"], 1.0)].drop_duplicates("lr_scale")
    scratch = trials[trials["mode"] == "scratch"]
    out = pd.concat([kd.assign(arm="distilled"), scratch.assign(arm="scratch")], ignore_index=True)
    picked = {"distilled": selection.get("kd_lr_scale", 1.0), "scratch": selection.get("scratch_lr_scale")}
    out["chosen"] = [np.isclose(v, picked[a]) for a, v in zip(out["arm"], out["lr_scale"])]
    return out[cols].sort_values(["arm", "lr_scale"]).reset_index(drop=True)


def controls(frame: pd.DataFrame, selection: dict | None = None) -> pd.DataFrame:
    """The protocol's controls at the student they were run for, on the test years.

    ``control`` is ``noise`` (scratch on noise-free targets vs scratch vs distilled),
    ``extra`` (distilled with vs without teacher-labelled extra years) or ``budget``
    (scratch and distilled with 1, 3, 10 labelled years; ``label_years`` NaN = all years).
    Columns: ``control, condition, init, label_years, n_seeds, rmse_mean, rmse_std,
    r2_anom_mean, r2_anom_std``.
    """
    w = wide(frame)
    w = w[(w["kind"] == "student") & (w["method"] != "headroom")]
    special = w[w["tag"].isin(["noisefree", "noextra"]) | w["tag"].str.startswith("budget")]
    if special.empty:
        return pd.DataFrame()
    w = w[w["student"] == special["student"].iloc[0]]
    chosen = chosen_method(frame, selection)
    w = w[(w["init"] == "scratch") | ((w["method"] == chosen[0]) if chosen else True)]
    w = w.assign(label_years=w["label_years"].where(w["label_years"] > 0, np.nan))
    final, noisefree = w[w["tag"] == "final"], w[w["tag"] == "noisefree"]
    groups = [("noise", "scratch, noise-free targets", noisefree), ("noise", "scratch", final[final["init"] == "scratch"]),
              ("noise", "distilled", final[final["init"] == "distilled"]),
              ("extra", "distilled, with extra years", final[final["init"] == "distilled"]),
              ("extra", "distilled, no extra years", w[w["tag"] == "noextra"])]
    budget = pd.concat([w[w["tag"].str.startswith("budget")], final])
    for (init, years), rows in budget.groupby(["init", "label_years"], dropna=False):
        groups.append(("budget", f"{init}, {'all' if np.isnan(years) else int(years)} label years", rows))
    parts = []
    for control, condition, rows in groups:
        if rows.empty:
            continue
        a = _agg(rows.assign(control=control, condition=condition), ["control", "condition", "init", "label_years"],
                 ("rmse", "r2_anom"))
        parts.append(a)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def biome_table(frame: pd.DataFrame, student: str, selection: dict | None = None) -> pd.DataFrame:
    """Test anomaly R² per biome for the teacher and ``student`` (scratch, distilled).

    Columns: ``biome, model`` (teacher | scratch | distilled), ``r2_anom_mean, r2_anom_std, n``.
    """
    chosen = chosen_method(frame, selection)
    f = frame[(frame["target"] == "ndvi") & (frame["split"] == "test") & (frame["metric"] == "r2_anom")
              & frame["region"].astype(str).str.startswith("biome:")]
    if f.empty:
        return pd.DataFrame()
    f = f.assign(student=f["run_id"].map(lambda r: parse_run_id(r)[0]), tag=f["run_id"].map(lambda r: parse_run_id(r)[1]))
    teacher = f[(f["kind"] == "teacher") & (f["init"] == "pretrained")].assign(model="teacher")
    s = f[(f["student"] == student) & (f["tag"] == "final")]
    scratch = s[s["init"] == "scratch"].assign(model="scratch")
    kd = s[(s["init"] == "distilled") & ((s["method"] == chosen[0]) if chosen else True)].assign(model="distilled")
    rows = pd.concat([teacher, scratch, kd], ignore_index=True)
    if rows.empty:
        return pd.DataFrame()
    out = stats.summarise(rows.assign(biome=rows["region"].str[6:]), ["biome", "model"], "r2_anom")
    return out.rename(columns={"mean": "r2_anom_mean", "std": "r2_anom_std"}).drop(columns="ci95")


def headroom_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Test anomaly R² vs size of the scratch AFNO headroom models and the teachers.

    Columns: ``model, init, n_params, flops_per_map, n_seeds, r2_anom_mean, r2_anom_std, rmse_mean, rmse_std``.
    """
    w = wide(frame)
    rows = w[(w["method"] == "headroom") | (w["kind"] == "teacher")]
    if rows.empty or not (rows["method"] == "headroom").any():
        return pd.DataFrame()
    rows = rows.assign(model=np.where(rows["kind"] == "teacher", "teacher (" + rows["init"] + ")", "headroom"))
    out = _agg(rows, ["model", "init", "n_params", "flops_per_map"], ("r2_anom", "rmse"))
    return out.sort_values("n_params").reset_index(drop=True)


def readable(table: pd.DataFrame, metrics: tuple[str, ...] = ("rmse", "r2", "r2_anom")) -> pd.DataFrame:
    """A table of :func:`student_table` or :func:`controls` for reading: ``mean ± std`` strings
    (3 decimals; std over seeds, blank for one seed) in place of the ``_mean``/``_std`` pairs."""
    out = table.copy()
    for m in metrics:
        if f"{m}_mean" in out:
            std = out[f"{m}_std"].map(lambda v: "" if pd.isna(v) else f" ± {v:.3f}")
            out[m] = out[f"{m}_mean"].map(lambda v: f"{v:.3f}") + std
            out = out.drop(columns=[f"{m}_mean", f"{m}_std"])
    return out.round(3)


def hardware_label(profile: str) -> str:
    """Where the teacher ran, from ``results/<profile>/teacher/teacher.json`` (``device``)."""
    path = results_dir(profile) / "teacher" / "teacher.json"
    if not path.is_file():
        return "hardware not recorded (no teacher record)"
    record = json.loads(path.read_text())
    host = record.get("host") or record.get("cpu") or ""
    return f"{record.get('device', 'unknown device')}{f' ({host})' if host else ''}"


def _seeds_text(seeds: list[int]) -> str:
    if not seeds:
        return "no seeds"
    return f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(str(s) for s in seeds)})"


def _pct(x: float) -> str:
    """A share as a percentage: whole numbers, one decimal below 10 % (never "-0%")."""
    return f"{100 * x:.0f}%" if abs(x) >= 0.1 else f"{100 * x:.1f}%"


def target_check(table: pd.DataFrame, method: str | None = None, max_params: float = 0.01,
                 max_flops: float = 0.05) -> pd.DataFrame:
    """The issue's size target: distilled students with ≤1% of the teacher's parameters and
    ≤5% of its FLOPs per map, with whether they keep ≥90% of its anomaly skill above
    climatology and ≥97% of its raw R² (columns ``keeps_anom``, ``keeps_r2``); ``method``
    keeps only the validated distilled setting."""
    if table.empty:
        return pd.DataFrame()
    kd = table[(table["init"] == "distilled") & (1 / table["params_ratio"] <= max_params)
               & (1 / table["flops_ratio"] <= max_flops)]
    kd = kd[kd["method"] == method] if method else kd
    cols = ["student", "family", "n_params", "params_ratio", "flops_ratio", "retained_skill", "r2_ratio"]
    return kd[cols].assign(keeps_anom=kd["retained_skill"] >= 0.9, keeps_r2=kd["r2_ratio"] >= 0.97)


def headline(frame: pd.DataFrame, cfg: Any, selection: dict | None = None, hardware: str = "unknown",
             n_boot: int = 2000, table: pd.DataFrame | None = None, pairs: pd.DataFrame | None = None) -> dict[str, Any]:
    """The abstract's numbers (plain floats, NaN when absent) and verdict sentences (str),
    at the profile's ``headline_student``, for :func:`myst_nb.glue`.

    Every verdict is a sentence computed from the numbers, so the prose quoting it reads
    correctly whichever way the results come out. ``table`` and ``pairs`` (the outputs of
    :func:`student_table` and :func:`paired_comparison` for the same frame) save recomputing
    them. Keys: see the chapter's glue table.
    """
    profile, student = cfg.profile, cfg.headline_student
    nan = float("nan")
    out: dict[str, Any] = {k: nan for k in (
        "compression_params", "compression_flops", "student_params", "student_mb", "teacher_params",
        "retained_skill", "retained_skill_scratch", "r2_ratio", "gap_closed", "rmse_distilled", "rmse_scratch",
        "rmse_teacher", "rmse_diff", "rmse_diff_low", "rmse_diff_high", "p_value", "n_seeds")}
    none = no_results_message(profile)
    out.update(profile=profile, hardware=hardware, headline_student=student, provenance=f"profile {profile}, hardware: {hardware}, no seeds",
               verdict_sizes=none, gap_closed_text=none, retained_text=none, target_text=none,
               selection_text="no validation selection recorded")
    if selection:
        lr = (f", learning rate x{selection['kd_lr_scale']:.3g} (scratch: x{selection['scratch_lr_scale']:.3g})"
              if "kd_lr_scale" in selection else "")
        out["selection_text"] = (f"alpha = {selection['alpha']:g} with the {selection['loss']} loss{lr}, chosen on "
                                 f"the validation years from {selection['n_trials_each']} trials (scratch: the same "
                                 "number)")
    table = student_table(frame) if table is None else table
    pairs = paired_comparison(frame, selection, n_boot) if pairs is None else pairs
    if table.empty or pairs.empty:
        return out
    better = int((pairs["diff"] > 0).sum())
    sure = int((pairs["ci_low"] > 0).sum())
    out["verdict_sizes"] = (f"distilled students have a lower mean test RMSE than scratch at {better} of {len(pairs)} "
                            f"student sizes, with the 95% interval of the difference above zero at {sure}")
    checks = target_check(table, pairs["method"].iloc[0])
    out["target_text"] = (f"{int(checks['keeps_anom'].sum())} of {len(checks)} distilled students within that "
                          "size keep at least 90% of the teacher's anomaly skill above climatology"
                          if len(checks) else "no distilled student at this profile is that small")
    row = pairs[pairs["student"] == student]
    kd = table[(table["student"] == student) & (table["init"] == "distilled")]
    kd = kd[kd["method"] == row["method"].iloc[0]] if len(row) else kd
    sc = table[(table["student"] == student) & (table["init"] == "scratch")]
    if row.empty or kd.empty or sc.empty:
        return out
    row, kd, sc = row.iloc[0], kd.iloc[0], sc.iloc[0]
    seeds = sorted(int(s) for s in _students(frame, "final").query("student == @student")["seed"].unique())
    out.update(
        compression_params=float(kd["params_ratio"]), compression_flops=float(kd["flops_ratio"]),
        student_params=float(kd["n_params"]), student_mb=float(kd["n_params"]) * 4 / 1e6,
        teacher_params=float(kd["n_params"] * kd["params_ratio"]), retained_skill=float(kd["retained_skill"]),
        retained_skill_scratch=float(sc["retained_skill"]), r2_ratio=float(kd["r2_ratio"]),
        gap_closed=float(row["gap_closed"]), rmse_distilled=float(row["rmse_distilled"]),
        rmse_scratch=float(row["rmse_scratch"]), rmse_teacher=float(row["rmse_teacher"]),
        rmse_diff=float(row["diff"]), rmse_diff_low=float(row["ci_low"]), rmse_diff_high=float(row["ci_high"]),
        p_value=float(row["p_value"]), n_seeds=float(len(seeds)),
        provenance=f"profile {profile}, hardware: {hardware}, {_seeds_text(seeds)}")
    out["gap_closed_text"] = (f"distillation closes {_pct(row['gap_closed'])} of the scratch-to-teacher test-RMSE gap "
                              f"at {student}" if np.isfinite(row["gap_closed"]) else
                              f"the gap closed at {student} is not reported: {row['gap_reason']}")
    rs = kd["retained_skill"]
    out["retained_text"] = (f"the distilled {student} keeps {_pct(rs)} of the teacher's anomaly skill above "
                            f"climatology (scratch: {_pct(sc['retained_skill'])})" if np.isfinite(rs) else
                            "retained skill is undefined: the teacher has no anomaly skill above climatology")
    return out


def error_maps(profile: str, frame: pd.DataFrame, student: str, seed: int = 0,
               selection: dict | None = None) -> dict[str, np.ndarray]:
    """Stored test RMSE maps ``(h, w)`` of the teacher and ``student`` (scratch, distilled) at
    ``seed``: label -> array for each ``results/<profile>/maps/<run_id>.npz`` that exists."""
    w = wide(frame)
    if w.empty:
        return {}
    chosen = chosen_method(frame, selection)
    picks = {"teacher": w[(w["kind"] == "teacher") & (w["init"] == "pretrained")],
             "scratch": w[(w["student"] == student) & (w["tag"] == "final") & (w["init"] == "scratch")
                          & (w["seed"] == seed)],
             "distilled": w[(w["student"] == student) & (w["tag"] == "final") & (w["init"] == "distilled")
                            & (w["seed"] == seed) & (w["method"] == (chosen[0] if chosen else ""))]}
    out = {}
    for label, rows in picks.items():
        for run_id in rows["run_id"]:
            path = results_dir(profile) / "maps" / f"{run_id}.npz"
            if path.is_file():
                with np.load(path) as z:
                    out[f"{label} ({student})" if label != "teacher" else label] = z["rmse"]
                break
    return out


# --------------------------------------------------------------------------- the teacher (chapter 02)
def teacher_command(profile: str) -> str:
    """The command that makes a profile's teacher results (at ``full``: the budgeted GPU run)."""
    if profile == "full":
        return "python -m ecodistill gpu-run --budget-s 540 on a GPU"
    return f"python -m ecodistill train-teacher --profile {profile}"


def no_teacher_message(profile: str, what: str = "results") -> str:
    """``no <profile> <what> yet — run <command>``: what a chapter prints without the teacher."""
    return f"no {profile} {what} yet — run {teacher_command(profile)}"


def teacher_predictions_ready(profile: str) -> bool:
    """True when ``results/<profile>/teacher/`` holds the teacher record and the predictions
    offline distillation reads (the train, val and test manifests)."""
    folder = results_dir(profile) / "teacher"
    return (folder / "teacher.json").is_file() and all(
        (folder / f"pred_{split}.manifest.json").is_file() for split in ("train", "val", "test"))


def input_channel_count(data_cfg: Any) -> int:
    """Model input channels of a :class:`~ecodistill.config.DataConfig`, without building the
    data: today's weather, its trailing mean over every history window, the static maps and the
    calendar (the channel list of :func:`ecodistill.data.prepare`)."""
    from .data.prepare import CALENDAR_CHANNELS, STATIC_CHANNELS
    from .data.schema import WEATHER_VARS

    return len(WEATHER_VARS) * (1 + len(data_cfg.history_windows)) + len(STATIC_CHANNELS) + len(CALENDAR_CHANNELS)


def architecture_table(profiles: tuple[str, ...] = ("smoke", "full")) -> pd.DataFrame:
    """The teacher's shape and cost per profile and stage, built on the ``meta`` device (no
    memory, no data, seconds even for the ~10^8-parameter ``full`` teacher).

    Stages: ``pre-training`` (today's weather -> tomorrow's) and ``adapted`` (all inputs -> NDVI;
    new first layer and head on the same blocks). Costs from :func:`ecodistill.models.model_card`
    (FLOPs per map include the FFTs, counted analytically).

    Columns: ``profile, stage, grid, patch, tokens, embed_dim, depth, afno_blocks, mlp_ratio,
    in_chans, out_chans, n_params, flops_per_map, fft_flops, bytes_per_map, weights_mb``.
    """
    import torch

    from .config import get_profile
    from .data.schema import WEATHER_VARS
    from .models import afno_from_config, model_card

    rows = []
    for profile in profiles:
        cfg = get_profile(profile)
        t, grid = cfg.teacher, (cfg.data.nlat, cfg.data.nlon)
        stages = {"pre-training": (len(WEATHER_VARS), len(WEATHER_VARS)), "adapted": (input_channel_count(cfg.data), 1)}
        for stage, (c_in, c_out) in stages.items():
            with torch.device("meta"):
                model = afno_from_config(t, c_in, c_out, grid)
            rows.append({"profile": profile, "stage": stage, "grid": f"{grid[0]}x{grid[1]}", "patch": t.patch_size,
                         "tokens": f"{grid[0] // t.patch_size}x{grid[1] // t.patch_size}", "embed_dim": t.embed_dim,
                         "depth": t.depth, "afno_blocks": t.num_blocks, "mlp_ratio": t.mlp_ratio, "in_chans": c_in,
                         "out_chans": c_out, **model_card(model, (c_in, *grid))})
    return pd.DataFrame(rows)


def teacher_skill(frame: pd.DataFrame, baselines: bool = True) -> pd.DataFrame:
    """Test skill over land of the adapted (``pretrained``) and from-scratch teachers, mean ± std
    over seeds, and the baselines' rows (``kind=baseline``) when ``baselines`` and present.

    Columns: ``model, init, method, n_params, flops_per_map, n_seeds, r2_mean, r2_std,
    r2_anom_mean, r2_anom_std, rmse_mean, rmse_std, rmse_latw_mean, rmse_latw_std``.
    """
    w = wide(frame)
    kinds = ["teacher", "baseline"] if baselines else ["teacher"]
    rows = w[w["kind"].isin(kinds)]
    if rows.empty or not (rows["kind"] == "teacher").any():
        return pd.DataFrame()
    rows = rows.assign(model=np.where(rows["kind"] == "teacher", "teacher (" + rows["init"] + ")",
                                      "baseline: " + rows["method"]))
    out = _agg(rows, ["model", "init", "method", "n_params", "flops_per_map"], ("r2", "r2_anom", "rmse", "rmse_latw"))
    order = out["model"].map(lambda m: (not m.startswith("teacher"), m))
    return out.loc[order.sort_values().index].reset_index(drop=True)


def teacher_biomes(frame: pd.DataFrame, metric: str = "r2_anom") -> pd.DataFrame:
    """Test ``metric`` per biome (rows) of the adapted and scratch teachers (columns, mean over
    seeds), for :func:`ecodistill.plots.group_skill`; empty without teacher biome rows."""
    f = frame[(frame["target"] == "ndvi") & (frame["kind"] == "teacher") & (frame["split"] == "test")
              & (frame["metric"] == metric) & frame["region"].astype(str).str.startswith("biome:")]
    if f.empty:
        return pd.DataFrame()
    f = f.assign(biome=f["region"].str[6:], model="teacher (" + f["init"] + ")")
    return f.pivot_table(index="biome", columns="model", values="value", aggfunc="mean").sort_index()


def headroom_check(headroom: pd.DataFrame, max_params: float = 1e6, factor: float = 2.0) -> dict[str, Any]:
    """The headroom requirement, computed from :func:`headroom_table`.

    1. *rising*: the scratch models' mean test anomaly R² rises at every step up in size;
    2. *beats*: the adapted teacher's anomaly R² exceeds the best scratch model of at most
       ``max_params`` parameters by more than ``factor`` x the seed spread (the larger of the
       two models' standard deviations over seeds; undefined with one seed per model).

    Returns:
        ``rising, beats, passes`` (bool, or None when they cannot be judged), ``n_sizes``,
        ``teacher_r2_anom, best_small_r2_anom, best_small_params, margin, spread`` (floats,
        NaN when absent) and ``verdict`` (a sentence built from these numbers).
    """
    nan = float("nan")
    out: dict[str, Any] = {"rising": None, "beats": None, "passes": None, "n_sizes": 0, "teacher_r2_anom": nan,
                           "best_small_r2_anom": nan, "best_small_params": nan, "margin": nan, "spread": nan,
                           "verdict": "no headroom runs yet"}
    if headroom is None or headroom.empty:
        return out
    h = headroom[headroom["model"] == "headroom"].sort_values("n_params")
    teacher = headroom[headroom["model"] == "teacher (pretrained)"]
    steps = np.diff(h["r2_anom_mean"].to_numpy(float))
    out["n_sizes"] = len(h)
    out["rising"] = bool((steps > 0).all()) if len(h) > 1 else None
    small = h[h["n_params"] <= max_params]
    rising_text = ("with a single size, whether skill rises with size cannot be judged" if out["rising"] is None else
                   f"anomaly R² {'rises' if out['rising'] else 'does not rise'} with size "
                   f"({int((steps > 0).sum())} of {len(steps)} steps up)")
    if teacher.empty or small.empty:
        out["verdict"] = f"not judged: {rising_text}, but no adapted teacher or no scratch model of ≤{max_params:,.0f} parameters"
        return out
    t, best = teacher.iloc[0], small.loc[small["r2_anom_mean"].idxmax()]
    spreads = [s for s in (t["r2_anom_std"], best["r2_anom_std"]) if pd.notna(s)]
    margin = float(t["r2_anom_mean"] - best["r2_anom_mean"])
    out.update(teacher_r2_anom=float(t["r2_anom_mean"]), best_small_r2_anom=float(best["r2_anom_mean"]),
               best_small_params=float(best["n_params"]), margin=margin, spread=max(spreads) if spreads else nan)
    beat_text = (f"the adapted teacher's test anomaly R² ({t['r2_anom_mean']:.3f}) is {abs(margin):.3f} "
                 f"{'above' if margin > 0 else 'below'} the best scratch model of ≤{max_params:,.0f} parameters "
                 f"({best['r2_anom_mean']:.3f} at {int(best['n_params']):,} parameters)")
    if not spreads:
        out["verdict"] = (f"not judged: {rising_text}; {beat_text}, but with one seed per model the seed spread "
                          "is unknown (run more seeds)")
        return out
    out["beats"] = bool(margin > factor * out["spread"])
    out["passes"] = None if out["rising"] is None else bool(out["beats"] and out["rising"])
    word = {True: "passes", False: "fails", None: "not judged"}[out["passes"]]
    out["verdict"] = (f"{word}: {rising_text}; {beat_text}, "
                      f"{'more' if out['beats'] else 'not more'} than {factor:g} x the seed spread ({out['spread']:.3f})")
    return out


# --------------------------------------------------------------------------- one run (chapter 03)
def provenance_text(profile: str, seeds, hardware: str | None = None) -> str:
    """``profile <p>, hardware: <where>, <n> seeds (...)`` for a chapter's numbers."""
    return f"profile {profile}, hardware: {hardware or hardware_label(profile)}, {_seeds_text(sorted(int(s) for s in seeds))}"


def run_metrics(frame: pd.DataFrame, run_ids: dict[str, str], split: str = "test",
                metrics: tuple[str, ...] = ("rmse", "rmse_latw", "r2", "r2_anom", "fidelity_r2")) -> pd.DataFrame:
    """Global ``metrics`` of named runs side by side: one row per label (``label -> run_id``),
    NaN where a run has no such row (e.g. ``fidelity_r2`` of a run without the teacher)."""
    w = wide(frame, split).set_index("run_id")
    rows = []
    for label, run_id in run_ids.items():
        r = w.loc[run_id] if run_id in w.index else pd.Series(dtype=float)
        rows.append({"model": label, "run_id": run_id, **{m: float(r.get(m, np.nan)) for m in metrics}})
    return pd.DataFrame(rows).set_index("model")


def run_history(profile: str, run_id: str) -> list[dict]:
    """The training history (one dict per epoch) stored in a run's config JSON ([] if none)."""
    try:
        return list(runs.read_run_config(profile, run_id).get("history", []))
    except FileNotFoundError:
        return []


def stored_maps(profile: str, run_ids: dict[str, str], key: str = "rmse") -> dict[str, np.ndarray]:
    """``label -> (h, w)`` test error maps of the runs whose ``results/<profile>/maps/<run_id>.npz`` exists."""
    out = {}
    for label, run_id in run_ids.items():
        path = results_dir(profile) / "maps" / f"{run_id}.npz"
        if run_id and path.is_file():
            with np.load(path) as z:
                out[label] = z[key]
    return out


def cost_table(cards: dict[str, dict], reference: str = "teacher") -> pd.DataFrame:
    """Cost per map of models (``label -> model_card``) and the ``reference`` model's multiple of
    each (``params_ratio``, ``flops_ratio``, ``bytes_ratio``: reference / model)."""
    table = pd.DataFrame(cards).T[["n_params", "flops_per_map", "bytes_per_map", "weights_mb"]].astype(float)
    ref = table.loc[reference]
    for col, ratio in (("n_params", "params_ratio"), ("flops_per_map", "flops_ratio"), ("bytes_per_map", "bytes_ratio")):
        table[ratio] = ref[col] / table[col]
    return table


def teacher_frame(frame: pd.DataFrame, record: dict | None) -> pd.DataFrame:
    """The rows on the teacher record's dataset (``teacher.json``), with teacher rows limited
    to the record's two runs (adapted and from scratch): stale teacher runs of an older
    configuration or dataset never mix in. Empty without a record."""
    if not record:
        return frame.iloc[0:0]
    f = frame[frame["dataset_hash"].astype(str) == str(record.get("dataset_hash"))]
    ids = {record.get("run_id"), record.get("scratch_run_id")} - {None}
    return f[(f["kind"] != "teacher") | f["run_id"].isin(ids)].reset_index(drop=True)


def model_cards(profile: str, students: tuple = ()) -> dict[str, dict]:
    """:func:`ecodistill.models.model_card` of the profile's adapted teacher (``teacher``) and
    of the given :class:`~ecodistill.config.StudentConfig` presets (by name), built on the
    ``meta`` device: the architecture's cost, no weights or data needed."""
    import torch

    from .config import get_profile
    from .models import afno_from_config, build_student, model_card

    cfg = get_profile(profile)
    c_in, grid = input_channel_count(cfg.data), (cfg.data.nlat, cfg.data.nlon)
    with torch.device("meta"):
        models = {"teacher": afno_from_config(cfg.teacher, c_in, 1, grid),
                  **{s.name: build_student(s, c_in, 1, grid) for s in students}}
    return {name: model_card(m, (c_in, *grid)) for name, m in models.items()}


def adaptation_verdict(skill: pd.DataFrame) -> str:
    """A sentence, computed from :func:`teacher_skill`, on whether pre-training helps: the
    adapted teacher's test anomaly R² and RMSE against the same network trained from scratch,
    judged against twice the seed spread when both have several seeds."""
    t = skill.set_index("model") if len(skill) else pd.DataFrame()
    if not {"teacher (pretrained)", "teacher (scratch)"} <= set(t.index):
        return "the adapted and the from-scratch teacher are not both in the results, so pre-training is not judged"
    a, s = t.loc["teacher (pretrained)"], t.loc["teacher (scratch)"]
    diff = float(a["r2_anom_mean"] - s["r2_anom_mean"])
    text = (f"the adapted teacher's test anomaly R² is {abs(diff):.3f} {'above' if diff > 0 else 'below'} the "
            f"from-scratch teacher's ({a['r2_anom_mean']:.3f} vs {s['r2_anom_mean']:.3f}; RMSE "
            f"{a['rmse_mean']:.4f} vs {s['rmse_mean']:.4f})")
    spreads = [v for v in (a["r2_anom_std"], s["r2_anom_std"]) if pd.notna(v)]
    if len(spreads) < 2:
        return text + ", from one seed each, so the difference is not tested against seed variation"
    resolved = abs(diff) > 2 * max(spreads)
    return text + (f", {'more' if resolved else 'not more'} than twice the seed spread ({max(spreads):.3f})")


def teacher_headline(skill: pd.DataFrame) -> dict[str, float | str]:
    """The teacher chapter's quoted numbers from :func:`teacher_skill` (NaN when absent):
    ``teacher_test_{r2, r2_anom, rmse, rmse_latw}`` of the adapted teacher,
    ``scratch_teacher_test_{r2_anom, rmse}`` and ``adaptation_text``."""
    t = skill.set_index("model") if len(skill) else pd.DataFrame()

    def pick(model: str, col: str) -> float:
        return float(t.loc[model, col]) if model in t.index else float("nan")

    out: dict[str, float | str] = {f"teacher_test_{m}": pick("teacher (pretrained)", f"{m}_mean")
                                   for m in ("r2", "r2_anom", "rmse", "rmse_latw")}
    out.update(scratch_teacher_test_r2_anom=pick("teacher (scratch)", "r2_anom_mean"),
               scratch_teacher_test_rmse=pick("teacher (scratch)", "rmse_mean"),
               adaptation_text=adaptation_verdict(skill))
    return out


def objective_text(dcfg: Any) -> str:
    """The objective a :class:`~ecodistill.config.DistillConfig` trains with, as one line with
    ``alpha`` filled in (formulas and citations: :mod:`ecodistill.losses`, :mod:`ecodistill.objectives`).

    Raises:
        ValueError: for a loss name :mod:`ecodistill.losses` does not know.
    """
    from .losses import FEATURE_LOSSES, LOSSES

    a, b = f"{dcfg.alpha:g}", f"{1 - dcfg.alpha:g}"
    if dcfg.mode == "scratch":
        return "mode scratch: L = D(s, y) with D the squared error, observations only (alpha unused)"
    if dcfg.mode == "self":
        return (f"mode self: L = D(s, y) + mean over the shallow heads s_k of [{a}·D(s_k, s) + {b}·D(s_k, y)], "
                "D the squared error")
    if dcfg.loss not in LOSSES:
        raise ValueError(f"unknown loss {dcfg.loss!r}: choose one of {sorted(LOSSES)}")
    base = {"mse": "squared error", "l1": "absolute error", "huber": "Huber error"}
    if dcfg.loss in base:
        text = f"L = {a}·D(s, t) + {b}·D(s, y), D the {base[dcfg.loss]}"
    elif dcfg.loss == "bounded":
        text = f"L = {b}·D(s, y) + {a}·mean of (s - y)² where (s - y)² + {dcfg.margin:g} > (t - y)², D the squared error"
    elif dcfg.loss == "spectral":
        text = f"L = {a}·D(s, t) + {b}·D(s, y) + {a}·spectral(s, t), D the squared error"
    elif dcfg.loss == "gaussian":
        text = f"L = {a}·KL(N_t ‖ N_s) + {b}·NLL(y; N_s)"
    else:
        assert dcfg.loss in FEATURE_LOSSES
        text = f"L = {a}·D(s, t) + {b}·D(s, y) + {dcfg.feature_weight:g}·{dcfg.loss}(f_s, f_t), D the squared error"
    source = {"offline": "the teacher's cached predictions", "online": "a teacher trained alongside (mutual learning)"}
    return f"mode {dcfg.mode}, loss {dcfg.loss}, alpha {a}: {text}; t = {source.get(dcfg.mode, 'the teacher')}"


def run_headline(skill: pd.DataFrame | None, fidelity_test: pd.Series | None, cost: pd.DataFrame,
                 student: str, dcfg: Any) -> dict[str, float | str]:
    """The distillation chapter's quoted numbers (NaN when absent) and sentences.

    Args:
        skill: :func:`run_metrics` on the test split with rows ``teacher, scratch, distilled``.
        fidelity_test: the test ``fidelity_r2`` per row label.
        cost: :func:`cost_table` with rows ``teacher`` and ``student``.
    """
    nan = float("nan")
    s = skill if skill is not None else pd.DataFrame()

    def get(row: str, col: str) -> float:
        return float(s.loc[row, col]) if row in s.index and col in s else nan

    out: dict[str, float | str] = {
        "distill_test_rmse": get("distilled", "rmse"), "scratch_test_rmse": get("scratch", "rmse"),
        "teacher_test_rmse": get("teacher", "rmse"), "distill_test_r2_anom": get("distilled", "r2_anom"),
        "scratch_test_r2_anom": get("scratch", "r2_anom"),
        "fidelity_r2": float(fidelity_test.get("distilled", nan)) if fidelity_test is not None else nan,
        "student_params": float(cost.loc[student, "n_params"]), "params_ratio": float(cost.loc[student, "params_ratio"]),
        "flops_ratio": float(cost.loc[student, "flops_ratio"]), "bytes_ratio": float(cost.loc[student, "bytes_ratio"]),
        "distill_setting": f"{student} distilled with {objective_text(dcfg)}"}
    diff = out["scratch_test_rmse"] - out["distill_test_rmse"]
    out["distill_verdict"] = ("no runs to compare" if not np.isfinite(diff) else
                              f"the distilled student's test RMSE is {abs(diff):.4f} "
                              f"{'lower' if diff > 0 else 'higher' if diff < 0 else 'equal to'}"
                              f"{' than' if diff else ''} the scratch student's, from one seed (chapter 4 tests "
                              "such differences over seeds)")
    return out
