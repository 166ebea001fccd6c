"""The named cases beside the main comparison (chapter 4), each selecting its own data variant:

* :func:`privileged_table` -- the privileged-information case (Lopez-Paz et al. 2016): the
  headline teacher, which sees the land state and the profile's history, distilled into students
  that see only what a field device holds (the atmosphere, today or with a recurrent state; tag
  ``field``), against the same students from scratch, seed-paired with the book's bootstrap;
* :func:`nowcast_table` -- the nowcast use: the headline student given the NDVI observed at least
  L days before (tags ``nowcast<L>``) against persistence of that observation;
* :func:`memory_table` -- the headline student from scratch at every history setting: what
  windows, stacked days, a sequence and a recurrent state give at one size.

Reads result rows with their data variants (:func:`ecodistill.report.frames.read_current` with
``variant=None``) and the teacher record. Explained in book/generated/04_results.ipynb ("The
privileged-information case", "The nowcast use", "Memory at one size").
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .frames import biome_weights, empty_table, labelled, profile_of, wide
from .ladder import HISTORIES, references
from .paired import paired_difference

PRIVILEGED_COLUMNS = ["inputs", "history", "student", "n_params", "n_pairs", "r2_anom_scratch", "r2_anom_distilled",
                      "d_r2_anom", "d_r2_anom_low", "d_r2_anom_high", "diff", "ci_low", "ci_high", "p_value",
                      "n_blocks", "verdict", "teacher_inputs", "teacher_history", "teacher_r2_anom"]
NOWCAST_COLUMNS = ["latency", "student", "n_seeds", "model_mean", "model_std", "model_min", "persistence", "diff",
                   "beats"]
MEMORY_COLUMNS = ["history", "student", "n_params", "n_seeds", "r2_anom_mean", "r2_anom_std"]


def _matrix(profile: str, stage: str) -> str:
    gpu = " on a GPU" if profile == "full" else ""
    return f"no {profile} {stage} runs yet — run python -m ecodistill matrix --profile {profile} --stages {stage}{gpu}"


def verdict(low: float, high: float) -> str:
    """``helps`` (the ΔRMSE interval lies below zero), ``hurts`` (above) or ``unresolved``."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "unresolved"
    return "helps" if high < 0 else "hurts" if low > 0 else "unresolved"


def privileged_table(frame: pd.DataFrame, record: dict | None, n_boot: int = 2000) -> pd.DataFrame:
    """Scratch vs distilled at every field-device setting and size (tag ``field``), seed-paired:
    the anomaly R² of both arms, ΔR² anomalies and ΔRMSE (distilled − scratch) with the 95%
    interval of the seeds x biomes bootstrap, the Wilcoxon p, the verdict, and the teacher (what
    it sees and its test anomaly R²)."""
    profile = profile_of(frame)
    w = wide(frame)
    field = w[(w["kind"] == "student") & (w["tag"] == "field")] if "tag" in w else w.iloc[0:0]
    if field.empty or "inputs" not in field:
        return empty_table(PRIVILEGED_COLUMNS, _matrix(profile, "privileged"))
    teacher = w[w["run_id"] == (record or {}).get("run_id")]
    t = teacher.iloc[0] if len(teacher) else None
    weights, out = biome_weights(frame), []
    for (inputs, history, student), rows in field.groupby(["inputs", "history", "student"], sort=False):
        pair = paired_difference(frame, rows[rows["init"] == "scratch"], rows[rows["init"] == "distilled"], n_boot,
                                 weights)
        if not pair["n_pairs"]:
            continue
        out.append({"inputs": inputs, "history": history, "student": student, "n_params": int(rows["n_params"].max()),
                    "n_pairs": pair["n_pairs"], "r2_anom_scratch": pair["r2_anom_base"],
                    "r2_anom_distilled": pair["r2_anom_arm"], "d_r2_anom": pair["d_r2_anom"],
                    "d_r2_anom_low": pair["d_r2_anom_low"], "d_r2_anom_high": pair["d_r2_anom_high"],
                    "diff": pair["diff"], "ci_low": pair["ci_low"], "ci_high": pair["ci_high"],
                    "p_value": pair["p_value"], "n_blocks": pair["n_blocks"],
                    "verdict": verdict(pair["ci_low"], pair["ci_high"]),
                    "teacher_inputs": t["inputs"] if t is not None else "–",
                    "teacher_history": t["history"] if t is not None else "–",
                    "teacher_r2_anom": float(t["r2_anom"]) if t is not None and "r2_anom" in t else np.nan})
    if not out:
        return empty_table(PRIVILEGED_COLUMNS, _matrix(profile, "privileged"))
    return labelled(pd.DataFrame(out, columns=PRIVILEGED_COLUMNS), _matrix(profile, "privileged"))


