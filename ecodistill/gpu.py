"""The budgeted GPU run: everything that needs the live ~105M-parameter teacher, in one command.

``python -m ecodistill gpu-run --budget-s 540`` on a bare GPU machine (PyTorch only; NumPy
files stand in for NetCDF when netCDF4/h5netcdf are missing):

1. rebuilds the full-profile dataset from its seed (static maps from the committed file);
2. pre-trains the teacher on next-day weather and adapts it to NDVI (time-budgeted, resumable:
   a second call with the same cache continues where the first stopped);
3. evaluates it and writes its rows, curves and compact predictions on every split;
4. with the time left, runs the distillation modes that need the live teacher (hint,
   attention and relational feature losses, online distillation) for the headline student;
5. copies ``results/<profile>/`` (runs, teacher predictions, curves) to ``--out`` and writes
   ``gpu_run.json`` with the hardware, versions and what was done or skipped.

Later student runs need only the committed predictions (``results/full/teacher/``) and run
on a CPU or GPU with ``python -m ecodistill matrix --profile full``.
Explained in the README ("The full profile on a GPU").
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from .config import PROFILES, DistillConfig
from .pipeline import open_workspace
from .utils import atomic_write_json, library_versions, results_dir

LIVE_MODES = (("hint", "offline"), ("attention", "offline"), ("relational", "offline"), ("mse", "online"))


def _hardware(device: str) -> dict:
    info = {"device": device, "host": platform.node(), "cpu_count": os.cpu_count()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def cap_steps(ws, max_steps: int) -> None:
    """Limit every training stage to ``max_steps`` optimizer steps (a CPU test of the full path)."""
    cfg = ws.cfg
    ws.cfg = replace(cfg, pretrain=replace(cfg.pretrain, max_steps=max_steps, epochs=1),
                     adapt=replace(cfg.adapt, max_steps=max_steps, epochs=1),
                     student_train=replace(cfg.student_train, max_steps=max_steps, epochs=1))


def gpu_run(budget_s: float, profile: str = "full", out: Path | None = None, device: str | None = None,
            max_steps: int | None = None, live_seeds: tuple[int, ...] = (0,)) -> dict:
    """Run steps 1-5 within ``budget_s`` seconds of wall-clock time; returns the summary."""
    from .distill import train_student
    from .teacher import run_teacher_pipeline

    started = time.perf_counter()
    elapsed = lambda: time.perf_counter() - started
    ws = open_workspace(profile, device)
    if max_steps is not None:
        cap_steps(ws, max_steps)
    summary = {"profile": profile, "budget_s": budget_s, "hardware": _hardware(ws.device),
               "versions": library_versions(), "max_steps": max_steps, "data_seconds": round(elapsed(), 1)}
    reserve = 0.12 * budget_s  # predictions, evaluation and copying
    teacher_budget = max(budget_s - elapsed() - reserve, 1.0) * 0.8
    art = run_teacher_pipeline(profile, ws.device, budget_s=teacher_budget, with_scratch=False)
    summary["teacher"] = {"run_id": art.run_id, "seconds": round(elapsed(), 1),
                          "stop_reasons": {k: (v[-1] if v else None) for k, v in art.curves.items()}}
    done, skipped = [], []
    scfg = ws.cfg.student(ws.cfg.headline_student)
    for loss, mode in LIVE_MODES:
        for seed in live_seeds:
            if elapsed() > budget_s - reserve:
                skipped.append(f"{loss}-{mode}-s{seed}")
                continue
            res = train_student(ws, scfg, DistillConfig(loss=loss, mode=mode, alpha=0.5), seed)
            done.append(res.run_id)
    if elapsed() < budget_s - 2 * reserve:  # the headroom (scaling) check, one seed, if time is left
        from .headroom import run_headroom

        done += run_headroom(profile, seeds=(0,), device=ws.device)
    else:
        skipped.append("headroom")
    summary.update(live_runs=done, skipped=skipped, seconds=round(elapsed(), 1))
    src = results_dir(profile)
    atomic_write_json(src / "gpu_run.json", summary)
    if out is not None and Path(out).resolve() != src.resolve():
        shutil.copytree(src, Path(out) / "results" / profile, dirs_exist_ok=True)
    return summary


def _cmd_gpu_run(args: argparse.Namespace) -> int:
    out = args.out or os.environ.get("OUT")
    summary = gpu_run(args.budget_s, args.profile, Path(out) if out else None, args.device, args.max_steps)
    print({k: summary[k] for k in ("seconds", "live_runs", "skipped")})
    return 0


def register_cli(subparsers) -> None:
    """Add ``gpu-run``."""
    p = subparsers.add_parser("gpu-run", help="the budgeted full-profile GPU run (teacher + live-teacher modes)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget-s", type=float, default=540.0, help="wall-clock budget in seconds (default 540)")
    p.add_argument("--profile", default="full", choices=PROFILES)
    p.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    p.add_argument("--out", default=None, help="copy results here (default: $OUT when set)")
    p.add_argument("--max-steps", type=int, default=None,
                   help="cap every training stage (to test the full path on a CPU in minutes)")
    p.set_defaults(func=_cmd_gpu_run)
