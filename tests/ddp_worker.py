"""Trains a tiny model with :func:`ecodistill.training.loop.fit`; run by tests/test_ddp.py.

Under ``torchrun --nproc_per_node=2 tests/ddp_worker.py OUT`` each rank saves its final
weights and history to ``OUT/rank<r>.pt`` (rank 0 also writes ``OUT/fit.pt``, the
checkpoint). Imported in-process, :func:`train` gives the single-process reference.
"""
from __future__ import annotations

import os
import sys

import torch
from torch import nn
from torch.utils.data import Dataset

from ecodistill.config import TrainConfig
from ecodistill.training.distributed import epoch_loader
from ecodistill.training.loop import fit
from ecodistill.training.objectives import truth_loss

CFG = TrainConfig(epochs=2, batch_size=4, lr=1e-2, warmup_frac=0.1, patience=0, seed=0, bf16=False)
LAT = torch.cos(torch.deg2rad(torch.linspace(-60, 60, 4)))


class MapData(Dataset):
    """All-valid synthetic maps, so every rank's masked loss has the same cell count."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 3, 4, 6, generator=g)
        self.y = self.x[:, :1] - 0.5 * self.x[:, 2:] + 0.1 * torch.randn(n, 1, 4, 6, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i], "mask": torch.ones(1, 4, 6, dtype=torch.bool)}


def train(batch_size: int, ckpt_path: str | None = None) -> tuple[nn.Module, list[dict]]:
    """Fit a 1x1 conv on 32 samples with global batches of ``batch_size`` (each of R ranks
    takes its shard of batch_size / R samples); returns (model, history)."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.GELU(), nn.Conv2d(4, 1, 1))
    train_loader = epoch_loader(MapData(32, 0), batch_size, shuffle=True, seed=0)
    val_loader = epoch_loader(MapData(8, 1), batch_size, shuffle=False, seed=0)
    res = fit(model, train_loader, val_loader, truth_loss("mse"), CFG, lat_weights=LAT,
              ckpt_path=ckpt_path, progress=False)
    return model, res.history


if __name__ == "__main__":
    out = sys.argv[1]
    model, history = train(CFG.batch_size, os.path.join(out, "fit.pt"))
    rank = torch.distributed.get_rank()
    torch.save({"state": model.state_dict(), "history": history}, os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()
