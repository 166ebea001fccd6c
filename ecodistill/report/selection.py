"""What validation chose, and how (chapter 4, "Selection on the validation years"): the trials
of both arms, their learning-rate searches per student family, the alpha sweep against scratch
at its own tuned settings, the training-budget check, and the training settings per profile.

Reads ``results/<profile>/selection.json`` (passed in as ``selection``; its schema is
:func:`ecodistill.experiments.protocol.select_settings`'s) and, for :func:`alpha_sweep` and
:func:`budget_check`, the ``-sweep-`` and ``-budget<k>x-`` runs among the result rows;
:func:`training_table` reads only the profiles' configs. Every builder returns a table with no
rows, and ``attrs["missing"]`` naming the command, while the results are missing.

Explained in book/generated/04_results.ipynb ("The protocol", "Selection on the validation years").
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..config import get_profile
from .frames import empty_table, labelled, profile_of, students, wide
from .text import no_results_message

SEARCH_COLUMNS = ["family", "arm", "setting", "n_trials", "lr_multipliers", "best_lr", "interior",
                  "best_val_rmse"]


def _missing(profile: str | None) -> str:
    return no_results_message(profile or "<profile>")


#: Columns every trial of the current protocol records (``protocol._Trials``).
TRIAL_KEYS = {"student", "arm", "stage", "loss", "alpha", "lr_scale", "val_rmse", "run_id"}


def _trials(selection: dict | None, profile: str | None, columns: list[str]) -> pd.DataFrame:
    """The selection's trials as a frame, or an empty table of ``columns`` that names the
    command (also when the selection was written by an older protocol without arms)."""
    trials = pd.DataFrame((selection or {}).get("trials", []))
    missing = _missing(profile)
    if selection and not TRIAL_KEYS <= set(trials.columns):
        missing = f"the validation selection was made by an older protocol; {missing}"
    if trials.empty or not TRIAL_KEYS <= set(trials.columns):
        return empty_table(columns, missing)
    return trials[trials["student"] == selection["student"]]


def arm_setting(selection: dict, arm: str) -> str:
    """``l1, alpha 0.75`` (distilled) or ``huber`` (scratch): an arm's selected setting."""
    if arm == "scratch":
        return str(selection.get("scratch_loss", "mse"))
    return f"{selection['loss']}, alpha {selection['alpha']:g}"


def lr_search_table(selection: dict | None, profile: str | None = None) -> pd.DataFrame:
    """Both arms' learning-rate searches per student family, from ``lr_searches``.

    Columns: ``family, arm, setting`` (the arm's selected loss and alpha), ``n_trials`` (of
    the search), ``lr_multipliers`` (every multiple of the base rate tried), ``best_lr``,
    ``interior`` (the best one has tried neighbours on both sides), ``best_val_rmse``.
    """
    searches = (selection or {}).get("lr_searches") or {}
    if not searches:
        older = "the validation selection was made by an older protocol; " if selection else ""
        return empty_table(SEARCH_COLUMNS, older + _missing(profile))
    rows = []
    for family, arms in searches.items():
        for arm, search in sorted(arms.items()):
            scores = {float(k): v for k, v in search["scores"].items()}
            rows.append({"family": family, "arm": arm, "setting": arm_setting(selection, arm),
                         "n_trials": int(search.get("n_trials", len(scores))),
                         "lr_multipliers": ", ".join(f"{m:.3g}" for m in sorted(scores)),
                         "best_lr": float(search["best"]), "interior": bool(search["interior"]),
                         "best_val_rmse": float(scores[float(search["best"])])})
    return labelled(pd.DataFrame(rows, columns=SEARCH_COLUMNS), _missing(profile))


