"""The measured goals of the memory issue and the verdicts old world -> new world (chapter 4).

Five goals, not pass conditions (:data:`GOALS`): each is a computed verdict -- ``met``,
``not met``, ``not resolved`` (the seed spread decides nothing) or ``not measured`` -- with a
sentence that gives its numbers. The same verdicts are computed on the old world's results
(world ``v1``, read by its dataset hash with the teacher record and selection kept for it under
``results/<profile>/worlds/v1/``, :func:`snapshot_world`) and on the new world's, so that every
verdict reads old -> new (:func:`old_new_table`).

Reads :class:`ecodistill.report.claims.Results` of each world. Explained in
book/generated/04_results.ipynb ("Measured goals", "Old world, new world").
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..utils import results_dir
from .claims import Results, world_dir, world_results  # noqa: F401  (world_results: the chapter's)

SMALL = 1_000_000


def num(value: float, digits: int = 3) -> str:
    """A number for a sentence: fixed decimals and a true minus sign."""
    return f"{value:.{digits}f}".replace("-", "−")
STATUS = ("met", "not met", "not resolved", "not measured")


def _row(rows: pd.DataFrame, mask) -> pd.Series | None:
    hit = rows[mask]
    return None if hit.empty else hit.iloc[0]


def nowcast_goal(r: Results) -> dict:
    """In the nowcast use, a model with memory beats lag-1 persistence."""
    table = r["nowcast"]
    row = _row(table, table["latency"] == 1) if len(table) else None
    if row is None:
        return {"status": "not measured", "text": "no model was given the NDVI observed a day before"}
    status = {"yes": "met", "no": "not met"}.get(row["beats"], "not resolved")
    return {"status": status, "text": f"{row['student']} with the NDVI observed at least a day before reaches "
            f"{num(row['model_mean'])} ± {num(row['model_std'])} (worst seed {num(row['model_min'])}) against "
            f"{num(row['persistence'])} for persistence of that observation"}


def _lightgbm(r: Results) -> float:
    from .frames import select_variant, wide

    rows = wide(select_variant(r["all"], r["own"])) if len(r["all"]) else pd.DataFrame()
    hit = rows[(rows["kind"] == "baseline") & (rows["method"] == "lightgbm")] if len(rows) else rows
    return float(hit["r2_anom"].mean()) if len(hit) and "r2_anom" in hit else np.nan


def _best(table: pd.DataFrame, max_params: float | None = None, students_only: bool = False) -> pd.Series | None:
    rows = table.dropna(subset=["r2_anom_mean"])
    if students_only:
        rows = rows[rows["init"].isin(["scratch", "distilled"]) & ~rows["student"].astype(str).str.startswith("teacher")]
    if max_params is not None:
        rows = rows[rows["n_params"] <= max_params]
    return None if rows.empty else rows.loc[rows["r2_anom_mean"].idxmax()]


def lightgbm_goal(r: Results) -> dict:
    """In emulation, a model beats LightGBM on the same inputs and history (by more than twice
    its seed spread: ``met``; below it: ``not met``)."""
    trees, best = _lightgbm(r), _best(r["table"]) if len(r["table"]) else None
    if not np.isfinite(trees):
        return {"status": "not measured", "text": "no LightGBM run on the main comparison's inputs and history"}
    if best is None:
        return {"status": "not measured", "text": f"LightGBM reaches {num(trees)} on the main comparison's inputs "
                "and history, but no model of the main comparison has test results yet"}
    spread = float(best["r2_anom_std"]) if np.isfinite(best["r2_anom_std"]) else 0.0
    mean = float(best["r2_anom_mean"])
    status = "met" if mean - 2 * spread > trees else "not met" if mean < trees else "not resolved"
    arm = "" if str(best["student"]).startswith("teacher") else f", {best['init']}"
    return {"status": status, "text": f"the best model of the main comparison ({best['student']}{arm}) reaches "
            f"{num(mean)} ± {num(spread)} against LightGBM's {num(trees)}"}


def headroom_goal(r: Results) -> dict:
    """At some history setting, the teacher beats the best scratch student of at most 1 M
    parameters by at least twice the seed spread (the ladder; without it, the main comparison)."""
    verdicts = r["verdicts"] if r.has("verdicts") else pd.DataFrame()
    if len(verdicts) and (verdicts["headroom"] != "–").any():
        yes = verdicts[verdicts["headroom"] == "yes"]
        best = (yes if len(yes) else verdicts).assign(_g=lambda v: v["gap"] - 2 * v["seed spread"])
        row = best.loc[best["_g"].idxmax()]
        return {"status": "met" if len(yes) else "not met",
                "text": f"at history {row['history']} the teacher reaches {num(row['teacher'])} against "
                        f"{num(row['its anomaly R²'])} ± {num(row['seed spread'])} for {row['best small student']}"}
    table = r["table"]
    teacher = _row(table, table["student"] == "teacher") if len(table) else None
    best = _best(table[table["init"] == "scratch"], SMALL, students_only=True) if len(table) else None
    if teacher is None or best is None or not np.isfinite(best["r2_anom_std"]):
        return {"status": "not measured", "text": "no teacher and seeded scratch students to compare"}
    gap, spread = float(teacher["r2_anom_mean"] - best["r2_anom_mean"]), float(best["r2_anom_std"])
    return {"status": "met" if gap > 2 * spread else "not met",
            "text": f"at the main comparison's history the teacher reaches {num(teacher['r2_anom_mean'])} against "
                    f"{num(best['r2_anom_mean'])} ± {num(spread)} for {best['student']} from scratch"}


def compression_goal(r: Results) -> dict:
    """A distilled student at <= 1 % of the teacher's parameters keeps >= 95 % of its anomaly skill
    above climatology."""
    table = r["table"]
    rows = table[(table["init"] == "distilled") & (table["params_ratio"] >= 100)] if len(table) else table
    rows = rows.dropna(subset=["retained_skill"]) if len(rows) else rows
    if rows.empty:
        return {"status": "not measured", "text": "no distilled student at 1 % of the teacher's parameters or less"}
    row = rows.loc[rows["retained_skill"].idxmax()]
    teacher = _row(table, table["student"] == "teacher")
    from .findings import MIN_TEACHER_SKILL
    from .frames import climatology_skill

    clim, _ = climatology_skill(r["frame"]) if r.has("frame") else (0.0, "")
    if teacher is not None and teacher["r2_anom_mean"] - clim < MIN_TEACHER_SKILL:
        return {"status": "not resolved", "text": f"the teacher's anomaly R² ({num(teacher['r2_anom_mean'])}) leaves "
                "no skill above climatology to keep"}
    of = f" (the teacher's anomaly R² is {num(teacher['r2_anom_mean'])})" if teacher is not None else ""
    return {"status": "met" if row["retained_skill"] >= 0.95 else "not met",
            "text": f"the distilled {row['student']}, at {100 / row['params_ratio']:.2g} % of the teacher's parameters, "
                    f"keeps {100 * row['retained_skill']:.0f} % of its anomaly skill{of}"}


def budget_goal(r: Results) -> dict:
    """With one label year, distillation from the all-label teacher keeps >= 90 % of the best
    all-label student's anomaly skill above climatology."""
    from .comparison import controls
    from .frames import climatology_skill

    ctrl = controls(r["frame"], r["selection"]) if r.has("frame") else pd.DataFrame()
    row = (_row(ctrl, (ctrl["label_years"] == 1) & (ctrl["arm"] == "distilled, all-label teacher"))
           if len(ctrl) else None)
    best = _best(r["table"], students_only=True) if len(r["table"]) else None
    if row is None or best is None:
        return {"status": "not measured", "text": "no one-year label budget distilled from the all-label teacher"}
    clim, _ = climatology_skill(r["frame"])
    if best["r2_anom_mean"] - clim <= 0:
        return {"status": "not resolved", "text": f"the best all-label student ({best['student']}, "
                f"{num(best['r2_anom_mean'])}) has no anomaly skill above climatology to keep"}
    kept = (row["r2_anom_mean"] - clim) / (best["r2_anom_mean"] - clim)
    return {"status": "met" if kept >= 0.9 else "not met",
            "text": f"with one label year the student distilled from the all-label teacher reaches "
                    f"{num(row['r2_anom_mean'])}, {100 * kept:.0f} % of the best all-label student's "
                    f"{num(best['r2_anom_mean'])} ({best['student']}, {best['init']})"}


