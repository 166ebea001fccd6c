r"""Distilled vs from scratch (chapter 4): the student table, the seed-paired comparison, the
controls and their paired contrasts (what the teacher adds beyond the distilled arm's other
settings, extra years, denoising, label budgets), per-biome skill and error maps. What
validation chose is :mod:`ecodistill.report.selection`.

Reads the result rows of :func:`ecodistill.report.read_results`, the validation selection of
:func:`ecodistill.report.read_selection` (``selection.json``) and, for :func:`error_maps`,
the stored ``results/<profile>/maps/<run_id>.npz``; nothing is trained or built, so the
chapter re-renders from committed results in seconds. With nothing there yet, each builder
returns a table with no rows whose ``attrs["missing"]`` names the command that makes them.

The comparison protocol (chapter 4, "The protocol"): test numbers come from the ``-final-`` runs only;
retained skill is :math:`(S_{student} - S_{clim}) / (S_{teacher} - S_{clim})` on the anomaly
:math:`R^2` (:func:`ecodistill.evaluate.retained_skill`); the gap closed
:math:`(e_{scratch} - e_{kd}) / (e_{scratch} - e_{teacher})` is reported only where the gap
exceeds twice the seed spread (:func:`ecodistill.evaluate.gap_closed`); seeds are paired
(same seed, scratch vs distilled) for a Wilcoxon signed-rank test, and the 95% interval of
the mean difference (distilled − scratch, :data:`SIGN_CONVENTION`) resamples seeds and biomes
(:func:`ecodistill.stats.cluster_bootstrap`): months of one test year are not independent.

Explained in book/generated/04_results.ipynb.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .. import evaluate, stats
from ..store import runs
from ..utils import results_dir
from .frames import (
    SETTING,
    SIZE,
    aggregate,
    aggregate_columns,
    biome_weights,
    climatology_skill,
    empty_table,
    labelled,
    profile_of,
    students,
    teacher_means,
    teacher_rows,
    wide,
)
from .paired import paired_difference
from .text import no_results_message

RATIOS = ["retained_skill", "r2_ratio", "params_ratio", "flops_ratio"]
PAIR_COLUMNS = [*SIZE, "method", "alpha", "n_pairs", "rmse_scratch", "rmse_distilled",
                "rmse_teacher", "diff", "wins", "p_value", "ci_low", "ci_high", "d_r2_anom",
                "d_r2_anom_low", "d_r2_anom_high", "n_blocks", "gap_closed",
                "gap_reason", "r2_scratch", "r2_distilled", "r2_anom_scratch", "r2_anom_distilled",
                "std_scratch", "std_distilled"]
CONTROL_KEYS = ["control", "condition", "arm", "label_years"]
CONTRAST_COLUMNS = ["contrast", "question", "label_years", "n_pairs", "rmse_base", "rmse_arm",
                    "diff", "ci_low", "ci_high", "d_r2_anom", "d_r2_anom_low", "d_r2_anom_high",
                    "n_blocks", "p_value", "wins", "identical"]


def _missing(frame: pd.DataFrame) -> str:
    return no_results_message(profile_of(frame))


def student_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Test skill per student size x setting (mean ± std over seeds), the teachers' rows,
    retained skill and compression ratios.

    Columns: ``student, family, n_params, flops_per_map, init, method, alpha, n_seeds,
    rmse_mean, rmse_std, r2_mean, r2_std, r2_anom_mean, r2_anom_std, retained_skill``
    (anomaly R² above climatology, relative to the pre-trained teacher), ``r2_ratio``
    (raw R² relative to the teacher), ``params_ratio`` and ``flops_ratio`` (teacher /
    student). ``attrs["notes"]`` says where :math:`S_{clim}` came from.
    """
    keys = SIZE + SETTING
    final = students(frame, "final")
    teacher = teacher_means(frame)
    s_clim, source = climatology_skill(frame)
    notes = [f"S_clim = {s_clim:.3g} ({source})"]
    if teacher is None:
        notes.append("no pre-trained teacher row: ratios are NaN")
    if final.empty:
        table = empty_table(aggregate_columns(keys, ("rmse", "r2", "r2_anom")) + RATIOS,
                            _missing(frame))
        table.attrs["notes"] = notes
        return table
    parts = [aggregate(final, keys)]
    w = wide(frame)
    for init, label in (("pretrained", "teacher"), ("scratch", "teacher (scratch)")):
        rows = teacher_rows(w, init)
        if not rows.empty:
            rows = rows.assign(student=label, method=rows["method"].iloc[0], alpha=np.nan)
            parts.append(aggregate(rows, keys))
    table = pd.concat(parts, ignore_index=True)
    if teacher is not None:
        table["retained_skill"] = evaluate.retained_skill(
            table["r2_anom_mean"], teacher.get("r2_anom", np.nan), s_clim)
        table["r2_ratio"] = table["r2_mean"] / teacher.get("r2", np.nan)
        table["params_ratio"] = teacher["n_params"] / table["n_params"]
        table["flops_ratio"] = teacher["flops_per_map"] / table["flops_per_map"]
    else:
        table[RATIOS] = np.nan
    table = table.sort_values(["family", "n_params", "init"], ascending=[True, False, True])
    table = labelled(table.reset_index(drop=True), _missing(frame))
    table.attrs["notes"] = notes
    return table


