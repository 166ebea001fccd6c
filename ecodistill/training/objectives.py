"""The loss interface of the training loop, and the objectives built on :mod:`ecodistill.losses`.

:func:`ecodistill.training.loop.fit` calls ``loss_fn(y_hat, batch, ctx)`` with ``batch`` a
:class:`~ecodistill.data.batch.Batch` and ``ctx`` a :class:`LossContext`. This module turns
a :class:`~ecodistill.config.DistillConfig` into such a callable, reading every loss's
:class:`~ecodistill.losses.LossSpec` from the registry:

* ``scratch`` -- the truth term of ``dcfg.loss`` alone (:class:`TruthLoss`: masked,
  latitude-weighted squared, absolute or Huber error), no teacher;
* ``offline`` -- an output loss against the teacher's cached predictions
  (``batch.teacher_pred``), mixed with the truth by ``alpha``;
* ``online`` -- the same losses against a co-trained teacher's detached output
  (deep mutual learning, {cite:p}`zhang2018deep`);
* feature losses (``kind="feature"``) -- an output term plus ``feature_weight`` times the
  loss's term on the live teacher's features;
* ``self`` -- deep-to-shallow self-distillation {cite:p}`zhang2019your`: auxiliary heads on
  the student's intermediate features learn from its own final output.

Explained in book/generated/03_distill.ipynb.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import losses
from ..config import DistillConfig
from ..data.batch import Batch


@dataclass
class LossContext:
    """What a loss may use besides the model output ``y_hat`` and the batch.

    Attributes:
        lat_weights: ``(1, 1, h, w)`` cell weights (mean 1 over rows), or None.
        features: the model's own features (when the loss has ``want_features = True``).
        teacher_out: ``(b, c_out, h, w)`` from the live ``teacher`` (eval, no grad), else the
            batch's cached ``teacher_pred`` (offline distillation), else None.
        teacher_features: the live teacher's features (when a loss wants features).
        other_out: the co-model's output, detached (online / mutual learning), or None.
        other_features: the co-model's features, detached, or None.
        want_features: whether this loss asked for features.
        training: False during validation.
        step, epoch: optimizer steps taken and the current epoch.
    """

    lat_weights: torch.Tensor | None = None
    features: Any = None
    teacher_out: torch.Tensor | None = None
    teacher_features: Any = None
    other_out: torch.Tensor | None = None
    other_features: Any = None
    want_features: bool = False
    training: bool = True
    step: int = 0
    epoch: int = 0


#: ``(y_hat, batch, ctx) -> scalar``: the loss interface of :func:`ecodistill.training.loop.fit`.
LossFn = Callable[[torch.Tensor, Batch, LossContext], torch.Tensor]


class TruthLoss:
    """A truth-only loss, ``D(y_hat, y)`` over the valid cells, latitude-weighted.

    Args:
        name: a registered loss with a truth term (``mse``, ``l1``, ``huber``, ...);
            its :attr:`~ecodistill.losses.LossSpec.truth` is ``D``.
    """

    want_features = False

    def __init__(self, name: str = "mse") -> None:
        spec = losses.loss_spec(name)
        if spec.truth is None:
            raise ValueError(f"the loss {name!r} has no truth-only form (it needs a teacher); a teacher-free "
                             f"run can use one of {losses.loss_names(truth=True)}")
        self.name, self.fn = name, spec.truth

    def __call__(self, y_hat: torch.Tensor, batch: Batch, ctx: LossContext | None = None) -> torch.Tensor:
        return self.fn(y_hat.float(), batch.y.float(), batch.mask, ctx.lat_weights if ctx is not None else None)

    def __repr__(self) -> str:
        return f"TruthLoss({self.name!r})"


def truth_loss(name: str = "mse") -> TruthLoss:
    """:class:`TruthLoss` ``name`` (the validation loss of every run is ``truth_loss("mse")``)."""
    return TruthLoss(name)


def _teacher_signal(batch: Batch, ctx: LossContext) -> torch.Tensor:
    """The teacher's output for this batch: live teacher, cached predictions, or co-model."""
    for value in (ctx.teacher_out, batch.teacher_pred, ctx.other_out):
        if value is not None:
            return value
    raise ValueError("a distillation loss needs the teacher: pass teacher predictions to the loader "
                     "(offline), a live teacher to fit(teacher=...), or a co-model (online)")


