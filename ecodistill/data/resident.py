"""A whole prepared dataset held on one device, and batches gathered there by index.

The streaming loader (:mod:`ecodistill.data.loader`) assembles every batch on the host: at
the full profile 180-250 ms of one core per batch of 64, more than a GPU needs to train on
it. :class:`ResidentData` instead assembles the time-varying input channels of every day
once (:meth:`~ecodistill.data.prepare.Prepared.dynamic_inputs`, chunks in parallel
threads), keeps them on the device (bfloat16 on CUDA: 6.9 GB at the full profile; float32
on the CPU) with the targets, masks and climatology in float32, and
:class:`ResidentLoader` gathers each batch there by index: no ``DataLoader`` and no
per-batch host work. Batches come in the order of the same
:class:`~ecodistill.data.loader.EpochBatchSampler`, so resuming stays exact, and on the CPU
they are identical to the streaming loader's (tested).

Explained in book/generated/02_data.ipynb ("From data to model inputs").
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .batch import Batch
from .loader import DayDataset, EpochBatchSampler
from .prepare import Prepared


def resident_bytes(prep: Prepared, dtype: torch.dtype = torch.float32) -> int:
    """Memory :class:`ResidentData` needs for ``prep`` (inputs in ``dtype``, targets in fp32)."""
    cells = int(np.prod(prep.land_mask.shape))
    item = torch.empty((), dtype=dtype).element_size()
    return prep.n_time * cells * (prep.n_dynamic * item + 4 + 1)


class ResidentData:
    """Inputs and targets of every day of ``prep`` as tensors on ``device``.

    Args:
        prep: the prepared dataset.
        device: where the tensors live.
        dtype: storage type of the time-varying inputs (default: bfloat16 on CUDA, else
            float32). Batches are always returned in float32.
        chunk: days assembled per host task while building.

    Attributes:
        dynamic: ``(n_time, n_dynamic, h, w)`` standardised weather and trailing means.
        static: ``(n_static, h, w)`` float32 standardised static maps.
        calendar: ``(n_time, 2)`` float32 sine and cosine of the day of year.
        clim: ``(366, h, w)`` float32 NDVI climatology (0 off the NDVI domain).
        domain: ``(h, w)`` bool NDVI domain.
    """

    def __init__(self, prep: Prepared, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                 chunk: int = 128) -> None:
        self.prep, self.device = prep, torch.device(device)
        self.dtype = dtype or (torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        grid = prep.land_mask.shape
        self.dynamic = torch.empty((prep.n_time, prep.n_dynamic, *grid), dtype=self.dtype, device=self.device)
        self._fill_dynamic(chunk)
        self.static = torch.from_numpy(np.ascontiguousarray(prep.static_x)).to(self.device)
        self.calendar = torch.from_numpy(prep.calendar(np.arange(prep.n_time))).to(self.device)
        self.clim = torch.from_numpy(prep.clim_filled).to(self.device)
        self.doy = torch.from_numpy(prep.doy.astype(np.int64)).to(self.device)
        self.domain = torch.from_numpy(prep.ndvi_domain).to(self.device)
        self._targets: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def _fill_dynamic(self, chunk: int) -> None:
        """Assemble the inputs of every day in parallel host threads, chunk by chunk."""
        prep, n = self.prep, self.prep.n_time
        host_view = self.dynamic.numpy() if self.device.type == "cpu" and self.dtype == torch.float32 else None

        def build(t0: int) -> None:
            days = np.arange(t0, min(n, t0 + chunk))
            if host_view is not None:  # write straight into the tensor's memory
                prep.dynamic_inputs(days, out=host_view[t0:t0 + days.size])
                return
            part = torch.from_numpy(prep.dynamic_inputs(days))
            self.dynamic[t0:t0 + days.size] = part.to(self.device).to(self.dtype)

        with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:
            list(pool.map(build, range(0, n, chunk)))

    @property
    def n_weather(self) -> int:
        return len(self.prep.weather_vars)

    def inputs(self, days: torch.Tensor) -> torch.Tensor:
        """``(b, c_in, h, w)`` float32 inputs of the days (device tensor of day indices)."""
        b, grid = days.numel(), self.dynamic.shape[-2:]
        dyn = self.dynamic.index_select(0, days).float()
        static = self.static.expand(b, *self.static.shape)
        cal = self.calendar.index_select(0, days)[:, :, None, None].expand(b, 2, *grid)
        return torch.cat([dyn, static, cal], dim=1)

    def weather(self, days: torch.Tensor, names: tuple[str, ...] | None = None) -> torch.Tensor:
        """``(b, len(names), h, w)`` float32 standardised dynamic variables ``names`` (default:
        all of the weather channels) of the days."""
        if names is None:
            return self.dynamic[:, :self.n_weather].index_select(0, days).float()
        idx = [self.prep.weather_vars.index(v) for v in names]
        return self.dynamic.index_select(0, days)[:, idx].float()

    def forecast_targets(self, days: torch.Tensor, targets: tuple[tuple[str, int], ...]) -> torch.Tensor:
        """``(b, n_targets, h, w)``: each ``(variable, lead)`` of a forecast after the days."""
        parts = [self.weather(days + lead, (v,)) for v, lead in targets]
        return torch.cat(parts, dim=1)

    def target(self, name: str = "ndvi") -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, valid)``, both ``(n_time, h, w)``: the target with NaN -> 0 (float32), and
        where it is a real label (bool; unlabelled ``extra`` years are never valid)."""
        if name not in self._targets:
            y = self.prep.target(np.arange(self.prep.n_time), name)
            valid = np.isfinite(y)
            self._targets[name] = (torch.from_numpy(np.nan_to_num(y)).to(self.device),
                                   torch.from_numpy(valid).to(self.device))
        return self._targets[name]


