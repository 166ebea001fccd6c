"""A training run's state and its checkpoint: everything needed to continue exactly.

:class:`LoopState` holds the loop's counters and history; :func:`save_state` writes it
atomically with the weights, optimizer, schedule and random-number-generator states, so a
run stopped by its budget, Ctrl-C or SIGTERM continues from :func:`load_state` with the
same data order and the same random draws, as if it had never stopped. :class:`StopSignals`
turns those signals into a flag the loop checks between steps, so the checkpoint is whole.

Explained in book/generated/02_teacher.ipynb ("Training").
"""
from __future__ import annotations

import dataclasses
import math
import random
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig, to_dict
from ..store.integrity import load_verified, save_verified

CKPT_FORMAT = "ecodistill.train/3"  # a stored format name, kept when the module moved


@dataclass
class LoopState:
    """Where a run stands.

    Attributes:
        epoch, batch, step: the current epoch, batches done in it, optimizer steps in all.
        history: one record per finished epoch (see :class:`ecodistill.training.loop.FitResult`).
        best_val, best_epoch: lowest validation loss so far and its epoch.
        epochs_since_best: epochs without a new best (early stopping counts these).
        loss_sums: per model, the training loss summed over this epoch's batches.
        epoch_seconds: wall time spent in this epoch before the last stop.
        finished, stop_reason, stopped_early: whether and why the run ended.
    """

    epoch: int = 0
    batch: int = 0
    step: int = 0
    history: list[dict] = field(default_factory=list)
    best_val: float = math.inf
    best_epoch: int = -1
    epochs_since_best: int = 0
    loss_sums: list[float] = field(default_factory=list)
    epoch_seconds: float = 0.0
    finished: bool = False
    stop_reason: str = "done"
    stopped_early: bool = False


def rng_state() -> dict:
    """The random-number-generator states of torch (CPU, CUDA), NumPy and ``random``, as
    tensors and plain containers (so a checkpoint loads with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore :func:`rng_state`'s output."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, gauss))
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: Path, cfg: TrainConfig, world: int, models: list, loss_modules: list, optimizer,
               scheduler, state: LoopState, best: list[dict] | None, rng_epoch: dict, rng_now: dict) -> None:
    """Atomically write a checkpoint from which :func:`load_state` continues exactly."""
    save_verified({
        "format": CKPT_FORMAT, "cfg": to_dict(cfg), "world_size": world,
        "models": [m.state_dict() for m in models],
        "loss_modules": [m.state_dict() for m in loss_modules],
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "state": dataclasses.asdict(state), "best_state": best,
        "rng_epoch": rng_epoch, "rng_now": rng_now,
    }, path)


def load_state(path: Path, cfg: TrainConfig, models: list, loss_modules: list, optimizer,
               scheduler) -> dict[str, Any]:
    """Load a checkpoint of :func:`save_state` into the given objects.

    Returns:
        ``state`` (:class:`LoopState`), ``best_state``, ``rng_epoch``, ``rng_now`` and the
        ``world_size`` that wrote it.

    Raises:
        ValueError: for a file that is not such a checkpoint, or one written with another
            :class:`~ecodistill.config.TrainConfig` or another set of models (the message
            says to pass the same config or delete the file).
    """
    # weights_only=True always: a file that fails its hash or is of an older format is refused,
    # never opened with weights_only=False (which could run code)
    ck = load_verified(path, what="training checkpoint", fix="delete it to start the run over")
    if not isinstance(ck, dict) or ck.get("format") != CKPT_FORMAT:
        raise ValueError(f"{path} is not an ecodistill training checkpoint of format {CKPT_FORMAT}; "
                         "delete it to start the run over, or pass another ckpt_path")
    if ck["cfg"] != to_dict(cfg):
        raise ValueError(f"{path} was written with TrainConfig {ck['cfg']}, not {to_dict(cfg)}: "
                         "pass the same config to resume, or delete the file to start over")
    if len(ck["models"]) != len(models) or len(ck["loss_modules"]) != len(loss_modules):
        raise ValueError(f"{path} holds {len(ck['models'])} model(s) and {len(ck['loss_modules'])} "
                         "loss module(s), unlike this call (co_model / loss modules differ)")
    for module, sd in zip(models + loss_modules, ck["models"] + ck["loss_modules"]):
        module.load_state_dict(sd)
    optimizer.load_state_dict(ck["optimizer"])
    scheduler.load_state_dict(ck["scheduler"])
    return {"state": LoopState(**ck["state"]), "best_state": ck["best_state"], "rng_epoch": ck["rng_epoch"],
            "rng_now": ck["rng_now"], "world_size": ck["world_size"]}


class StopSignals:
    """Turn the first Ctrl-C (SIGINT) or SIGTERM (e.g. ``timeout``) into a flag checked between
    steps, so the checkpoint is whole; a second signal aborts at once. Main thread only."""

    def __init__(self) -> None:
        self.flag, self._prev = False, {}

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._prev[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.flag:
            raise KeyboardInterrupt
        self.flag = True

    def __exit__(self, *exc: object) -> None:
        for sig, prev in self._prev.items():
            signal.signal(sig, prev)