class OutputDistillLoss(nn.Module):
    """A registered output loss, ``fn(student, teacher, y, masks, alpha, lat_weights, **options)``.

    Shapes: ``y_hat`` ``(b, c, h, w)``; ``batch.y`` ``(b, c, h, w)``, ``batch.mask``
    ``(b, 1, h, w)``, optional ``batch.mask_teacher`` ``(b, 1, h, w)`` (cells/days the teacher
    labels but truth does not). Validation scores the truth only (squared error), so
    distilled and scratch students are selected alike.
    """

    want_features = False

    def __init__(self, name: str, alpha: float, options: dict[str, Any] | None = None) -> None:
        super().__init__()
        spec = losses.loss_spec(name)
        if spec.kind != "output":
            raise ValueError(f"{name!r} is not an output loss: choose one of {losses.loss_names('output')}")
        self.name, self.alpha, self.fn = name, float(alpha), spec.fn
        self.options = spec.check_options(options or {})  # finite and within the loss's bounds
        self.validation = TruthLoss("mse")

    def forward(self, y_hat, batch: Batch, ctx: LossContext):
        teacher = _teacher_signal(batch, ctx)
        if not ctx.training:
            return self.validation(y_hat, batch, ctx)
        return self.fn(y_hat, teacher, batch.y, batch.mask, batch.mask_teacher, alpha=self.alpha,
                       lat_weights=ctx.lat_weights, **self.options)


class FeatureDistillLoss(nn.Module):
    """Output MSE distillation plus a registered feature term on the live teacher's features.

    ``L = L_out(alpha) + feature_weight * term(f_s, f_t)``, e.g. the FitNets hint loss
    (trainable adapters, {cite:p}`romero2015fitnets`), attention transfer
    {cite:p}`zagoruyko2017paying` or relational distillation {cite:p}`park2019relational`.
    Build it with :func:`make_objective` and an example of both models' features, so any
    adapters exist before the optimizer is made.
    """

    want_features = True

    def __init__(self, name: str, alpha: float, feature_weight: float,
                 student_feats=None, teacher_feats=None, seed: int = 0) -> None:
        super().__init__()
        spec = losses.loss_spec(name)
        if spec.kind != "feature":
            raise ValueError(f"{name!r} is not a feature loss: choose one of {losses.loss_names('feature')}")
        self.name, self.alpha, self.weight = name, float(alpha), float(feature_weight)
        self.output = OutputDistillLoss("mse", alpha)
        self.term = spec.term(student_feats, teacher_feats, seed)

    def forward(self, y_hat, batch: Batch, ctx: LossContext):
        out = self.output(y_hat, batch, ctx)
        if not ctx.training:
            return out
        if ctx.teacher_features is None or ctx.features is None:
            raise ValueError(f"the {self.name} loss needs a live teacher: fit(..., teacher=teacher)")
        return out + self.weight * self.term(ctx.features, ctx.teacher_features, batch.mask, ctx.step)


class SelfDistillLoss(nn.Module):
    """Deep-to-shallow self-distillation {cite:p}`zhang2019your` for any student.

    A 1x1-convolution head on each intermediate feature map ``(b, c_k, h_k, w_k)`` predicts
    the output, upsampled to the grid; the final output learns from the truth, and each
    shallow head from the truth and from the (detached) final output, D the squared error:

    ``L = D(y_hat, y) + sum_k [alpha * D(s_k, y_hat) + (1 - alpha) * D(s_k, y)] / K``.
    Only the final output is used at test time; the heads are discarded.
    """

    want_features = True

    def __init__(self, alpha: float, example_feats, out_chans: int = 1) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.heads = nn.ModuleList(nn.Conv2d(f.shape[1], out_chans, 1) for f in example_feats[:-1])
        self.truth = TruthLoss("mse")

    def forward(self, y_hat, batch: Batch, ctx: LossContext):
        final = self.truth(y_hat, batch, ctx)
        if not ctx.training or len(self.heads) == 0:
            return final
        total = 0.0
        for head, feat in zip(self.heads, ctx.features[:-1]):
            shallow = F.interpolate(head(feat), size=y_hat.shape[-2:], mode="bilinear", align_corners=False)
            total = total + losses.output_distillation(shallow, y_hat.detach(), batch.y, batch.mask,
                                                       alpha=self.alpha, lat_weights=ctx.lat_weights)
        return final + total / len(self.heads)