def trial_counts(selection: dict | None, profile: str | None = None) -> pd.DataFrame:
    """Validation trials per arm and stage at the headline student (``alpha``, ``loss``,
    ``lr``), and ``n_trials_each``, the total the protocol equalises: one row per arm."""
    columns = ["arm", "alpha", "loss", "lr", "total"]
    head = _trials(selection, profile, columns)
    if head.empty:
        return head
    counts = head.pivot_table(index="arm", columns="stage", values="run_id", aggfunc="count")
    counts = counts.reindex(columns=["alpha", "loss", "lr"]).fillna(0).astype(int)
    # the best setting's trial at lr x1 counts once, in both the loss stage and the search
    counts["total"] = [int(selection.get("n_trials_each", {}).get(arm, np.nan)) for arm in counts.index]
    return labelled(counts.reset_index()[columns], _missing(profile))


def loss_trials(selection: dict | None, profile: str | None = None) -> pd.DataFrame:
    """Every loss each arm tried at the headline student at learning rate x1 (distilled: the
    MSE loss at every alpha, then every other offline loss at the best alpha; scratch: every
    truth loss), with the chosen one marked.

    Columns: ``arm, loss, alpha, val_rmse, chosen, excluded`` (``excluded``: tried for the
    record but not allowed to win, :func:`excluded_losses_text`).
    """
    columns = ["arm", "loss", "alpha", "val_rmse", "chosen", "excluded"]
    trials = _trials(selection, profile, columns)
    if trials.empty:
        return trials
    rows = trials[trials["stage"].isin(["alpha", "loss"])]
    rows = rows.assign(alpha=np.where(rows["arm"] == "scratch", np.nan, rows["alpha"]))
    chosen = np.where(rows["arm"] == "scratch", rows["loss"] == selection.get("scratch_loss"),
                      (rows["loss"] == selection["loss"]) & np.isclose(rows["alpha"].fillna(-1),
                                                                       selection["alpha"]))
    excluded = (rows["arm"] != "scratch") & rows["loss"].isin(selection.get("ablation_only", []))
    out = rows.assign(chosen=chosen, excluded=excluded)[columns].sort_values(["arm", "val_rmse"])
    return labelled(out.reset_index(drop=True), _missing(profile))


def excluded_losses_text(selection: dict | None) -> str:
    """Why losses that were tried did not compete in the selection (``ablation_only`` of
    ``selection.json``: the losses that need the teacher's features at every step, while the
    compared students learn offline from its cached predictions), with their validation RMSE
    against the selected loss's, at learning rate x1 and after its search; empty when no loss
    was left out."""
    if not selection or not selection.get("ablation_only"):
        return ""
    trials = pd.DataFrame(selection.get("trials", []))
    if trials.empty or not TRIAL_KEYS <= set(trials.columns):
        return ""
    at1 = trials[(trials["student"] == selection["student"]) & (trials["arm"] == "distilled")
                 & trials["stage"].isin(["alpha", "loss"]) & np.isclose(trials["alpha"], selection["alpha"])]
    rmse = at1.groupby("loss")["val_rmse"].min()
    chosen = selection["loss"]
    left = [loss for loss in selection["ablation_only"] if loss in rmse]
    if not left or chosen not in rmse:
        return ""
    names = " and ".join(left)
    values = " and ".join(f"{rmse[loss]:.4f}" for loss in left)
    lowest = rmse[left].min() <= rmse.min()
    lead = (f"The {names} loss had the lowest validation RMSE of all the distilled arm's losses"
            if lowest else f"The {names} loss was tried but not admitted to the choice")
    best, best_rmse = tuned_val_rmse(selection, "distilled")
    tuned = (f"; after its learning-rate search the {chosen} arm reached {best_rmse:.4f} at "
             f"{best:g} × the base rate" if np.isfinite(best_rmse) else "")
    return (f"{lead} at the base learning rate: {values}, against {rmse[chosen]:.4f} for the "
            f"selected {chosen} loss{tuned}. It did not compete in the selection: it is a feature loss that "
            "needs the teacher's intermediate features at every training step (a live teacher), whereas "
            "every compared student, control and label-budget run learns offline from the teacher's cached "
            "predictions. It was therefore not given a learning-rate search or final runs, and whether it "
            "would beat the selected loss once tuned is an open question that this build has not run.")