def chosen_method(frame: pd.DataFrame, selection: dict | None = None) -> tuple[str, float] | None:
    """The distilled setting the comparison reports: validation's choice when ``selection``
    is given, else the only (most frequent) final distilled setting. None when none exists."""
    final = students(frame, "final")
    distilled = final[final["init"] == "distilled"]
    if distilled.empty:
        return None
    if selection is not None:
        want = distilled[distilled["method"].str.startswith(f"kd-{selection['loss']}-")
                         & np.isclose(distilled["alpha"], selection["alpha"])]
        if not want.empty:
            return str(want["method"].iloc[0]), float(want["alpha"].iloc[0])
    counts = distilled.groupby(["method", "alpha"]).size().sort_values(ascending=False)
    method, alpha = counts.index[0]
    return str(method), float(alpha)


def paired_comparison(frame: pd.DataFrame, selection: dict | None = None,
                      n_boot: int = 2000) -> pd.DataFrame:
    """Scratch vs distilled at every student size, seed-paired.

    Columns: ``student, family, n_params, flops_per_map, method, alpha, n_pairs, rmse_scratch,
    rmse_distilled, rmse_teacher, diff`` (mean distilled − scratch test RMSE over paired
    seeds, :data:`SIGN_CONVENTION`: < 0 means distillation helps), ``wins`` (seeds where
    distilled is better), ``p_value`` (two-sided Wilcoxon signed-rank), ``ci_low, ci_high``
    (95% interval of the same difference, two-way cluster bootstrap over seeds and biomes:
    :func:`paired_difference`), ``d_r2_anom`` with ``d_r2_anom_low, d_r2_anom_high`` (the
    effect in skill: distilled − scratch anomaly R²), ``n_blocks``, ``gap_closed``
    and ``gap_reason`` (why it is NaN: no gap, or a gap within twice the scratch seed std),
    the paired seeds' mean test ``r2_*`` and ``r2_anom_*`` of both arms, and the seed standard
    deviation of the test RMSE of each arm (``std_scratch``, ``std_distilled``).
    """
    chosen = chosen_method(frame, selection)
    final = students(frame, "final")
    if chosen is None or final.empty:
        return empty_table(PAIR_COLUMNS, _missing(frame))
    method, alpha = chosen
    teacher = teacher_means(frame)
    teacher_rmse = float(teacher["rmse"]) if teacher is not None else np.nan
    out, weights = [], biome_weights(frame)
    for size, rows in final.groupby(SIZE):
        scratch = rows[rows["init"] == "scratch"]
        distilled = rows[(rows["method"] == method) & np.isclose(rows["alpha"], alpha)]
        pair = paired_difference(frame, scratch, distilled, n_boot, weights)
        if not pair["n_pairs"]:
            continue
        seeds = pair.pop("seeds")
        s_rows, d_rows = (r.drop_duplicates("seed").set_index("seed").loc[seeds] for r in (scratch, distilled))
        spread = float(s_rows["rmse"].std(ddof=1)) if len(seeds) > 1 else None
        gap, reason = evaluate.gap_closed(s_rows["rmse"].to_numpy(float), d_rows["rmse"].to_numpy(float),
                                          teacher_rmse, spread=spread)
        if teacher is None:
            gap, reason = np.nan, "no teacher row"
        extra = {f"{m}_{arm}": float(r[m].mean()) if m in r else np.nan
                 for m in ("r2", "r2_anom") for arm, r in (("scratch", s_rows), ("distilled", d_rows))}
        out.append(dict(zip(SIZE, size), method=method, alpha=alpha, n_pairs=pair["n_pairs"],
                        rmse_scratch=pair["rmse_base"], rmse_distilled=pair["rmse_arm"],
                        rmse_teacher=teacher_rmse, diff=pair["diff"], wins=pair["wins"],
                        p_value=pair["p_value"], ci_low=pair["ci_low"], ci_high=pair["ci_high"],
                        d_r2_anom=pair["d_r2_anom"], d_r2_anom_low=pair["d_r2_anom_low"],
                        d_r2_anom_high=pair["d_r2_anom_high"], n_blocks=pair["n_blocks"], gap_closed=gap, gap_reason=reason, **extra,
                        std_scratch=float(s_rows["rmse"].std(ddof=1)) if len(seeds) > 1 else np.nan,
                        std_distilled=float(d_rows["rmse"].std(ddof=1)) if len(seeds) > 1 else np.nan))
    if not out:
        return empty_table(PAIR_COLUMNS, _missing(frame))
    table = pd.DataFrame(out, columns=PAIR_COLUMNS).sort_values(["family", "n_params"], ascending=[True, False])
    return labelled(table.reset_index(drop=True), _missing(frame))