def _features(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        return model(x, return_features=True)[1]


def make_objective(dcfg: DistillConfig, student: nn.Module | None = None,
                   teacher: nn.Module | None = None, example_x: torch.Tensor | None = None,
                   seed: int = 0):
    """The ``loss_fn`` for :func:`ecodistill.training.loop.fit` that ``dcfg`` describes.

    Args:
        dcfg: loss name, alpha, mode, margin, feature weight.
        student, teacher, example_x: needed for feature losses (adapter sizes) and ``self``
            (head sizes): one forward pass of each on ``example_x`` ``(b, c_in, h, w)``.

    Raises:
        ValueError: for an unknown loss or a combination that cannot work.
    """
    if dcfg.mode == "scratch":
        return TruthLoss(dcfg.loss)
    if dcfg.mode == "self":
        if student is None or example_x is None:
            raise ValueError("self-distillation needs the student and an example input")
        return SelfDistillLoss(dcfg.alpha, _features(student, example_x))
    spec = losses.loss_spec(dcfg.loss)
    if spec.kind == "feature":
        if student is None or teacher is None or example_x is None:
            raise ValueError(f"the {dcfg.loss} loss needs the student, the live teacher and an example input")
        return FeatureDistillLoss(dcfg.loss, dcfg.alpha, dcfg.feature_weight, _features(student, example_x),
                                  _features(teacher, example_x), seed)
    return OutputDistillLoss(dcfg.loss, dcfg.alpha, {"margin": dcfg.margin})


def check_objective(dcfg: DistillConfig) -> DistillConfig:
    """``dcfg`` when its loss is registered and fits its mode (plugins loaded first): the
    registry check that :class:`~ecodistill.config.DistillConfig` cannot make itself.

    Raises:
        ValueError: for an unknown loss (listing the registered ones), or a scratch run with a
            loss that has no truth-only form.
    """
    spec = losses.loss_spec(dcfg.loss)  # unknown names fail here, listing the registered ones
    spec.check_options({k: getattr(dcfg, k) for k in spec.options if hasattr(dcfg, k)})  # before any work
    if dcfg.mode == "scratch" and spec.truth is None:
        raise ValueError(f"a scratch run trains on the truth only, and the loss {dcfg.loss!r} has no "
                         f"truth-only form; choose one of {losses.loss_names(truth=True)}")
    return dcfg


def objective_text(dcfg: DistillConfig) -> str:
    """The objective ``dcfg`` trains with, as one line with its numbers filled in (from each
    loss's registered formula; used by the book's sentences)."""
    spec = losses.loss_spec(dcfg.loss)
    if dcfg.mode == "scratch":
        return (f"mode scratch: L = D(s, y), D the {spec.distance or dcfg.loss}, observations only "
                "(no teacher, alpha unused)")
    if dcfg.mode == "self":
        a, b = f"{dcfg.alpha:g}", f"{1 - dcfg.alpha:g}"
        return (f"mode self: L = D(s, y) + mean over the shallow heads s_k of [{a}·D(s_k, s) + {b}·D(s_k, y)], "
                "D the squared error")
    text = spec.describe(dcfg.alpha, dcfg.margin, dcfg.feature_weight)
    source = {"offline": "the teacher's cached predictions", "online": "a teacher trained alongside (mutual learning)"}
    return f"mode {dcfg.mode}, loss {dcfg.loss}, alpha {dcfg.alpha:g}: {text}; t = {source.get(dcfg.mode, 'the teacher')}"