def privileged_shown(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`privileged_table` as the chapter shows it (formats of the summary table)."""
    from .summary import fmt, fmt_diff, fmt_dr2

    cols = ["field device sees", "student", "parameters", "seeds", "anomaly R² scratch → distilled",
            "ΔR² anomalies [95% CI]", "ΔRMSE ×10⁻³ [95% CI]", "p", "teacher sees (its anomaly R²)"]
    if table.empty:
        return empty_table(cols, table.attrs.get("missing", ""))
    rows = [{"field device sees": f"{r['inputs']}, {r['history']}", "student": r["student"],
             "parameters": fmt("params", r["n_params"]), "seeds": int(r["n_pairs"]),
             "anomaly R² scratch → distilled": f"{_r2(r['r2_anom_scratch'])} →\n{_r2(r['r2_anom_distilled'])}",
             "ΔR² anomalies [95% CI]": fmt_dr2(r["d_r2_anom"], r["d_r2_anom_low"], r["d_r2_anom_high"], "\n"),
             "ΔRMSE ×10⁻³ [95% CI]": fmt_diff(r["diff"], r["ci_low"], r["ci_high"], "\n"), "p": fmt("p", r["p_value"]),
             "teacher sees (its anomaly R²)": f"{r['teacher_inputs']}, {r['teacher_history']}\n"
                                              f"({_r2(r['teacher_r2_anom'])})"} for _, r in table.iterrows()]
    return labelled(pd.DataFrame(rows, columns=cols), table.attrs.get("missing", ""))


def nowcast_table(frame: pd.DataFrame, own: dict | None = None) -> pd.DataFrame:
    """Per latency L: the student given the NDVI observed at least L days before (scratch, every
    seed: mean, std and worst seed of the test anomaly R²) against persistence of that
    observation; ``beats``: ``yes`` when every seed is above persistence, ``no`` when the mean is
    below it, else ``not resolved``."""
    profile = profile_of(frame)
    w = wide(frame)
    if w.empty or "ndvi_latency" not in w:
        return empty_table(NOWCAST_COLUMNS, _matrix(profile, "nowcast"))
    latency = pd.to_numeric(w["ndvi_latency"], errors="coerce").fillna(0).astype(int)
    models = w[(w["kind"] == "student") & (latency > 0)]
    refs = references(frame, {k: v for k, v in (own or {}).items() if k in ("world", "inputs", "history")} or None)
    out = []
    for lat, rows in models.groupby(latency[models.index], sort=True):
        for student, part in rows.groupby("student"):
            ref = refs["persistence"] if lat == 1 else refs.get(f"persistence_{lat}d", np.nan)
            skill = part["r2_anom"].astype(float)
            beats = ("yes" if np.isfinite(ref) and (skill > ref).all() else
                     "no" if np.isfinite(ref) and skill.mean() < ref else "not resolved")
            out.append({"latency": int(lat), "student": student, "n_seeds": len(part), "model_mean": skill.mean(),
                        "model_std": skill.std(ddof=1) if len(part) > 1 else np.nan, "model_min": skill.min(),
                        "persistence": ref, "diff": skill.mean() - ref, "beats": beats})
    if not out:
        return empty_table(NOWCAST_COLUMNS, _matrix(profile, "nowcast"))
    return labelled(pd.DataFrame(out, columns=NOWCAST_COLUMNS), _matrix(profile, "nowcast"))


def memory_table(frame: pd.DataFrame, student: str, own: dict | None = None) -> pd.DataFrame:
    """The scratch ``student`` (tag ``final``, no NDVI input, the main comparison's world and
    inputs) at every history setting that has runs: mean and std over seeds."""
    from .frames import aggregate

    profile = profile_of(frame)
    w = wide(frame)
    if w.empty or "history" not in w:
        return empty_table(MEMORY_COLUMNS, _matrix(profile, "memory"))
    keep = (w["kind"] == "student") & (w["init"] == "scratch") & (w["tag"] == "final") & (w["student"] == student)
    keep &= w["ndvi_latency"].astype(str).isin(["0", ""])
    for key in ("world", "inputs"):
        if own and key in own:
            keep &= w[key].astype(str) == str(own[key])
    rows = w[keep & w["history"].isin(HISTORIES)]
    if rows.empty:
        return empty_table(MEMORY_COLUMNS, _matrix(profile, "memory"))
    out = aggregate(rows, ["history", "student", "n_params"], ("r2_anom",))
    out = out.assign(_h=out["history"].map({h: i for i, h in enumerate(HISTORIES)})).sort_values("_h")
    return labelled(out[MEMORY_COLUMNS].reset_index(drop=True), _matrix(profile, "memory"))


def memory_shown(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    """:func:`memory_table` with what each history gives and the state a device keeps for it."""
    from .summary import fmt
    from .uses import HISTORY_TEXT, history_table

    cols = ["history", "what the model sees", "parameters", "state per pixel (bytes)", "seeds",
            "anomaly R² (mean ± std)"]
    if table.empty:
        return empty_table(cols, table.attrs.get("missing", ""))
    state = history_table(profile).set_index("history")["state per pixel (bytes)"]
    rows = [{"history": r["history"], "what the model sees": HISTORY_TEXT.get(r["history"], r["history"]),
             "parameters": fmt("params", r["n_params"]), "state per pixel (bytes)": int(state.get(r["history"], 0)),
             "seeds": int(r["n_seeds"]), "anomaly R² (mean ± std)": _r2(r["r2_anom_mean"])
             + (f" ± {_r2(r['r2_anom_std'])}" if np.isfinite(r["r2_anom_std"]) else "")}
            for _, r in table.iterrows()]
    return labelled(pd.DataFrame(rows, columns=cols), table.attrs.get("missing", ""))


def summary_with_cases(summary: pd.DataFrame, own: dict, refs: dict, privileged: pd.DataFrame | None = None,
                       nowcast: pd.DataFrame | None = None) -> pd.DataFrame:
    """The summary table (:func:`ecodistill.report.summary_table`) with the use and the history
    of every row and the achievable ceiling as a column, and the other cases appended: each
    field-device comparison (its own history, atmosphere-only inputs) and each nowcast student
    (scratch only, beside persistence at its latency)."""
    from .summary import fmt, fmt_diff, fmt_dr2

    if summary.empty:
        return summary
    ceiling = _r2(refs.get("ceiling", np.nan))
    out = summary.copy()
    out.insert(1, "use", "emulation")
    out.insert(2, "history", own.get("history", "–"))
    rows = []
    for _, r in (privileged if privileged is not None else pd.DataFrame()).iterrows():
        rows.append({"model": f"{r['student']}, field device ({r['inputs']})", "use": "emulation",
                     "history": r["history"], "parameters": fmt("params", r["n_params"]),
                     "anomaly R² scratch → distilled": f"{_r2(r['r2_anom_scratch'])} → "
                                                       f"{_r2(r['r2_anom_distilled'])}",
                     "ΔR² anomalies [95% CI]": fmt_dr2(r["d_r2_anom"], r["d_r2_anom_low"], r["d_r2_anom_high"], "\n"),
                     "ΔRMSE ×10⁻³ [95% CI]": fmt_diff(r["diff"], r["ci_low"], r["ci_high"], "\n"),
                     "p": fmt("p", r["p_value"])})
    for _, r in (nowcast if nowcast is not None else pd.DataFrame()).iterrows():
        rows.append({"model": f"{r['student']} + NDVI (scratch; persistence {_r2(r['persistence'])})",
                     "use": f"nowcast\nL={int(r['latency'])}", "history": own.get("history", "–"),
                     "anomaly R² scratch → distilled": _r2(r["model_mean"])})
    if rows:
        out = pd.concat([out, pd.DataFrame(rows)], ignore_index=True).fillna("")
    pair = "anomaly R² scratch → distilled"
    if pair in out:  # two lines, as the intervals: the table fits the page at 1,280 px
        out[pair] = out[pair].astype(str).str.replace(" → ", " →\n", regex=False)
    if {"ms per map", "speed-up"} <= set(out.columns):  # one column: the table fits the page at 1,280 px
        both = [f"{ms}\n({speed})" if ms not in ("", "–") else "" for ms, speed in zip(out["ms per map"], out["speed-up"])]
        out = out.drop(columns=["ms per map", "speed-up"]).assign(**{"ms per map (speed-up)": both})
    if {"parameters", "MFLOP per map"} <= set(out.columns):  # two lines of one cell, as the intervals
        both = [f"{p}\n{f} MFLOP" if f not in ("", "–") else p for p, f in zip(out["parameters"], out["MFLOP per map"])]
        out = out.drop(columns=["MFLOP per map"]).assign(parameters=both).rename(
            columns={"parameters": "parameters, MFLOP per map"})
    out["ceiling"] = ceiling
    out.attrs = dict(summary.attrs)
    return out


def _r2(value: float) -> str:
    """An anomaly R² for a table cell: the book's format, a true minus sign."""
    from .summary import fmt

    return fmt("r2", value).replace("-", "−")
