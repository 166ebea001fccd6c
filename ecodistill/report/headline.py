"""The abstract's numbers: chapter 4's headline figures and verdict sentences, glued by
book/generated/04_results.ipynb and quoted in book/intro.md and book/conclusions.md.

Reads nothing itself: it takes the result rows, the validation selection and, to save
recomputing them, chapter 4's :func:`~ecodistill.report.student_table` and
:func:`~ecodistill.report.paired_comparison`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .comparison import paired_comparison, student_table
from .frames import students
from .text import no_results_message, pct, provenance_text, target_check

NUMBERS = ("compression_params", "compression_flops", "student_params", "student_mb",
           "teacher_params", "retained_skill", "retained_skill_scratch", "r2_ratio", "gap_closed",
           "rmse_distilled", "rmse_scratch", "rmse_teacher", "rmse_diff", "rmse_diff_low",
           "rmse_diff_high", "p_value", "n_seeds")


def selection_text(selection: dict | None) -> str:
    """What validation chose (alpha, loss, learning rates) and from how many trials."""
    if not selection:
        return "no validation selection recorded"
    lr = (f", learning rate x{selection['kd_lr_scale']:.3g} "
          f"(scratch: x{selection['scratch_lr_scale']:.3g})" if "kd_lr_scale" in selection else "")
    return (f"alpha = {selection['alpha']:g} with the {selection['loss']} loss{lr}, chosen on the "
            f"validation years from {selection['n_trials_each']} trials (scratch: the same number)")


def headline(frame: pd.DataFrame, cfg: Any, selection: dict | None = None,
             hardware: str = "unknown", n_boot: int = 2000, table: pd.DataFrame | None = None,
             pairs: pd.DataFrame | None = None) -> dict[str, Any]:
    """The abstract's numbers (plain floats, NaN when absent) and verdict sentences (str),
    at the profile's ``headline_student``, for :func:`myst_nb.glue`.

    Every verdict is a sentence computed from the numbers, so the prose quoting it reads
    correctly whichever way the results come out. ``table`` and ``pairs`` (the outputs of
    :func:`student_table` and :func:`paired_comparison` for the same frame) save recomputing
    them. Keys: see the chapter's glue table.
    """
    profile, student = cfg.profile, cfg.headline_student
    none = no_results_message(profile)
    out: dict[str, Any] = dict.fromkeys(NUMBERS, float("nan"))
    out.update(profile=profile, hardware=hardware, headline_student=student,
               provenance=provenance_text(profile, [], hardware), verdict_sizes=none,
               gap_closed_text=none, retained_text=none, target_text=none,
               selection_text=selection_text(selection))
    table = student_table(frame) if table is None else table
    pairs = paired_comparison(frame, selection, n_boot) if pairs is None else pairs
    if table.empty or pairs.empty:
        return out
    better, sure = int((pairs["diff"] > 0).sum()), int((pairs["ci_low"] > 0).sum())
    out["verdict_sizes"] = (f"distilled students have a lower mean test RMSE than scratch at "
                            f"{better} of {len(pairs)} student sizes, with the 95% interval of the "
                            f"difference above zero at {sure}")
    checks = target_check(table, pairs["method"].iloc[0])
    out["target_text"] = (f"{int(checks['keeps_anom'].sum())} of {len(checks)} distilled students "
                          "within that size keep at least 90% of the teacher's anomaly skill above "
                          "climatology" if len(checks)
                          else "no distilled student at this profile is that small")
    pair = pairs[pairs["student"] == student]
    mine = table[table["student"] == student]
    distilled = mine[mine["init"] == "distilled"]
    distilled = distilled[distilled["method"] == pair["method"].iloc[0]] if len(pair) else distilled
    scratch = mine[mine["init"] == "scratch"]
    if pair.empty or distilled.empty or scratch.empty:
        return out
    pair, distilled, scratch = pair.iloc[0], distilled.iloc[0], scratch.iloc[0]
    final = students(frame, "final")
    seeds = sorted(int(s) for s in final[final["student"] == student]["seed"].unique())
    out.update(
        compression_params=float(distilled["params_ratio"]),
        compression_flops=float(distilled["flops_ratio"]),
        student_params=float(distilled["n_params"]),
        student_mb=float(distilled["n_params"]) * 4 / 1e6,
        teacher_params=float(distilled["n_params"] * distilled["params_ratio"]),
        retained_skill=float(distilled["retained_skill"]),
        retained_skill_scratch=float(scratch["retained_skill"]),
        r2_ratio=float(distilled["r2_ratio"]), gap_closed=float(pair["gap_closed"]),
        rmse_distilled=float(pair["rmse_distilled"]), rmse_scratch=float(pair["rmse_scratch"]),
        rmse_teacher=float(pair["rmse_teacher"]), rmse_diff=float(pair["diff"]),
        rmse_diff_low=float(pair["ci_low"]), rmse_diff_high=float(pair["ci_high"]),
        p_value=float(pair["p_value"]), n_seeds=float(len(seeds)),
        provenance=provenance_text(profile, seeds, hardware))
    if np.isfinite(pair["gap_closed"]):
        out["gap_closed_text"] = (f"distillation closes {pct(pair['gap_closed'])} of the "
                                  f"scratch-to-teacher test-RMSE gap at {student}")
    else:
        out["gap_closed_text"] = f"the gap closed at {student} is not reported: {pair['gap_reason']}"
    retained = distilled["retained_skill"]
    if np.isfinite(retained):
        out["retained_text"] = (f"the distilled {student} keeps {pct(retained)} of the teacher's "
                                f"anomaly skill above climatology (scratch: "
                                f"{pct(scratch['retained_skill'])})")
    else:
        out["retained_text"] = ("retained skill is undefined: the teacher has no anomaly skill "
                                "above climatology")
    return out
