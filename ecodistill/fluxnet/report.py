"""Tables of the FLUXNET chapter, read from ``results/<profile>/runs`` only.

Spread is over seeds x folds (students) or folds (teacher, baselines) via
:func:`ecodistill.stats.summarise`; distilled vs scratch is a Wilcoxon signed-rank test over
the seed x fold pairs (:func:`ecodistill.stats.paired_test`). Explained in book/generated/06_fluxnet.ipynb.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .. import stats
from ..store import runs
from .config import FluxConfig

STUDENT_ARMS = ("scratch", "kd-mse", "kd-mse-unlabeled")
HELDOUT = "site-group:heldout-period"


def load_results(profile: str, cfg: FluxConfig | None = None) -> pd.DataFrame:
    """Every FLUXNET row of ``results/<profile>/runs`` (empty frame when there are none).

    With ``cfg``, only the runs made with its settings (runs of older settings may lie beside
    them in the same folder).
    """
    frame = runs.read_runs(profile)
    frame = frame[frame["run_id"].astype(str).str.startswith("fluxnet-")]
    if cfg is not None:
        keep = set()
        for path in runs.runs_dir(profile).glob("fluxnet-*.json"):
            used = FluxConfig(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in json.loads(path.read_text())["flux_config"].items()})
            part = "student_part" if "-students-" in path.stem else "teacher_part"
            if getattr(used, part)() == getattr(cfg, part)():
                keep.add(path.stem)
        frame = frame[frame["run_id"].isin(keep)]
    return frame.reset_index(drop=True)


def _pm(mean: float, std: float, digits: int = 3) -> str:
    """``mean ± std`` as text (std omitted when undefined)."""
    return f"{mean:.{digits}f}" if not np.isfinite(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _test(frame: pd.DataFrame, region: str = "global") -> pd.DataFrame:
    return frame[(frame["split"] == "test") & (frame["region"] == region)]


#: The groups of :func:`model_table`: one row per model, students per size.
MODEL_KEYS = ["target", "kind", "method", "size"]


def model_rows(frame: pd.DataFrame, region: str = "global") -> pd.DataFrame:
    """The test rows of ``region`` grouped as :func:`model_table` groups them (``size``: the
    student's parameters, -1 for the others; every fold's teacher is one model, "teacher
    (chosen per fold)"), so a sentence and the table read the same means."""
    rows = _test(frame, region)
    # each fold picks its own teacher (see teacher_choices): one "teacher" row over the folds
    return rows.assign(size=rows["n_params"].where(rows["kind"] == "student", -1),
                       method=rows["method"].where(rows["kind"] != "teacher", "teacher (chosen per fold)"))


def model_table(frame: pd.DataFrame, region: str = "global") -> pd.DataFrame:
    """Test skill of every model (baselines, teacher, students by size) as ``mean ± std`` text.

    One row per (target, kind, method, size), the teacher as one row whatever each fold chose; columns R², RMSE, R² of anomalies, fidelity R²,
    and the number of runs (folds, or seeds x folds) the spread is over.
    """
    rows = model_rows(frame, region)
    if rows.empty:
        return pd.DataFrame()
    by = MODEL_KEYS
    out = None
    labels = {"r2": "R²", "rmse": "RMSE", "r2_anom": "R² anomalies", "fidelity_r2": "fidelity R²"}
    for metric, label in labels.items():
        s = stats.summarise(rows, by, metric)
        if s.empty:
            continue
        s[label] = [_pm(m, d) for m, d in zip(s["mean"], s["std"])]
        s = s[by + [label] + (["n"] if out is None else [])]
        out = s if out is None else out.merge(s, on=by, how="left")
    params = rows.groupby(by)["n_params"].median().rename("n_params (median)")
    out = out.merge(params.reset_index(), on=by).rename(columns={"n": "runs"})
    order = {"baseline": 0, "teacher": 1, "student": 2}
    out = out.sort_values(["target", "kind", "size", "method"],
                          key=lambda c: c.map(order) if c.name == "kind" else c)
    out = out.drop(columns="size").fillna("").reset_index(drop=True)
    first = ["target", "kind", "method", "n_params (median)"]
    return out[first + [c for c in out.columns if c not in first]]


def student_table(frame: pd.DataFrame, metric: str = "r2", region: str = "global") -> pd.DataFrame:
    """Numeric mean/std/n of ``metric`` per (target, method, n_params) for the students and the
    teacher (teacher: ``n_params`` is its own size), for plots and headline numbers."""
    rows = _test(frame, region)
    rows = rows[rows["kind"].isin(["student", "teacher"])]
    if rows.empty:
        return pd.DataFrame(columns=["target", "kind", "method", "n_params", "mean", "std", "n", "ci95"])
    teacher = rows["kind"] == "teacher"
    # the teacher's size differs by fold (its trees grow to the data): one row at its median size
    median = rows["n_params"].groupby(rows["target"]).transform(lambda s: s[teacher[s.index]].median())
    rows = rows.assign(method=np.where(teacher, "teacher", rows["method"]),
                       n_params=np.where(teacher, median, rows["n_params"]))
    return stats.summarise(rows, ["target", "kind", "method", "n_params"], metric)


def paired_table(frame: pd.DataFrame, metric: str = "r2", region: str = "global",
                 baseline: str = "scratch") -> pd.DataFrame:
    """Distilled arm minus scratch, per (target, size, arm), paired over (seed, fold).

    Columns: target, n_params, arm, n, mean_diff, median_diff, wins, p_value.
    """
    rows = _test(frame, region)
    rows = rows[(rows["kind"] == "student") & (rows["metric"] == metric)]
    out = []
    for (target, size), group in rows.groupby(["target", "n_params"]):
        for arm in STUDENT_ARMS[1:]:
            pairs = stats.paired(group, ["seed", "fold"], "method", baseline, arm)
            if pairs.empty:
                continue
            res = stats.paired_test(pairs[baseline], pairs[arm])
            out.append({"target": target, "n_params": int(size), "arm": arm, **res})
    cols = ["target", "n_params", "arm", "n", "mean_diff", "median_diff", "wins", "p_value"]
    return pd.DataFrame(out, columns=cols + ["statistic"])[cols]


def unlabeled_effect(frame: pd.DataFrame, metric: str = "r2", region: str = "global") -> pd.DataFrame:
    """``kd-mse-unlabeled`` minus ``kd-mse`` (what the teacher-labelled months add), paired."""
    rows = _test(frame, region)
    rows = rows[(rows["kind"] == "student") & (rows["metric"] == metric)]
    out = []
    for (target, size), group in rows.groupby(["target", "n_params"]):
        pairs = stats.paired(group, ["seed", "fold"], "method", "kd-mse", "kd-mse-unlabeled")
        if len(pairs):
            out.append({"target": target, "n_params": int(size),
                        **stats.paired_test(pairs["kd-mse"], pairs["kd-mse-unlabeled"])})
    return pd.DataFrame(out)


def igbp_table(frame: pd.DataFrame, metric: str = "r2") -> pd.DataFrame:
    """Mean test ``metric`` per IGBP class (rows) and model (columns), per target; students at
    their largest size. Classes with too few labelled test months in a fold are absent there."""
    rows = frame[(frame["split"] == "test") & frame["region"].str.startswith("site-group:")
                 & ~frame["region"].str.startswith(HELDOUT) & (frame["metric"] == metric)]
    if rows.empty:
        return pd.DataFrame()
    largest = rows[rows["kind"] == "student"].groupby("target")["n_params"].transform("max")
    rows = rows[(rows["kind"] != "student") | (rows["n_params"] == largest.reindex(rows.index))]
    keep = rows["kind"].isin(["teacher", "student"]) | rows["method"].isin(["climatology", "linear"])
    rows = rows[keep].assign(model=lambda r: np.where(r["kind"] == "teacher", "teacher", r["method"]),
                             igbp=lambda r: r["region"].str.split(":").str[1])
    table = rows.pivot_table(index=["target", "igbp"], columns="model", values="value", aggfunc="mean")
    cols = [c for c in ("climatology", "linear", "teacher", *STUDENT_ARMS) if c in table.columns]
    return table[cols].round(3)


def coverage(frame: pd.DataFrame) -> pd.DataFrame:
    """Labelled site-months per year for GPP and LAI (from :func:`~.reader.load_fluxval`)."""
    return frame.groupby("year")[["gpp", "lai"]].count()


def site_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per IGBP class: sites, labelled GPP months, labelled LAI months."""
    per = frame.groupby("igbp").agg(sites=("site", "nunique"), gpp_months=("gpp", "count"),
                                    lai_months=("lai", "count"))
    return per.sort_values("sites", ascending=False)


def verdict(paired: pd.DataFrame, level: float = 0.05) -> list[str]:
    """One plain sentence per (target, arm): where distillation beat scratch significantly."""
    out = []
    for (target, arm), group in paired.groupby(["target", "arm"]):
        better = group[(group["mean_diff"] > 0) & (group["p_value"] < level)]
        worse = group[(group["mean_diff"] < 0) & (group["p_value"] < level)]
        out.append(f"{target.upper()}, {arm} vs scratch: better at {len(better)} of {len(group)} sizes, "
                   f"worse at {len(worse)} (Wilcoxon p < {level} over {int(group['n'].max())} seed x fold "
                   "pairs; "
                   f"mean R² change {group['mean_diff'].min():+.3f} to {group['mean_diff'].max():+.3f}).")
    return out


def _configs(profile: str) -> list[dict]:
    """The JSON configs of every FLUXNET run of a profile."""
    return [json.loads(p.read_text()) for p in sorted(runs.runs_dir(profile).glob("fluxnet-*.json"))]


def teacher_choices(profile: str) -> pd.DataFrame:
    """Which teacher each (target, fold) chose on its validation sites, and its validation MSE."""
    rows = [{"target": c["target"], "fold": c["fold"], "teacher": c["teacher"],
             "val MSE": round(c["val_mse"][c["teacher"]], 3),
             "held-out years": "-".join(map(str, c["heldout_years"]))}
            for c in _configs(profile) if "teacher" in c]
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).sort_values(["target", "fold"]).reset_index(drop=True)


def provenance(profile: str) -> str:
    """Where and how the profile's FLUXNET numbers were computed, read from the run configs."""
    cfgs = _configs(profile)
    if not cfgs:
        return f"no {profile} results yet — run python -m ecodistill fluxnet --profile {profile}"
    students = [c for c in cfgs if "selected" in c]
    teachers = [c for c in cfgs if "teacher" in c]
    seconds = sum(c.get("seconds", 0) for c in teachers) + sum(
        v for c in students for k, v in c["selected"].items() if k.startswith("seconds"))
    hosts = {tuple(c.get("host", {}).get(k, "?") for k in ("processor", "cpu_count", "torch_threads", "device"))
             for c in cfgs}
    host = "; ".join(f"{p} ({n} cores, torch threads {t}, {d})"
                     for p, n, t, d in sorted(tuple(map(str, h)) for h in hosts))
    seeds = sorted({c["seed"] for c in students})
    folds = sorted({c["fold"] for c in students})
    targets = sorted({c["target"] for c in students})
    return (f"profile {profile}: {len(teachers)} teacher runs and {len(students)} student runs "
            f"(targets {', '.join(targets)}; folds {folds}; seeds {seeds}); computed on {host}; "
            f"compute time summed over runs {seconds / 60:.1f} min.")


def findings(frame: pd.DataFrame) -> list[str]:
    """Plain statements computed from the rows (no number in them is typed by hand)."""
    if frame.empty:
        return []
    out = []
    summary = student_table(frame)
    # the same groups as model_table, so the range is that of the table's column
    anom = stats.summarise(model_rows(frame), MODEL_KEYS, "r2_anom")
    for target, rows in summary.groupby("target"):
        teach = rows[rows["method"] == "teacher"]
        studs = rows[rows["kind"] == "student"]
        top = studs.loc[studs["mean"].idxmax()]
        out.append(f"{target.upper()}: teacher R² {teach['mean'].iloc[0]:.3f} over {int(teach['n'].iloc[0])} "
                   f"folds; best student {top['method']} ({int(top['n_params'])} parameters) R² "
                   f"{top['mean']:.3f} ± {top['std']:.3f} over {int(top['n'])} seed x fold runs.")
        a = anom[anom["target"] == target]
        out.append(f"{target.upper()}: R² of monthly anomalies (each site's seasonal cycle removed) ranges "
                   f"{a['mean'].min():.3f} to {a['mean'].max():.3f} across the models of the table above.")
    return out


def headline(summary: pd.DataFrame, target: str, method: str) -> float:
    """Mean test R² of ``method`` ("teacher" or a student arm) at its largest size (NaN if absent)."""
    rows = summary[(summary["target"] == target) & (summary["method"] == method)]
    return float(rows.sort_values("n_params")["mean"].iloc[-1]) if len(rows) else float("nan")


def gap_closed(summary: pd.DataFrame) -> pd.DataFrame:
    """Share of the scratch-to-teacher R² gap each distilled arm closes, per (target, size).

    The share is given only where the gap exceeds twice the scratch
    students' spread over seeds x folds; otherwise the gap is too small to speak of closing it.
    """
    out = []
    for target, rows in summary.groupby("target"):
        teacher = rows.loc[rows["method"] == "teacher", "mean"]
        for size, group in rows[rows["kind"] == "student"].groupby("n_params"):
            arms = group.set_index("method")
            if teacher.empty or "scratch" not in arms.index:
                continue
            gap = float(teacher.iloc[0] - arms.loc["scratch", "mean"])
            spread = float(arms.loc["scratch", "std"])
            row = {"target": target, "n_params": int(size), "teacher - scratch": round(gap, 4),
                   "2 x scratch std": round(2 * spread, 4)}
            for arm in STUDENT_ARMS[1:]:
                share = (arms.loc[arm, "mean"] - arms.loc["scratch", "mean"]) / gap if arm in arms.index else np.nan
                row[f"closed by {arm}"] = f"{share:.0%}" if gap > 2 * spread else "gap < 2 std"
            out.append(row)
    return pd.DataFrame(out)
