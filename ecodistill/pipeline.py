"""The experiment workspace: one profile's prepared data, loaders, evaluation and records.

Everything the teacher pipeline (:mod:`ecodistill.teacher`) and the student experiments
(:mod:`ecodistill.distill`) share lives here, so both evaluate and record runs the same way:
identical inputs for teacher and students, masked metrics over land on raw values and
anomalies, per-biome and per-month rows, and one tidy CSV per run.

Explained in book/generated/02_teacher.ipynb.
"""
from __future__ import annotations

import functools
import io
import os
import platform
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import data, evaluate, runs
from .config import RunConfig, TrainConfig, get_profile, to_dict
from .models import count_params, flops_per_map
from .train import predict
from .utils import atomic_write_bytes, cache_dir, results_dir, stable_hash

MEMORY_BYTES = 512 * 2**20  # evaluation splits whose inputs fit are kept in memory


class MemoryLoader:
    """Ordered batches from in-memory split arrays (``x``, ``y``, ``mask``, ``clim``, ``t``)."""

    KEYS = ("x", "y", "mask", "clim", "t")

    def __init__(self, arrays: dict[str, np.ndarray], batch_size: int) -> None:
        self.arrays, self.batch_size = arrays, batch_size
        self.n = len(arrays["t"])

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        for i in range(0, self.n, self.batch_size):
            yield {k: torch.from_numpy(np.ascontiguousarray(self.arrays[k][i:i + self.batch_size]))
                   for k in self.KEYS}


@dataclass
class Workspace:
    """A profile's data, ready for training: built once per process by :func:`open_workspace`.

    Attributes:
        cfg: the profile's :class:`RunConfig`.
        prep: the prepared dataset (splits, normalisation, masks; see :mod:`ecodistill.data`).
        device: ``cpu`` or ``cuda``.
    """

    cfg: RunConfig
    prep: Any
    device: str
    _memory: dict = field(default_factory=dict, repr=False)

    # -- shapes ------------------------------------------------------------------------
    @property
    def profile(self) -> str:
        return self.cfg.profile

    @property
    def img_size(self) -> tuple[int, int]:
        return (self.cfg.data.nlat, self.cfg.data.nlon)

    @property
    def in_chans(self) -> int:
        """Number of input channels (weather, trailing means, static maps, calendar)."""
        return len(self.prep.input_channels)

    @property
    def weather_index(self) -> list[int]:
        """Positions of today's weather channels within ``x`` (the pre-training inputs)."""
        return [self.prep.input_channels.index(v) for v in self.prep.weather_vars]

    @property
    def n_weather(self) -> int:
        return len(self.prep.weather_vars)

    @property
    def dataset_hash(self) -> str:
        return self.prep.dataset_hash

    @property
    def lat_weights(self) -> np.ndarray:
        """``(h, w)`` latitude weights, mean 1 over land."""
        return self.prep.lat_weights

    @property
    def land(self) -> np.ndarray:
        """``(h, w)`` boolean land mask."""
        return self.prep.land_mask

    # -- data ----------------------------------------------------------------------------
    def loader(self, split: str, *, task: str = "ndvi", shuffle: bool = False, batch_size: int | None = None,
               seed: int = 0, teacher_pred: np.ndarray | None = None, unlabeled: bool = False,
               label_years: int | None = None, target: str = "ndvi"):
        """A DataLoader of dict batches for ``split`` (see :func:`ecodistill.data.make_loader`)."""
        bs = batch_size or self.cfg.student_train.batch_size
        plain = task == "ndvi" and not shuffle and teacher_pred is None and not unlabeled
        if plain and label_years is None and target == "ndvi" and split in ("val", "test"):
            arrays = self.truth(split)
            if "x" in arrays:
                return MemoryLoader(arrays, bs)
        return data.make_loader(self.prep, split, batch_size=bs, shuffle=shuffle, seed=seed, task=task,
                                teacher_pred=teacher_pred, unlabeled=unlabeled, label_years=label_years,
                                target=target)

    def example_x(self, n: int = 2) -> torch.Tensor:
        """``(n, c_in, h, w)`` inputs from the training split (to size adapters and heads)."""
        batch = next(iter(self.loader("train", batch_size=n)))
        return batch["x"]

    def train_cfg(self, which: str, seed: int, **changes: Any) -> TrainConfig:
        """The profile's ``pretrain`` / ``adapt`` / ``student_train`` settings with ``seed``."""
        from dataclasses import replace

        base = getattr(self.cfg, which)
        return replace(base, seed=seed, **changes)

    def model_cost(self, model: nn.Module) -> tuple[int, float]:
        """``(parameters, FLOPs per map)`` of a model at this workspace's input shape."""
        return count_params(model), flops_per_map(model.to("cpu"), (self.in_chans, *self.img_size))

    def truth(self, split: str) -> dict[str, np.ndarray]:
        """The split's ``y``, ``mask``, ``clim``, ``month`` arrays (and ``x`` when it fits in
        ``MEMORY_BYTES``), read once per process: evaluation and validation reuse them."""
        if split not in self._memory:
            n = self.prep.split_days(split).size
            fits = n * self.in_chans * self.img_size[0] * self.img_size[1] * 4 <= MEMORY_BYTES
            arrays = data.split_arrays(self.prep, split, with_x=fits)
            if not fits:
                return arrays
            self._memory[split] = arrays
        return self._memory[split]

    # -- evaluation ----------------------------------------------------------------------
    def predict(self, model: nn.Module, split: str, unlabeled: bool = False, device: str | None = None) -> np.ndarray:
        """``(n, 1, h, w)`` float32 predictions for a whole split, in NDVI units.

        ``device`` overrides the workspace's (e.g. ``"cpu"`` for CPU-only int8 or ONNX models).
        """
        loader = self.loader(split, batch_size=32, unlabeled=unlabeled)
        return predict(model, loader, device or self.device, dtype=torch.float32)

    def evaluate(self, y_hat: np.ndarray, split: str, teacher_pred: np.ndarray | None = None,
                 monthly: bool = True) -> list[tuple[str, str, str, float]]:
        """Metric tuples ``(split, region, metric, value)``: global, per biome and per month.

        ``fidelity_r2`` (agreement with the teacher) is added when ``teacher_pred`` is given.
        """
        truth = self.truth(split)
        y, mask, clim, months = truth["y"], truth["mask"], truth["clim"], truth["month"]
        regions = evaluate.per_region(y_hat, y, mask, clim, self.lat_weights, self.prep.biome,
                                      self.prep.biome_names)
        out = evaluate.to_rows(regions, split)
        if monthly:
            out += evaluate.to_rows(evaluate.per_month(y_hat, y, mask, clim, months, self.lat_weights), split)
        if teacher_pred is not None:
            fid = evaluate.fidelity(y_hat, teacher_pred, np.broadcast_to(self.land, y_hat.shape))
            out.append((split, "global", "fidelity_r2", fid["fidelity_r2"]))
        return out

    def record(self, name: str, meta: dict, metric_rows: list, config: dict, history: list | None = None) -> str:
        """Write one run's rows and config through :mod:`ecodistill.runs`; return its run id.

        The run id hashes ``config`` only (not the training history, which holds timings),
        so the same configuration always has the same id.
        """
        run_id = meta.get("run_id") or runs.make_run_id(name, config)
        meta = {"dataset_hash": self.dataset_hash, "target": "ndvi", **meta, "run_id": run_id}
        saved = {"name": name, **config, **({"history": history} if history is not None else {})}
        runs.write_run(self.profile, runs.make_rows(meta, metric_rows), saved)
        return run_id

    def error_map_path(self, run_id: str):
        """Where a run's test error map ``(h, w)`` is stored (small ``.npz`` beside the runs)."""
        return results_dir(self.profile) / "maps" / f"{run_id}.npz"

    def save_error_map(self, run_id: str, y_hat: np.ndarray) -> None:
        """Store a run's test RMSE map ``(h, w)`` (key ``rmse``, float32) for the error-map figures."""
        truth = self.truth("test")
        err = evaluate.error_map(y_hat, truth["y"], truth["mask"]).astype(np.float32)
        buf = io.BytesIO()
        np.savez_compressed(buf, rmse=err)
        atomic_write_bytes(self.error_map_path(run_id), buf.getvalue())

    def checkpoint_path(self, name: str, key: Any = None):
        """Cache location of a checkpoint (never committed).

        ``key`` (any JSON-able object, e.g. the training config) is hashed into the file name
        together with the dataset hash, so a resumable state is only ever resumed by the
        same run on the same data.
        """
        if key is not None:
            name = f"{name}-{stable_hash([key, self.dataset_hash, to_dict(self.cfg)], 8)}"
        path = cache_dir() / self.profile / "checkpoints" / f"{name}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def run_config(self, **extra: Any) -> dict:
        """The profile's config as a dict, plus ``extra`` (saved with every run)."""
        return {"profile": to_dict(self.cfg), "dataset_hash": self.dataset_hash, **extra}


