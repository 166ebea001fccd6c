"""The claims the book's authored prose makes today (:mod:`ecodistill.report.claims`): one
function per sentence, each returning whether the results of a profile still bear it out.

Add a claim here whenever an authored sentence of the abstract, the Discussion or the
Conclusions says that something is larger, smaller, better, worse, present or absent; quote the
sentence's words verbatim (``quote``) from its ``source``. Numbers inside the sentence are glued
and need no claim; the direction they describe does.
"""
from __future__ import annotations

import numpy as np

from ..config import get_profile
from .claims import Results, alternative, claim, interval_above_zero, interval_below_zero

INTRO, CONCLUSIONS = "book/intro.md", "book/conclusions.md"
FLUXNET, PI = "notebooks/06_fluxnet.ipynb", "notebooks/05_pi_timings.ipynb"


def _contrast(r: Results, name: str):
    rows = r["contrasts"][r["contrasts"]["contrast"] == name]
    return rows.iloc[0] if len(rows) else None


def _sizes(r: Results):
    return r["numbers"][r["numbers"]["student"] != "teacher"]


# ---- introduction ------------------------------------------------------------------------

@claim("students-span", "from about a tenth to about a thousandth of the teacher's parameters", INTRO,
       needs=("table",))
def students_span(r: Results) -> bool:
    """The largest student has 5-30 % of the teacher's parameters, the smallest 0.03-0.3 %."""
    t = r["table"]
    teacher = t.loc[t["student"] == "teacher", "n_params"]
    students = t.loc[t["init"].isin(["scratch", "distilled"]) & ~t["student"].str.startswith("teacher"), "n_params"]
    if teacher.empty or students.empty:
        return False
    share = students.astype(float) / float(teacher.iloc[0])
    return bool(0.05 <= share.max() <= 0.3 and 3e-4 <= share.min() <= 3e-3)


@claim("raw-skill-is-where", "raw skill is dominated by where vegetation is", INTRO, needs=("table",))
def raw_skill_is_where(r: Results) -> bool:
    """Every model's raw test R² is above its anomaly R²."""
    t = r["table"].dropna(subset=["r2_mean", "r2_anom_mean"])
    return bool(len(t) and (t["r2_mean"] > t["r2_anom_mean"]).all())


# ---- conclusions: in brief (alternatives: the results choose the words) --------------------

def _any_size(r: Results, test) -> bool:
    return any(test(row) for _, row in _sizes(r).iterrows())


@alternative("brief_sizes", "no-size-helps", "distillation does not make a small student better than the same "
             "student trained from scratch: at no student size does it lower the test RMSE with an interval "
             "below zero", CONCLUSIONS, needs=("numbers",))
def no_size_helps(r: Results) -> bool:
    return not _any_size(r, interval_below_zero)


@alternative("brief_sizes", "some-size-helps", "distillation makes some small students better than the same "
             "students trained from scratch: at some student sizes it lowers the test RMSE with an interval "
             "below zero", CONCLUSIONS, needs=("numbers",))
def some_size_helps(r: Results) -> bool:
    return _any_size(r, interval_below_zero)


@alternative("brief_hurts", "some-size-hurts", "and at some sizes it raises it", CONCLUSIONS, needs=("numbers",))
def some_size_hurts(r: Results) -> bool:
    return _any_size(r, interval_above_zero)


@alternative("brief_hurts", "no-size-hurts", "and at no size does it raise it with an interval above zero",
             CONCLUSIONS, needs=("numbers",))
def no_size_hurts(r: Results) -> bool:
    return not _any_size(r, interval_above_zero)


def _scratch_matches(r: Results) -> bool:
    teacher = r["numbers"].loc[r["numbers"]["student"] == "teacher", "r2_anom_distilled"]
    return bool(len(teacher) and (_sizes(r)["r2_anom_scratch"] >= float(teacher.iloc[0])).any())


@alternative("brief_teacher", "scratch-matches-teacher", "The teacher has little to pass on in the main "
             "comparison: some tuned scratch students match or beat its anomaly skill", CONCLUSIONS,
             needs=("numbers",))
def scratch_matches_teacher(r: Results) -> bool:
    return _scratch_matches(r)


@alternative("brief_teacher", "teacher-above-scratch", "The teacher has something to pass on in the main "
             "comparison: no tuned scratch student reaches its anomaly skill", CONCLUSIONS, needs=("numbers",))
