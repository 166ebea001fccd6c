"""The Discussion's sentences (book/discussion.md): where the results decide a sentence's
direction, the alternatives registered here (:func:`ecodistill.report.claims.alternative`), each
with the check that picks it; and :func:`discussion_texts`, the glue the results chapter makes
from them and from the result frames (numbers, the goals, the realism misses).

Every group partitions its outcomes -- exactly one alternative holds whenever its frames have
rows -- so the glued words always say what the results show, and a build whose results make
none hold (a check that no longer covers them) fails naming the group. Explained in
book/discussion.md and, for the mechanism, book/generated/99_appendix.ipynb ("Claims checked
against the results").
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .claims import Results, alternative, chosen_text, claim, groups, interval_below_zero

SOURCE = "book/discussion.md"


def _sizes(r: Results) -> pd.DataFrame:
    return r["numbers"][r["numbers"]["student"] != "teacher"]


# ---- where a teacher has something to give ---------------------------------------------------

def _judged(r: Results) -> pd.DataFrame:
    v = r["verdicts"]
    return v[v["headroom"] != "–"]


@alternative("disc_ladder", "ladder-headroom", "at some history the teacher is clearly better than every small "
             "student, so there a teacher has something to give", SOURCE, needs=("verdicts",))
def ladder_headroom(r: Results) -> bool:
    return bool((_judged(r)["headroom"] == "yes").any())


@alternative("disc_ladder", "ladder-no-headroom", "at no history is the teacher clearly better than the best small "
             "student, so the ladder leaves a teacher nothing to give", SOURCE, needs=("verdicts",))
def ladder_no_headroom(r: Results) -> bool:
    return bool(len(_judged(r)) and not (_judged(r)["headroom"] == "yes").any())


@alternative("disc_ladder", "ladder-unjudged", "the ladder cannot yet say whether a teacher has something to give, "
             "since no history has both a teacher and a seed spread", SOURCE, needs=("verdicts",))
def ladder_unjudged(r: Results) -> bool:
    return _judged(r).empty


def gains(ladder: pd.DataFrame, own_history: str | None) -> tuple[float, float] | None:
    """``(memory gain, size gain)`` in test anomaly R² from the ladder: the most any history adds
    over ``today`` at the largest student size every history has, and what the range of student
    sizes adds at the main comparison's history; None where the ladder lacks either."""
    s = ladder[ladder["role"] == "scratch"]
    if s.empty or "today" not in set(s["history"]) or own_history not in set(s["history"]):
        return None
    shared = set.intersection(*(set(p["n_params"]) for _, p in s.groupby("history")))
    if not shared:
        return None
    at = s[s["n_params"] == max(shared)].set_index("history")["r2_anom_mean"]
    own = s[s["history"] == own_history]
    if len(own) < 2:
        return None
    return float(at.max() - at["today"]), float(own["r2_anom_mean"].max() - own["r2_anom_mean"].min())


def _gains(r: Results):
    return gains(r["ladder"], r["own"].get("history"))


@alternative("disc_memory", "memory-over-size", "memory buys more skill than size: a longer history raises a "
             "student's anomaly skill more than the ladder's whole range of sizes does", SOURCE, needs=("ladder",))
def memory_over_size(r: Results) -> bool:
    g = _gains(r)
    return g is not None and g[0] > g[1]


@alternative("disc_memory", "size-over-memory", "size buys more skill than memory: the ladder's range of sizes "
             "raises the anomaly skill more than the longest history does", SOURCE, needs=("ladder",))
def size_over_memory(r: Results) -> bool:
    g = _gains(r)
    return g is not None and g[0] <= g[1]


@alternative("disc_memory", "memory-unmeasured", "the ladder does not yet hold the histories and sizes needed to "
             "weigh memory against size", SOURCE, needs=("ladder",))
def memory_unmeasured(r: Results) -> bool:
    return _gains(r) is None


