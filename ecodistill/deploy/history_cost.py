"""The cost of memory: what each history setting asks of a small device.

For every history setting of :data:`ecodistill.config.HISTORY` (and the nowcast input) the
profile's headline and smallest students are built at that setting's input channels and
measured: parameters and FLOPs per map (:mod:`ecodistill.models.cost`), the state a device
keeps per pixel between days (:func:`ecodistill.data.history.state_bytes_per_pixel`: a year
of windows needs a year of daily maps, a recurrent state a few numbers) and the latency of
one map in PyTorch on one thread (batch 1, the profile's grid; untrained weights -- latency
does not depend on them).

``python -m ecodistill history-cost --profile cpu`` writes ``results/<profile>/history_cost.csv``.
Explained in book/generated/05_pi_timings.ipynb ("The cost of memory").
"""
from __future__ import annotations

import io
from dataclasses import replace

import pandas as pd
import torch

from ..config import HISTORY, get_profile, with_history
from ..data.history import state_bytes_per_pixel
from ..data.prepare import input_channel_names, input_vars
from ..models import build_student, model_card
from ..utils import atomic_write_text, cpu_model, results_dir, seed_everything
from .bench import time_call

COLUMNS = ("history", "ndvi_latency", "student", "in_chans", "n_params", "flops_per_map", "state_bytes_per_pixel",
           "state_mb_per_map", "median_ms", "p90_ms", "n", "threads", "cpu")


def history_cost(profile: str, runs: int = 10, latencies: tuple[int, ...] = (16,)) -> pd.DataFrame:
    """One row per (history setting, student); nowcast rows add the NDVI input at ``latencies``."""
    cfg = get_profile(profile)
    grid = (cfg.data.nlat, cfg.data.nlon)
    students = [s for s in cfg.students if s.name == cfg.headline_student] + [cfg.students[-1]]
    settings = [(name, 0) for name in HISTORY] + [("recurrent", latency) for latency in latencies]
    torch.set_num_threads(1)
    rows = []
    for name, latency in settings:
        data = replace(with_history(cfg.data, name), ndvi_latency=latency)
        in_chans = len(input_channel_names(data))
        state = state_bytes_per_pixel(data, len(input_vars(data)))
        for scfg in students:
            seed_everything(0)
            model = build_student(scfg, in_chans, 1, grid).eval()
            card = model_card(model, (1, in_chans, *grid))
            x = torch.randn(1, in_chans, *grid)
            with torch.no_grad():
                timing = time_call(lambda: model(x), runs=runs)
            rows.append({"history": name, "ndvi_latency": latency, "student": scfg.name, "in_chans": in_chans,
                         "n_params": card["n_params"], "flops_per_map": card["flops_per_map"],
                         "state_bytes_per_pixel": state, "state_mb_per_map": state * grid[0] * grid[1] / 1e6,
                         "median_ms": timing["median_ms"], "p90_ms": timing["p90_ms"], "n": timing["n"],
                         "threads": 1, "cpu": cpu_model()})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    buf = io.StringIO()
    table.to_csv(buf, index=False, float_format="%.6g")
    atomic_write_text(results_dir(profile) / "history_cost.csv", buf.getvalue())
    return table


def _cmd(args) -> int:
    print(history_cost(args.profile, runs=args.runs).to_string(index=False))
    return 0


def register_cli(subparsers) -> None:
    """Add ``history-cost``."""
    from ..config import PROFILES

    p = subparsers.add_parser("history-cost", help="parameters, FLOPs, state per pixel and latency of each history")
    p.add_argument("--profile", default="smoke", choices=PROFILES)
    p.add_argument("--runs", type=int, default=10, help="timed calls per model (after warm-up)")
    p.set_defaults(func=_cmd)
