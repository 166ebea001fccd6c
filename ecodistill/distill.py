"""Student runs: scratch and distilled, one at a time or as the whole comparison matrix.

A student run builds a student, trains it with one objective from
:mod:`ecodistill.objectives` through the one training loop, evaluates it on the validation
and test years, and writes its rows (plus, for seed 0, its test error map). Runs are keyed
by the hash of their configuration, so an interrupted matrix resumes where it stopped.

The matrix follows the comparison protocol of the book (DESIGN.md): selection on the
validation years with an equal number of trials for scratch and distilled students, then
every student size × {scratch, distilled} × seeds on the test years, then the controls
(noise-free targets, no teacher-labelled extra years, label budgets).

Explained in book/generated/03_distill.ipynb and book/generated/04_results.ipynb.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from . import runs
from .config import PROFILES, DistillConfig, StudentConfig
from .models import build_student, count_params, save_checkpoint
from .objectives import make_objective
from .pipeline import Workspace, open_workspace
from .teacher import ensure_teacher, load_teacher, load_teacher_predictions, teacher_record
from .train import fit, masked_mse_loss
from .utils import atomic_write_json, results_dir, seed_everything

LIVE_TEACHER_LOSSES = ("hint", "attention", "relational")
STUDENT_CKPT_BYTES = 8 * 2**20  # committed student checkpoints stay "a few MB"


@dataclass
class StudentResult:
    """One finished student run."""

    run_id: str
    val_rmse: float
    history: list[dict]
    model: Any = None


def _run_name(scfg: StudentConfig, dcfg: DistillConfig, tag: str) -> str:
    """``scratch-<student>`` or ``kd-<loss>-<mode>-<student>_from_teacher`` plus a tag (STYLE.md §7)."""
    base = (f"scratch-{scfg.name}" if dcfg.mode == "scratch"
            else f"kd-{dcfg.loss}-{dcfg.mode}-{scfg.name}_from_teacher")
    return f"{base}-{tag}"


def train_loader(ws: Workspace, dcfg: DistillConfig, seed: int, batch_size: int, target: str):
    """The training loader a mode needs (offline: with the teacher's cached predictions)."""
    common = dict(shuffle=True, seed=seed, batch_size=batch_size, label_years=dcfg.label_years, target=target)
    if dcfg.mode != "offline" or dcfg.loss in LIVE_TEACHER_LOSSES:
        return ws.loader("train", **common)
    unlabeled = dcfg.extra_unlabeled and ws.prep.has_split("extra")
    pred = np.zeros((ws.prep.n_time, 1, *ws.img_size), np.float16)  # aligned with the time axis:
    for split in ("train", "extra") if unlabeled else ("train",):  # any subset of days can use it
        pred[ws.prep.split_days(split)] = load_teacher_predictions(ws, split)
    return ws.loader("train", teacher_pred=pred, unlabeled=unlabeled, **common)


def train_student(ws: Workspace, scfg: StudentConfig, dcfg: DistillConfig, seed: int, *,
                  tag: str = "final", lr_scale: float = 1.0, target: str = "ndvi",
                  splits: tuple[str, ...] = ("val", "test"), save_map: bool | None = None,
                  keep_model: bool = False) -> StudentResult:
    """Train and evaluate one student; skip the work when its rows already exist.

    Args:
        scfg: architecture; dcfg: objective (mode ``scratch`` trains on the truth only).
        seed: seeds weights, batch order and loss sampling.
        tag: ``tune`` (selection on validation years) or ``final`` (reported runs).
        lr_scale: multiplies the profile's learning rate (the scratch students' search axis).
        target: ``ndvi`` (observed, with noise and gaps) or ``ndvi_true`` (noise-free control).
        splits: where to evaluate (tuning runs: ``("val",)`` only — test years are used once).
        save_map: store the test error map (default: seed 0 only).
        keep_model: return the trained model (always trains, even when the rows exist).
    """
    cfg = ws.train_cfg("student_train", seed, lr=ws.cfg.student_train.lr * lr_scale)
    teacher_info = ensure_teacher(ws.profile, ws.device) if dcfg.mode != "scratch" else {}
    current = teacher_record(ws.profile) or {}
    teacher_ready = current.get("dataset_hash") == ws.dataset_hash  # scratch runs get fidelity too
    teacher_info = teacher_info or (current if teacher_ready else {})
    config = ws.run_config(role="student", student=asdict(scfg), distill=asdict(dcfg), seed=seed,
                           train=asdict(cfg), target=target, tag=tag, splits=list(splits))
    name = _run_name(scfg, dcfg, tag)
    run_id = runs.make_run_id(name, config)
    if runs.has_run(ws.profile, run_id) and not keep_model:
        frame = runs.read_runs(ws.profile, run_id=run_id, split="val", region="global", metric="rmse")
        return StudentResult(run_id, float(frame.value.iloc[0]), [])
    seed_everything(seed)
    model = build_student(scfg, ws.in_chans, 1, ws.img_size)
    live = load_teacher(ws.profile) if (dcfg.loss in LIVE_TEACHER_LOSSES or dcfg.mode == "online") else None
    example = ws.example_x()
    loss_fn = make_objective(dcfg, model, live, example, seed)
    kwargs: dict[str, Any] = {}
    if dcfg.mode == "online":  # deep mutual learning: the teacher keeps learning beside the student
        kwargs = {"co_model": live, "co_loss_fn": make_objective(replace(dcfg, mode="offline", loss="mse",
                                                                         alpha=0.1))}
    elif live is not None:
        kwargs = {"teacher": live}
    result = fit(model, train_loader(ws, dcfg, seed, cfg.batch_size, target),
                 ws.loader("val", batch_size=cfg.batch_size), loss_fn, cfg, lat_weights=ws.lat_weights,
                 val_loss_fn=masked_mse_loss, device=ws.device, progress=False, **kwargs)
    rows = []
    test_pred = None
    for split in splits:
        y_hat = ws.predict(model, split)
        teacher_pred = load_teacher_predictions(ws, split) if teacher_ready else None
        rows += ws.evaluate(y_hat, split, teacher_pred=teacher_pred)
        test_pred = y_hat if split == "test" else test_pred
    n_params, flops = ws.model_cost(model)
    meta = {"run_id": run_id, "kind": "student", "init": "scratch" if dcfg.mode == "scratch" else "distilled",
            "method": "scratch" if dcfg.mode == "scratch" else f"kd-{dcfg.loss}-{dcfg.mode}",
            "family": scfg.family, "n_params": n_params, "flops_per_map": flops,
            "alpha": dcfg.alpha if dcfg.mode != "scratch" else float("nan"),
            "label_years": dcfg.label_years or -1, "teacher_run_id": teacher_info.get("run_id", ""),
            "seed": seed}
    ws.record(name, meta, rows, config, result.history)
    if test_pred is not None and (save_map if save_map is not None else seed == 0):
        ws.save_error_map(run_id, test_pred)
    if dcfg.mode != "scratch" and tag == "final" and seed == 0:
        save_student(ws, run_id, model, config)
    val = [r for r in rows if r[0] == "val" and r[1] == "global" and r[2] == "rmse"]
    return StudentResult(run_id, float(val[0][3]) if val else float("nan"), result.history,
                         model if keep_model else None)


def save_student(ws: Workspace, run_id: str, model, config: dict) -> None:
    """Keep a reported distilled student (seed 0) for the benchmarks and the Pi.

    Checkpoints of at most ``STUDENT_CKPT_BYTES`` go to ``results/<profile>/students/``
    (small enough to commit); larger ones stay in the cache.
    """
    small = count_params(model) * 4 <= STUDENT_CKPT_BYTES
    folder = results_dir(ws.profile) / "students" if small else ws.checkpoint_path("x").parent
    save_checkpoint(folder / f"{run_id}.pt", model, config)


# --------------------------------------------------------------------------- the matrix
def selection_path(profile: str):
    """``results/<profile>/selection.json``: what validation chose, and the trials behind it."""
    return results_dir(profile) / "selection.json"


#: Learning-rate multipliers each arm re-tries around its own best setting (stage 3 of
#: :func:`select_settings`).
LR_REFINE = (0.5, 2.0, 4.0)


def select_settings(ws: Workspace, seed: int = 0) -> dict:
    """Choose alpha, loss and learning rate (distilled) and the learning rate (scratch) on the
    validation years, with the same number of trials for both arms.

    1. Distilled: every alpha with the MSE output loss, then every loss at the best alpha.
       Losses that need the live teacher (:data:`LIVE_TEACHER_LOSSES`) are tried for the
       ablation when its checkpoint is at hand but never chosen: the matrix's runs read the
       teacher's cached predictions (at ``full`` they run away from the GPU that holds it).
    2. Scratch: as many learning-rate multipliers, log-spaced from 0.25 to 4 around the
       profile's value.
    3. Both arms: their best setting re-tried at ``LR_REFINE`` times their own best
       multiplier (tag ``tunelr``), so that neither arm is held back by a learning rate
       that suits the profile's budget badly, and a scratch optimum on the edge of its grid
       is followed beyond it.

    Tuning runs are evaluated on the validation years only.
    """
    scfg = ws.cfg.student(ws.cfg.headline_student)
    trials: list[dict] = []

    def trial(dcfg, lr_scale=1.0, stage="alpha", tag="tune"):
        res = train_student(ws, scfg, dcfg, seed, tag=tag, lr_scale=lr_scale, splits=("val",))
        trials.append({"stage": stage, "mode": dcfg.mode, "loss": dcfg.loss, "alpha": dcfg.alpha,
                       "lr_scale": lr_scale, "val_rmse": res.val_rmse, "run_id": res.run_id})
        return res.val_rmse

    alpha_scores = {a: trial(DistillConfig(loss="mse", alpha=a)) for a in ws.cfg.alphas}
    best_alpha = min(alpha_scores, key=alpha_scores.get)
    loss_scores = {"mse": alpha_scores[best_alpha]}
    for name in ws.cfg.losses:
        if name == "mse":
            continue
        try:
            loss_scores[name] = trial(DistillConfig(loss=name, alpha=best_alpha), stage="loss")
        except FileNotFoundError as err:  # a live-teacher loss where no teacher checkpoint is
            print(f"loss ablation: {name} skipped ({err})")
    offline = {k: v for k, v in loss_scores.items() if k not in LIVE_TEACHER_LOSSES}
    best_loss = min(offline, key=offline.get)  # the matrix reads cached predictions only
    n_trials = len(alpha_scores) + len(loss_scores) - 1
    scales = np.geomspace(0.25, 4.0, n_trials) if n_trials > 1 else np.array([1.0])
    scratch = DistillConfig(mode="scratch")
    lr_scores = {float(s): trial(scratch, float(s), stage="lr-grid") for s in scales}
    kd_best = DistillConfig(loss=best_loss, alpha=best_alpha)
    kd_lr = {1.0: loss_scores[best_loss]}
    scratch_centre = min(lr_scores, key=lr_scores.get)
    for m in LR_REFINE:
        kd_lr[m] = trial(kd_best, m, stage="lr-refine", tag="tunelr")
        lr_scores[scratch_centre * m] = trial(scratch, scratch_centre * m, stage="lr-refine", tag="tunelr")
    selection = {"student": scfg.name, "seed": seed, "alpha": best_alpha, "loss": best_loss,
                 "kd_lr_scale": min(kd_lr, key=kd_lr.get), "scratch_lr_scale": min(lr_scores, key=lr_scores.get),
                 "n_trials_each": n_trials + len(LR_REFINE), "trials": trials}
    atomic_write_json(selection_path(ws.profile), selection)
    return selection


def best_distilled(selection: dict) -> tuple[DistillConfig, float]:
    """The selected distillation setting and its learning-rate multiplier."""
    return (DistillConfig(loss=selection["loss"], alpha=selection["alpha"]),
            float(selection.get("kd_lr_scale", 1.0)))


def run_final(ws: Workspace, selection: dict) -> list[str]:
    """Every student size x {scratch, distilled} x seeds on the test years (5 seeds at the headline)."""
    best, kd_lr = best_distilled(selection)
    ids = []
    for scfg in ws.cfg.students:
        seeds = ws.cfg.headline_seeds if scfg.name == ws.cfg.headline_student else ws.cfg.seeds
        for seed in seeds:
            ids.append(train_student(ws, scfg, DistillConfig(mode="scratch"), seed,
                                     lr_scale=selection["scratch_lr_scale"]).run_id)
            ids.append(train_student(ws, scfg, best, seed, lr_scale=kd_lr).run_id)
    return ids


def label_budgets(ws: Workspace) -> list[int]:
    """Label budgets (years with NDVI labels) of 1, 3, 10 and all training years that fit."""
    n_years = ws.cfg.data.train_years[1] - ws.cfg.data.train_years[0] + 1
    return sorted({b for b in (1, 3, 10) if b < n_years} | {n_years})


def run_controls(ws: Workspace, selection: dict) -> list[str]:
    """The protocol's controls at the headline size, over the profile's seeds.

    * scratch on the simulator's noise-free, gap-free NDVI (how much of KD is denoising);
    * distilled without the teacher-labelled extra years;
    * label budgets: scratch and distilled with only the last N training years labelled.
    """
    scfg = ws.cfg.student(ws.cfg.headline_student)
    best, kd_lr = best_distilled(selection)
    scratch = DistillConfig(mode="scratch")
    lr = selection["scratch_lr_scale"]
    ids = []
    for seed in ws.cfg.seeds:
        ids.append(train_student(ws, scfg, scratch, seed, lr_scale=lr, target="ndvi_true", tag="noisefree").run_id)
        ids.append(train_student(ws, scfg, replace(best, extra_unlabeled=False), seed, lr_scale=kd_lr,
                                 tag="noextra").run_id)
        for years in label_budgets(ws)[:-1]:  # "all years" is the final run itself
            ids.append(train_student(ws, scfg, replace(scratch, label_years=years), seed, lr_scale=lr,
                                     tag=f"budget{years}").run_id)
            ids.append(train_student(ws, scfg, replace(best, label_years=years), seed, lr_scale=kd_lr,
                                     tag=f"budget{years}").run_id)
    return ids


def run_matrix(profile: str, device: str | None = None, stages: tuple[str, ...] = ("select", "final", "controls")):
    """The whole comparison at ``profile``; resumable (finished runs are skipped)."""
    ws = open_workspace(profile, device)
    ensure_teacher(profile, ws.device)
    path = selection_path(profile)
    selection = select_settings(ws) if "select" in stages or not path.is_file() else json.loads(path.read_text())
    ids = []
    if "final" in stages:
        ids += run_final(ws, selection)
    if "controls" in stages:
        ids += run_controls(ws, selection)
    return selection, ids


def _cmd_distill(args: argparse.Namespace) -> int:
    ws = open_workspace(args.profile, args.device)
    scfg = ws.cfg.student(args.student or ws.cfg.headline_student)
    dcfg = DistillConfig(loss=args.loss, alpha=args.alpha, mode=args.mode,
                         extra_unlabeled=not args.no_extra, label_years=args.label_years)
    res = train_student(ws, scfg, dcfg, args.seed, tag=args.tag)
    print(json.dumps({"run_id": res.run_id, "val_rmse": res.val_rmse}))
    return 0


def _cmd_matrix(args: argparse.Namespace) -> int:
    selection, ids = run_matrix(args.profile, args.device, tuple(args.stages))
    print(json.dumps({"selection": {k: v for k, v in selection.items() if k != "trials"}, "runs": len(ids)}))
    return 0


def register_cli(subparsers) -> None:
    """Add ``distill`` (one student run) and ``matrix`` (the whole comparison)."""
    p = subparsers.add_parser("distill", help="train one student (scratch or distilled)")
    p.add_argument("--profile", default="smoke", choices=PROFILES)
    p.add_argument("--student", default=None, help="a student preset of the profile (default: the headline one)")
    p.add_argument("--mode", default="offline", choices=["offline", "online", "self", "scratch"])
    p.add_argument("--loss", default="mse", help="mse, l1, huber, bounded, spectral, hint, attention, relational")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the teacher term (0..1)")
    p.add_argument("--label-years", type=int, default=None, help="keep labels of only the last N training years")
    p.add_argument("--no-extra", action="store_true", help="no teacher-labelled extra years")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default="final")
    p.add_argument("--device", default=None)
    p.set_defaults(func=_cmd_distill)
    m = subparsers.add_parser("matrix", help="the distilled-vs-scratch comparison (resumable)")
    m.add_argument("--profile", default="smoke", choices=PROFILES)
    m.add_argument("--device", default=None)
    m.add_argument("--stages", nargs="+", default=["select", "final", "controls"],
                   choices=["select", "final", "controls"])
    m.set_defaults(func=_cmd_matrix)
