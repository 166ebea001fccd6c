"""The comparison protocol: distilled vs scratch students with equal tuning, then controls.

``python -m ecodistill matrix --profile P`` runs, resumably (finished runs are skipped):

1. **Selection** on the validation years (seed 0, the headline student). The distilled arm
   tries every ``alpha > 0`` of the profile with the MSE output loss, then every other
   offline output loss at the best alpha; the scratch arm tries every loss that has a
   truth-only form (MSE, L1, Huber: the same truth terms the distilled arm mixes with the
   teacher). Each arm's best setting then gets its learning rate searched until the best
   multiplier is inside the grid (:func:`ecodistill.training.lr_search.search_lr`), and the arm with
   fewer trials gets more learning rates, so both arms have the same trial count.
   Live-teacher losses are tried for the ablation when the teacher network is at hand, but
   never chosen: the matrix reads cached predictions.
2. **Learning rate per family**: for every other student family, both arms' learning
   rates are searched again (same rule, equal trials) at that family's size.
3. **Final**: every student size x {scratch, distilled} x the profile's seeds on the test
   years, each arm at its family's learning rate. Every run takes the same optimizer steps.
4. **Controls** at the headline size, over the same seeds: scratch on noise-free targets
   (is distillation denoising?), distilled without the teacher-labelled extra years, the
   distilled arm's own settings with alpha 0 and no extra years (a teacher-free run: what
   it also gets is not a distillation gain), and the label budgets (1, 3, 10 labelled
   years): scratch, distilled from the teacher of all labels, and distilled from a teacher
   adapted on the same restricted labels.
The **ladder** stage (:mod:`ecodistill.experiments.ladder`) trains the scratch arm at every
size of the ladder and every history setting (today only, a year of windows, a recurrent
state), each size's learning rate searched (at the profile's own history the selection's),
every seed: where does a teacher have something to give? The **trees** stage fits the
LightGBM baseline (:mod:`ecodistill.experiments.trees`) at the same histories. (The v1
world's AFNO **headroom** stage stays available, not run by default.)

5. **Sweep and budget check** (validation years, seed 0): every alpha at the distilled
   arm's tuned loss and learning rate (drawn against scratch at its own), and both arms'
   selected settings at twice and four times the epochs, to show whether training has
   plateaued.
6. **Longer training** at the headline size: both arms at twice the epochs over every seed
   on the test years, so the verdict can be read again at a larger budget (the learning
   rates stay those tuned at the profile's budget).
7. **Privileged information** (:func:`run_privileged`): the headline teacher, which sees the
   land state and a year of history, distilled into students that see only what a field
   device holds (:data:`FIELD_DEVICE`: today's atmosphere with a recurrent state, or today's
   atmosphere alone), against the same students from scratch, with equal learning-rate trials.
8. **Nowcast** (:func:`run_nowcast`): the headline student with the NDVI observed at least
   1, 16 or 30 days before as an input, against persistence at the same latency.
9. **Memory** (:func:`run_memory`): the headline student with stacked past days
   (FourCastNet's ``n_history``) and a 96-day sequence, for the cost of each kind of memory.

Explained in book/generated/04_results.ipynb ("The protocol").
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import replace

from .. import losses
from ..config import LABEL_BUDGETS, PROFILES, DistillConfig, StudentConfig
from ..models import student_config
from ..store.integrity import read_json
from ..store.runs import selection_path
from ..training.lr_search import LRSearch, equalize, search_lr
from ..utils import atomic_write_json, results_dir
from .distill import needs_live_teacher, train_student
from .headroom import run_headroom
from .ladder import LADDER_HISTORIES, run_ladder
from .teacher import ensure_teacher, teacher_record
from .trees import run_tree
from .workspace import Workspace, open_workspace

STAGES = ("select", "ladder", "trees", "final", "controls", "sweep", "longer", "privileged", "nowcast", "memory")
#: Stages that exist but do not run by default: the v1 world's AFNO headroom check (the ladder replaced it).
OPTIONAL_STAGES = ("headroom",)
#: The privileged-information case: what a field device can hold, ``(inputs, history)``,
#: and the student sizes tried there (the teacher keeps the land state and a year of history).
FIELD_DEVICE = (("anchor", "recurrent"), ("anchor", "today"))
#: Students per field-device setting: the profile's headline and (with the recurrent state, the
#: Pi student) its smallest, the last of ``RunConfig.students``.
FIELD_SIZES = {("anchor", "recurrent"): ("smallest", "headline"), ("anchor", "today"): ("headline",)}
#: Nowcast latencies [days]: NDVI observed at least this long before is an input.
NOWCAST_LATENCIES = (1, 16, 30)
#: Other histories trained at the headline size for the cost accounting (scratch arm).
MEMORY_HISTORIES = ("stack", "sequence")
#: Multiples of the profile's student epochs in the budget check (seed 0, validation years).
BUDGET_FACTORS = (2, 4)
#: Multiple of the epochs of the longer-training stage (every seed, test years).
LONGER_FACTOR = 2


class _Trials:
    """Validation trials of one student size, recorded for the book."""

    def __init__(self, ws: Workspace, scfg: StudentConfig, seed: int, teacher_run_id: str | None = None) -> None:
        self.ws, self.scfg, self.seed, self.log, self.teacher = ws, scfg, seed, [], teacher_run_id

    def __call__(self, arm: str, dcfg: DistillConfig, lr_scale: float, stage: str) -> float:
        res = train_student(self.ws, self.scfg, dcfg, self.seed, tag="tune", lr_scale=lr_scale, splits=("val",),
                            teacher_run_id=self.teacher if arm == "distilled" else None)
        self.log.append({"student": self.scfg.name, "arm": arm, "stage": stage, "mode": dcfg.mode,
                         "loss": dcfg.loss, "alpha": dcfg.alpha, "lr_scale": lr_scale, "val_rmse": res.val_rmse,
                         "run_id": res.run_id})
        return res.val_rmse


def _arm_setting(arm: str, choice: dict) -> DistillConfig:
    if arm == "scratch":
        return DistillConfig(mode="scratch", loss=choice["scratch_loss"])
    return DistillConfig(loss=choice["loss"], alpha=choice["alpha"])


def _tune_lr(trials: _Trials, choice: dict, centre: dict[str, float], spent: dict[str, int],
             known: dict[str, dict[float, float]]) -> dict[str, LRSearch]:
    """Both arms' learning rates searched around ``centre``, then equal trial counts."""
    arms = ("distilled", "scratch")
    score = {a: (lambda m, a=a: trials(a, _arm_setting(a, choice), m, "lr")) for a in arms}
    searches = {a: search_lr(score[a], centre[a], tried=known.get(a)) for a in arms}
    equalize(searches, score, extra=spent)
    return searches


