"""The experiment workspace: one profile's prepared data, loaders, evaluation and records.

Everything the teacher pipeline (:mod:`ecodistill.experiments.teacher`) and the student experiments
(:mod:`ecodistill.experiments.distill`) share lives here, so both evaluate and record runs the same way:
identical inputs for teacher and students, masked metrics over land on raw values and
anomalies, per-biome and per-month rows, and one tidy CSV per run.

Explained in book/generated/02_teacher.ipynb.
"""
from __future__ import annotations

import functools
import io
import math
import os
import platform
import weakref
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import data, evaluate
from ..config import DataConfig, RunConfig, TrainConfig, get_profile, history_name, to_dict, with_history
from ..data.loader import DayDataset, EpochBatchSampler
from ..data.resident import ResidentData, ResidentLoader, resident_bytes
from ..data.tasks import Forecast, pretrain_task
from ..models import count_params, flops_per_map
from ..store import runs
from ..training import distributed
from ..training.predictions import predict
from ..utils import atomic_write_bytes, cache_dir, host_info, results_dir, stable_hash

#: Host memory a CPU process may give to :class:`~ecodistill.data.resident.ResidentData`
#: (``ECODISTILL_RESIDENT_GB`` overrides; 0 turns it off). On a GPU, half its memory.
RESIDENT_HOST_GB = 6.0
_HOLDERS: list[weakref.ref] = []  # the workspace whose resident data is built (at most one)