#: The five measured goals of the memory issue: ``(key, statement, verdict function)``.
GOALS: tuple[tuple[str, str, Callable[[Results], dict]], ...] = (
    ("nowcast", "in the nowcast use, a model with memory beats lag-1 persistence", nowcast_goal),
    ("lightgbm", "in emulation, a model beats LightGBM", lightgbm_goal),
    ("headroom", ("at some history, the teacher beats the best scratch student of at most 1 M parameters by at "
                  "least twice the seed spread"), headroom_goal),
    ("compression", ("a distilled student at 1 % of the teacher's parameters or less keeps at least 95 % of its "
                     "anomaly skill"), compression_goal),
    ("budget", ("with one label year, distillation from the all-label teacher keeps at least 90 % of the best "
                "all-label student's skill"), budget_goal),
)


def goal_table(r: Results) -> pd.DataFrame:
    """``goal, statement, status, text`` of every goal on ``r``."""
    rows = []
    for key, statement, fn in GOALS:
        try:
            out = fn(r)
        except (KeyError, ValueError, IndexError):  # a frame without the columns a goal reads
            out = {"status": "not measured", "text": "its results are incomplete"}
        rows.append({"goal": key, "statement": statement, **out})
    return pd.DataFrame(rows, columns=["goal", "statement", "status", "text"])