def teacher_above_scratch(r: Results) -> bool:
    return bool(len(r["numbers"]) and not _scratch_matches(r))


def _best_teacher(r: Results) -> str | None:
    """``adapted`` or ``scratch``: which teacher validates best (the record's candidates), else
    which of the adapted and the 2x-steps scratch teacher scores higher on the test years."""
    from .pretraining import candidates

    rows = [c for c in candidates(r["record"], r["all"]) if np.isfinite(float(c.get("val_rmse", np.nan)))]
    if rows:
        return min(rows, key=lambda c: float(c["val_rmse"]))["name"]
    return None


@alternative("brief_pretrain", "pretrain-not-chosen", "the same architecture trained from scratch validates better "
             "than the pre-trained one, so pre-training does not earn the teacher's place", CONCLUSIONS,
             needs=("record", "all"))
def pretrain_not_chosen(r: Results) -> bool:
    return _best_teacher(r) == "scratch"


@alternative("brief_pretrain", "pretrain-chosen", "the pre-trained, adapted network validates better than the same "
             "architecture trained from scratch, so pre-training earns the teacher's place", CONCLUSIONS,
             needs=("record", "all"))
def pretrain_chosen(r: Results) -> bool:
    return _best_teacher(r) == "adapted"


@alternative("brief_pretrain", "pretrain-not-validated", "the teacher record holds no validated candidates to say "
             "whether pre-training earns the teacher's place", CONCLUSIONS, needs=("record", "all"))
def pretrain_not_validated(r: Results) -> bool:
    return _best_teacher(r) is None


def _fewest(r: Results, needle: str):
    c = r["contrasts"].dropna(subset=["label_years"])
    rows = c[(c["label_years"] == c["label_years"].min()) & c["contrast"].str.contains(needle, regex=False)]
    return rows.iloc[0] if len(rows) else None


def _fewest_helps(r: Results, needle: str) -> bool:
    row = _fewest(r, needle)
    return row is not None and interval_below_zero(row)


@alternative("brief_scarce_all", "scarce-labels-all-label-teacher", "distilling from the teacher of all labels "
             "lowers the test RMSE", CONCLUSIONS, needs=("contrasts",))
def scarce_labels_all_label_teacher(r: Results) -> bool:
    return _fewest_helps(r, "all-label")


@alternative("brief_scarce_all", "scarce-labels-all-label-no-gain", "distilling from the teacher of all labels gives "
             "no resolvable gain", CONCLUSIONS, needs=("contrasts",))
def scarce_labels_all_label_no_gain(r: Results) -> bool:
    return not _fewest_helps(r, "all-label")


@alternative("brief_scarce_same", "scarce-labels-same-label-teacher", "a teacher adapted on the same labelled years "
             "gives no resolvable gain, so the teacher helps by carrying labels the student never saw, not by "
             "modelling the same labels better", CONCLUSIONS, needs=("contrasts",))
def scarce_labels_same_label_teacher(r: Results) -> bool:
    return _fewest_helps(r, "all-label") and not _fewest_helps(r, "same-label")


@alternative("brief_scarce_same", "scarce-labels-same-label-helps", "a teacher adapted on the same labelled years "
             "helps too, so at that budget even a teacher of the same labels models them better than the student "
             "alone", CONCLUSIONS, needs=("contrasts",))
def scarce_labels_same_label_helps(r: Results) -> bool:
    return _fewest_helps(r, "same-label")


@alternative("brief_scarce_same", "scarce-labels-neither", "a teacher adapted on the same labelled years gives no "
             "resolvable gain either", CONCLUSIONS, needs=("contrasts",))
def scarce_labels_neither(r: Results) -> bool:
    return not _fewest_helps(r, "all-label") and not _fewest_helps(r, "same-label")


def _widens(r: Results) -> bool:
    """Both arms gain from twice the epochs (intervals below zero), the scratch arm more, and
    distillation then raises the test RMSE (interval above zero)."""
    scratch = _contrast(r, "scratch: twice the epochs")
    distilled = _contrast(r, "distilled: twice the epochs")
    both = _contrast(r, "distilled vs scratch, twice the epochs")
    if scratch is None or distilled is None or both is None:
        return False
    return bool(interval_below_zero(scratch) and interval_below_zero(distilled)
                and scratch["diff"] < distilled["diff"] and interval_above_zero(both))


@alternative("brief_longer", "longer-training-widens", "both arms improve, the scratch arm more, so the distilled "
             "arm falls further behind as the training budget grows", CONCLUSIONS, needs=("contrasts",))
