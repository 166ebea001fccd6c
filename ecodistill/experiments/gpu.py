"""The budgeted GPU run: everything the full profile needs a GPU for, in one command.

``python -m ecodistill gpu-run --budget-s 540 --out DIR`` on a bare GPU machine (PyTorch,
NumPy, pandas, xarray; nothing written to disk but results):

1. **data** -- simulates the full-profile Earth from its seed in memory, prepares it and
   moves it onto the GPU (:mod:`ecodistill.data.resident`: inputs in bfloat16);
2. **teacher** -- measures the teacher's training throughput on a few steps, splits the
   stage's seconds between pre-training and adaptation (40/60) as whole epochs, trains both,
   then predicts every split once (kept for the rows, the students and the files);
3. **students** -- measures each student size's throughput, chooses the epochs every
   student run gets (the same for both arms and every trial) so that the protocol's
   selection and at least three sizes x three seeds fit, and runs
   :mod:`ecodistill.experiments.protocol`'s selection, final matrix, controls, longer training,
   privileged-information case, nowcast and memory stages in priority order; a run that no
   longer fits is skipped (never cut short: every run takes the same steps);
4. **live** -- with the time left, the modes that need the teacher network (feature losses,
   online distillation) and the headroom ladder (size x history);
5. **pack** -- writes at most 8 files into ``DIR`` (:func:`ecodistill.store.archive.pack_results`):
   the new ``results/full`` files in a checked archive and ``gpu_run.json`` (plan, stage
   times, epochs, throughput, hardware, versions, what was skipped). ``python -m ecodistill
   unpack DIR`` restores them on your machine.

It prints its plan (stage -> seconds) first and each stage's real time as it ends, and
always keeps time to pack. Explained in the README ("The full profile on a GPU").
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..config import PROFILES, DistillConfig, StudentConfig, TrainConfig
from ..models import student_config
from ..utils import library_versions
from .workspace import Workspace, open_workspace

#: Share of the budget per stage (the rest of a stage's share passes to the next one).
PLAN = (("data", 0.08), ("teacher", 0.50), ("students", 0.30), ("live", 0.07), ("pack", 0.05))
#: Student epochs are never fewer than this (a matrix of undertrained students says nothing).
MIN_STUDENT_EPOCHS = 2


@dataclass
class Clock:
    """The run's budget: planned seconds per stage, and what each stage really took."""

    budget_s: float
    start: float = field(default_factory=time.perf_counter)
    actual: dict[str, float] = field(default_factory=dict)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        """Seconds left before the pack stage's reserve."""
        return self.budget_s * (1 - dict(PLAN)["pack"]) - self.elapsed()

    def plan(self) -> dict[str, float]:
        return {name: round(share * self.budget_s, 1) for name, share in PLAN}

    def until(self, stage: str) -> float:
        """Seconds left for ``stage``: its planned end (cumulative shares) minus now."""
        end = 0.0
        for name, share in PLAN:
            end += share * self.budget_s
            if name == stage:
                return end - self.elapsed()
        raise KeyError(stage)

    def done(self, stage: str, since: float) -> None:
        self.actual[stage] = round(time.perf_counter() - since, 1)
        print(f"[gpu-run] {stage}: {self.actual[stage]} s (elapsed {self.elapsed():.0f} of {self.budget_s:.0f} s)",
              flush=True)