def tuned_val_rmse(selection: dict, arm: str, family: str | None = None) -> tuple[float, float]:
    """``(lr multiplier, validation RMSE)`` of an arm's selected setting at its searched
    learning rate (seed 0) for ``family`` (default: the headline student's)."""
    searches = selection.get("lr_searches", {})
    family = family or next(iter(searches), None)
    search = searches.get(family, {}).get(arm)
    if not search:
        return float("nan"), float("nan")
    best = float(search["best"])
    scores = {float(k): v for k, v in search["scores"].items()}
    return best, float(scores[best])


SWEEP_COLUMNS = ["init", "method", "alpha", "lr_scale", "val_rmse", "n"]


def alpha_sweep(frame: pd.DataFrame, selection: dict | None = None) -> pd.DataFrame:
    """Validation RMSE against alpha at the distilled arm's tuned loss and learning rate (the
    ``-sweep-`` runs, seed 0), and one scratch row: the scratch arm at its own tuned loss and
    learning rate (its best search trial, seed 0): like with like.

    Columns: ``init, method, alpha, lr_scale, val_rmse, n``.
    """
    missing = no_results_message(profile_of(frame))
    sweep = students(frame, "sweep", split="val")
    if sweep.empty or not selection:
        return empty_table(SWEEP_COLUMNS, missing)
    family = sweep["family"].iloc[0]
    kd_lr, _ = tuned_val_rmse(selection, "distilled", family)
    out = (sweep.groupby(["init", "method", "alpha"])["rmse"].agg(["mean", "count"]).reset_index()
           .rename(columns={"mean": "val_rmse", "count": "n"}).assign(lr_scale=kd_lr))
    lr, val = tuned_val_rmse(selection, "scratch", family)
    if np.isfinite(val):
        out.loc[len(out)] = {"init": "scratch", "method": f"scratch ({selection.get('scratch_loss', 'mse')})",
                             "alpha": np.nan, "lr_scale": lr, "val_rmse": val, "n": 1}
    return labelled(out[SWEEP_COLUMNS].sort_values(["init", "alpha"]).reset_index(drop=True), missing)


BUDGET_COLUMNS = ["arm", "setting", "lr_scale", "epochs", "val_rmse", "change_pct"]


def budget_check(frame: pd.DataFrame, selection: dict | None, epochs: int) -> pd.DataFrame:
    """Has training plateaued? Each arm's selected setting at its tuned learning rate, at the
    profile's ``epochs`` (its search trial) and at every multiple of them that was run (the
    ``-budget2x-``, ``-budget4x-`` runs), validation years, seed 0: one row per arm and budget.
    ``change_pct`` = 100 (RMSE − RMSE at the next smaller budget) / RMSE at that budget (NaN on
    an arm's first row): near zero means another doubling no longer helps; clearly negative
    means the arm was still learning.
    """
    missing = no_results_message(profile_of(frame))
    tags = set(wide(frame, "val")["tag"]) if len(frame) else set()
    factors = {int(m.group(1)): students(frame, m.group(0), split="val")
               for m in (re.fullmatch(r"budget(\d+)x", str(t)) for t in tags) if m}
    if not factors or not selection:
        return empty_table(BUDGET_COLUMNS, missing)
    rows = []
    for arm in ("scratch", "distilled"):
        longer = {f: r[r["init"] == arm] for f, r in sorted(factors.items()) if (r["init"] == arm).any()}
        if not longer:
            continue
        lr, val = tuned_val_rmse(selection, arm, next(iter(longer.values()))["family"].iloc[0])
        points = [(epochs, val)] + [(f * epochs, float(r["rmse"].mean())) for f, r in longer.items()]
        previous = np.nan
        for n_epochs, rmse in points:
            rows.append({"arm": arm, "setting": arm_setting(selection, arm), "lr_scale": lr, "epochs": n_epochs,
                         "val_rmse": rmse, "change_pct": 100 * (rmse - previous) / previous})
            previous = rmse
    return labelled(pd.DataFrame(rows, columns=BUDGET_COLUMNS), missing)


def _teacher_record(profile: str) -> dict | None:
    from ..experiments.teacher import teacher_record

    try:
        return teacher_record(profile)
    except ValueError:
        return None