def select_settings(ws: Workspace, seed: int = 0) -> dict:
    """Stages 1 and 2 of the protocol (module docstring); writes and returns the selection."""
    scfg = student_config(ws.cfg, ws.cfg.headline_student)
    trials = _Trials(ws, scfg, seed)
    alphas = {a: trials("distilled", DistillConfig(loss="mse", alpha=a), 1.0, "alpha")
              for a in ws.cfg.alphas if a > 0}
    best_alpha = min(alphas, key=alphas.get)
    kd_loss = {"mse": alphas[best_alpha]}
    for name in ws.cfg.losses:
        if name == "mse" or losses.loss_spec(name).kind not in ("output", "feature"):
            continue
        try:
            kd_loss[name] = trials("distilled", DistillConfig(loss=name, alpha=best_alpha), 1.0, "loss")
        except FileNotFoundError as err:  # a live-teacher loss where no teacher checkpoint is
            print(f"loss ablation: {name} skipped ({err})")
    offline = {k: v for k, v in kd_loss.items() if not needs_live_teacher(DistillConfig(loss=k))}
    truth = {name: trials("scratch", DistillConfig(mode="scratch", loss=name), 1.0, "loss")
             for name in losses.loss_names(truth=True) if name in ws.cfg.losses or name == "mse"}
    choice = {"alpha": best_alpha, "loss": min(offline, key=offline.get), "scratch_loss": min(truth, key=truth.get)}
    # trials outside the learning-rate searches (each search holds its arm's best setting at x1)
    spent = {"distilled": len(alphas) + len(offline) - 2, "scratch": len(truth) - 1}
    known = {"distilled": {1.0: offline[choice["loss"]]}, "scratch": {1.0: truth[choice["scratch_loss"]]}}
    searches = _tune_lr(trials, choice, {"distilled": 1.0, "scratch": 1.0}, spent, known)
    lr = {scfg.family: {a: s.best for a, s in searches.items()}}
    lr_searches = {scfg.family: {a: s.as_dict() for a, s in searches.items()}}
    for student in ws.cfg.students:
        if student.family in lr:
            continue
        family_trials = _Trials(ws, student, seed)
        found = _tune_lr(family_trials, choice, lr[scfg.family], {}, {})
        trials.log += family_trials.log
        lr[student.family] = {a: s.best for a, s in found.items()}
        lr_searches[student.family] = {a: s.as_dict() for a, s in found.items()}
    selection = {"student": scfg.name, "seed": seed, **choice, "kd_lr_scale": lr[scfg.family]["distilled"],
                 "scratch_lr_scale": lr[scfg.family]["scratch"], "lr_by_family": lr, "lr_searches": lr_searches,
                 "n_trials_each": {a: len(lr_searches[scfg.family][a]["scores"]) + spent[a] for a in spent},
                 "ablation_only": sorted(set(kd_loss) - set(offline)), "trials": trials.log}
    atomic_write_json(selection_path(ws.profile), selection)
    return selection


