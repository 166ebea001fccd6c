"""What pre-training teaches and which teacher the comparison uses (the teacher chapter).

* :func:`probe_table` -- the linear probe of :mod:`ecodistill.experiments.probe`
  (``results/<profile>/teacher/probe.csv``): how much of the root-zone water that drives NDVI
  a ridge map from the frozen forecaster's features explains on the test years, for both
  pre-training variants, beside the same probe on the forecaster's raw inputs; judged against
  :data:`PROBE_TARGET`.
* :func:`teacher_choice_table` -- the teacher candidates of the teacher record (pre-trained and
  adapted, and trained from scratch, each with its learning rate and length searched) with
  their validation RMSE: the teacher is the best validated model of its size.
* :func:`pretraining_contrast` -- pre-training as its own contrast at every label budget: the
  adapted teacher against the scratch teacher trained on the same labelled years.

Reads the teacher record (passed in), probe.csv and the result rows given to it. Every
teacher is one run (seed 0), so no difference here has an interval; the tables say so.
Explained in book/generated/02_teacher.ipynb ("What pre-training teaches", "Which teacher").
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..utils import results_dir
from .frames import empty_table, labelled, wide
from .text import no_teacher_message, teacher_command

#: The probe's target (the realism issue, fixed before the probe ran): a linear map from the
#: forecaster's features explains at least this test R² of root-zone water.
PROBE_TARGET = 0.8
#: What each pre-training variant forecasts.
VARIANT_TEXT = {"atmosphere": "tomorrow's atmosphere from today's (FourCastNet-faithful: no land state)",
                "land": "the atmosphere and the land state {lead} days ahead",
                "next_day": "the next day's weather from today's"}
PROBE_COLUMNS = ["pre-training", "what it forecasts", "R² pre-trained features", "R² raw inputs",
                 "added by pre-training", "target", "met?"]
CHOICE_COLUMNS = ["candidate", "learning rate", "length", "validation RMSE", "chosen"]
CONTRAST_COLUMNS = ["labelled years", "adapted (pre-trained)", "scratch", "Δ anomaly R² (adapted − scratch)",
                    "RMSE adapted", "RMSE scratch"]


def pretraining_text(cfg) -> str:
    """What the profile's teacher is pre-trained to forecast, in words (``RunConfig.pretrain_task``,
    e.g. "the atmosphere and the land state 10 days ahead")."""
    return VARIANT_TEXT.get(cfg.pretrain_task, cfg.pretrain_task).format(lead=cfg.land_lead)


def probe_command(profile: str) -> str:
    return f"python -m ecodistill probe --profile {profile}"


def read_probe(profile: str) -> pd.DataFrame:
    """``results/<profile>/teacher/probe.csv`` (no rows when absent)."""
    path = results_dir(profile) / "teacher" / "probe.csv"
    if not path.is_file():
        return pd.DataFrame(columns=["variant", "features", "dataset_hash", "lambda", "r2_val", "r2_test"])
    return pd.read_csv(path, dtype={"dataset_hash": str})


def probe_table(profile: str, rows: pd.DataFrame | None = None, lead: int | None = None) -> pd.DataFrame:
    """One row per pre-training variant: test R² of the probe on the frozen forecaster's
    features and on its raw inputs, what pre-training adds, the target and whether it is met."""
    from ..config import get_profile

    rows = read_probe(profile) if rows is None else rows
    missing = f"no {profile} probe yet — run {probe_command(profile)}"
    if rows.empty:
        return empty_table(PROBE_COLUMNS, missing)
    lead = get_profile(profile).land_lead if lead is None else lead
    out = []
    for variant, part in rows.groupby("variant", sort=False):
        r2 = part.set_index("features")["r2_test"]
        features, raw = float(r2.get("pre-trained", np.nan)), float(r2.get("raw inputs", np.nan))
        out.append({"pre-training": variant, "what it forecasts": VARIANT_TEXT.get(variant, variant).format(lead=lead),
                    "R² pre-trained features": features, "R² raw inputs": raw, "added by pre-training": features - raw,
                    "target": f"≥ {PROBE_TARGET:g}", "met?": "yes" if features >= PROBE_TARGET else "no"})
    return labelled(pd.DataFrame(out, columns=PROBE_COLUMNS), missing)


def probe_text(table: pd.DataFrame) -> str:
    """One sentence per variant for the chapter's summary (or the table's message)."""
    if table.empty:
        return table.attrs.get("missing", "no probe yet")
    parts = [f"the {r['pre-training']} forecaster's features explain R² = {r['R² pre-trained features']:.2f} of "
             f"root-zone water on the test years ({r['R² raw inputs']:.2f} from its raw inputs), "
             f"{'meeting' if r['met?'] == 'yes' else 'short of'} the target of {PROBE_TARGET:g}"
             for _, r in table.iterrows()]
    return "; ".join(parts)


def _val_rmse(frame: pd.DataFrame, run_id: str) -> float:
    w = wide(frame, split="val")
    hit = w.loc[w["run_id"] == run_id, "rmse"] if "rmse" in w else pd.Series(dtype=float)
    return float(hit.iloc[0]) if len(hit) else float("nan")


def candidates(record: dict | None, frame: pd.DataFrame | None = None) -> list[dict]:
    """The teacher candidates of ``record``: ``{name, lr_scale, epochs_factor, run_id, val_rmse}``
    (``name``: ``adapted`` or ``scratch``, the record's ``kind``).
    From ``record["candidates"]`` when the record has them; from an older record, the adapted
    teacher (its rate, one length), every learning-rate trial of the scratch teacher and the
    scratch teacher at twice the steps, their validation RMSE read from ``frame``."""
    if not record:
        return []
    if record.get("candidates"):
        out = [{**c, "name": c.get("kind", c.get("name"))} for c in record["candidates"]]
        for c in out:
            if frame is not None and not np.isfinite(float(c.get("val_rmse", np.nan))):
                c["val_rmse"] = _val_rmse(frame, c["run_id"])
        return out
    out = [{"name": "adapted", "lr_scale": 1.0, "epochs_factor": 1, "run_id": record.get("run_id")}]
    out += [{"name": "scratch", "lr_scale": float(lr), "epochs_factor": 1, "run_id": rid}
            for lr, rid in sorted((record.get("scratch_trials") or {}).items(), key=lambda kv: float(kv[0]))]
    if record.get("scratch_long_run_id"):
        lr = (record.get("scratch_lr") or {}).get("best", np.nan)
        out.append({"name": "scratch", "lr_scale": float(lr), "epochs_factor": 2, "run_id": record["scratch_long_run_id"]})
    for c in out:
        c["val_rmse"] = _val_rmse(frame, c["run_id"]) if frame is not None else float("nan")
    return [c for c in out if c["run_id"]]


def teacher_choice_table(record: dict | None, frame: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Every teacher candidate with its validation RMSE and which one the record chose."""
    missing = no_teacher_message(profile, "teacher candidates")
    rows = candidates(record, frame)
    if not rows:
        return empty_table(CHOICE_COLUMNS, missing)
    chosen = (record or {}).get("run_id")
    out = [{"candidate": "pre-trained, adapted" if c["name"] == "adapted" else "from scratch",
            "learning rate": f"{float(c['lr_scale']):g} ×" if np.isfinite(float(c["lr_scale"])) else "–",
            "length": f"{int(c.get('epochs_factor', 1))} × the epochs", "validation RMSE": float(c["val_rmse"]),
            "chosen": "yes" if c["run_id"] == chosen else ""} for c in rows]
    return labelled(pd.DataFrame(out, columns=CHOICE_COLUMNS), missing)


def choice_text(table: pd.DataFrame) -> str:
    """Whether the chosen teacher is the best validated candidate, in a sentence."""
    if table.empty:
        return table.attrs.get("missing", "no teacher candidates yet")
    best = table.loc[table["validation RMSE"].idxmin()] if table["validation RMSE"].notna().any() else None
    chosen = table[table["chosen"] == "yes"]
    if best is None or chosen.empty:
        return "the record does not say which candidate it chose"
    c = chosen.iloc[0]
    if c["validation RMSE"] <= best["validation RMSE"]:
        return (f"the teacher is the best validated candidate: {c['candidate']} at {c['learning rate']} the base "
                f"rate and {c['length']} (validation RMSE {c['validation RMSE']:.4f})")
    return (f"the teacher is not the best validated candidate: it is {c['candidate']} (validation RMSE "
            f"{c['validation RMSE']:.4f}), while {best['candidate']} at {best['learning rate']} the base rate and "
            f"{best['length']} reaches {best['validation RMSE']:.4f}")


def _test(frame: pd.DataFrame, run_id: str | None) -> pd.Series | None:
    if not run_id:
        return None
    w = wide(frame)
    hit = w[w["run_id"] == run_id]
    return None if hit.empty else hit.iloc[0]


def pretraining_contrast(record: dict | None, frame: pd.DataFrame, profile: str,
                         total_years: int | None = None) -> pd.DataFrame:
    """Pre-training as its own contrast at every label budget: test anomaly R² and RMSE of the
    adapted (pre-trained) teacher and the scratch teacher trained on the same labelled years
    (``label_budget_run_ids`` and ``scratch_budget_run_ids``; at all years the best validated
    candidate of each kind). One run each: no interval."""
    missing = (f"no {profile} label-budget teachers yet — run {teacher_command(profile)} "
               "with --label-budgets 1 3")
    if not record:
        return empty_table(CONTRAST_COLUMNS, no_teacher_message(profile))
    budget = record.get("budget_candidates") or {}
    if budget:  # both kinds at each budget; label_budget_run_ids holds the better one
        adapted = {y: c["run_id"] for y, cands in budget.items() for c in cands if c.get("kind") == "adapted"}
        scratch = {y: c["run_id"] for y, cands in budget.items() for c in cands if c.get("kind") == "scratch"}
    else:
        adapted = dict(record.get("label_budget_run_ids") or {})
        scratch = dict(record.get("scratch_budget_run_ids") or {})
    best = {}
    for c in candidates(record, frame):
        kind = "adapted" if c["name"] == "adapted" else "scratch"
        if kind not in best or float(c["val_rmse"]) < float(best[kind]["val_rmse"]):
            best[kind] = c
    rows = []
    for years in sorted({*adapted, *scratch}, key=float):
        rows.append((f"{years}", _test(frame, adapted.get(years)), _test(frame, scratch.get(years))))
    label_all = f"all ({total_years})" if total_years else "all"
    rows.append((label_all, _test(frame, best.get("adapted", {}).get("run_id")),
                 _test(frame, best.get("scratch", {}).get("run_id"))))
    out = []
    for years, a, s in rows:
        if a is None and s is None:
            continue
        get = (lambda r, m: float(r[m]) if r is not None and m in r and pd.notna(r[m]) else float("nan"))
        out.append({"labelled years": years, "adapted (pre-trained)": get(a, "r2_anom"), "scratch": get(s, "r2_anom"),
                    "Δ anomaly R² (adapted − scratch)": get(a, "r2_anom") - get(s, "r2_anom"),
                    "RMSE adapted": get(a, "rmse"), "RMSE scratch": get(s, "rmse")})
    if not out or not any(np.isfinite(r["scratch"]) for r in out):
        return empty_table(CONTRAST_COLUMNS, missing)
    return labelled(pd.DataFrame(out, columns=CONTRAST_COLUMNS), missing)


def training_curves(profile: str, record: dict | None) -> dict[str, list]:
    """The teacher chapter's training curves, ``{pretrain, adapt, scratch}`` (per-epoch
    histories): the record's ``curves`` where an older record kept them, else read from the run
    configs of the best validated adapted and scratch candidates (``history``: ``pretrain`` and
    ``fit``). {} without a record."""
    from ..store.runs import read_run_config

    if not record:
        return {}
    if record.get("curves"):
        return dict(record["curves"])
    best: dict[str, dict] = {}
    for c in candidates(record):
        if c["name"] not in best or float(c.get("val_rmse", np.inf)) < float(best[c["name"]].get("val_rmse", np.inf)):
            best[c["name"]] = c
    out: dict[str, list] = {}
    for kind, c in best.items():
        try:
            history = read_run_config(profile, c["run_id"]).get("history") or {}
        except (FileNotFoundError, ValueError):
            continue
        out["adapt" if kind == "adapted" else "scratch"] = list(history.get("fit") or [])
        if kind == "adapted" and history.get("pretrain"):
            out["pretrain"] = list(history["pretrain"])
    return out


def lr_searches(record: dict | None) -> dict[str, dict]:
    """The teacher record's learning-rate searches by kind (``adapted``, ``scratch``): those of
    the chosen teacher's history (``histories.<history>.<kind>_lr``), or an older record's
    ``scratch_lr``; each ``{"best", "interior", "scores": {multiple: best val MSE}}``."""
    record = record or {}
    own = next((c.get("history") for c in record.get("candidates") or [] if c.get("run_id") == record.get("run_id")),
               None)
    histories = record.get("histories") or {}
    entry = histories.get(own) or (next(iter(histories.values())) if len(histories) == 1 else {})
    found = {kind: entry[f"{kind}_lr"] for kind in ("adapted", "scratch") if (entry.get(f"{kind}_lr") or {}).get("scores")}
    if not found and (record.get("scratch_lr") or {}).get("scores"):
        found = {"scratch": record["scratch_lr"]}
    return found


#: Columns of :func:`teacher_lr_search`.
LR_SEARCH_COLUMNS = ["teacher", "learning rate (× base)", "validation MSE", "chosen"]


def teacher_lr_search(record: dict | None, profile: str | None = None) -> pd.DataFrame:
    """Every teacher candidate's learning-rate search (:func:`lr_searches`): one row per trial
    with the kind, the multiple of the adaptation rate, the trial's best validation MSE and
    whether it was chosen; ``attrs["edge"]`` lists the kinds whose best rate lies at the edge of
    the grid. No rows without a search."""
    missing = no_teacher_message(profile or "<profile>", "teacher learning-rate search")
    searches = lr_searches(record)
    rows = [{"teacher": "pre-trained, adapted" if kind == "adapted" else "from scratch",
             "learning rate (× base)": float(m), "validation MSE": float(v),
             "chosen": "yes" if np.isclose(float(m), float(search["best"])) else ""}
            for kind, search in searches.items() for m, v in search["scores"].items()]
    if not rows:
        return empty_table(LR_SEARCH_COLUMNS, missing)
    out = pd.DataFrame(rows, columns=LR_SEARCH_COLUMNS).sort_values(["teacher", "learning rate (× base)"])
    out = labelled(out.reset_index(drop=True), missing)
    out.attrs["edge"] = [kind for kind, search in searches.items() if not search.get("interior", True)]
    return out
