r"""Structured pruning: find prunable layer pairs, rank hidden units, slice them out, verify.

{cite}`han2016deep`, {cite}`fang2023depgraph`: :func:`prune_structured` removes hidden
units (conv channels or linear features) of every layer pair ``A -> (channel-wise ops) -> B``
(:class:`PrunePair`, found by :func:`find_prunable_pairs`) with the smallest L1 norm of
their weights in ``A``, then hands the model to an optional ``finetune_fn(model) -> model``
(e.g. distillation fine-tuning from :mod:`ecodistill.training.loop`). The removal is checked
numerically: it must equal zeroing the same units, or the pair is left alone. The input
model is left untouched.

Explained in book/generated/05_pi_timings.ipynb.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

_CHANNELWISE = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Tanh, nn.Sigmoid,
                nn.Mish, nn.Hardswish, nn.Dropout, nn.Dropout2d, nn.Identity,
                nn.BatchNorm1d, nn.BatchNorm2d)
_LAYERS = (nn.Linear, nn.Conv2d, nn.Conv1d)


@dataclass
class PrunePair:
    """Two layers whose shared hidden units can be removed: ``a`` -> ``mids`` -> ``b``."""

    a: str
    b: str
    mids: list[str] = field(default_factory=list)


def _get(model: nn.Module, path: str) -> nn.Module:
    return model.get_submodule(path)


def _set(model: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, new)


def _width(layer: nn.Module, out: bool) -> int:
    if isinstance(layer, nn.Linear):
        return layer.out_features if out else layer.in_features
    return layer.out_channels if out else layer.in_channels


def _leaves(mod: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    """Flatten nested ``Sequential``/``ModuleList`` containers into their leaf modules."""
    if isinstance(mod, (nn.Sequential, nn.ModuleList)):
        out = []
        for name, child in mod.named_children():
            out += _leaves(child, f"{prefix}{name}.")
        return out
    return [(prefix.rstrip("."), mod)]


def _chain_pairs(chain: list[tuple[str, nn.Module]]) -> list[PrunePair]:
    pairs = []
    for i, (na, a) in enumerate(chain):
        if not isinstance(a, _LAYERS) or getattr(a, "groups", 1) != 1:
            continue
        mids = []
        for nm, m in chain[i + 1:]:
            if isinstance(m, _CHANNELWISE):
                mids.append(nm)
                continue
            if (isinstance(m, type(a)) and getattr(m, "groups", 1) == 1
                    and _width(m, False) == _width(a, True)):
                pairs.append(PrunePair(na, nm, mids))
            break
    return pairs


def find_prunable_pairs(model: nn.Module) -> list[PrunePair]:
    """Candidate layer pairs ``a -> (channel-wise modules) -> b``.

    Chains are read from ``Sequential``/``ModuleList`` containers (nested ones flattened;
    a ``layers`` list continues into ``head.proj``), plus ``fc1``/``fc2`` MLPs (the AFNO
    channel MLP). Module order is only a guess at data flow: every candidate is verified
    numerically by :func:`prune_structured`.
    """
    pairs, seen = [], set()
    for name, mod in model.named_modules():
        pre = f"{name}." if name else ""
        container = isinstance(mod, (nn.Sequential, nn.ModuleList))
        if container and not any(name.startswith(s) for s in seen):
            seen.add(pre)
            chain = _leaves(mod, pre)
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            head = getattr(getattr(parent, "head", None), "proj", None)
            if name.endswith("layers") and isinstance(head, _LAYERS):
                owner = name.rpartition(".")[0] + ("." if "." in name else "")
                chain.append((owner + "head.proj", head))
            pairs += _chain_pairs(chain)
        fc1, fc2 = getattr(mod, "fc1", None), getattr(mod, "fc2", None)
        if (isinstance(fc1, nn.Linear) and isinstance(fc2, nn.Linear)
                and fc1.out_features == fc2.in_features):
            pairs.append(PrunePair(pre + "fc1", pre + "fc2"))
    return pairs


def _importance(layer: nn.Module) -> torch.Tensor:
    """L1 norm of each output unit's weights (Li et al. 2017's filter criterion): ``(out,)``."""
    w = layer.weight.detach()
    return w.abs().reshape(w.shape[0], -1).sum(1)


def _slice_layer(layer: nn.Module, keep: torch.Tensor, out: bool) -> nn.Module:
    """A copy of a Linear/Conv/BatchNorm keeping units ``keep`` of its output (or input)."""
    new = copy.deepcopy(layer)
    with torch.no_grad():
        if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            for attr in ("weight", "bias", "running_mean", "running_var"):
                t = getattr(layer, attr)
                if t is not None:
                    kept = t[keep].clone()
                    setattr(new, attr, type(t)(kept) if isinstance(t, nn.Parameter) else kept)
            new.num_features = len(keep)
            return new
        dim = 0 if out else 1
        new.weight = nn.Parameter(layer.weight.index_select(dim, keep).clone())
        if out and layer.bias is not None:
            new.bias = nn.Parameter(layer.bias[keep].clone())
    attr = ("out_features" if out else "in_features") if isinstance(layer, nn.Linear) else \
        ("out_channels" if out else "in_channels")
    setattr(new, attr, len(keep))
    return new


def _apply(model: nn.Module, pair: PrunePair, keep: torch.Tensor) -> None:
    _set(model, pair.a, _slice_layer(_get(model, pair.a), keep, out=True))
    for m in pair.mids:
        if isinstance(_get(model, m), (nn.BatchNorm1d, nn.BatchNorm2d)):
            _set(model, m, _slice_layer(_get(model, m), keep, out=False))
    _set(model, pair.b, _slice_layer(_get(model, pair.b), keep, out=False))


def _mask(model: nn.Module, pair: PrunePair, drop: torch.Tensor) -> None:
    with torch.no_grad():
        _get(model, pair.b).weight[:, drop] = 0.0


def _equal(m1: nn.Module, m2: nn.Module, example: torch.Tensor) -> bool:
    with torch.no_grad():
        y1, y2 = m1(example), m2(example)
    if y1.shape != y2.shape:
        return False
    return torch.allclose(y1, y2, rtol=1e-4, atol=1e-5 * (1 + float(y1.abs().max())))


def prune_structured(model: nn.Module, amount: float, example: torch.Tensor,
                     finetune_fn: Callable[[nn.Module], nn.Module] | None = None
                     ) -> tuple[nn.Module, dict]:
    """Remove the fraction ``amount`` of hidden units of every prunable layer pair.

    Units are ranked by the L1 norm of their incoming weights in layer ``a`` (smallest
    removed first). Each candidate from :func:`find_prunable_pairs` is kept only when the
    pruned model equals the model with those units zeroed on ``example`` -- this rejects
    pairs whose hidden units are also used elsewhere (e.g. a U-Net skip connection).

    Args:
        model: the trained network (left untouched).
        amount: share of hidden units removed per pair, in (0, 1).
        example: an input batch ``(b, c, H, W)`` for the numerical check.
        finetune_fn: called on the pruned model, returns the fine-tuned model.

    Returns:
        ``(pruned_model, info)`` with ``info`` = pairs pruned, params before/after.

    Raises:
        ValueError: for ``amount`` outside (0, 1) or a model with no prunable pair.
    """
    if not 0.0 < amount < 1.0:
        raise ValueError(f"prune_structured: amount={amount} outside (0, 1), "
                         "e.g. 0.5 removes half the units")
    base = copy.deepcopy(model).eval()
    plans = []
    for pair in find_prunable_pairs(base):
        score = _importance(_get(base, pair.a))
        n_keep = max(1, round(len(score) * (1.0 - amount)))
        order = torch.argsort(score, descending=True)
        plans.append((pair, order[:n_keep].sort().values, order[n_keep:]))
    accepted = []
    for pair, keep, drop in plans:  # verify pair by pair on top of the pairs accepted so far
        masked, pruned = copy.deepcopy(base), copy.deepcopy(base)
        for p, k, d in accepted + [(pair, keep, drop)]:
            _mask(masked, p, d)
            _apply(pruned, p, k)
        try:
            ok = _equal(masked, pruned, example)
        except RuntimeError:
            ok = False
        if ok:
            accepted.append((pair, keep, drop))
    if not accepted:
        raise ValueError(f"prune_structured: no prunable layer pair in {type(model).__name__} "
                         "(needs Linear/Conv pairs in nn.Sequential or fc1/fc2 MLPs)")
    pruned = copy.deepcopy(base)
    for p, k, _ in accepted:
        _apply(pruned, p, k)
    n0 = sum(p.numel() for p in model.parameters())
    n1 = sum(p.numel() for p in pruned.parameters())
    if finetune_fn is not None:
        pruned = finetune_fn(pruned).eval()
    info = {"amount": amount, "pairs": [f"{p.a}->{p.b}" for p, _, _ in accepted],
            "params_before": n0, "params_after": n1, "finetuned": finetune_fn is not None}
    return pruned, info