def _resident_budget(device: str) -> float:
    """Bytes the device-resident dataset may use on ``device``."""
    if "ECODISTILL_RESIDENT_GB" in os.environ:
        return float(os.environ["ECODISTILL_RESIDENT_GB"]) * 2**30
    if device.startswith("cuda"):
        return 0.5 * torch.cuda.get_device_properties(torch.device(device)).total_memory
    return RESIDENT_HOST_GB * 2**30


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
    def history(self) -> str:
        """The name of the inputs' history setting (:data:`ecodistill.config.HISTORY`, or custom)."""
        return history_name(self.cfg.data)

    @property
    def pretrain_task(self) -> Forecast:
        """What the teacher's pre-training forecasts (``cfg.pretrain_task``: next_day,
        atmosphere or land; :mod:`ecodistill.data.tasks`)."""
        return pretrain_task(self.cfg.pretrain_task, self.prep.weather_vars, self.cfg.land_lead)

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
    @property
    def resident(self) -> ResidentData | None:
        """The dataset held on the device (:mod:`ecodistill.data.resident`), built on first use
        when it fits the device's budget (``ECODISTILL_RESIDENT_GB``), else None (batches
        are then streamed from the file by :func:`ecodistill.data.make_loader`). One workspace
        of a process holds it at a time: building one releases another variant's (the ladder
        and the privileged case visit several input variants; each would otherwise keep its
        gigabytes)."""
        if "resident" not in self._memory:
            dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
            fits = resident_bytes(self.prep, dtype) <= _resident_budget(self.device)
            if fits:
                for ref in _HOLDERS:
                    other = ref()
                    if other is not None and other is not self:
                        other._memory.pop("resident", None)
                _HOLDERS[:] = [weakref.ref(self)]
            self._memory["resident"] = ResidentData(self.prep, self.device, dtype) if fits else None
        return self._memory["resident"]

    def loader(self, split: str, *, task: str = "ndvi", shuffle: bool = False, batch_size: int | None = None,
               seed: int = 0, teacher_pred: np.ndarray | None = None, unlabeled: bool = False,
               label_years: int | None = None, target: str = "ndvi", steps_per_epoch: int | None = None,
               weather_only: bool = False, shard: bool = False):
        """Batches (:class:`~ecodistill.data.batch.Batch`) of ``split``: gathered on the device
        from :attr:`resident` when it exists, else streamed by :func:`ecodistill.data.make_loader`
        -- the same batches in the same order either way.

        Args:
            steps_per_epoch: fixed-length epochs (see :class:`~ecodistill.data.EpochBatchSampler`).
            weather_only: ``x`` holds today's weather only (forecast pre-training).
            shard: under torchrun, yield this rank's shard of every batch.
        """
        bs = batch_size or self.cfg.student_train.batch_size
        rank, world = (distributed.dist_env()[:2]) if shard else (0, 1)
        options = dict(task=task, teacher_pred=teacher_pred, unlabeled=unlabeled, label_years=label_years,
                       target=target, weather_only=weather_only)
        if self.resident is None:
            return data.make_loader(self.prep, split, batch_size=bs, shuffle=shuffle, seed=seed,
                                    steps_per_epoch=steps_per_epoch, rank=rank, world=world, **options)
        days = DayDataset(self.prep, split, **options)
        sampler = EpochBatchSampler(len(days), bs, shuffle, int(seed), steps_per_epoch=steps_per_epoch,
                                    rank=rank, world=world)
        return ResidentLoader(self.resident, days, sampler, weather_only=weather_only)

    def steps_per_epoch(self, cfg: TrainConfig, task: str = "ndvi") -> int:
        """Optimizer steps per epoch of a run: ``cfg.steps_per_epoch``, or one pass over all
        training days of ``task`` at ``cfg.batch_size``. Every run of the profile with this
        config takes the same steps, whatever its labelled years or extra inputs."""
        if cfg.steps_per_epoch is not None:
            return cfg.steps_per_epoch
        return math.ceil(self.prep.split_days("train", task=task).size / cfg.batch_size)

    def train_loader(self, cfg: TrainConfig, task: str = "ndvi", **data_options: Any):
        """Shuffled training batches of a run (``cfg.seed``, ``cfg.batch_size``, fixed-length
        epochs of :meth:`steps_per_epoch`), sharded by rank under torchrun."""
        return self.loader("train", task=task, shuffle=True, seed=cfg.seed, batch_size=cfg.batch_size,
                           steps_per_epoch=self.steps_per_epoch(cfg, task), shard=True, **data_options)

    def val_loader(self, cfg: TrainConfig, task: str = "ndvi", **data_options: Any):
        """Validation batches of a run (sharded by rank under torchrun; losses are all-reduced)."""
        return self.loader("val", task=task, batch_size=cfg.batch_size, shard=True, **data_options)

    def example_x(self, n: int = 2) -> torch.Tensor:
        """``(n, c_in, h, w)`` inputs of the first training days, on the CPU (to size adapters
        and heads, and for export)."""
        return next(iter(self.loader("train", batch_size=n))).x.float().cpu()

    def train_cfg(self, which: str, seed: int, **changes: Any) -> TrainConfig:
        """The profile's ``pretrain`` / ``adapt`` / ``student_train`` settings with ``seed``."""
        return replace(getattr(self.cfg, which), seed=seed, **changes)

    def model_cost(self, model: nn.Module) -> tuple[int, float]:
        """``(parameters, FLOPs per map)`` of a model at this workspace's input shape."""
        return count_params(model), flops_per_map(model.to("cpu"), (self.in_chans, *self.img_size))

    def truth(self, split: str) -> dict[str, np.ndarray]:
        """The split's ``y``, ``mask``, ``clim``, ``month`` arrays, read once per process:
        evaluation reuses them."""
        key = f"truth-{split}"
        if key not in self._memory:
            self._memory[key] = data.split_arrays(self.prep, split)
        return self._memory[key]

    # -- evaluation ----------------------------------------------------------------------
    def predict(self, model: nn.Module, split: str, unlabeled: bool = False, device: str | None = None) -> np.ndarray:
        """``(n, 1, h, w)`` float32 predictions for a whole split, in NDVI units.

        ``device`` overrides the workspace's (e.g. ``"cpu"`` for CPU-only int8 or ONNX models).
        """
        device = device or self.device
        loader = self.loader(split, batch_size=128 if device.startswith("cuda") else 32, unlabeled=unlabeled)
        return predict(model, loader, device, dtype=torch.float32)

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
        """Write one run's rows and config through :mod:`ecodistill.store.runs`; return its run id.

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

    def checkpoint_path(self, name: str, key: Any = None, whole_config: bool = True):
        """Cache location of a checkpoint (never committed).

        ``key`` (any JSON-able object, e.g. the training config) is hashed into the file name
        together with the dataset hash and (``whole_config``) the profile's whole config, so a
        resumable state is only ever resumed by the same run on the same data; without
        ``whole_config`` the key must name everything the state depends on (e.g. pre-training,
        which is shared by every history setting of the same inputs).
        """
        if key is not None:
            whole = to_dict(self.cfg) if whole_config else None
            name = f"{name}-{stable_hash([key, self.dataset_hash, whole], 8)}"
        path = cache_dir() / self.profile / "checkpoints" / f"{name}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def run_config(self, **extra: Any) -> dict:
        """The profile's config as a dict, plus ``extra`` (saved with every run)."""
        return {"profile": to_dict(self.cfg), "dataset_hash": self.dataset_hash, **extra}