def read_selection(profile: str) -> dict:
    """``results/<profile>/selection.json``, or the error naming the command that makes it."""
    return read_json(selection_path(profile), "selection record",
                     f"rerun `python -m ecodistill matrix --profile {profile} --stages select`")


def best_distilled(selection: dict, family: str | None = None) -> tuple[DistillConfig, float]:
    """The selected distillation setting and its learning-rate multiplier (for ``family``)."""
    lr = selection["lr_by_family"].get(family, {}).get("distilled", selection["kd_lr_scale"])
    return DistillConfig(loss=selection["loss"], alpha=selection["alpha"]), float(lr)


def best_scratch(selection: dict, family: str | None = None) -> tuple[DistillConfig, float]:
    """The selected scratch setting (truth loss) and its learning-rate multiplier (for ``family``)."""
    lr = selection["lr_by_family"].get(family, {}).get("scratch", selection["scratch_lr_scale"])
    return DistillConfig(mode="scratch", loss=selection["scratch_loss"]), float(lr)


def _by_priority(ws: Workspace) -> list[StudentConfig]:
    """The headline student first, then the others from the cheapest (most runs fit a budget)."""
    head = student_config(ws.cfg, ws.cfg.headline_student)
    return [head] + [s for s in ws.cfg.students if s is not head]


def run_final(ws: Workspace, selection: dict, allow: Callable[..., bool] | None = None) -> list[str]:
    """Every student size x {scratch, distilled} x the profile's seeds on the test years.

    ``allow(student, n_runs)`` (a time budget) is asked before each seed's pair of runs: a
    pair that is not allowed is skipped whole, so every seed has both arms."""
    ids = []
    for seed in ws.cfg.seeds:
        for scfg in _by_priority(ws):
            if allow is not None and not allow(scfg, 2):
                continue
            for dcfg, lr in (best_scratch(selection, scfg.family), best_distilled(selection, scfg.family)):
                ids.append(train_student(ws, scfg, dcfg, seed, lr_scale=lr).run_id)
    return ids


def label_budgets(ws: Workspace) -> list[int]:
    """Label budgets (years with NDVI labels): :data:`ecodistill.config.LABEL_BUDGETS` that fit,
    and all training years."""
    n_years = ws.cfg.data.train_years[1] - ws.cfg.data.train_years[0] + 1
    return sorted({b for b in LABEL_BUDGETS if b < n_years} | {n_years})


def run_controls(ws: Workspace, selection: dict, allow: Callable[..., bool] | None = None) -> list[str]:
    """Stage 4 of the protocol (module docstring) at the headline size (``allow``: as in
    :func:`run_final`, asked before each seed's controls)."""
    scfg = student_config(ws.cfg, ws.cfg.headline_student)
    best, kd_lr = best_distilled(selection, scfg.family)
    scratch, lr = best_scratch(selection, scfg.family)
    budget_teachers = (teacher_record(ws.profile) or {}).get("label_budget_run_ids", {})
    ids = []
    per_seed = 3 + 3 * len(label_budgets(ws)[:-1])
    for seed in ws.cfg.seeds:
        if allow is not None and not allow(scfg, per_seed):
            continue
        ids.append(train_student(ws, scfg, scratch, seed, lr_scale=lr, target="ndvi_true", tag="noisefree").run_id)
        ids.append(train_student(ws, scfg, replace(best, extra_unlabeled=False), seed, lr_scale=kd_lr,
                                 tag="noextra").run_id)
        ids.append(train_student(ws, scfg, replace(best, alpha=0.0, extra_unlabeled=False), seed, lr_scale=kd_lr,
                                 tag="alpha0").run_id)
        for years in label_budgets(ws)[:-1]:  # "all years" is the final run itself
            ids.append(train_student(ws, scfg, replace(scratch, label_years=years), seed, lr_scale=lr,
                                     tag=f"budget{years}").run_id)
            ids.append(train_student(ws, scfg, replace(best, label_years=years), seed, lr_scale=kd_lr,
                                     tag=f"budget{years}").run_id)
            if str(years) in budget_teachers:
                ids.append(train_student(ws, scfg, replace(best, label_years=years), seed, lr_scale=kd_lr,
                                         tag=f"budget{years}teacher{years}",
                                         teacher_run_id=budget_teachers[str(years)]).run_id)
    return ids