def _control_rows(frame: pd.DataFrame, selection: dict | None) -> dict[str, pd.DataFrame]:
    """:func:`wide` rows of the headline-size runs by role: ``scratch``, ``distilled``
    (final), ``alpha0``, ``noextra``, ``noisefree``, ``scratch_long``, ``distilled_long``
    (twice the epochs), and per label budget N ``scratch@N``, ``distilled@N`` (teacher of all
    labels) and ``same@N`` (teacher of the same N years)."""
    w = wide(frame)
    w = w[(w["kind"] == "student") & (w["method"] != "headroom")]
    check = w["tag"].str.fullmatch(r"budget\d+x")  # the budget check: validation only
    special = w[(w["tag"].isin(["noisefree", "noextra", "alpha0"]) | w["tag"].str.startswith(("budget", "long")))
                & ~check]
    if special.empty:
        return {}
    student = (selection or {}).get("student") or special["student"].iloc[0]
    w = w[w["student"] == student]
    chosen = chosen_method(frame, selection)
    kd = w[(w["init"] == "distilled") & ((w["method"] == chosen[0]) if chosen else True)]
    scratch = w[w["init"] == "scratch"]
    roles = {"scratch": scratch[scratch["tag"] == "final"],
             "distilled": kd[(kd["tag"] == "final") & (np.isclose(kd["alpha"], chosen[1]) if chosen else True)],
             "alpha0": kd[kd["tag"] == "alpha0"], "noextra": kd[kd["tag"] == "noextra"],
             "noisefree": scratch[scratch["tag"] == "noisefree"],
             "scratch_long": scratch[scratch["tag"] == LONG_TAG],
             "distilled_long": kd[(kd["tag"] == LONG_TAG) & (np.isclose(kd["alpha"], chosen[1]) if chosen else True)]}
    for tag in sorted(set(w["tag"])):
        m = re.fullmatch(r"budget(\d+)(teacher\d+)?", tag)
        if not m:
            continue
        years, same = int(m.group(1)), bool(m.group(2))
        roles[f"{'same' if same else 'distilled'}@{years}"] = kd[kd["tag"] == tag]
        if not same:
            roles[f"scratch@{years}"] = scratch[scratch["tag"] == tag]
    return {k: v for k, v in roles.items() if not v.empty}


def years_text(n: int, word: str = "label") -> str:
    """``1 label year`` / ``3 label years``."""
    return f"{n} {word} year{'' if n == 1 else 's'}"


#: Tag of the longer-training runs (:func:`ecodistill.experiments.protocol.run_longer`).
LONG_TAG = "long2x"

#: Rows of the controls table: role -> (control, condition, arm).
CONTROL_ROLES = {
    "scratch": ("arms", "scratch: its own truth loss and learning rate", "scratch"),
    "distilled": ("arms", "distilled: the selected loss, alpha and learning rate", "distilled"),
    "alpha0": ("teacher-free", "the distilled arm's settings with alpha 0 and no extra years",
               "teacher-free"),
    "noextra": ("extra years", "distilled without the teacher-labelled extra years", "distilled"),
    "noisefree": ("noise", "scratch on noise-free, gap-free targets", "scratch"),
    "scratch_long": ("longer training", "scratch at twice the epochs", "scratch"),
    "distilled_long": ("longer training", "distilled at twice the epochs", "distilled"),
}
BUDGET_ARMS = {"scratch": "scratch", "distilled": "distilled, all-label teacher",
               "same": "distilled, same-label teacher"}


