"""The batch contract: what every loader yields and every loss reads.

=================  ======================  ===============================================
field              shape, dtype            meaning and NaN rule
=================  ======================  ===============================================
``x``              (b, c_in, h, w) float   standardised inputs (``Prepared.input_channels``);
                                           finite everywhere (off-land cells hold 0)
``y``              (b, c_out, h, w) f32    the target: NDVI (c_out = 1) or next day's
                                           standardised weather (forecast); finite, 0 where
                                           ``mask`` is False
``mask``           (b, 1, h, w) bool       where ``y`` is a real label (land, valid NDVI,
                                           labelled year); all True for the forecast task
``t``              (b,) int64              day index into the dataset's time axis
``clim``           (b, 1, h, w) f32        NDVI climatology of that day, 0 off the NDVI domain
``teacher_pred``   (b, c_out, h, w) f32    the teacher's cached prediction, 0 off land
``mask_teacher``   (b, 1, h, w) bool       where a teacher label applies (the NDVI domain
                                           on every day, gaps and unlabelled years included)
=================  ======================  ===============================================

Only ``x``, ``y`` and ``mask`` are required; the others are ``None`` when a loader has no
use for them. ``x`` may be stored in bfloat16 on a GPU (:mod:`ecodistill.data.resident`);
models run it under autocast, losses always compute in float32.

Explained in book/generated/02_data.ipynb ("From data to model inputs").
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

OPTIONAL = ("t", "clim", "teacher_pred", "mask_teacher")


@dataclass
class Batch:
    """One batch of days (see the module docstring for shapes, dtypes and NaN rules)."""

    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor
    t: torch.Tensor | None = None
    clim: torch.Tensor | None = None
    teacher_pred: torch.Tensor | None = None
    mask_teacher: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @classmethod
    def from_mapping(cls, batch: Mapping[str, Any]) -> Batch:
        """A :class:`Batch` from a dict with the same keys (e.g. a default-collated batch).

        Raises:
            ValueError: when ``x``, ``y`` or ``mask`` is missing or a key is unknown.
        """
        missing = [k for k in ("x", "y", "mask") if k not in batch]
        if missing:
            raise ValueError(f"a batch needs x, y and mask; this one lacks {missing} "
                             "(see ecodistill.data.batch for the contract)")
        unknown = sorted(set(batch) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"a batch has unknown key(s) {unknown}; known: x, y, mask, {', '.join(OPTIONAL)}")
        return cls(**dict(batch))

    def fields(self) -> dict[str, torch.Tensor]:
        """The tensors that are set, by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None}

    def replace(self, **changes: Any) -> Batch:
        """A copy with some fields replaced (e.g. ``x`` restricted to some channels)."""
        return dataclasses.replace(self, **changes)

    def to(self, device: str | torch.device, non_blocking: bool = False) -> Batch:
        """The batch on ``device`` (tensors already there are not copied)."""
        return self.replace(**{k: v.to(device, non_blocking=non_blocking) for k, v in self.fields().items()})

    def pin_memory(self) -> Batch:
        """Page-locked copies, for asynchronous host-to-GPU copies (used by ``DataLoader``)."""
        return self.replace(**{k: v.pin_memory() for k, v in self.fields().items()})


def as_batch(batch: Batch | Mapping[str, Any]) -> Batch:
    """``batch`` as a :class:`Batch` (dicts are converted; anything else is refused)."""
    if isinstance(batch, Batch):
        return batch
    if isinstance(batch, Mapping):
        return Batch.from_mapping(batch)
    raise TypeError(f"a batch must be an ecodistill.data.Batch or a dict with x, y, mask; "
                    f"got {type(batch).__name__}")


def to_device(batch: Batch | Mapping[str, Any], device: str | torch.device) -> Batch:
    """:func:`as_batch`, then on ``device`` (non-blocking from pinned memory)."""
    return as_batch(batch).to(device, non_blocking=True)


def check_batch(batch: Batch) -> None:
    """Fail early on a batch that breaks the contract (the loop checks its first batch).

    Raises:
        ValueError: naming the field and what is wrong with it.
    """
    x, y, m = batch.x, batch.y, batch.mask
    if x.ndim != 4 or y.ndim != 4 or m.ndim != 4 or m.shape[1] != 1:
        raise ValueError(f"need x (b,c_in,h,w), y (b,c_out,h,w), mask (b,1,h,w); got "
                         f"{tuple(x.shape)}, {tuple(y.shape)}, {tuple(m.shape)}")
    if not (x.shape[0] == y.shape[0] == m.shape[0]) or not (x.shape[-2:] == y.shape[-2:] == m.shape[-2:]):
        raise ValueError(f"x {tuple(x.shape)}, y {tuple(y.shape)} and mask {tuple(m.shape)} disagree in "
                         "batch size or grid")
    if m.dtype != torch.bool:
        raise ValueError(f"mask must be bool, got {m.dtype}; build it as (land & valid)")
    for name in ("teacher_pred", "clim"):
        value = getattr(batch, name)
        if value is not None and (value.shape[0] != y.shape[0] or value.shape[-2:] != y.shape[-2:]):
            raise ValueError(f"{name} {tuple(value.shape)} does not fit y {tuple(y.shape)}")
    if batch.mask_teacher is not None and batch.mask_teacher.dtype != torch.bool:
        raise ValueError(f"mask_teacher must be bool, got {batch.mask_teacher.dtype}")
    for name in ("x", "y", "teacher_pred"):
        value = getattr(batch, name)
        if value is not None and not torch.isfinite(value).all():
            raise ValueError(f"batch.{name} holds NaN/Inf; replace NaN by 0 and mask those cells out")
