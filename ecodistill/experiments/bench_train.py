"""Training throughput: the project's loop against a synthetic loop on data already on the device.

``python -m ecodistill bench-train --profile P`` times, for the teacher and each student of
the profile, in one run on one device:

* **project**: :func:`ecodistill.training.loop.fit` fed by the workspace's training loader (on a GPU
  the device-resident data of :mod:`ecodistill.data.resident`), so batch assembly, the
  step, clipping, the schedule and the loop's bookkeeping are all counted;
* **synthetic**: the same model, batch size, loss, bf16 autocast (CUDA), gradient clipping
  and fused AdamW on one random batch that never leaves the device -- the ceiling.

It prints samples per second of both and their ratio (1.0: the loop costs nothing beyond
the model's arithmetic). Each is timed after warm-up steps, with the device synchronised
around the timed region. Explained in the README ("The full profile on a GPU").
"""
from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext
from dataclasses import replace

import torch

from ..config import PROFILES, TrainConfig
from ..data.batch import Batch
from ..models import afno_from_config, build_student, student_config
from ..training.loop import fit
from ..training.objectives import truth_loss
from ..training.optim import cosine_schedule, make_optimizer
from ..utils import seed_everything
from .workspace import Workspace, open_workspace


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def build(ws: Workspace, name: str) -> torch.nn.Module:
    """The profile's teacher (``teacher``) or one of its students, freshly initialised."""
    seed_everything(0)
    if name == "teacher":
        return afno_from_config(ws.cfg.teacher, ws.in_chans, 1, ws.img_size)
    return build_student(student_config(ws.cfg, name), ws.in_chans, 1, ws.img_size)


def project_rate(ws: Workspace, name: str, cfg: TrainConfig, steps: int, warmup: int,
                 compile_model: bool = False) -> float:
    """Samples per second of ``fit`` over ``steps`` steps: the time of a run of
    ``warmup + steps`` steps minus that of a run of ``warmup`` steps (same loader, no validation)."""
    def run(n: int) -> float:
        model = build(ws, name)
        run_cfg = replace(cfg, epochs=1, steps_per_epoch=n, max_steps=n, warmup_frac=0.0)
        loader = ws.train_loader(run_cfg)
        _sync(ws.device)
        start = time.perf_counter()
        fit(model, loader, None, truth_loss("mse"), run_cfg, lat_weights=ws.lat_weights, device=ws.device,
            progress=False, checkpoint_every_s=None, compile_model=compile_model)
        _sync(ws.device)
        return time.perf_counter() - start

    run(warmup)  # first contact: allocations, kernels, compilation
    elapsed = run(warmup + steps) - run(warmup)
    return steps * cfg.batch_size / max(elapsed, 1e-9)


def synthetic_rate(ws: Workspace, name: str, cfg: TrainConfig, steps: int, warmup: int,
                   compile_model: bool = False) -> float:
    """Samples per second of a bare step loop on one random batch kept on the device."""
    dev = torch.device(ws.device)
    model = build(ws, name).to(dev)
    net = torch.compile(model) if compile_model else model
    opt = make_optimizer([model], cfg)
    sched = cosine_schedule(opt, warmup + steps, 0.0)
    loss_fn = truth_loss("mse")
    b = cfg.batch_size
    batch = Batch(x=torch.randn(b, ws.in_chans, *ws.img_size, device=dev),
                  y=torch.randn(b, 1, *ws.img_size, device=dev),
                  mask=torch.ones(b, 1, *ws.img_size, dtype=torch.bool, device=dev))
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" and cfg.bf16 else nullcontext()
    start = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            _sync(ws.device)
            start = time.perf_counter()
        with amp:
            y_hat = net(batch.x)
        loss = loss_fn(y_hat.float(), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
    _sync(ws.device)
    return steps * b / max(time.perf_counter() - start, 1e-9)


def bench_train(profile: str, device: str | None = None, models: tuple[str, ...] | None = None,
                steps: int = 20, warmup: int = 5, compile_model: bool = False) -> list[dict]:
    """One row per model: ``model, device, batch_size, project_samples_s, synthetic_samples_s, ratio``."""
    ws = open_workspace(profile, device)
    names = models or ("teacher", *(s.name for s in ws.cfg.students))
    rows = []
    for name in names:
        cfg = ws.train_cfg("adapt" if name == "teacher" else "student_train", 0)
        project = project_rate(ws, name, cfg, steps, warmup, compile_model)
        synthetic = synthetic_rate(ws, name, cfg, steps, warmup, compile_model)
        rows.append({"model": name, "device": ws.device, "batch_size": cfg.batch_size,
                     "project_samples_s": round(project, 1), "synthetic_samples_s": round(synthetic, 1),
                     "ratio": round(project / synthetic, 3), "compiled": compile_model})
    return rows


def _cmd(args: argparse.Namespace) -> int:
    rows = bench_train(args.profile, args.device, tuple(args.models) if args.models else None, args.steps,
                       args.warmup, args.compile)
    for row in rows:
        print(f"{row['model']:>10}  project {row['project_samples_s']:>10.1f}  synthetic "
              f"{row['synthetic_samples_s']:>10.1f} samples/s  ratio {row['ratio']:.3f}")
    if args.json:
        print(json.dumps(rows))
    return 0


def register_cli(subparsers) -> None:
    """Add ``bench-train``."""
    p = subparsers.add_parser("bench-train", help="training throughput: the project's loop vs a synthetic loop",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="smoke", choices=PROFILES)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda at full when available)")
    p.add_argument("--models", nargs="*", default=None, help="teacher and/or student names (default: all)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per model")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--compile", action="store_true", help="torch.compile both loops' models")
    p.add_argument("--json", action="store_true", help="also print the rows as JSON")
    p.set_defaults(func=_cmd)
