"""The headroom ladder (chapter 4): where does a teacher have something to give?

Student size x history setting, each rung the scratch arm (tuned, every seed; the protocol's
``ladder`` stage, :mod:`ecodistill.experiments.ladder`), beside the teacher of each history (the
top rung, one run), LightGBM on the same inputs and history, and two references drawn as lines:
the achievable ceiling (the simulator's noise-free NDVI) and persistence at a latency of one day
(the nowcast's reference; the ladder's models observe no NDVI). :func:`ladder_verdicts` says,
per history, whether the teacher beats the best scratch student of at most 1 M parameters by
more than twice that student's seed spread: where it does, distillation has something to
transfer.

Reads result rows with their data variants (:func:`ecodistill.report.frames.read_current` with
``variant=None``) and the teacher record. Explained in book/generated/04_results.ipynb ("The
headroom ladder").
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .frames import aggregate, empty_table, labelled, profile_of, wide

#: The ladder's history settings in the order they are drawn (the protocol's own).
HISTORIES = ("today", "short", "long", "recurrent", "stack", "sequence")
#: The size a Pi student may have: the teacher must beat the best scratch student up to it.
SMALL = 1_000_000
LADDER_COLUMNS = ["history", "model", "role", "family", "n_params", "n_seeds", "r2_anom_mean", "r2_anom_std",
                  "rmse_mean", "rmse_std"]
VERDICT_COLUMNS = ["history", "best small student", "its anomaly R²", "seed spread", "teacher", "gap",
                   "headroom", "LightGBM", "ceiling gap"]


def ladder_command(profile: str) -> str:
    gpu = " on a GPU" if profile == "full" else ""
    return f"python -m ecodistill matrix --profile {profile} --stages ladder trees{gpu}"


def _missing(profile: str) -> str:
    return f"no {profile} ladder yet — run {ladder_command(profile)}"


def references(frame: pd.DataFrame, variant: dict | None = None) -> dict[str, float]:
    """Test anomaly R² of the lines every ladder and use table draws: ``ceiling`` (noise-free),
    ``ceiling_bayes``, ``persistence`` (L = 1), ``persistence_16d``, ``persistence_30d``,
    ``climatology``; the baselines at ``variant`` (dict of variant columns) when given (they do
    not depend on the history, but exist once per variant). NaN where absent."""
    w = wide(frame)
    base = w[w["kind"] == "baseline"]
    for key, value in (variant or {}).items():
        if key in base:
            base = base[base[key].astype(str) == str(value)]
    names = {"ceiling-noise-free": "ceiling", "ceiling-bayes": "ceiling_bayes", "persistence": "persistence",
             "persistence-16d": "persistence_16d", "persistence-30d": "persistence_30d",
             "climatology": "climatology"}
    skill = base.groupby("method")["r2_anom"].mean() if "r2_anom" in base and len(base) else pd.Series(dtype=float)
    return {name: float(skill.get(method, np.nan)) for method, name in names.items()}


def ladder_table(frame: pd.DataFrame, record: dict | None, own: dict | None = None) -> pd.DataFrame:
    """One row per (history, model): the scratch students of the ladder (tag ``final``, the main
    comparison's world and inputs, no NDVI input) as mean and std over seeds, the teacher of
    each history (``record["by_history"]``; the record's teacher at its own history) and
    LightGBM at each history. ``attrs["refs"]``: :func:`references`; ``attrs["missing"]``."""
    profile = profile_of(frame)
    w = wide(frame)
    if w.empty or "history" not in w:
        return empty_table(LADDER_COLUMNS, _missing(profile))
    own = own or {}
    same = np.ones(len(w), bool)
    for key in ("world", "inputs"):
        if key in own:
            same &= w[key].astype(str).to_numpy() == str(own[key])
    same &= w["ndvi_latency"].astype(str).isin(["0", ""]).to_numpy()
    w = w[same]
    scratch = w[(w["kind"] == "student") & (w["init"] == "scratch") & (w["tag"] == "final")
                & (w["method"] != "headroom")].assign(role="scratch", model=lambda r: r["student"])
    teachers = dict((record or {}).get("by_history") or {})
    if record and own.get("history") and record.get("run_id"):
        teachers.setdefault(own["history"], record["run_id"])
    teacher = w[w["run_id"].isin(teachers.values())].assign(role="teacher", model="teacher")
    trees = w[(w["kind"] == "baseline") & (w["method"] == "lightgbm")].assign(role="LightGBM", model="LightGBM")
    rows = pd.concat([scratch, teacher, trees], ignore_index=True)
    rows = rows[rows["history"].isin(HISTORIES)]
    if scratch.empty or rows.empty:
        return empty_table(LADDER_COLUMNS, _missing(profile))
    out = aggregate(rows, ["history", "model", "role", "family", "n_params"], ("r2_anom", "rmse"))
    order = {h: i for i, h in enumerate(HISTORIES)}
    out = out.assign(_h=out["history"].map(order), _r=out["role"].map({"scratch": 0, "teacher": 1, "LightGBM": 2}))
    out = out.sort_values(["_h", "_r", "n_params"]).drop(columns=["_h", "_r"]).reset_index(drop=True)
    out = labelled(out[LADDER_COLUMNS], _missing(profile))
    out.attrs["refs"] = references(frame, {k: own[k] for k in ("world", "inputs") if k in own} or None)
    return out


def ladder_verdicts(table: pd.DataFrame, small: float = SMALL) -> pd.DataFrame:
    """Per history: the best scratch student of at most ``small`` parameters (mean test anomaly
    R² over seeds, its seed std), the teacher's, the gap (teacher − best), whether it exceeds
    twice the seed spread (``headroom``: yes / no / ``–`` without a teacher or a spread),
    LightGBM, and the gap to the ceiling (ceiling − best of every model at that history)."""
    if table.empty:
        return empty_table(VERDICT_COLUMNS, table.attrs.get("missing", "no ladder yet"))
    ceiling = table.attrs.get("refs", {}).get("ceiling", np.nan)
    out = []
    for history, part in table.groupby("history", sort=False):
        students = part[(part["role"] == "scratch") & (part["n_params"] <= small)]
        if students.empty:
            continue
        best = students.loc[students["r2_anom_mean"].idxmax()]
        teacher = part.loc[part["role"] == "teacher", "r2_anom_mean"]
        trees = part.loc[part["role"] == "LightGBM", "r2_anom_mean"]
        t = float(teacher.iloc[0]) if len(teacher) else np.nan
        spread = float(best["r2_anom_std"])
        gap = t - float(best["r2_anom_mean"])
        verdict = "–" if not (np.isfinite(gap) and np.isfinite(spread)) else ("yes" if gap > 2 * spread else "no")
        out.append({"history": history, "best small student": best["model"], "its anomaly R²": float(best["r2_anom_mean"]),
                    "seed spread": spread, "teacher": t, "gap": gap, "headroom": verdict,
                    "LightGBM": float(trees.iloc[0]) if len(trees) else np.nan,
                    "ceiling gap": ceiling - float(part["r2_anom_mean"].max())})
    return labelled(pd.DataFrame(out, columns=VERDICT_COLUMNS), table.attrs.get("missing", ""))


def ladder_shown(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`ladder_table` for reading: parameters for people, anomaly R² as mean ± std."""
    from .summary import fmt

    if table.empty:
        return empty_table(["history", "model", "parameters", "seeds", "anomaly R² (mean ± std)"],
                           table.attrs.get("missing", ""))
    std = table["r2_anom_std"].map(lambda v: "" if not np.isfinite(v) else f" ± {_r2(v)}")
    out = pd.DataFrame({"history": table["history"], "model": table["model"],
                        "parameters": table["n_params"].map(lambda n: fmt("params", n)),
                        "seeds": table["n_seeds"].astype(int),
                        "anomaly R² (mean ± std)": table["r2_anom_mean"].map(lambda v: _r2(v)) + std})
    return labelled(out, table.attrs.get("missing", ""))


def headroom_histories(verdicts: pd.DataFrame) -> list[str]:
    """The histories at which the teacher has headroom (``headroom == "yes"``)."""
    return [] if verdicts.empty else list(verdicts.loc[verdicts["headroom"] == "yes", "history"])


def ladder_text(verdicts: pd.DataFrame) -> str:
    """Where a teacher has something to give, in one sentence (or the ladder's message)."""
    if verdicts.empty:
        return verdicts.attrs.get("missing", "no ladder yet")
    judged = verdicts[verdicts["headroom"] != "–"]
    if judged.empty:
        return "no history has both a teacher and a seed spread, so the ladder cannot say where a teacher has headroom"
    yes = headroom_histories(verdicts)
    parts = [f"{r['history']}: teacher {_r2(r['teacher'])} against {_r2(r['its anomaly R²'])} ± "
             f"{_r2(r['seed spread'])} ({r['best small student']})" for _, r in judged.iterrows()]
    head = (f"the teacher beats the best student of at most 1 M parameters by more than twice its seed spread at "
            f"{', '.join(yes)}" if yes else
            "at no history does the teacher beat the best student of at most 1 M parameters by more than twice its "
            "seed spread")
    return f"{head} ({'; '.join(parts)})"


def ladder_numbers(verdicts: pd.DataFrame) -> str:
    """The numbers behind :func:`ladder_text`, per judged history, without brackets (for a
    sentence that puts them in brackets itself); the message without a ladder."""
    if verdicts.empty:
        return verdicts.attrs.get("missing", "no ladder yet")
    judged = verdicts[verdicts["headroom"] != "–"]
    if judged.empty:
        return "no history has both a teacher and a seed spread"
    return "; ".join(f"at history {r['history']} the teacher reaches {_r2(r['teacher'])} against "
                     f"{_r2(r['its anomaly R²'])} ± {_r2(r['seed spread'])} for {r['best small student']}"
                     for _, r in judged.iterrows())


def _r2(value: float) -> str:
    """An anomaly R² for a table cell: the book's format, a true minus sign."""
    from .summary import fmt

    return fmt("r2", value).replace("-", "−")