@claim("disc-old-world-flat", "every model, whatever its size, sat at about the same skill below what the "
       "simulator allowed, and the teacher had nothing to give", SOURCE, needs=("old_table", "old_refs"))
def old_world_flat(r: Results) -> bool:
    """In the old world, every model's mean test anomaly R² lies within 0.1 of every other's and
    more than 0.1 below the noise-free ceiling, and the teacher does not beat the best small
    scratch student by twice its seed spread (the headroom goal is not met)."""
    from .goals import headroom_goal

    skill = r["old_table"]["r2_anom_mean"].dropna()
    ceiling = r["old_refs"].get("ceiling", np.nan)
    return bool(len(skill) and skill.max() - skill.min() < 0.1 and np.isfinite(ceiling)
                and (skill < ceiling - 0.1).all() and headroom_goal(r["old"])["status"] == "not met")


@claim("disc-raw-above-anomaly", "which is why they are lower than raw scores for every model", SOURCE,
       needs=("table",))
def raw_above_anomaly(r: Results) -> bool:
    t = r["table"].dropna(subset=["r2_mean", "r2_anom_mean"])
    return bool(len(t) and (t["r2_mean"] > t["r2_anom_mean"]).all())


# ---- the main comparison, and the scaling laws ----------------------------------------------

def _helps(r: Results) -> bool:
    return any(interval_below_zero(row) for _, row in _sizes(r).iterrows())


@alternative("disc_main", "main-helps", "distillation lowers the test error of some student size, its interval "
             "below zero", SOURCE, needs=("numbers",))
def main_helps(r: Results) -> bool:
    return _helps(r)


@alternative("disc_main", "main-no-help", "distillation lowers the test error at no student size", SOURCE,
             needs=("numbers",))
def main_no_help(r: Results) -> bool:
    return not _helps(r)


@alternative("disc_busbridge", "busbridge-expected", "and the null result is the one that account leads one to "
             "expect", SOURCE, needs=("numbers",))
def busbridge_expected(r: Results) -> bool:
    return not _helps(r)


@alternative("disc_busbridge", "busbridge-beyond", "so a gain here goes beyond what that account predicts and "
             "asks for a closer look at what the teacher adds", SOURCE, needs=("numbers",))
def busbridge_beyond(r: Results) -> bool:
    return _helps(r)


def _fewest(r: Results, needle: str):
    c = r["contrasts"].dropna(subset=["label_years"])
    rows = c[(c["label_years"] == c["label_years"].min()) & c["contrast"].str.contains(needle, regex=False)]
    return rows.iloc[0] if len(rows) else None


@alternative("disc_scarce", "scarce-helps", "with the fewest labels, distilling from the teacher of all labels "
             "lowers the test error: the teacher carries labels the student never saw", SOURCE, needs=("contrasts",))
def scarce_helps(r: Results) -> bool:
    row = _fewest(r, "all-label")
    return row is not None and interval_below_zero(row)


@alternative("disc_scarce", "scarce-no-help", "even with the fewest labels, distilling from the teacher of all "
             "labels gives no resolvable gain", SOURCE, needs=("contrasts",))
def scarce_no_help(r: Results) -> bool:
    row = _fewest(r, "all-label")
    return row is None or not interval_below_zero(row)


@alternative("disc_same_label", "same-label-helps", "a teacher adapted on the same labelled years helps too: at "
             "that budget its labels are better than the observations themselves", SOURCE, needs=("contrasts",))
def same_label_helps(r: Results) -> bool:
    row = _fewest(r, "same-label")
    return row is not None and interval_below_zero(row)


@alternative("disc_same_label", "same-label-no-help", "a teacher adapted on the same labelled years gives no "
             "resolvable gain, so what helps is the labels the teacher saw, not a better use of the same ones",
             SOURCE, needs=("contrasts",))
def same_label_no_help(r: Results) -> bool:
    row = _fewest(r, "same-label")
    return row is None or not interval_below_zero(row)


