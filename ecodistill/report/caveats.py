"""The limits of a build, as sentences computed from its own numbers (the Limitations section
of book/conclusions.md, glued from book/generated/04_results.ipynb): simulated data, the test
period and what the intervals resample, the teacher's size at the profile, teacher seeds and
tuning, the training budgets and whether training had plateaued, the order of the
selection, and the Raspberry Pi timings.

Nothing here reads a file: each function takes chapter 4's tables.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .findings import is_smoke, longer_text
from .summary import fmt


def plateau_text(budget: pd.DataFrame | None) -> str:
    """What the last doubling of the epochs did to each arm's validation RMSE (from
    :func:`~ecodistill.report.budget_check`), and whether training had plateaued (every arm
    within 2 % at its last doubling); empty without a longer run of an arm."""
    rows = budget.dropna(subset=["change_pct"]) if budget is not None and len(budget) else None
    if rows is None or rows.empty:
        return ""
    last = rows.groupby("arm", sort=False).tail(1)
    changes = "; ".join(f"{r['arm']} {r['change_pct']:+.1f} % ({int(r['epochs']) // 2} → {int(r['epochs'])} "
                        "epochs)" for _, r in last.iterrows())
    flat = bool((last["change_pct"].abs() <= 2.0).all())
    return (f"Doubling the epochs a last time changes the validation RMSE by {changes}: training had "
            + ("plateaued (every arm within 2 %)." if flat else
               "not plateaued, so longer training may change the comparison."))


def sweep_text(sweep: pd.DataFrame | None, chosen_alpha: float | None) -> str:
    """Whether the alpha chosen before the learning-rate search is still the best one at the
    tuned learning rate (the alpha sweep, :func:`~ecodistill.report.alpha_sweep`); empty when
    the sweep or the choice is missing."""
    rows = sweep[sweep["init"] == "distilled"].dropna(subset=["alpha"]) if sweep is not None and len(sweep) else None
    if rows is None or rows.empty or chosen_alpha is None:
        return ""
    chosen = rows[np.isclose(rows["alpha"], chosen_alpha)]
    best = rows.loc[rows["val_rmse"].idxmin()]
    if chosen.empty or np.isclose(best["alpha"], chosen_alpha):
        return ""
    worse = 100 * (float(chosen["val_rmse"].iloc[0]) - best["val_rmse"]) / best["val_rmse"]
    return (f"**Coordinate-wise selection.** Alpha was chosen before the learning rate was searched; at the "
            f"tuned learning rate the alpha sweep prefers alpha = {best['alpha']:g} (validation RMSE "
            f"{best['val_rmse'] * 1e3:.2f} ×10⁻³), {worse:.1f} % lower than the chosen alpha = {chosen_alpha:g} "
            f"(seed 0). A joint search of alpha and learning rate could tune the distilled arm further.")


def edge_searches_text(record: dict | None) -> str:
    """Which teacher learning-rate searches of the record stopped with their best rate at the
    edge of the grid (``histories.<history>.<kind>_lr.interior`` false), or ``""``."""
    edges = []
    for history, entry in sorted(((record or {}).get("histories") or {}).items()):
        for key, search in sorted(entry.items()):
            if key.endswith("_lr") and isinstance(search, dict) and search.get("scores") \
                    and not search.get("interior", True):
                kind = key[:-len("_lr")]
                edges.append(f"the {kind} teacher's at history {history} (best x{float(search['best']):g}, "
                             f"{len(search['scores'])} rates tried)")
    if not edges:
        return ""
    return (f" The learning-rate search stopped at the edge of its grid for {'; '.join(edges)}: the widening "
            "limit was reached, so a rate beyond the grid may validate better.")


def teacher_tuning_text(cfg, record: dict | None) -> str:
    """How each teacher was tuned: the from-scratch teacher's learning-rate search (from the
    teacher record) against the adaptation's fixed settings (from the profile); empty before
    a search exists."""
    candidates = (record or {}).get("candidates") or []
    if candidates:
        kinds = sorted({str(c.get("kind", c.get("name"))) for c in candidates})
        return (f"**Teacher tuning.** The teacher is the best validated of {len(candidates)} candidates "
                f"({', '.join(kinds)}), each with its learning rate and length searched; every candidate is one "
                "run, so which one wins can turn on a seed." + edge_searches_text(record))
    search = (record or {}).get("scratch_lr") or {}
    if not search.get("scores"):
        return ""
    adapt = cfg.adapt
    steps = f"{adapt.epochs} epochs of {adapt.steps_per_epoch} steps" if adapt.steps_per_epoch else \
        f"{adapt.epochs} epochs"
    edge = "inside" if search.get("interior") else "at the edge of"
    longer = " and it was also trained for twice the steps" if record.get("scratch_long_run_id") else ""
    return (f"**Teacher tuning.** The from-scratch teacher's learning rate was searched ({len(search['scores'])} "
            f"rates, best x{float(search['best']):g} of the adaptation rate, {edge} the grid){longer}; the "
            f"adapted teacher was adapted once, at the profile's rate ({adapt.lr:g}) for {steps}, without a "
            "search. Whether pre-training helps is therefore judged against an untuned adaptation: a search "
            "of the adaptation's rate and length is the fair next run.")


#: Seeds the design asks for where a verdict hinges on a comparison (../shared/DESIGN.md).
SEEDS_FOR_A_VERDICT = 10


def seeds_text_for(contrasts: pd.DataFrame | None) -> str:
    """How many seeds the comparisons pair, against the design's minimum where a verdict
    hinges, and the smallest p the Wilcoxon test can reach with them; empty without pairs."""
    from ..stats import wilcoxon_min_p

    if contrasts is None or contrasts.empty or "n_pairs" not in contrasts:
        return ""
    n = int(contrasts["n_pairs"].max())
    short = (f"fewer than the {SEEDS_FOR_A_VERDICT} the design asks for where a verdict hinges on a "
             "comparison, so a size-level verdict here is a lead to re-run with more seeds, not a settled "
             "result" if n < SEEDS_FOR_A_VERDICT else "as many as the design asks for")
    return (f"**Seeds.** Every comparison pairs {n} student seeds, {short}. With {n} pairs the exact two-sided "
            f"Wilcoxon test cannot give p below {wilcoxon_min_p(n):.4f}, so the verdicts rest on the intervals.")


def limitations(profile: str, cfg, record: dict | None, teacher_params: float,
                pi_measured: bool = False, budget: pd.DataFrame | None = None,
                sweep: pd.DataFrame | None = None, chosen_alpha: float | None = None,
                contrasts: pd.DataFrame | None = None, realism_misses: str = "") -> list[str]:
    """The limits of this build, with its own numbers: simulated data, the test years, the
    teacher's size at this profile, the teacher seeds, the training budgets (with the budget
    check's result when ``budget``, :func:`~ecodistill.report.budget_check`, has it), the
    order of the selection (when ``sweep``, :func:`~ecodistill.report.alpha_sweep`, prefers
    another alpha than ``chosen_alpha``), the verdict at twice the epochs (from ``contrasts``),
    Pi timings, and where the simulated world misses its realism targets (``realism_misses``:
    :func:`~ecodistill.report.realism.realism_summary`'s sentence)."""
    d = cfg.data
    test = (f"one test year ({d.test_years[0]})" if d.test_years[0] == d.test_years[1]
            else f"the test years {d.test_years[0]}–{d.test_years[1]}")
    train = cfg.student_train
    steps = train.steps_per_epoch
    steps_text = (f"{train.epochs} epochs of {steps} steps (batch {train.batch_size})" if steps
                  else f"{train.epochs} passes over the training days (batch {train.batch_size})")
    seeds = 1 if record else 0
    out = [
        ("**Simulated data.** The global benchmark is a simulated Earth on real static maps: its "
        "verdicts are about distillation on that benchmark. Only the FLUXNET chapter uses real "
        "observations, at sites, with small teachers."
         + (f" Where the simulated world misses its realism targets, and what that biases: {realism_misses}"
            if realism_misses else "")),
        (f"**Test period.** Every reported number is scored on {test}; the intervals resample "
        "seeds and biomes, not years, so year-to-year variation is not covered, and the per-run "
        "files store biomes but not hemispheres, so the spatial blocks are biomes alone."),
        (f"**Teacher size.** At the `{profile}` profile the teacher has "
         f"{fmt('params', teacher_params)} parameters, not the ~10⁸ of the thesis-scale teacher: the compression "
         "ratios and the teacher's skill relative to small models belong to this scale."
         if np.isfinite(teacher_params) else
         f"**Teacher size.** No teacher has been trained at the `{profile}` profile yet."),
        (f"**One teacher seed.** The teacher (and each label-budget and from-scratch teacher) is "
        f"trained {'once' if seeds else 'not yet'}: the student intervals cover student seeds, not "
        "the variation between teachers."),
        (f"**Training budgets.** Every student run takes {steps_text}, the same for both arms. "
         + (plateau_text(budget) or "The budget check (chapter 4) shows whether that was enough, and "
            "larger budgets may change the comparison.") + longer_text(contrasts)),
        ("**Raspberry Pi timings.** " + ("Pi latencies come from measurements on a Pi." if pi_measured else
         "No Raspberry Pi was attached: Pi latencies are projected with a roofline model and a "
         "calibrated efficiency range; measured speed-ups are from an x86 host.")),
    ]
    tuning, selection_order = teacher_tuning_text(cfg, record), sweep_text(sweep, chosen_alpha)
    if tuning:
        out.insert(4, tuning)
    seeds = seeds_text_for(contrasts)
    if seeds:
        out.insert(4, seeds)
    if selection_order:
        out.insert(-1, selection_order)
    if is_smoke(profile):
        out.insert(0, "**Smoke profile.** Everything in this build is a pipeline check at toy scale.")
    return out
