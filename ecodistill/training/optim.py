"""Optimizer, learning-rate schedule and step budget of the one training loop.

AdamW {cite:p}`loshchilov2019adamw` with decoupled weight decay on weight matrices only,
a linear-warmup cosine schedule, and the plan of how many optimizer steps a run takes.
Explained in book/generated/02_teacher.ipynb ("Training").
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..config import TrainConfig

#: Parameters exempt from weight decay by name (besides every 1-d tensor: biases, norms).
NO_DECAY_NAMES = ("pos_embed",)


def make_optimizer(modules: list[nn.Module], cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of ``modules``; biases, norms (1-d tensors) and
    ``pos_embed`` are exempt from weight decay (decaying them only shrinks offsets/scales).

    On CUDA the fused implementation is used (one kernel per step instead of one per tensor).

    Raises:
        ValueError: when nothing is trainable.
    """
    decay, no_decay, seen = [], [], set()
    for module in modules:
        for name, p in module.named_parameters():
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            exempt = p.ndim <= 1 or any(k in name for k in NO_DECAY_NAMES)
            (no_decay if exempt else decay).append(p)
    if not seen:
        raise ValueError("fit: the model has no trainable parameters (all requires_grad=False)")
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    fused = all(p.is_cuda for p in decay + no_decay)
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, fused=fused or None)


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int,
                    warmup_frac: float) -> torch.optim.lr_scheduler.LambdaLR:
    r"""Linear warmup over ``ceil(warmup_frac * total_steps)`` steps, then a cosine decay
    :math:`\tfrac12(1 + \cos(\pi p))` to 0 over the rest (:math:`p` the progress in [0, 1])."""
    warm = math.ceil(warmup_frac * total_steps) if warmup_frac > 0 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def planned_steps(loader: Any, cfg: TrainConfig) -> tuple[int, int]:
    """``(steps_per_epoch, total_steps)`` of a run.

    An epoch is ``len(loader)`` steps; :func:`ecodistill.data.make_loader` and the resident
    loader build fixed-length epochs of ``cfg.steps_per_epoch`` batches (whatever the
    number of labelled days, so every arm of a comparison takes the same steps). A plain
    loader longer than ``cfg.steps_per_epoch`` is cut to it. The total is
    ``epochs * steps_per_epoch``, capped by ``cfg.max_steps``.

    Raises:
        ValueError: for an empty loader, one without ``len`` and no ``steps_per_epoch``, or
            a loader shorter than ``cfg.steps_per_epoch`` (its epochs would silently shrink).
    """
    try:
        n = len(loader)
    except TypeError:
        n = None
    if n is None and cfg.steps_per_epoch is None:
        raise ValueError("fit: the train loader has no len(); set TrainConfig.steps_per_epoch")
    if n is not None and cfg.steps_per_epoch is not None and n < cfg.steps_per_epoch:
        raise ValueError(f"fit: the train loader has {n} batches per epoch but steps_per_epoch="
                         f"{cfg.steps_per_epoch}; build it with steps_per_epoch (ecodistill.data."
                         "make_loader) so that every epoch has the same number of steps")
    per_epoch = n if cfg.steps_per_epoch is None else cfg.steps_per_epoch
    if per_epoch <= 0:
        raise ValueError("fit: the train loader is empty (0 batches): check the split and batch size")
    total = cfg.epochs * per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    if total <= 0:
        raise ValueError(f"fit: nothing to train (epochs={cfg.epochs}, max_steps={cfg.max_steps})")
    return per_epoch, total
