"""One student run, scratch or distilled: train, evaluate, record.

A student run builds a student, trains it with one objective from
:mod:`ecodistill.training.objectives` through the one training loop, evaluates it on the validation
and test years, and writes its rows (plus, for seed 0, its test error map). The run's id
hashes everything the result depends on: the profile's config and dataset content hash,
the student, the objective, the training settings actually used (learning rate, steps per
epoch, epochs), the target, and the teacher: its run id and the sha256 of the predictions
the student learned from. A run whose files exist and check out is not run again
(:func:`ecodistill.store.runs.has_run`); a retrained teacher makes every student a new run.

The whole comparison (selection, the matrix, controls) is :mod:`ecodistill.experiments.protocol`.
``python -m ecodistill distill`` takes every setting a run records, so any committed run
can be re-run from the command line, e.g. with another seed (``--from-run ID --seed 17``).

Explained in book/generated/03_distill.ipynb.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from .. import losses
from ..config import (
    HISTORY,
    MODES,
    PROFILES,
    DataConfig,
    DistillConfig,
    StudentConfig,
    TrainConfig,
    from_dict,
    get_profile,
    history_name,
)
from ..data.schema import INPUT_SETS
from ..models import build_student, check_student, count_params, save_checkpoint, student_config
from ..store import runs
from ..training.loop import fit
from ..training.objectives import check_objective, make_objective, truth_loss
from ..utils import results_dir, seed_everything
from .teacher import (
    check_room,
    ensure_teacher,
    load_teacher,
    load_teacher_predictions,
    predictions_digest,
    status_note,
    teacher_record,
)
from .workspace import Workspace, open_workspace

STUDENT_CKPT_BYTES = 8 * 10**6  # committed student checkpoints stay "a few MB"


@dataclass
class StudentResult:
    """One finished student run."""

    run_id: str
    val_rmse: float
    history: list[dict]
    model: Any = None
    teacher_note: dict = field(default_factory=dict)  # the teacher's run id and stop reason


def run_name(scfg: StudentConfig, dcfg: DistillConfig, tag: str) -> str:
    """``scratch-<student>`` or ``kd-<loss>-<mode>-<student>_from_teacher`` plus a tag (STYLE.md §7)."""
    base = (f"scratch-{scfg.name}" if dcfg.mode == "scratch"
            else f"kd-{dcfg.loss}-{dcfg.mode}-{scfg.name}_from_teacher")
    return f"{base}-{tag}"


def needs_live_teacher(dcfg: DistillConfig) -> bool:
    """True when the run needs the teacher network (online mode, feature losses)."""
    return dcfg.mode == "online" or (dcfg.mode == "offline" and losses.loss_spec(dcfg.loss).live_teacher)


def train_loader(ws: Workspace, dcfg: DistillConfig, cfg: TrainConfig, target: str = "ndvi",
                 teacher_run_id: str | None = None):
    """The training batches a mode needs (offline: with the teacher's cached predictions)."""
    common = dict(label_years=dcfg.label_years, target=target)
    if dcfg.mode != "offline" or needs_live_teacher(dcfg):
        return ws.train_loader(cfg, **common)
    unlabeled = dcfg.extra_unlabeled and ws.prep.has_split("extra")
    pred = np.zeros((ws.prep.n_time, 1, *ws.img_size), np.float16)  # aligned with the time axis:
    for split in ("train", "extra") if unlabeled else ("train",):  # any subset of days can use it
        pred[ws.prep.split_days(split)] = load_teacher_predictions(ws, split, teacher_run_id)
    return ws.train_loader(cfg, teacher_pred=pred, unlabeled=unlabeled, **common)


def teacher_identity(ws: Workspace, dcfg: DistillConfig, teacher_run_id: str | None = None) -> dict:
    """The teacher a student run depends on: its run id and the sha256 of its predictions
    (empty for a scratch run made before any teacher exists; scratch runs report their
    agreement with the teacher, so they depend on it too when it exists)."""
    if dcfg.mode != "scratch":
        ensure_teacher(ws.profile, ws.device)
    record = teacher_record(ws.profile) or {}
    if record.get("dataset_hash") != ws.dataset_hash:
        return {}
    run_id = teacher_run_id or record["run_id"]
    return {"run_id": run_id, "predictions_sha256": predictions_digest(ws, run_id)}


def student_train_cfg(ws: Workspace, seed: int, lr_scale: float = 1.0, **changes: Any) -> TrainConfig:
    """The profile's student training settings for ``seed``, the learning rate times
    ``lr_scale`` and the epoch length resolved (so the run's config records its steps)."""
    cfg = ws.train_cfg("student_train", seed, **{"lr": ws.cfg.student_train.lr * lr_scale, **changes})
    return replace(cfg, steps_per_epoch=ws.steps_per_epoch(cfg))


def train_student(ws: Workspace, scfg: StudentConfig, dcfg: DistillConfig, seed: int, *,
                  tag: str = "final", lr_scale: float = 1.0, target: str = "ndvi",
                  splits: tuple[str, ...] = ("val", "test"), save_map: bool | None = None,
                  keep_model: bool = False, teacher_run_id: str | None = None,
                  train_changes: dict | None = None) -> StudentResult:
    """Train and evaluate one student; skip the work when its rows already exist.

    Args:
        scfg: architecture; dcfg: objective (mode ``scratch`` trains on the truth only,
            with ``dcfg.loss``'s truth term).
        seed: seeds weights, batch order and loss sampling.
        tag: ``tune`` (selection on validation years), ``final`` (reported runs) or a
            control's name.
        lr_scale: multiplies the profile's learning rate.
        target: ``ndvi`` (observed, with noise and gaps) or ``ndvi_true`` (noise-free control).
        splits: where to evaluate (tuning runs: ``("val",)`` only — test years are used once).
        save_map: store the test error map (default: seed 0 only).
        keep_model: return the trained model (always trains, even when the rows exist).
        teacher_run_id: learn from this teacher's predictions (default: the profile's
            teacher; the label-budget control passes a teacher adapted on fewer labels).
        train_changes: other :class:`~ecodistill.config.TrainConfig` fields to change
            (e.g. ``epochs`` for the budget check).
    """
    check_student(scfg)
    check_objective(dcfg)
    cfg = student_train_cfg(ws, seed, lr_scale, **(train_changes or {}))
    if dcfg.label_years is not None:
        n_years = ws.cfg.data.train_years[1] - ws.cfg.data.train_years[0] + 1
        if dcfg.label_years > n_years:
            raise ValueError(f"label_years={dcfg.label_years}: the {ws.profile} profile has {n_years} training "
                             f"years; choose 1..{n_years}")
    teacher = teacher_identity(ws, dcfg, teacher_run_id)
    note = status_note(ws.profile, teacher.get("run_id"))  # warns when the teacher did not complete
    config = ws.run_config(role="student", student=asdict(scfg), distill=asdict(dcfg), seed=seed,
                           train=asdict(cfg), target=target, tag=tag, splits=list(splits), teacher=teacher)
    name = run_name(scfg, dcfg, tag)
    run_id = runs.make_run_id(name, config)
    if runs.has_run(ws.profile, run_id) and not keep_model:
        frame = runs.read_runs(ws.profile, run_id=run_id, split="val", region="global", metric="rmse")
        return StudentResult(run_id, float(frame.value.iloc[0]) if len(frame) else float("nan"), [],
                             teacher_note=note)
    seed_everything(seed)
    model = build_student(scfg, ws.in_chans, 1, ws.img_size)
    check_room(ws, count_params(model), n_days=0)  # writable results and cache, before training
    live = load_teacher(ws.profile) if needs_live_teacher(dcfg) else None
    loss_fn = make_objective(dcfg, model, live, ws.example_x() if live is not None or dcfg.mode == "self"
                             else None, seed)
    kwargs: dict[str, Any] = {}
    if dcfg.mode == "online":  # deep mutual learning: the teacher keeps learning beside the student
        kwargs = {"co_model": live, "co_loss_fn": make_objective(replace(dcfg, mode="offline", loss="mse",
                                                                         alpha=0.1))}
    elif live is not None:
        kwargs = {"teacher": live}
    result = fit(model, train_loader(ws, dcfg, cfg, target, teacher_run_id), ws.val_loader(cfg), loss_fn, cfg,
                 lat_weights=ws.lat_weights, val_loss_fn=truth_loss("mse"), device=ws.device, progress=False,
                 **kwargs)
    rows, test_pred = [], None
    for split in splits:
        y_hat = ws.predict(model, split)
        teacher_pred = load_teacher_predictions(ws, split, teacher.get("run_id")) if teacher else None
        rows += ws.evaluate(y_hat, split, teacher_pred=teacher_pred)
        test_pred = y_hat if split == "test" else test_pred
    n_params, flops = ws.model_cost(model)
    meta = {"run_id": run_id, "kind": "student", "init": "scratch" if dcfg.mode == "scratch" else "distilled",
            "method": "scratch" if dcfg.mode == "scratch" else f"kd-{dcfg.loss}-{dcfg.mode}",
            "family": scfg.family, "n_params": n_params, "flops_per_map": flops,
            "alpha": dcfg.alpha if dcfg.mode != "scratch" else float("nan"),
            "label_years": dcfg.label_years or -1, "teacher_run_id": teacher.get("run_id", ""), "seed": seed}
    ws.record(name, meta, rows, config, result.history)
    if test_pred is not None and (save_map if save_map is not None else seed == 0):
        ws.save_error_map(run_id, test_pred)
    if dcfg.mode != "scratch" and tag == "final" and seed == 0:
        save_student(ws, run_id, model, config)
    val = [r for r in rows if r[0] == "val" and r[1] == "global" and r[2] == "rmse"]
    return StudentResult(run_id, float(val[0][3]) if val else float("nan"), result.history,
                         model if keep_model else None, note)


def save_student(ws: Workspace, run_id: str, model, config: dict) -> None:
    """Keep a reported distilled student (seed 0) for the benchmarks and the Pi.

    Checkpoints of at most ``STUDENT_CKPT_BYTES`` go to ``results/<profile>/students/``
    (small enough to commit); larger ones stay in the cache.
    """
    small = count_params(model) * 4 <= STUDENT_CKPT_BYTES
    folder = results_dir(ws.profile) / "students" if small else ws.checkpoint_path("x").parent
    save_checkpoint(folder / f"{run_id}.pt", model, config)


# --------------------------------------------------------------------------- CLI
def _settings_from_run(profile: str, run_id: str) -> dict:
    """The settings a recorded run used, as :func:`train_student` arguments."""
    config = runs.read_run_config(profile, run_id)
    if config.get("role") != "student":
        raise ValueError(f"run {run_id!r} is not a student run (role {config.get('role')!r}); pick a "
                         "scratch-... or kd-... run id from results/<profile>/runs")
    train = config["train"]
    data = from_dict(DataConfig, config["profile"]["data"])
    variant = {"history": history_name(data), "inputs": data.inputs, "ndvi_latency": data.ndvi_latency}
    if variant["history"] == "custom":
        raise ValueError(f"run {run_id!r} used a history that is not one of {list(HISTORY)}; re-run it from "
                         "Python with its DataConfig")
    return {"student": config["student"]["name"], "dcfg": from_dict(DistillConfig, config["distill"]),
            "variant": variant,
            "target": config["target"], "tag": config["tag"], "splits": tuple(config["splits"]),
            "teacher_run_id": (config.get("teacher") or {}).get("run_id"),
            "train_changes": {k: train[k] for k in ("lr", "epochs", "steps_per_epoch", "batch_size")}}


def _given(args: argparse.Namespace, *names: str) -> dict:
    """The options given on the command line (``None`` = not given): a zero, an empty string
    or ``False`` given is a value, kept and validated, never replaced by the default."""
    return {k: getattr(args, k) for k in names if getattr(args, k) is not None}


def _cmd_distill(args: argparse.Namespace) -> int:
    profile = get_profile(args.profile)
    run = _settings_from_run(args.profile, args.from_run) if args.from_run else {
        "student": profile.headline_student, "dcfg": DistillConfig(alpha=0.5), "target": "ndvi", "tag": "final",
        "splits": ("val", "test"), "teacher_run_id": None, "train_changes": {}, "variant": {}}
    dcfg_changes = _given(args, "loss", "alpha", "mode", "label_years", "margin", "feature_weight")
    if args.no_extra:
        dcfg_changes["extra_unlabeled"] = False
    changes = dict(run["train_changes"])
    if args.lr_scale is not None:
        changes["lr"] = profile.student_train.lr * args.lr_scale
    changes.update(_given(args, "lr", "epochs", "steps_per_epoch"))
    # validated where they are declared (TrainConfig, DistillConfig, the loss's LossSpec), before any work
    replace(profile.student_train, **changes)
    dcfg = check_objective(replace(run["dcfg"], **dcfg_changes))
    given = _given(args, "tag", "target", "teacher_run_id", "student")
    variant = {**run["variant"], **_given(args, "history", "inputs", "ndvi_latency")}
    ws = open_workspace(args.profile, args.device, **variant)
    res = train_student(ws, student_config(ws.cfg, given.get("student", run["student"])), dcfg, args.seed,
                        tag=given.get("tag", run["tag"]), target=given.get("target", run["target"]),
                        splits=run["splits"], teacher_run_id=given.get("teacher_run_id", run["teacher_run_id"]),
                        train_changes=changes)
    print(json.dumps({"run_id": res.run_id, "val_rmse": res.val_rmse, **res.teacher_note}))
    return 0


def register_cli(subparsers) -> None:
    """Add ``distill`` (one student run, every recorded setting on the command line)."""
    p = subparsers.add_parser("distill", help="train one student (scratch or distilled)",
                              description="Train one student. Every setting a run records can be given; "
                                          "--from-run ID re-runs a recorded run (e.g. with --seed 17).")
    p.add_argument("--profile", default="smoke", choices=PROFILES)
    p.add_argument("--from-run", default=None, metavar="RUN_ID",
                   help="start from the settings of this recorded run (results/<profile>/runs/RUN_ID.json)")
    p.add_argument("--student", default=None, help="a student preset of the profile (default: the headline one)")
    p.add_argument("--mode", default=None, choices=MODES, help="offline (default), online, self or scratch")
    p.add_argument("--loss", default=None,
                   help=f"a registered loss (scratch: its truth term): {', '.join(losses.loss_names())}")
    p.add_argument("--alpha", type=float, default=None, help="weight of the teacher term (0..1, default 0.5)")
    p.add_argument("--margin", type=float, default=None, help="teacher-bounded loss margin")
    p.add_argument("--feature-weight", type=float, default=None, help="weight of a feature loss's term")
    p.add_argument("--label-years", type=int, default=None, help="keep labels of only the last N training years")
    p.add_argument("--no-extra", action="store_true", help="no teacher-labelled extra years")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the profile's)")
    p.add_argument("--lr-scale", type=float, default=None, help="or: a multiple of the profile's learning rate")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the profile's)")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="steps per epoch (default: the profile's)")
    p.add_argument("--target", default=None, choices=["ndvi", "ndvi_true"], help="training target")
    p.add_argument("--teacher-run-id", default=None, help="learn from this teacher's predictions")
    p.add_argument("--history", default=None, choices=list(HISTORY),
                   help="how much of the past the student sees (default: the profile's)")
    p.add_argument("--inputs", default=None, choices=sorted(INPUT_SETS),
                   help="anchor (the atmosphere only) or era5 (with the land state; default: the profile's)")
    p.add_argument("--ndvi-latency", type=int, default=None,
                   help="nowcast: the NDVI observed at least this many days before is an input (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tag", default=None, help="run tag (default: final)")
    p.add_argument("--device", default=None)
    p.set_defaults(func=_cmd_distill)