# ---- privileged information, the uses, pre-training --------------------------------------------

def _privileged_helps(r: Results) -> bool:
    return any(interval_below_zero(row) for _, row in r["privileged"].iterrows())


@alternative("disc_privileged", "privileged-helps", "the teacher's privileged view helps a field-device student: "
             "at some field-device setting the distilled student's error interval lies below zero", SOURCE,
             needs=("privileged",))
def privileged_helps(r: Results) -> bool:
    return _privileged_helps(r)


@alternative("disc_privileged", "privileged-no-help", "the teacher's privileged view helps no field-device student: "
             "no distilled student's error interval lies below zero", SOURCE, needs=("privileged",))
def privileged_no_help(r: Results) -> bool:
    return not _privileged_helps(r)


def _nowcast_beats(r: Results) -> bool:
    t = r["nowcast"]
    return bool(((t["latency"] == 1) & (t["beats"] == "yes")).any())


@alternative("disc_nowcast", "nowcast-beats", "given the NDVI observed a day before, the student with memory beats "
             "persistence at every seed", SOURCE, needs=("nowcast",))
def nowcast_beats(r: Results) -> bool:
    return _nowcast_beats(r)


@alternative("disc_nowcast", "nowcast-does-not-beat", "even given the NDVI observed a day before, the student with "
             "memory does not beat persistence at every seed", SOURCE, needs=("nowcast",))
def nowcast_does_not_beat(r: Results) -> bool:
    return not _nowcast_beats(r)


def _lightgbm_status(r: Results) -> str:
    from .goals import lightgbm_goal

    return lightgbm_goal(r)["status"]


@alternative("disc_lightgbm", "lightgbm-beaten", "a network of the main comparison beats LightGBM by more than "
             "twice its seed spread", SOURCE, needs=("table", "all"))
def lightgbm_beaten(r: Results) -> bool:
    return _lightgbm_status(r) == "met"


@alternative("disc_lightgbm", "lightgbm-not-beaten", "no network of the main comparison beats LightGBM by more than "
             "twice its seed spread", SOURCE, needs=("table", "all"))
def lightgbm_not_beaten(r: Results) -> bool:
    return _lightgbm_status(r) in ("not met", "not resolved")


@alternative("disc_lightgbm", "lightgbm-unmeasured", "LightGBM has not yet been run on the main comparison's "
             "inputs and history", SOURCE, needs=("table", "all"))
def lightgbm_unmeasured(r: Results) -> bool:
    return _lightgbm_status(r) == "not measured"


def _probe_met(r: Results, variant: str) -> bool:
    t = r["probe"]
    return bool(((t["pre-training"] == variant) & (t["met?"] == "yes")).any())


@alternative("disc_probe", "probe-land-met", "the land forecaster's features hold the root-zone water that drives "
             "NDVI, meeting the probe's target", SOURCE, needs=("probe",))
def probe_land_met(r: Results) -> bool:
    return _probe_met(r, "land")


@alternative("disc_probe", "probe-land-short", "the land forecaster's features fall short of the probe's target "
             "for the root-zone water that drives NDVI", SOURCE, needs=("probe",))
def probe_land_short(r: Results) -> bool:
    return not _probe_met(r, "land")


def _best_candidate(r: Results) -> str | None:
    from .pretraining import candidates

    rows = [c for c in candidates(r["record"], r["all"]) if np.isfinite(float(c.get("val_rmse", np.nan)))]
    return min(rows, key=lambda c: float(c["val_rmse"]))["name"] if rows else None


@alternative("disc_pretrain", "pretrain-wins", "pre-training wins the teacher's place: the best validated teacher "
             "is the pre-trained, adapted one", SOURCE, needs=("record", "all"))
def pretrain_wins(r: Results) -> bool:
    return _best_candidate(r) == "adapted"


@alternative("disc_pretrain", "pretrain-loses", "pre-training loses the teacher's place: the best validated teacher "
             "is trained from scratch", SOURCE, needs=("record", "all"))
