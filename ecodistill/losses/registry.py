"""The loss registry: one :class:`LossSpec` per loss, registered where the loss is defined.

Everything that lists, validates or describes losses reads this registry: the training
objectives (:mod:`ecodistill.training.objectives`), config validation
(:class:`ecodistill.config.DistillConfig`), the command line's choices, the comparison
protocol (which losses a teacher-free run may use, which need the live teacher) and the
book's sentences (each spec's ``formula``). Adding a loss is one decorated function::

    from ecodistill.losses import register_loss

    @register_loss("cauchy", kind="output", formula="L = {a}·C(s, t) + {b}·C(s, y), C the Cauchy loss")
    def cauchy(student, teacher, y, mask_truth, mask_teacher=None, alpha=0.5, lat_weights=None):
        ...

in any module imported before use; a module of your own is imported by every command,
notebook and worker when named in ``ECODISTILL_PLUGINS`` (:mod:`ecodistill.plugins`).

Explained in book/generated/03_distill.ipynb.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KINDS = ("output", "feature")


@dataclass(frozen=True)
class LossSpec:
    """How the objectives, the protocol and the book use one loss.

    Attributes:
        name: the name configs and the command line use (``DistillConfig.loss``).
        fn: the loss. Output losses: ``fn(student, teacher, y, mask_truth, mask_teacher=None,
            alpha=0.5, lat_weights=None, **options) -> scalar`` with ``(b, c, h, w)`` maps;
            feature losses: ``fn(student_feats, teacher_feats, ...)`` on feature lists.
        kind: ``output`` (compares output maps) or ``feature`` (intermediate features).
        formula: one line for the book, formatted with ``a`` (alpha), ``b`` (1 - alpha),
            ``margin`` and ``w`` (``DistillConfig.feature_weight``).
        live_teacher: needs the teacher network during training (not cached predictions).
        truth: the loss's truth term ``truth(pred, y, mask, lat_weights) -> scalar`` alone,
            i.e. what a teacher-free (scratch) run trains with when it uses this loss; None
            when the loss means nothing without a teacher.
        distance: the name of the distance ``D`` in ``formula`` (e.g. "squared error").
        options: ``DistillConfig`` fields passed to ``fn`` as keyword arguments.
        bounds: ``(option, low, high)`` per option: the closed range of values it accepts
            (an option without bounds accepts any finite number >= 0).
        term: for feature losses, ``term(student_feats, teacher_feats, seed) -> nn.Module``
            whose ``forward(student_feats, teacher_feats, mask, step)`` is the feature term
            (it owns trainable adapters, if any).
    """

    name: str
    fn: Callable[..., Any]
    kind: str
    formula: str
    live_teacher: bool = False
    truth: Callable[..., Any] | None = None
    distance: str = ""
    options: tuple[str, ...] = ()
    term: Callable[..., Any] | None = None
    bounds: tuple[tuple[str, float, float], ...] = ()

    def check_options(self, values: dict[str, Any]) -> dict[str, float]:
        """The values of this loss's options in ``values``, each a finite number in its bounds.

        Raises:
            ValueError: naming the loss, the option, the value and its range.
        """
        ranges = {name: (low, high) for name, low, high in self.bounds}
        out = {}
        for key in self.options:
            if key not in values:
                continue
            value = values[key]
            low, high = ranges.get(key, (0.0, math.inf))
            ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
                  and low <= value <= high)
            if not ok:
                span = f"{low:g}..{high:g}" if math.isfinite(high) else f">= {low:g}"
                raise ValueError(f"loss {self.name!r}: option {key}={value!r} must be a finite number {span}")
            out[key] = float(value)
        return out

    def describe(self, alpha: float, margin: float = 0.0, feature_weight: float = 1.0) -> str:
        """``formula`` with the numbers of one configuration filled in."""
        return self.formula.format(a=f"{alpha:g}", b=f"{1 - alpha:g}", margin=f"{margin:g}",
                                   w=f"{feature_weight:g}")


LOSSES: dict[str, LossSpec] = {}


def register_loss(name: str, *, kind: str, formula: str, live_teacher: bool = False,
                  truth: Callable[..., Any] | None = None, distance: str = "",
                  options: tuple[str, ...] = (), term: Callable[..., Any] | None = None,
                  bounds: dict[str, tuple[float, float]] | None = None):
    """Decorator: register the decorated function as the loss ``name`` (see :class:`LossSpec`).

    Raises:
        ValueError: for a name already taken, an unknown kind, a feature loss without its
            ``term`` factory, or bounds of an option the loss does not take (or not finite
            and ordered).
    """
    if kind not in KINDS:
        raise ValueError(f"register_loss({name!r}): kind={kind!r} unknown; choose one of {KINDS}")
    if kind == "feature" and term is None:
        raise ValueError(f"register_loss({name!r}): a feature loss needs term=<factory of its nn.Module term>")

    bounds = dict(bounds or {})
    for key, (low, high) in bounds.items():
        if key not in options or math.isnan(low) or math.isnan(high) or low > high:
            raise ValueError(f"register_loss({name!r}): bounds[{key!r}]=({low}, {high}) must be an ordered range "
                             f"of one of its options {tuple(options)}")

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in LOSSES and LOSSES[name].fn is not fn:
            raise ValueError(f"register_loss: the name {name!r} is taken (by {LOSSES[name].fn.__qualname__})")
        LOSSES[name] = LossSpec(name, fn, kind, formula, live_teacher, truth, distance, tuple(options), term,
                                tuple((k, float(lo), float(hi)) for k, (lo, hi) in bounds.items()))
        return fn

    return decorate


def loss_names(kind: str | None = None, *, live_teacher: bool | None = None,
               truth: bool | None = None) -> tuple[str, ...]:
    """Registered loss names, filtered by ``kind``, by needing the live teacher, and by
    having a truth term (``truth=True``: the losses a teacher-free run can use)."""
    from ..plugins import load_plugins

    load_plugins()
    return tuple(n for n, s in LOSSES.items()
                 if (kind is None or s.kind == kind)
                 and (live_teacher is None or s.live_teacher == live_teacher)
                 and (truth is None or (s.truth is not None) == truth))


def loss_spec(name: str) -> LossSpec:
    """The :class:`LossSpec` called ``name``.

    Raises:
        ValueError: for an unknown name (the message lists the registered ones).
    """
    if name not in LOSSES:
        from ..plugins import load_plugins

        load_plugins()
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}: choose one of {sorted(LOSSES)} (or register one with "
                         "ecodistill.losses.register_loss, see ECODISTILL_PLUGINS)")
    return LOSSES[name]


def get_loss(name: str) -> Callable[..., Any]:
    """The loss function called ``name``; output losses share one signature."""
    return loss_spec(name).fn