@functools.lru_cache(maxsize=2)
def _dataset(profile: str, source: str, in_memory: bool):
    """The profile's dataset, opened (or, in memory on a bare GPU machine, simulated) once per
    process whatever the input variants prepared from it."""
    cfg = replace(get_profile(profile).data, source=source)
    if in_memory and source == "simulated" and not any(data.dataset_path(cfg, f).exists() for f in ("netcdf", "npy")):
        return data.simulate_earth(cfg)  # a bare GPU machine: no gigabytes written to disk
    return data.load_dataset(cfg)


@functools.lru_cache(maxsize=8)
def _open(profile: str, device: str, source: str, in_memory: bool, variant: tuple = ()) -> Workspace:
    cfg = get_profile(profile, device=device)
    cfg = replace(cfg, data=replace(with_variant(cfg.data, dict(variant)), source=source))
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    ds = _dataset(profile, source, in_memory)
    prep = data.prepare(ds, cfg.data, patch_size=cfg.teacher.patch_size, in_memory=in_memory)
    return Workspace(cfg, prep, device)


#: What a workspace variant may change: which inputs, how much history, NDVI for the nowcast.
VARIANT_KEYS = ("history", "inputs", "ndvi_latency")


def with_variant(data_cfg: DataConfig, variant: dict) -> DataConfig:
    """``data_cfg`` with a variant applied: ``history`` (a name of
    :data:`ecodistill.config.HISTORY`), ``inputs`` (an input set), ``ndvi_latency`` (days).

    Raises:
        ValueError: for another key, or an unknown history name.
    """
    unknown = set(variant) - set(VARIANT_KEYS)
    if unknown:
        raise ValueError(f"unknown workspace setting(s) {sorted(unknown)}: choose from {VARIANT_KEYS}")
    if variant.get("history") is not None:
        data_cfg = with_history(data_cfg, variant["history"])
    changes = {k: v for k, v in variant.items() if k != "history" and v is not None}
    return replace(data_cfg, **changes)


def open_workspace(profile: str, device: str | None = None, in_memory: bool | None = None, *,
                   history: str | None = None, inputs: str | None = None,
                   ndvi_latency: int | None = None) -> Workspace:
    """Build or load the profile's dataset and prepare it (cached per process).

    The profile's simulated Earth is used unless ``ECODISTILL_DATA`` names a dataset written by
    :func:`ecodistill.data.write_dataset` (real ERA5 + NDVI on the profile's grid and years).

    Args:
        profile: ``smoke``, ``cpu`` or ``full``.
        device: ``cpu`` or ``cuda`` (default: cuda when available at ``full``, else cpu).
        in_memory: simulate and prepare in memory, writing nothing large to disk (default:
            on CUDA, where the data then moves to the GPU; a cached dataset file is used
            when there is one).
        history, inputs, ndvi_latency: a variant of the profile's inputs (:func:`with_variant`;
            None keeps the profile's): the same dataset, prepared for other model inputs.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() and profile == "full" else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asked for but no CUDA GPU is visible: use --device cpu")
    in_memory = device.startswith("cuda") if in_memory is None else in_memory
    base = get_profile(profile).data  # settings equal to the profile's own are no variant: one workspace
    variant = tuple((k, v) for k, v in (("history", history), ("inputs", inputs), ("ndvi_latency", ndvi_latency))
                    if v is not None and with_variant(base, {k: v}) != base)
    return _open(profile, device, data.source_from_env(), in_memory, variant)


def hardware_name(device: str) -> str:
    """A readable name of the hardware a run used (GPU model or CPU model and core count)."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    info = host_info()
    return f"{info['processor']} ({info['cpu_count']} cores, {platform.machine()})"