def goal_sentences(table: pd.DataFrame) -> list[str]:
    """One sentence per goal: ``<Statement>: <status> — <numbers>.``"""
    return [f"{r['statement'][0].upper()}{r['statement'][1:]}: **{r['status']}** — {r['text']}."
            for _, r in table.iterrows()]


# ---- old world, new world ------------------------------------------------------------------

def snapshot_world(profile: str, world: str) -> bool:
    """Keep the teacher record and the selection of ``world`` (copied from the current ones when
    they are that world's, judged by the dataset hash realism.csv gives the world) under
    ``results/<profile>/worlds/<world>/``, so that its verdicts can still be computed after a
    newer world's protocol overwrites them. Returns whether a copy was made."""
    from .realism import read_realism, world_hashes

    record = results_dir(profile) / "teacher" / "teacher.json"
    digest = world_hashes(read_realism(profile)).get(world)
    if not record.is_file() or not digest or json.loads(record.read_text()).get("dataset_hash") != digest:
        return False
    folder = world_dir(profile, world)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(record, folder / "teacher.json")
    selection = results_dir(profile) / "selection.json"
    if selection.is_file():
        shutil.copy2(selection, folder / "selection.json")
    return True


def _sizes_verdict(r: Results) -> str:
    numbers = r["numbers"]
    sizes = numbers[numbers["student"] != "teacher"] if len(numbers) else numbers
    if sizes.empty:
        return "not measured"
    counts = sizes["verdict"].value_counts()
    return (f"helps at {counts.get('helps', 0)}, hurts at {counts.get('hurts', 0)}, unresolved at "
            f"{counts.get('unresolved', 0)} of {len(sizes)} sizes")


def _contrast_verdict(r: Results, fewest: bool, needle: str) -> str:
    from .cases import verdict

    c = r["contrasts"]
    if c.empty:
        return "not measured"
    rows = c.dropna(subset=["label_years"]) if fewest else c
    if fewest and len(rows):
        rows = rows[rows["label_years"] == rows["label_years"].min()]
    rows = rows[rows["contrast"].str.contains(needle, regex=False)]
    if rows.empty:
        return "not measured"
    row = rows.iloc[0]
    years = f" ({int(row['label_years'])} label year{'s' if row['label_years'] != 1 else ''})" if fewest else ""
    from .summary import fmt_dr2

    return f"{verdict(row['ci_low'], row['ci_high'])}{years}: ΔR² anomalies " + fmt_dr2(
        row["d_r2_anom"], row["d_r2_anom_low"], row["d_r2_anom_high"])


#: The verdicts read old -> new besides the goals: ``(verdict, function of Results -> text)``.
VERDICTS: tuple[tuple[str, Callable[[Results], str]], ...] = (
    ("distillation vs scratch, per size (ΔRMSE interval)", _sizes_verdict),
    ("scarce labels: distilled from the all-label teacher", lambda r: _contrast_verdict(r, True, "all-label")),
    ("scarce labels: distilled from a same-label teacher", lambda r: _contrast_verdict(r, True, "same-label")),
    ("twice the epochs: distilled vs scratch", lambda r: _contrast_verdict(r, False, "twice the epochs")),
)


def old_new_table(old: Results | None, new: Results | None) -> pd.DataFrame:
    """``verdict, old world, new world``: every goal's status (with its numbers) and every verdict of
    :data:`VERDICTS`, computed on each world's results; ``not measured`` where a world has none."""
    rows = []
    goals = {name: goal_table(r) if r is not None else None for name, r in (("old", old), ("new", new))}
    for i, (key, statement, _) in enumerate(GOALS):
        cells = {}
        for name, table in goals.items():
            cells[name] = "not measured" if table is None else (
                f"{table.iloc[i]['status']}: {table.iloc[i]['text']}" if table.iloc[i]["status"] != "not measured"
                else "not measured")
        rows.append({"verdict": f"goal: {statement}", "old world": cells["old"], "new world": cells["new"]})
    for name, fn in VERDICTS:
        cells = {}
        for world, r in (("old", old), ("new", new)):
            try:
                cells[world] = "not measured" if r is None else fn(r)
            except (KeyError, ValueError, IndexError):
                cells[world] = "not measured"
        rows.append({"verdict": name, "old world": cells["old"], "new world": cells["new"]})
    return pd.DataFrame(rows, columns=["verdict", "old world", "new world"])
