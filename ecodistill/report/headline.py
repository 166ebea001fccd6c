"""The abstract's numbers and texts: chapter 4's headline figures, verdict sentences and the
findings (:mod:`ecodistill.report.findings`), glued by book/generated/04_results.ipynb and
pasted into book/intro.md (the abstract) and book/conclusions.md.

Reads nothing itself: it takes the result rows, the validation selection and, to save
recomputing them, chapter 4's :func:`~ecodistill.report.student_table`,
:func:`~ecodistill.report.paired_comparison` and :func:`~ecodistill.report.contrasts`, and
chapter 5's :func:`~ecodistill.report.timing_table`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .comparison import paired_comparison, student_table
from .frames import climatology_skill, students, teacher_means, teacher_role_skill
from .selection import alpha_sweep, budget_check
from .text import matrix_command, no_results_message, pct, provenance_text, target_check

NUMBERS = ("compression_params", "compression_flops", "student_params", "student_mb",
           "teacher_params", "retained_skill", "retained_skill_scratch", "r2_ratio", "gap_closed",
           "rmse_distilled", "rmse_scratch", "rmse_teacher", "rmse_diff", "rmse_diff_low",
           "rmse_diff_high", "p_value", "n_seeds", "n_sizes", "n_helps", "n_hurts", "n_scratch_match",
           "fewest_label_years")


def selection_text(selection: dict | None) -> str:
    """What validation chose for each arm (loss, alpha, learning rate per family) and from how
    many trials."""
    if not selection:
        return "no validation selection recorded"
    lr = selection.get("lr_by_family", {})
    rates = "; ".join(f"{family} {arms.get('distilled', float('nan')):.3g} / {arms.get('scratch', float('nan')):.3g}"
                      for family, arms in lr.items())
    counts = selection.get("n_trials_each", {})
    trials = (f"{counts.get('distilled')} validation trials for the distilled arm and "
              f"{counts.get('scratch')} for the scratch arm" if isinstance(counts, dict)
              else f"{counts} validation trials per arm")
    return (f"the distilled arm uses the {selection['loss']} loss with alpha = {selection['alpha']:g}, "
            f"the scratch arm the {selection.get('scratch_loss', 'mse')} loss; learning rates as multiples of the "
            f"profile's base rate (distilled / scratch) per family: {rates or 'not searched'}; chosen from {trials} at the "
            f"headline size")


def headline(frame: pd.DataFrame, cfg: Any, selection: dict | None = None,
             hardware: str = "unknown", n_boot: int = 2000, table: pd.DataFrame | None = None,
             pairs: pd.DataFrame | None = None, contrasts_table: pd.DataFrame | None = None,
             timing: pd.DataFrame | None = None, record: dict | None = None,
             budget: pd.DataFrame | None = None) -> dict[str, Any]:
    """The abstract's numbers (plain floats, NaN when absent), verdict sentences (str) and
    findings (Markdown), at the profile's ``headline_student``, for :func:`myst_nb.glue`.

    Every verdict is a sentence computed from the numbers, so the prose quoting it reads
    correctly whichever way the results come out. ``table``, ``pairs``, ``contrasts_table``
    (outputs of :func:`student_table`, :func:`paired_comparison`, :func:`contrasts` for the same
    frame) and ``budget`` (:func:`budget_check`) save recomputing them; ``timing``
    (:func:`timing_table`) adds latency.
    """
    from . import caveats, findings
    from .comparison import contrasts
    from .summary import summary_numbers

    profile, student = cfg.profile, cfg.headline_student
    none = no_results_message(profile)
    not_run = f"not yet run at the {profile} profile (run {matrix_command(profile)})"
    out: dict[str, Any] = dict.fromkeys(NUMBERS, float("nan"))
    table = student_table(frame) if table is None else table
    pairs = paired_comparison(frame, selection, n_boot) if pairs is None else pairs
    contrasts_table = contrasts(frame, selection, n_boot) if contrasts_table is None else contrasts_table
    budget = budget_check(frame, selection, cfg.student_train.epochs) if budget is None else budget
    numbers = summary_numbers(table, pairs, timing) if len(pairs) else summary_numbers(table, pairs.iloc[0:0])
    teacher_rows = table[table["student"] == "teacher"] if "student" in table else table.iloc[0:0]
    teacher = teacher_means(frame)  # also before any student run exists
    teacher_params = float(teacher["n_params"]) if teacher is not None else float("nan")
    final = students(frame, "final")
    n_seeds = int(final["seed"].nunique()) if len(final) else 0
    s_clim, _ = climatology_skill(frame)
    stronger = findings.stronger_teacher_text(numbers, teacher_role_skill(frame, ("scratch", "scratch, 2x steps")))
    all_years = cfg.data.train_years[1] - cfg.data.train_years[0] + 1
    out.update(profile=profile, hardware=hardware, headline_student=student,
               provenance=provenance_text(profile, [], hardware), verdict_sizes=none,
               gap_closed_text=none, retained_text=none, target_text=none,
               selection_text=selection_text(selection), teacher_params=teacher_params,
               profile_note=findings.profile_note(profile, teacher_params),
               abstract=findings.abstract(profile, cfg, numbers, contrasts_table, teacher_params, n_seeds,
                                          stronger=stronger),
               findings_sizes=findings.bullets(findings.size_findings(numbers) if len(numbers) else [not_run]),
               findings_spread=findings.bullets(findings.spread_findings(pairs) if len(pairs) else [not_run]),
               findings_controls=findings.bullets(findings.control_findings(contrasts_table, student)
                                                  if len(contrasts_table) else [not_run]),
               findings_budget=findings.bullets(findings.budget_findings(contrasts_table, all_years)
                                                if len(contrasts_table) else [not_run]),
               finding_speed=findings.speed_finding(numbers),
               finding_teacher=" ".join(filter(None, [findings.teacher_finding(numbers), stronger])) or none,
               retained_finding=findings.retained_finding(table, student, s_clim) or none,
               limitations=findings.bullets(caveats.limitations(
                   profile, cfg, record, teacher_params, budget=budget, sweep=alpha_sweep(frame, selection),
                   chosen_alpha=(selection or {}).get("alpha"), contrasts=contrasts_table,
                   realism_misses=_realism_misses(profile))))
    out.update(verdict_counts(numbers, contrasts_table))
    out.update(count_texts(out))
    fewest = out["fewest_label_years"]
    out["fewest_label_text"] = (f"only {int(fewest)} labelled training year{'' if fewest == 1 else 's'}"
                                if np.isfinite(fewest) else "the fewest labelled years")
    if table.empty or pairs.empty:
        return plain_texts(out)
    better, sure = int((pairs["diff"] < 0).sum()), int((pairs["ci_high"] < 0).sum())
    worse = int((pairs["ci_low"] > 0).sum())
    out["verdict_sizes"] = (f"distilled students have a lower mean test RMSE than scratch at "
                            f"{better} of {len(pairs)} student sizes; the 95% interval of ΔRMSE "
                            f"(distilled − scratch) lies below zero at {sure} and above zero at {worse}")
    teacher_skill = (float(teacher_rows["r2_anom_mean"].iloc[0]) - s_clim) if len(teacher_rows) else np.nan
    checks = target_check(table, pairs["method"].iloc[0])
    if not (np.isfinite(teacher_skill) and teacher_skill >= findings.MIN_TEACHER_SKILL):
        out["target_text"] = ("not judged: the teacher's anomaly skill above climatology is too small "
                              "for retained skill to be a meaningful ratio")
    else:
        out["target_text"] = (f"{int(checks['keeps_anom'].sum())} of {len(checks)} distilled students "
                              "within that size keep at least 90% of the teacher's anomaly skill above "
                              "climatology" if len(checks)
                              else "no distilled student at this profile is that small")
    out["retained_text"] = out["retained_finding"]
    pair = pairs[pairs["student"] == student]
    mine = table[table["student"] == student]
    distilled = mine[mine["init"] == "distilled"]
    distilled = distilled[distilled["method"] == pair["method"].iloc[0]] if len(pair) else distilled
    scratch = mine[mine["init"] == "scratch"]
    if pair.empty or distilled.empty or scratch.empty:
        return plain_texts(out)
    pair, distilled, scratch = pair.iloc[0], distilled.iloc[0], scratch.iloc[0]
    seeds = sorted(int(s) for s in final[final["student"] == student]["seed"].unique())
    out.update(
        compression_params=float(distilled["params_ratio"]),
        compression_flops=float(distilled["flops_ratio"]),
        student_params=float(distilled["n_params"]),
        student_mb=float(distilled["n_params"]) * 4 / 1e6,
        retained_skill=float(distilled["retained_skill"]),
        retained_skill_scratch=float(scratch["retained_skill"]),
        r2_ratio=float(distilled["r2_ratio"]), gap_closed=float(pair["gap_closed"]),
        rmse_distilled=float(pair["rmse_distilled"]), rmse_scratch=float(pair["rmse_scratch"]),
        rmse_teacher=float(pair["rmse_teacher"]), rmse_diff=float(pair["diff"]),
        rmse_diff_low=float(pair["ci_low"]), rmse_diff_high=float(pair["ci_high"]),
        p_value=float(pair["p_value"]), n_seeds=float(len(seeds)),
        provenance=provenance_text(profile, seeds, hardware))
    out["gap_closed_text"] = gap_text(pair, student)
    return plain_texts(out)


def verdict_counts(numbers: pd.DataFrame, contrasts_table: pd.DataFrame) -> dict[str, float]:
    """The counts the authored conclusions glue: student sizes compared (``n_sizes``), where
    distillation helps or hurts (interval of ΔRMSE below / above zero), where a tuned scratch
    student reaches the adapted teacher's anomaly R² (``n_scratch_match``), and the fewest
    labelled years of the label-budget control (``fewest_label_years``); NaN when absent."""
    sizes = numbers[numbers["student"] != "teacher"] if len(numbers) else numbers
    teacher = numbers.loc[numbers["student"] == "teacher", "r2_anom_distilled"] if len(numbers) else []
    years = contrasts_table["label_years"].dropna() if len(contrasts_table) else pd.Series(dtype=float)
    return {"n_sizes": float(len(sizes)),
            "n_helps": float((sizes["verdict"] == "helps").sum()) if len(sizes) else np.nan,
            "n_hurts": float((sizes["verdict"] == "hurts").sum()) if len(sizes) else np.nan,
            "n_scratch_match": float((sizes["r2_anom_scratch"] >= float(teacher.iloc[0])).sum())
            if len(sizes) and len(teacher) else np.nan,
            "fewest_label_years": float(years.min()) if len(years) else np.nan}


def count_texts(counts: dict[str, float]) -> dict[str, str]:
    """The counts of :func:`verdict_counts` as the conclusions' parentheses: ``hurts_count_text``
    (" (1 of 4 sizes raise it)") and ``scratch_match_text`` (" (at 2 of the 4 sizes the tuned
    scratch student reaches it)"); each empty when its counts are not measured."""
    n, hurts, match = counts.get("n_sizes", np.nan), counts.get("n_hurts", np.nan), counts.get("n_scratch_match", np.nan)
    sized = np.isfinite(n) and n > 0
    return {"hurts_count_text": f" ({hurts:.0f} of {n:.0f} sizes raise it)" if sized and np.isfinite(hurts) else "",
            "scratch_match_text": (f" (at {match:.0f} of the {n:.0f} sizes the tuned scratch student reaches it)"
                                   if sized and np.isfinite(match) else "")}