def _headline_arms(ws: Workspace, selection: dict) -> tuple[StudentConfig, list[tuple[DistillConfig, float]]]:
    """The headline student and its two arms' (setting, learning-rate multiple): scratch, distilled."""
    scfg = student_config(ws.cfg, ws.cfg.headline_student)
    return scfg, [best_scratch(selection, scfg.family), best_distilled(selection, scfg.family)]


def run_sweep(ws: Workspace, selection: dict, seed: int = 0) -> list[str]:
    """Stage 5: every alpha at the distilled arm's tuned loss and learning rate, and both arms'
    selected settings at :data:`BUDGET_FACTORS` times the epochs (validation years; tags
    ``budget2x``, ``budget4x``)."""
    scfg, arms = _headline_arms(ws, selection)
    best, kd_lr = arms[1]
    ids = [train_student(ws, scfg, replace(best, alpha=a), seed, tag="sweep", lr_scale=kd_lr,
                         splits=("val",)).run_id for a in ws.cfg.alphas]
    for factor in BUDGET_FACTORS:
        longer = {"epochs": factor * ws.cfg.student_train.epochs}
        ids += [train_student(ws, scfg, dcfg, seed, tag=f"budget{factor}x", lr_scale=scale, splits=("val",),
                              train_changes=longer).run_id for dcfg, scale in arms]
    return ids


def run_longer(ws: Workspace, selection: dict, allow: Callable[..., bool] | None = None) -> list[str]:
    """Stage 6: both arms at the headline size with :data:`LONGER_FACTOR` times the epochs,
    every seed, test years (tag ``long2x``; ``allow`` as in :func:`run_final`)."""
    scfg, arms = _headline_arms(ws, selection)
    longer = {"epochs": LONGER_FACTOR * ws.cfg.student_train.epochs}
    ids = []
    for seed in ws.cfg.seeds:
        if allow is not None and not allow(scfg, 2 * LONGER_FACTOR):  # two runs, each as long as that many
            continue
        ids += [train_student(ws, scfg, dcfg, seed, tag=f"long{LONGER_FACTOR}x", lr_scale=scale,
                              train_changes=longer).run_id for dcfg, scale in arms]
    return ids


def run_privileged(ws: Workspace, selection: dict, allow: Callable[..., bool] | None = None) -> list[dict]:
    """The privileged-information case: the headline teacher (land state, the profile's history)
    distilled into students that see only what a field device holds (:data:`FIELD_DEVICE`),
    against the same students from scratch; both arms' learning rates searched with equal
    trials at each (inputs, history, size), then every seed (tag ``field``)."""
    teacher_id = (teacher_record(ws.profile) or {})["run_id"]
    choice = {k: selection[k] for k in ("alpha", "loss", "scratch_loss")}
    out = []
    for inputs, history in FIELD_DEVICE:
        field = open_workspace(ws.profile, ws.device, inputs=inputs, history=history)
        for which in FIELD_SIZES[(inputs, history)]:
            scfg = ws.cfg.students[-1] if which == "smallest" else student_config(ws.cfg, ws.cfg.headline_student)
            name = scfg.name
            trials = _Trials(field, scfg, 0, teacher_run_id=teacher_id)
            centre = {a: float(selection["lr_by_family"].get(scfg.family, {}).get(a, 1.0))
                      for a in ("distilled", "scratch")}
            searches = _tune_lr(trials, choice, centre, {}, {})
            ids = []
            for seed in ws.cfg.seeds:
                if allow is not None and not allow(scfg, 2):
                    continue
                for arm in ("scratch", "distilled"):
                    ids.append(train_student(field, scfg, _arm_setting(arm, choice), seed, tag="field",
                                             lr_scale=searches[arm].best,
                                             teacher_run_id=teacher_id if arm == "distilled" else None).run_id)
            out.append({"inputs": inputs, "history": history, "student": name, "teacher_run_id": teacher_id,
                        "lr": {a: s.as_dict() for a, s in searches.items()}, "trials": trials.log, "run_ids": ids})
    return out