def _span(years: tuple[int, int]) -> str:
    """``1995–2010``, or ``2013`` for a single year."""
    return str(years[0]) if years[0] == years[1] else f"{years[0]}–{years[1]}"


def _train_days(years: tuple[int, int]) -> int:
    return int(pd.date_range(f"{years[0]}-01-01", f"{years[1]}-12-31").size)


def _steps(train, days: int) -> int:
    return int(train.steps_per_epoch or -(-days // train.batch_size))


def training_table(profiles: tuple[str, ...] = ("smoke", "cpu", "full"),
                   measured: str | None = None) -> pd.DataFrame:
    """The training settings and budgets of each profile, from its config (one column per
    profile): grid, years, teacher shape, pre-training / adaptation / student epochs x steps
    per epoch x batch, base learning rates, seeds, alphas and losses searched. Steps per epoch
    are fixed (every run of a comparison takes the same optimizer steps, whatever its label
    budget); where a profile leaves them unset, one pass over the training days. For the
    ``measured`` profile (the one a chapter shows), the teacher pipeline's wall-clock time and
    host from its ``results/<profile>/teacher/teacher.json``."""
    out = {}
    for name in profiles:
        cfg = get_profile(name)
        d, t = cfg.data, cfg.teacher
        days = _train_days(d.train_years)
        row = {"grid": f"{d.nlat} x {d.nlon}",
               "training / validation / test years": (f"{_span(d.train_years)} / {_span(d.val_years)} / "
                                                      f"{_span(d.test_years)}"),
               "extra unlabelled years": (_span(d.extra_years) if d.extra_years
                                          else "none"),
               "teacher (AFNO)": f"dim {t.embed_dim}, depth {t.depth}, patch {t.patch_size}"}
        for label, train in (("pre-training", cfg.pretrain), ("adaptation", cfg.adapt),
                             ("each student run", cfg.student_train)):
            steps = _steps(train, days)
            row[f"{label}: epochs x steps x batch"] = (f"{train.epochs} x {steps} x {train.batch_size} "
                                                        f"= {train.epochs * steps:,} steps")
            row[f"{label}: base learning rate"] = f"{train.lr:g}"
        record = _teacher_record(name) if name == measured else None
        host = (record or {}).get("host") or (record or {}).get("device")
        row["teacher pipeline, measured"] = (f"{record['seconds']:,.0f} s on {host}"
                                             if record and "seconds" in record else "–")
        row.update({"seeds per size and arm": str(len(cfg.seeds)),
                    "alphas searched": ", ".join(f"{a:g}" for a in cfg.alphas),
                    "losses searched": ", ".join(cfg.losses),
                    "students": ", ".join(s.name for s in cfg.students),
                    "headline student": cfg.headline_student})
        out[name] = row
    table = pd.DataFrame(out)
    table.index.name = "setting"
    return table


def selected_settings(selection: dict | None, family: str) -> dict:
    """Both arms' selected settings for a student ``family`` (as
    :func:`ecodistill.experiments.protocol.best_distilled` and :func:`~ecodistill.experiments.protocol.best_scratch`
    give them): ``distilled`` and ``scratch`` (:class:`~ecodistill.config.DistillConfig`),
    ``kd_lr`` and ``scratch_lr`` (multiples of the base rate). Without a selection: MSE with
    alpha 0.5 and the base rate for both, and ``selected`` False."""
    from ..config import DistillConfig

    sel = selection or {}
    lr = sel.get("lr_by_family", {}).get(family, {})
    return {"distilled": DistillConfig(loss=sel.get("loss", "mse"), alpha=sel.get("alpha", 0.5)),
            "scratch": DistillConfig(mode="scratch", loss=sel.get("scratch_loss", "mse")),
            "kd_lr": float(lr.get("distilled", sel.get("kd_lr_scale", 1.0))),
            "scratch_lr": float(lr.get("scratch", sel.get("scratch_lr_scale", 1.0))),
            "selected": bool(selection)}