def controls(frame: pd.DataFrame, selection: dict | None = None) -> pd.DataFrame:
    """The protocol's controls at the student they were run for (the headline size), test
    years, mean ± std over seeds.

    ``control`` is ``arms`` (the two reported arms), ``teacher-free`` (the distilled arm's
    settings with alpha 0 and no extra years: what it gets is not a distillation gain),
    ``extra years`` (distilled without the teacher-labelled extra years), ``noise`` (scratch on
    the simulator's noise-free targets), ``longer training`` (both arms at twice the epochs) or
    ``budget`` (1, 3, 10 and all labelled years; ``arm``
    ``scratch``, ``distilled, all-label teacher`` or ``distilled, same-label teacher``;
    ``label_years`` NaN = all years).
    Columns: ``control, condition, arm, label_years, n_seeds, rmse_mean, rmse_std,
    r2_anom_mean, r2_anom_std``.
    """
    metrics = ("rmse", "r2_anom")
    empty = empty_table(aggregate_columns(CONTROL_KEYS, metrics), _missing(frame))
    roles = _control_rows(frame, selection)
    if not roles:
        return empty
    groups = [(*CONTROL_ROLES[role], np.nan, rows) for role, rows in roles.items() if role in CONTROL_ROLES]
    for role, rows in roles.items():
        if "@" in role:
            kind, years = role.split("@")
            groups.append(("budget", f"{years_text(int(years))}: {BUDGET_ARMS[kind]}", BUDGET_ARMS[kind],
                           float(years), rows))
    for kind in ("scratch", "distilled"):
        if kind in roles and any(r.startswith(f"{kind}@") for r in roles):
            groups.append(("budget", f"all label years: {BUDGET_ARMS[kind]}", BUDGET_ARMS[kind], np.nan,
                           roles[kind]))
    parts = [aggregate(rows.assign(control=control, condition=condition, arm=arm, label_years=years),
                       CONTROL_KEYS, metrics)
             for control, condition, arm, years, rows in groups]
    out = pd.concat(parts, ignore_index=True)
    order = {"arms": 0, "teacher-free": 1, "extra years": 2, "noise": 3, "longer training": 4, "budget": 5}
    out = out.assign(_o=out["control"].map(order), _y=out["label_years"].fillna(1e9))
    out = out.sort_values(["_o", "_y", "arm"], kind="stable").drop(columns=["_o", "_y"])
    return labelled(out.reset_index(drop=True), _missing(frame))


#: The paired contrasts of the controls: (name, base role, arm role, question it answers).
CONTRASTS = [
    ("distilled vs scratch", "scratch", "distilled",
     "does the distilled arm beat the scratch arm, each with its own tuned settings?"),
    ("distilled vs teacher-free twin", "alpha0", "distilled",
     "what does the teacher add beyond the distilled arm's other settings?"),
    ("teacher-free twin vs scratch", "scratch", "alpha0",
     "what do the distilled arm's settings give without any teacher?"),
    ("extra years", "noextra", "distilled",
     "what do the teacher-labelled extra years add?"),
    ("distilled vs noise-free scratch", "noisefree", "distilled",
     "does distillation do better than scratch trained on clean targets?"),
    ("distilled vs scratch, twice the epochs", "scratch_long", "distilled_long",
     "does the verdict hold when both arms train twice as long?"),
    ("scratch: twice the epochs", "scratch", "scratch_long",
     "how much does the scratch arm gain from twice the steps?"),
    ("distilled: twice the epochs", "distilled", "distilled_long",
     "how much does the distilled arm gain from twice the steps?"),
]


