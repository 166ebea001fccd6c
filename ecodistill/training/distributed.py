"""Data parallelism under ``torchrun``: process group, rank information, reductions.

``torchrun --nproc_per_node N -m ecodistill train-teacher ...`` starts N processes; each
joins the process group here (gloo on CPU, nccl on CUDA), trains on its shard of every
global batch (:class:`ecodistill.data.EpochBatchSampler` with ``rank``/``world``), and
:class:`~torch.nn.parallel.DistributedDataParallel` averages the gradients. Evaluation and
every write happen on rank 0 only (:func:`is_main_process`). Outside torchrun everything
here is a no-op with ``rank 0 of 1``.

Explained in the README ("Several GPUs").
"""
from __future__ import annotations

import os

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data.loader import EpochBatchSampler


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() else None


def dist_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` of this process (``(0, 1, 0)`` outside torchrun)."""
    dist = _dist()
    if dist is not None and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
    env = os.environ
    return int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0"))


def init_distributed(device: str | torch.device = "cpu") -> tuple[int, int]:
    """Join torchrun's process group (gloo on CPU, nccl on CUDA) when WORLD_SIZE > 1.

    Idempotent; returns ``(rank, world_size)`` (``(0, 1)`` outside torchrun).
    """
    rank, world, local = dist_env()
    dist = _dist()
    if world <= 1 or dist is None or dist.is_initialized():
        return rank, world
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo")
    return dist.get_rank(), dist.get_world_size()


def is_main_process() -> bool:
    """True on rank 0 (and outside torchrun): the process that evaluates and writes."""
    return dist_env()[0] == 0


def all_reduce(values: list[float], device: torch.device, op: str = "sum") -> list[float]:
    """Sum (or max) a few floats over all ranks; the values themselves with one process."""
    dist = _dist()
    if dist is None or not dist.is_initialized() or dist.get_world_size() == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return t.tolist()


def barrier() -> None:
    """Wait for every rank (no-op with one process)."""
    dist = _dist()
    if dist is not None and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in :class:`DistributedDataParallel` when several ranks train it."""
    if dist_env()[1] <= 1 or not any(p.requires_grad for p in model.parameters()):
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def unwrap(module: nn.Module) -> nn.Module:
    """The model inside DDP and ``torch.compile`` wrappers (or ``module`` itself)."""
    from torch.nn.parallel import DistributedDataParallel

    while True:
        if isinstance(module, DistributedDataParallel):
            module = module.module
        elif hasattr(module, "_orig_mod"):  # torch.compile's OptimizedModule
            module = module._orig_mod
        else:
            return module


def average_gradients(params: list[nn.Parameter]) -> None:
    """Average the gradients of parameters DDP does not own (e.g. loss adapters) over ranks."""
    dist = _dist()
    world = dist_env()[1]
    if world <= 1 or dist is None or not dist.is_initialized():
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= world


def epoch_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int, *,
                 steps_per_epoch: int | None = None, shard: bool = True, **kwargs) -> DataLoader:
    """A DataLoader over any map-style dataset of per-sample dicts, in the order of
    :class:`EpochBatchSampler` (depends only on ``(seed, epoch)``), sharded by rank under
    torchrun when ``shard``: the loader for your own data in :func:`ecodistill.training.loop.fit`."""
    rank, world = dist_env()[:2] if shard else (0, 1)
    sampler = EpochBatchSampler(len(dataset), batch_size, shuffle, int(seed), steps_per_epoch=steps_per_epoch,
                                rank=rank, world=world)
    return DataLoader(dataset, batch_sampler=sampler, **kwargs)