@functools.lru_cache(maxsize=4)
def _open(profile: str, device: str, source: str) -> Workspace:
    cfg = get_profile(profile, device=device)
    cfg = replace(cfg, data=replace(cfg.data, source=source))
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    ds = data.load_dataset(cfg.data)
    prep = data.prepare(ds, cfg.data, patch_size=cfg.teacher.patch_size)
    return Workspace(cfg, prep, device)


def open_workspace(profile: str, device: str | None = None) -> Workspace:
    """Build or load the profile's dataset and prepare it (cached per process).

    The profile's simulated Earth is used unless ``ECODISTILL_DATA`` names a dataset written by
    :func:`ecodistill.data.write_dataset` (real ERA5 + NDVI on the profile's grid and years).

    Args:
        profile: ``smoke``, ``cpu`` or ``full``.
        device: ``cpu`` or ``cuda`` (default: cuda when available at ``full``, else cpu).
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() and profile == "full" else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asked for but no CUDA GPU is visible: use --device cpu")
    source = os.environ.get("ECODISTILL_DATA", "simulated")
    if source != "simulated" and not Path(source).exists():
        raise FileNotFoundError(f"ECODISTILL_DATA={source}: no such dataset. Make one from ERA5 + NDVI files "
                                "with ecodistill.data.make_dataset / write_dataset (see README 'Your own data')")
    return _open(profile, device, source)


def hardware_name(device: str) -> str:
    """A readable name of the hardware a run used (GPU model or CPU model and core count)."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    from .book import host_info

    info = host_info()
    return f"{info['processor']} ({info['cpu_count']} cores, {platform.machine()})"