def longer_training_widens(r: Results) -> bool:
    return _widens(r)


@alternative("brief_longer", "longer-training-no-widening", "the distilled arm does not fall further behind: the "
             "contrast at twice the epochs does not show the scratch arm pulling away", CONCLUSIONS,
             needs=("contrasts",))
def longer_training_no_widening(r: Results) -> bool:
    return not _widens(r)


# ---- the FLUXNET chapter's Discussion ------------------------------------------------------

@claim("flux-anomalies-small", "but very little of a site's month-to-month anomalies", FLUXNET,
       needs=("flux_models",))
def flux_anomalies_small(r: Results) -> bool:
    """Every model's raw test R² is above its anomaly R², and no anomaly R² reaches 0.1."""
    m = r["flux_models"].dropna(subset=["r2", "r2_anom"])
    return bool(len(m) and (m["r2"] > m["r2_anom"]).all() and (m["r2_anom"] < 0.1).all())


@claim("flux-fidelity-above-skill", "fidelity well above the skill against observations", FLUXNET,
       needs=("flux_models",))
def flux_fidelity_above_skill(r: Results) -> bool:
    """Every student's fidelity R² to its teacher exceeds its R² against observations by 0.1 or more."""
    m = r["flux_models"].dropna(subset=["fidelity_r2"])
    return bool(len(m) and (m["fidelity_r2"] >= m["r2"] + 0.1).all())


@claim("flux-small-teacher", "there is no 100M-parameter teacher to compress here", FLUXNET,
       needs=("flux_models",))
def flux_small_teacher(r: Results) -> bool:
    m = r["flux_models"]
    return bool((m.loc[m["kind"] == "teacher", "n_params"] < 1e7).all())


@claim("flux-students-close", "on real sites the students often come close to the teacher on their own", FLUXNET,
       needs=("flux_models",))
def flux_students_close(r: Results) -> bool:
    """At half of the (target, size) pairs or more, the scratch student's mean test R² is within
    0.05 of the teacher's."""
    m = r["flux_models"]
    teacher = m[m["kind"] == "teacher"].groupby("target")["r2"].mean()
    scratch = m[(m["kind"] == "student") & (m["method"] == "scratch")]
    close = [teacher.get(t, np.nan) - v <= 0.05 for t, v in zip(scratch["target"], scratch["r2"])]
    return bool(close and np.mean(close) >= 0.5)


# ---- the Raspberry Pi chapter ---------------------------------------------------------------

@claim("int8-not-free", "int8 is not a free lunch", PI, needs=("int8",))
def int8_not_free(r: Results) -> bool:
    """Int8 is faster than fp32 for some (model, runtime, kind) and slower for others."""
    speedup = r["int8"]["int8_speedup"].dropna()
    return bool((speedup > 1).any() and (speedup < 1).any())


# ---- the literature review's table of methods --------------------------------------------

LITERATURE = "book/01_literature.md"


def _methods(r: Results) -> set[str]:
    return set(r["frame"].loc[r["frame"]["target"] == "ndvi", "method"].astype(str))


@claim("lit-live-teacher-not-run", "Implemented (needs the live teacher); not run", LITERATURE, needs=("frame",))
def lit_live_teacher_not_run(r: Results) -> bool:
    """No hint or attention loss, and no online or self mode, among the NDVI runs."""
    return not any(m.startswith(("kd-hint", "kd-attention")) or m.endswith(("-online", "-self"))
                   for m in _methods(r))


@claim("lit-relational-tried", "Tried once; not admitted to the selection", LITERATURE, needs=("selection",))
def lit_relational_tried(r: Results) -> bool:
    s = r["selection"]
    tried = [t for t in s.get("trials", []) if t.get("loss") == "relational"]
    return len(tried) == 1 and "relational" in s.get("ablation_only", []) and s.get("loss") != "relational"


@claim("lit-function-matching-run", "Run: teacher labels on unlabelled extra years and FLUXNET site-months",
       LITERATURE, needs=("flux",))
def lit_function_matching_run(r: Results) -> bool:
    """The profile's students see unlabelled extra years (its data config has them; the control
    without them is the ``noextra`` run) and FLUXNET students learned teacher labels on
    unlabelled months."""
    extra = get_profile(r.profile).data.extra_years is not None
    return bool(extra and (r["flux"]["method"] == "kd-mse-unlabeled").any())