def hardware(device: str) -> dict:
    """Device, GPU name and memory, CPU count and host of this run."""
    info = {"device": device, "host": platform.node(), "cpu_count": os.cpu_count()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def cap_steps(ws: Workspace, max_steps: int) -> None:
    """Limit every training stage to ``max_steps`` optimizer steps (a CPU test of the full path)."""
    cfg = ws.cfg
    ws.cfg = replace(cfg, pretrain=replace(cfg.pretrain, max_steps=max_steps, epochs=1),
                     adapt=replace(cfg.adapt, max_steps=max_steps, epochs=1),
                     student_train=replace(cfg.student_train, max_steps=max_steps, epochs=1))


def measure_rate(ws: Workspace, model: torch.nn.Module, cfg: TrainConfig, task: str = "ndvi",
                 steps: int = 6, warmup: int = 2) -> float:
    """Training samples per second of ``model`` in the project's loop (``steps`` timed after
    ``warmup`` steps; the model's weights change, so pass a throw-away copy)."""
    from ..training.loop import fit
    from ..training.objectives import truth_loss

    def run(n: int) -> float:
        probe = replace(cfg, epochs=1, steps_per_epoch=n, max_steps=n, warmup_frac=0.0)
        loader = ws.train_loader(probe, task=task, weather_only=task == "forecast")
        if ws.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fit(model, loader, None, truth_loss("mse"), probe, device=ws.device, progress=False,
            checkpoint_every_s=None)
        if ws.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    first = run(warmup)
    return steps * cfg.batch_size / max(run(warmup + steps) - first, 1e-6)


def _epochs_for(seconds: float, rate: float, n_samples: int, cap: int) -> int:
    return max(1, min(cap, int(seconds * rate / max(n_samples, 1))))


def train_teacher(ws: Workspace, clock: Clock, compile_model: bool) -> dict:
    """Stage 2: pre-training and adaptation sized from the measured throughput, predictions once."""
    from ..models import afno_from_config
    from .teacher import run_teacher_pipeline, teacher_status

    rate = float("nan")
    if ws.cfg.adapt.max_steps is None:  # not a capped path test: size the stages from the throughput
        n_train = ws.prep.split_days("train").size
        rate = measure_rate(ws, afno_from_config(ws.cfg.teacher, ws.in_chans, 1, ws.img_size), ws.cfg.adapt)
        # 12% of the stage: predicting every split, rows and files; epochs planned at 90% of the
        # training time (validation and evaluation), the budget stopping a stage is the rest
        train_s = max(0.88 * clock.until("teacher"), 1.0)
        ws.cfg = replace(ws.cfg, pretrain=replace(ws.cfg.pretrain, epochs=_epochs_for(
                             0.9 * 0.4 * train_s, rate, n_train, ws.cfg.pretrain.epochs)),
                         adapt=replace(ws.cfg.adapt, epochs=_epochs_for(0.9 * 0.6 * train_s, rate, n_train,
                                                                        ws.cfg.adapt.epochs)))
    train_s = max(0.88 * clock.until("teacher"), 1.0)
    art = run_teacher_pipeline(ws.profile, ws.device, budget_s=train_s, with_scratch=False, stages=("main",),
                               budget_split=(0.4, 0.6), checkpoint_every_s=None,
                               compile_model=compile_model, accept_incomplete=True)  # the budget is the plan
    return {"run_id": art.run_id, "stop_reason": teacher_status(ws.profile, art.run_id).get("stop_reason"),
            "samples_per_s": round(rate, 1), "epochs_planned":
            {"pretrain": ws.cfg.pretrain.epochs, "adapt": ws.cfg.adapt.epochs},
            "epochs_trained": {k: len(v) for k, v in art.curves.items()},
            "steps_trained": {k: (v[-1]["step"] if v else 0) for k, v in art.curves.items()}}


def _student_rates(ws: Workspace, sizes: tuple[StudentConfig, ...]) -> dict[str, float]:
    from ..models import build_student

    return {s.name: measure_rate(ws, build_student(s, ws.in_chans, 1, ws.img_size), ws.cfg.student_train)
            for s in sizes}


def plan_students(ws: Workspace, seconds: float, rates: dict[str, float], n_tune: int) -> int:
    """Epochs of every student run: the most that fit ``seconds`` for ``n_tune`` selection
    runs of the headline size plus both arms x the profile's seeds of every size."""
    n_train = ws.prep.split_days("train").size
    head = ws.cfg.headline_student
    per_epoch = n_tune * n_train / rates[head]
    per_epoch += sum(2 * len(ws.cfg.seeds) * n_train / r for r in rates.values())
    return max(MIN_STUDENT_EPOCHS, min(ws.cfg.student_train.epochs, math.floor(seconds / per_epoch)))


def run_students(ws: Workspace, clock: Clock) -> dict:
    """Stage 3: the protocol's selection, final matrix, controls, longer training, the
    privileged-information case, the nowcast and the memory stages, each run only if it fits."""
    from .protocol import (
        run_controls,
        run_final,
        run_longer,
        run_memory,
        run_nowcast,
        run_privileged,
        select_settings,
    )

    capped = ws.cfg.student_train.max_steps is not None  # a path test: no throughput to plan with
    rates = {} if capped else _student_rates(ws, ws.cfg.students)
    if not capped:
        epochs = plan_students(ws, clock.until("students"), rates, n_tune=28)
        ws.cfg = replace(ws.cfg, student_train=replace(ws.cfg.student_train, epochs=epochs))
    n_train = ws.prep.split_days("train").size
    deadline = clock.start + sum(s for _, s in PLAN[:3]) * clock.budget_s
    skipped: list[str] = []

    def allow(scfg: StudentConfig, n_runs: int = 1) -> bool:
        if capped:
            return True
        cost = n_runs * (ws.cfg.student_train.epochs * n_train / rates[scfg.name] + 2.0)  # +2 s: evaluation
        fits = time.perf_counter() + cost < deadline
        if not fits:
            skipped.append(f"{scfg.name} x{n_runs}")
        return fits

    selection = select_settings(ws)
    ids = (run_final(ws, selection, allow=allow) + run_controls(ws, selection, allow=allow)
           + run_longer(ws, selection, allow=allow))
    ids += [i for r in run_privileged(ws, selection, allow=allow) for i in r["run_ids"]]
    ids += run_nowcast(ws, selection, allow=allow) + run_memory(ws, selection, allow=allow)
    return {"epochs": ws.cfg.student_train.epochs, "samples_per_s": {k: round(v, 1) for k, v in rates.items()},
            "runs": len(ids), "skipped": skipped, "selection": {k: selection[k] for k in
                                                                           ("alpha", "loss", "scratch_loss")}}


def run_live(ws: Workspace, clock: Clock, teacher_rate: float, student_rates: dict[str, float]) -> dict:
    """Stage 4: the live-teacher modes for the headline student, then the headroom check, each
    only when its estimated time (from the measured throughputs) fits what is left."""
    from .. import losses
    from ..models import build_student
    from .distill import train_student
    from .ladder import ladder_sizes, run_ladder
    from .protocol import read_selection

    scfg = student_config(ws.cfg, ws.cfg.headline_student)
    samples = ws.cfg.student_train.epochs * ws.prep.split_days("train").size
    capped = ws.cfg.student_train.max_steps is not None

    def fits(seconds_per_sample: float, runs: int = 1) -> bool:
        return capped or clock.until("live") > runs * (samples * seconds_per_sample + 5.0)

    student_s = 1 / student_rates[scfg.name] if student_rates else 0.0
    teacher_s = 1 / (3 * teacher_rate) if teacher_rate == teacher_rate else 0.0  # forward only: ~1/3
    modes = [(name, "offline") for name in losses.loss_names("feature")] + [("mse", "online")]
    done, skipped = [], []
    for loss, mode in modes:
        cost = student_s + (3 * teacher_s if mode == "online" else teacher_s)  # online trains the teacher
        if not fits(cost):
            skipped.append(f"{loss}-{mode}")
            continue
        done.append(train_student(ws, scfg, DistillConfig(loss=loss, mode=mode, alpha=0.5), 0).run_id)
    sizes = ladder_sizes(ws.profile)
    rates = {} if capped else {s.name: measure_rate(ws, build_student(s, ws.in_chans, 1, ws.img_size),
                                                    ws.cfg.student_train) for s in sizes}
    ladder_s = sum(1 / r for r in rates.values())

    def allow(scfg: StudentConfig, n_runs: int = 1) -> bool:
        ok = fits(ladder_s / max(len(rates), 1), runs=n_runs)
        if not ok:
            skipped.append(f"ladder {scfg.name}")
        return ok

    selection = read_selection(ws.profile)
    scratch_lr = {family: lr["scratch"] for family, lr in selection["lr_by_family"].items()}
    done += [i for r in run_ladder(ws.profile, selection["scratch_loss"], scratch_lr, device=ws.device, allow=allow)
             for i in r["run_ids"]]
    return {"runs": done, "skipped": skipped}


def gpu_run(budget_s: float, profile: str = "full", out: Path | None = None, device: str | None = None,
            max_steps: int | None = None, compile_model: bool = False) -> dict:
    """Stages 1-5 (module docstring) within ``budget_s`` seconds; returns the summary."""
    if not budget_s > 0:
        raise ValueError(f"--budget-s {budget_s}: the budget must be positive")
    clock = Clock(budget_s)
    print(f"[gpu-run] plan (stage -> seconds): {clock.plan()}", flush=True)
    since = time.time()
    t = time.perf_counter()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    ws = open_workspace(profile, device, in_memory=device.startswith("cuda"))
    if max_steps is not None:
        cap_steps(ws, max_steps)
    resident = ws.resident is not None
    clock.done("data", t)
    summary = {"profile": profile, "budget_s": budget_s, "plan_s": clock.plan(), "hardware": hardware(ws.device),
               "versions": library_versions(), "max_steps": max_steps, "resident_data": resident,
               "compile": compile_model}
    for stage, run in (("teacher", lambda: train_teacher(ws, clock, compile_model)),
                       ("students", lambda: run_students(ws, clock)),
                       ("live", lambda: run_live(ws, clock, summary["teacher"]["samples_per_s"],
                                                 summary["students"]["samples_per_s"]))):
        t = time.perf_counter()
        summary[stage] = run()
        clock.done(stage, t)
    summary.update(stage_s=clock.actual, seconds=round(clock.elapsed(), 1))
    if out is not None:
        summary["packed"] = pack(profile, out, since, summary)
    return summary


def pack(profile: str, out: Path, since: float, summary: dict) -> list[str]:
    """Stage 5: the run's new result files into ``out``; when they do not fit the files the
    GPU machine returns, the teacher's predictions (re-made by any later teacher run) are
    left out rather than everything."""
    from ..store.archive import ArchiveError, pack_results

    try:
        manifest = pack_results(profile, out, since=since, summary=summary)
    except ArchiveError as err:
        print(f"[gpu-run] {err}; packing again without the teacher's predictions", flush=True)
        summary["left_out"] = "teacher predictions (too large to return)"
        manifest = pack_results(profile, out, since=since, summary=summary, leave_out=("teacher/pred_",))
    return [Path(p).name for p in manifest.get("written", [])]


def _cmd_gpu_run(args: argparse.Namespace) -> int:
    out = args.out or os.environ.get("OUT")
    summary = gpu_run(args.budget_s, args.profile, Path(out) if out else None, args.device, args.max_steps,
                      args.compile)
    print({k: summary[k] for k in ("seconds", "stage_s")})
    return 0


def register_cli(subparsers) -> None:
    """Add ``gpu-run``."""
    p = subparsers.add_parser("gpu-run", help="the budgeted full-profile GPU run (data, teacher, students, pack)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget-s", type=float, default=540.0, help="wall-clock budget in seconds (default 540)")
    p.add_argument("--profile", default="full", choices=PROFILES)
    p.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    p.add_argument("--out", default=None, help="write the packed results here (default: $OUT when set)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="cap every training stage (to test the full path on a CPU in minutes)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the teacher (pays off only when its compile time fits the budget)")
    p.set_defaults(func=_cmd_gpu_run)