def pretrain_loses(r: Results) -> bool:
    return _best_candidate(r) not in (None, "adapted")


@alternative("disc_pretrain", "pretrain-unmeasured", "the teacher record holds no validated candidates to say "
             "whether pre-training wins the teacher's place", SOURCE, needs=("record", "all"))
def pretrain_unmeasured(r: Results) -> bool:
    return _best_candidate(r) is None


#: The stages of the study whose results the authored prose reads, with the frame that holds them.
STUDY_STAGES = (("the teacher choice", "record"), ("the probe of pre-training", "probe"),
                ("the realism check", "realism"), ("the headroom ladder", "ladder"),
                ("the main comparison", "numbers"), ("the controls", "contrasts"),
                ("the privileged-information case", "privileged"), ("the nowcast", "nowcast"),
                ("memory at one size", "memory"))


def _listed(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def study_status(r: Results) -> str:
    """Which stages of the study have results in this build and which do not yet (a sentence
    the conclusions and the Discussion open with while a study is incomplete)."""
    ran = {name: r.has(frame) for name, frame in STUDY_STAGES}
    done = [name for name, has in ran.items() if has]
    todo = [name for name, has in ran.items() if not has]
    old = (" The first world's verdicts, beside the realistic world's, are in chapter 4 (Old world, new world)."
           if r.has("old") else "")
    if not todo:
        return f"Every stage of the study has results at the {r.profile} profile.{old}"
    have = f"results for {_listed(done)}" if done else "no results yet"
    return (f"This build is of a study in progress: at the {r.profile} profile it has {have}, and not yet for "
            f"{_listed(todo)}. Each sentence that needs a missing stage says so in brackets; the commands that "
            f"make them are in the appendix.{old}")


# ---- the glue ----------------------------------------------------------------------------

DISCUSSION_GROUPS = ("disc_ladder", "disc_memory", "disc_main", "disc_busbridge", "disc_scarce", "disc_same_label",
                     "disc_privileged", "disc_nowcast", "disc_lightgbm", "disc_probe", "disc_pretrain")


def discussion_texts(r: Results, missing: str = "") -> dict[str, str]:
    """Every glue key of book/discussion.md and of the conclusions' alternatives: the chosen words
    of each group (or, without results, ``missing``: what makes them), and the computed numbers
    and sentences the Discussion quotes."""
    from ..config import get_profile
    from .goals import goal_sentences, goal_table
    from .ladder import ladder_numbers
    from .realism import read_realism, realism_summary

    missing = missing or f"[not yet run at the {r.profile} profile]"
    special = {"disc_probe": f"[no probe yet at the {r.profile} profile]"}
    out = {g: chosen_text(r, g, special.get(g, missing)) for g in groups()}  # the Discussion's and the conclusions'
    out["disc_ladder_numbers"] = ladder_numbers(r["verdicts"])
    g = _gains(r) if r.has("ladder") else None
    signed = (lambda v: f"{v:+.3f}".replace("-", "−"))
    out["disc_gains"] = ("" if g is None else
                         f" (memory adds {signed(g[0])} in anomaly R² at the largest size every history has, the "
                         f"range of sizes {signed(g[1])} at the main comparison's history)")
    out["study_status"] = study_status(r)
    out["disc_goals"] = "\n".join(f"- {s}" for s in goal_sentences(goal_table(r)))
    out["disc_realism_misses"] = realism_summary(r.profile, read_realism(r.profile))["misses_text"]
    cfg = get_profile(r.profile)
    years = sorted(set(cfg.data.test_years))
    out["disc_test_years"] = "–".join(str(y) for y in years)
    out["disc_seeds"] = str(len(cfg.seeds))
    out["disc_train_years"] = str(cfg.data.train_years[1] - cfg.data.train_years[0] + 1)
    record = r["record"] or {}
    out["disc_teacher_seed"] = str(record.get("seed", "–"))
    return out
