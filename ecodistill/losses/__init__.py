r"""Regression distillation losses, all masked to valid land cells, and their registry.

Every loss takes a boolean ``mask`` ``(b, 1, h, w)`` (land and valid NDVI; broadcast over
channels) and optional latitude weights ``lat_weights`` ``(h, w)`` or ``(1, 1, h, w)``, and
returns a scalar masked, weighted mean $\langle \ell \rangle_{m,w}$
(:mod:`~ecodistill.losses.masked`). Output losses (:mod:`~ecodistill.losses.output`) mix a
distillation term $D(s, t)$ with a truth term $D(s, y)$; feature losses
(:mod:`~ecodistill.losses.feature`) compare intermediate features. Each is registered once,
with its formula, in :mod:`~ecodistill.losses.registry`: ``OUTPUT_LOSSES``,
``FEATURE_LOSSES`` and ``LOSSES`` are read from there (plugins included).

Explained in book/generated/03_distill.ipynb.
"""
from __future__ import annotations

from .feature import (
    AttentionTerm,
    HintAdapter,
    HintTerm,
    RelationalTerm,
    attention_transfer,
    gather_features,
    hint_loss,
    make_hint_adapters,
    pair_features,
    relational_angle,
    relational_distance,
    relational_loss,
    sample_pixels,
)
from .masked import masked_huber, masked_l1, masked_mean, masked_mse
from .output import (
    gaussian_distillation,
    gaussian_nll,
    gaussian_output_distillation,
    huber_distillation,
    l1_distillation,
    mse_distillation,
    output_distillation,
    spectral_distillation,
    spectral_loss,
    teacher_bounded,
)
from .registry import KINDS, LossSpec, get_loss, loss_names, loss_spec, register_loss

__all__ = [
    "FEATURE_LOSSES", "KINDS", "LOSSES", "OUTPUT_LOSSES", "AttentionTerm", "HintAdapter", "HintTerm",
    "LossSpec", "RelationalTerm", "attention_transfer", "gather_features", "gaussian_distillation",
    "gaussian_nll", "gaussian_output_distillation", "get_loss", "hint_loss", "huber_distillation",
    "l1_distillation", "loss_names", "loss_spec", "make_hint_adapters", "masked_huber", "masked_l1",
    "masked_mean", "masked_mse", "mse_distillation", "output_distillation", "pair_features",
    "register_loss", "relational_angle", "relational_distance", "relational_loss", "sample_pixels",
    "spectral_distillation", "spectral_loss", "teacher_bounded",
]


def __getattr__(name: str):
    """``OUTPUT_LOSSES``, ``FEATURE_LOSSES`` (names) and ``LOSSES`` (name -> function), read
    from the registry on every access, so losses registered later are included."""
    if name == "OUTPUT_LOSSES":
        return loss_names("output")
    if name == "FEATURE_LOSSES":
        return loss_names("feature")
    if name == "LOSSES":
        return {n: loss_spec(n).fn for n in loss_names()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