def run_nowcast(ws: Workspace, selection: dict, allow: Callable[..., bool] | None = None) -> list[str]:
    """The nowcast use: the headline student from scratch with the NDVI observed at least L days
    before as an input (:data:`NOWCAST_LATENCIES`), every seed, at the scratch arm's learning
    rate of its family (not searched again: the latency adds two channels)."""
    scfg = student_config(ws.cfg, ws.cfg.headline_student)
    scratch, lr = best_scratch(selection, scfg.family)
    ids = []
    for latency in NOWCAST_LATENCIES:
        nowcast = open_workspace(ws.profile, ws.device, ndvi_latency=latency)
        ids += [train_student(nowcast, scfg, scratch, seed, lr_scale=lr, tag=f"nowcast{latency}").run_id
                for seed in ws.cfg.seeds if allow is None or allow(scfg, 1)]
    return ids


def run_memory(ws: Workspace, selection: dict, allow: Callable[..., bool] | None = None) -> list[str]:
    """The headline student from scratch at the histories of :data:`MEMORY_HISTORIES`
    (FourCastNet-style stacking, a 96-day sequence), every seed, at its family's scratch
    learning rate: what raw past days give beside trailing means and a recurrent state."""
    scfg = student_config(ws.cfg, ws.cfg.headline_student)
    scratch, lr = best_scratch(selection, scfg.family)
    ids = []
    for history in MEMORY_HISTORIES:
        variant = open_workspace(ws.profile, ws.device, history=history)
        ids += [train_student(variant, scfg, scratch, seed, lr_scale=lr).run_id
                for seed in ws.cfg.seeds if allow is None or allow(scfg, 1)]
    return ids


def run_matrix(profile: str, device: str | None = None, stages: tuple[str, ...] = STAGES):
    """The whole comparison at ``profile``; resumable (finished runs are skipped)."""
    ws = open_workspace(profile, device)
    ensure_teacher(profile, ws.device)
    path = selection_path(profile)
    fresh = "select" in stages or not path.is_file()
    selection = select_settings(ws) if fresh else read_selection(profile)
    ids = []
    if "headroom" in stages:
        ids += run_headroom(profile, device=ws.device)
    if "ladder" in stages:
        scratch_lr = {family: lr["scratch"] for family, lr in selection["lr_by_family"].items()}
        records = run_ladder(profile, selection["scratch_loss"], scratch_lr, device=ws.device)
        atomic_write_json(results_dir(profile) / "ladder.json", records)
        ids += [i for r in records for i in r["run_ids"]]
    if "trees" in stages:
        histories = dict.fromkeys((ws.history, *LADDER_HISTORIES))  # the comparison's own, then the ladder's
        ids += [run_tree(open_workspace(profile, ws.device, history=h)) for h in histories]
    if "final" in stages:
        ids += run_final(ws, selection)
    if "controls" in stages:
        ids += run_controls(ws, selection)
    if "sweep" in stages:
        ids += run_sweep(ws, selection)
    if "longer" in stages:
        ids += run_longer(ws, selection)
    if "privileged" in stages:
        records = run_privileged(ws, selection)
        atomic_write_json(results_dir(profile) / "privileged.json", records)
        ids += [i for r in records for i in r["run_ids"]]
    if "nowcast" in stages:
        ids += run_nowcast(ws, selection)
    if "memory" in stages:
        ids += run_memory(ws, selection)
    return selection, ids


def _cmd_matrix(args: argparse.Namespace) -> int:
    selection, ids = run_matrix(args.profile, args.device, tuple(args.stages))
    print(json.dumps({"selection": {k: v for k, v in selection.items() if k not in ("trials", "lr_searches")},
                      "runs": len(ids)}))
    return 0


def register_cli(subparsers) -> None:
    """Add ``matrix`` (the whole comparison)."""
    m = subparsers.add_parser("matrix", help="the distilled-vs-scratch comparison (resumable)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("--profile", default="smoke", choices=PROFILES)
    m.add_argument("--device", default=None)
    m.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES + OPTIONAL_STAGES)
    m.set_defaults(func=_cmd_matrix)