def gap_text(pair: pd.Series, student: str) -> str:
    """The gap-closed sentence at ``student`` (a :func:`paired_comparison` row), or why it is
    not reported, in words: no gap when the teacher is not better than the scratch student,
    an unresolvable gap when it is smaller than twice the scratch seed spread."""
    gap, scratch, teacher = pair["gap_closed"], pair["rmse_scratch"], pair["rmse_teacher"]
    if np.isfinite(gap) and gap < 0:
        return (f"distillation does not close the scratch-to-teacher test-RMSE gap at {student}: the "
                "distilled student's RMSE is the higher one")
    if np.isfinite(gap):
        return f"distillation closes {pct(gap)} of the scratch-to-teacher test-RMSE gap at {student}"
    if np.isfinite(teacher) and np.isfinite(scratch) and teacher >= scratch:
        return (f"there is no gap for distillation to close at {student}: the teacher's test RMSE "
                f"({teacher:.4f}) is not below the scratch student's ({scratch:.4f})")
    if np.isfinite(teacher) and np.isfinite(scratch):
        return (f"the gap closed at {student} is not reported: the teacher is better than the scratch "
                f"student by less than twice the scratch seed spread ({(scratch - teacher) * 1e3:.2f} ×10⁻³)")
    return f"the gap closed at {student} is not reported: no teacher row"


#: Keys of :func:`headline` quoted inline with ``{glue:text}`` (plain text, not Markdown).
PLAIN_KEYS = ("verdict_sizes", "gap_closed_text", "retained_text", "target_text", "selection_text")


def plain_texts(out: dict[str, Any]) -> dict[str, Any]:
    """``out`` with the inline keys (:data:`PLAIN_KEYS`) free of Markdown code marks: a
    ``{glue:text}`` role pastes them verbatim, so backticks would show."""
    for key in PLAIN_KEYS:
        if isinstance(out.get(key), str):
            out[key] = out[key].replace("`", "")
    return out


def _realism_misses(profile: str) -> str:
    """The realism misses of the profile's world and what they bias (empty without realism.csv)."""
    from .realism import read_realism, realism_summary

    rows = read_realism(profile)
    return realism_summary(profile, rows)["misses_text"] if len(rows) else ""