def contrasts(frame: pd.DataFrame, selection: dict | None = None, n_boot: int = 2000) -> pd.DataFrame:
    """Seed-paired test-RMSE contrasts of the controls (:data:`CONTRASTS`, then per label
    budget N: distilled from the all-label teacher vs scratch, and from the same-label teacher
    vs scratch), each with the question it answers.

    ``diff`` = RMSE of the arm − RMSE of the base (:data:`SIGN_CONVENTION`; negative: the arm
    is better) and ``d_r2_anom`` the same for the anomaly R² (positive: the arm is better), each
    with its 95% interval from the two-way cluster bootstrap over seeds and biomes
    (:func:`paired_difference`), the Wilcoxon p and ``wins`` (seeds where the arm is better).
    Columns: :data:`CONTRAST_COLUMNS`.
    """
    roles = _control_rows(frame, selection)
    if not roles:
        return empty_table(CONTRAST_COLUMNS, _missing(frame))
    todo = [(name, base, arm, question, np.nan) for name, base, arm, question in CONTRASTS]
    budgets = sorted({int(r.split("@")[1]) for r in roles if "@" in r})
    for n in budgets:
        todo.append((f"{years_text(n)}: all-label teacher", f"scratch@{n}", f"distilled@{n}",
                     f"with {years_text(n, 'labelled')}, does a teacher trained on all labels help?", float(n)))
        todo.append((f"{years_text(n)}: same-label teacher", f"scratch@{n}", f"same@{n}",
                     f"with {years_text(n, 'labelled')}, does a teacher that saw only those labels help?",
                     float(n)))
    rows, weights = [], biome_weights(frame)
    for name, base, arm, question, years in todo:
        if base in roles and arm in roles:
            pair = paired_difference(frame, roles[base], roles[arm], n_boot, weights)
            pair.pop("seeds")
            if pair["n_pairs"]:
                rows.append({"contrast": name, "question": question, "label_years": years, **pair})
    return labelled(pd.DataFrame(rows, columns=CONTRAST_COLUMNS), _missing(frame))


def biome_table(frame: pd.DataFrame, student: str, selection: dict | None = None) -> pd.DataFrame:
    """Test anomaly R² per biome for the adapted teacher (the headline one, a single run) and
    ``student`` (scratch, distilled; over seeds).

    Columns: ``biome, model`` (teacher | scratch | distilled), ``r2_anom_mean, r2_anom_std, n``
    (``r2_anom_std`` NaN for one run: a one-seed teacher has no spread to draw).
    """
    empty = empty_table(["biome", "model", "r2_anom_mean", "r2_anom_std", "n"], _missing(frame))
    chosen = chosen_method(frame, selection)
    rows = frame[(frame["target"] == "ndvi") & (frame["split"] == "test")
                 & (frame["metric"] == "r2_anom")
                 & frame["region"].astype(str).str.startswith("biome:")]
    if rows.empty:
        return empty
    parsed = rows["run_id"].map(runs.parse_run_id)
    rows = rows.assign(student=parsed.str[0], tag=parsed.str[1])
    teacher = rows[(rows["kind"] == "teacher") & (rows["init"] == "pretrained")]
    if "teacher_role" in teacher and teacher["teacher_role"].astype(str).str.len().gt(0).any():
        # the adapted (headline) teacher only: the label-budget teachers are pre-trained too
        teacher = teacher[teacher["teacher_role"] == "adapted"]
    mine = rows[(rows["student"] == student) & (rows["tag"] == "final")]
    scratch = mine[mine["init"] == "scratch"]
    distilled = mine[(mine["init"] == "distilled")
                     & ((mine["method"] == chosen[0]) if chosen else True)]
    picked = pd.concat([teacher.assign(model="teacher"), scratch.assign(model="scratch"),
                        distilled.assign(model="distilled")], ignore_index=True)
    if picked.empty:
        return empty
    out = stats.summarise(picked.assign(biome=picked["region"].str[6:]), ["biome", "model"],
                          "r2_anom")
    out = out.rename(columns={"mean": "r2_anom_mean", "std": "r2_anom_std"}).drop(columns="ci95")
    return labelled(out, _missing(frame))


def error_maps(profile: str, frame: pd.DataFrame, student: str, seed: int = 0,
               selection: dict | None = None) -> dict[str, np.ndarray]:
    """Stored test RMSE maps ``(h, w)`` of the teacher and ``student`` (scratch, distilled) at
    ``seed``: label -> array for each ``results/<profile>/maps/<run_id>.npz`` that exists."""
    w = wide(frame)
    if w.empty:
        return {}
    chosen = chosen_method(frame, selection)
    final = w[(w["student"] == student) & (w["tag"] == "final") & (w["seed"] == seed)]
    picks = {"teacher": w[(w["kind"] == "teacher") & (w["init"] == "pretrained")],
             f"scratch ({student})": final[final["init"] == "scratch"],
             f"distilled ({student})": final[(final["init"] == "distilled")
                                             & (final["method"] == (chosen[0] if chosen else ""))]}
    out = {}
    for label, rows in picks.items():
        for run_id in rows["run_id"]:
            path = results_dir(profile) / "maps" / f"{run_id}.npz"
            if path.is_file():
                with np.load(path) as arrays:
                    out[label] = arrays["rmse"]
                break
    return out