class ResidentLoader:
    """Batches of one split gathered from :class:`ResidentData` (same order, same contents as
    :func:`ecodistill.data.make_loader` with the same arguments).

    Args:
        resident: the device-resident dataset.
        days: a :class:`~ecodistill.data.loader.DayDataset` of the split (its days,
            labelled flags and aligned teacher predictions; it reads nothing here).
        sampler: the batch order (``sampler.set_epoch`` is called by the training loop).
        weather_only: ``x`` holds today's weather channels only (forecast pre-training).
    """

    def __init__(self, resident: ResidentData, days: DayDataset, sampler: EpochBatchSampler,
                 weather_only: bool = False) -> None:
        self.resident, self.dataset, self.sampler, self.weather_only = resident, days, sampler, weather_only
        dev = resident.device
        self._days = torch.from_numpy(days.days.astype(np.int64)).to(dev)
        self._labelled = torch.from_numpy(days.labelled).to(dev)
        self._teacher = (torch.from_numpy(np.nan_to_num(np.asarray(days.teacher, dtype=np.float32))).to(dev)
                         if days.teacher is not None else None)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        batches = list(self.sampler)
        if not batches:
            return
        flat = torch.as_tensor(np.concatenate(batches), device=self.resident.device)  # one copy per epoch
        start = 0
        for b in batches:
            yield self._gather(flat[start:start + len(b)])
            start += len(b)

    def _gather(self, pos: torch.Tensor) -> Batch:
        res, ds = self.resident, self.dataset
        days = self._days.index_select(0, pos)
        x = res.weather(days, ds.forecast.inputs) if self.weather_only else res.inputs(days)
        grid = x.shape[-2:]
        extra: dict[str, torch.Tensor] = {}
        if ds.forecast is not None:
            y = res.forecast_targets(days, ds.forecast.targets)
            mask = torch.ones((pos.numel(), 1, *grid), dtype=torch.bool, device=x.device)
        else:
            target, valid = res.target(ds.target)
            y = target.index_select(0, days)[:, None]
            mask = (valid.index_select(0, days) & self._labelled.index_select(0, pos)[:, None, None])[:, None]
            extra["clim"] = res.clim.index_select(0, res.doy.index_select(0, days) - 1)[:, None]
        if self._teacher is not None:
            extra["teacher_pred"] = self._teacher.index_select(0, pos)[:, None]
        if ds.unlabeled or self._teacher is not None:
            extra["mask_teacher"] = res.domain.expand(pos.numel(), 1, *grid)
        return Batch(x=x, y=y, mask=mask, t=days, **extra)
