r"""What a model costs per map: parameters, FLOPs and bytes moved for one ``(c, H, W)`` input.

Compression is reported in all three: a per-pixel
MLP with few parameters can cost as many FLOPs per map as a large patch-based AFNO.

* FLOPs: :class:`torch.utils.flop_counter.FlopCounterMode` counts matrix products and
  convolutions (2 FLOPs per multiply-add). It skips FFTs and, in torch 2.13, the CPU
  attention kernel; both are added here through its ``custom_mapping``: a complex FFT of
  N points costs ~$5 N \log_2 N$ FLOPs, a real-input (or real-output) FFT half of that
  (the radix-2 count of Cooley-Tukey), and attention the library's own ``sdpa`` formula.
  Element-wise operations (norms, activations, additions) are not counted: they are a
  few FLOPs per activation, small next to the products for every model here.
* Bytes per map: weights read once (every parameter and buffer) plus every activation
  written once (the output of every non-view operator), at the model's dtype (fp32 by
  default). A rough lower bound on memory traffic, ignoring caches and re-reads; useful
  for comparing models on bandwidth-bound devices such as a Raspberry Pi.

Counts run a single forward pass with batch 1 under ``torch.no_grad``; a model built on
the ``meta`` device is counted without allocating memory (fast, even for the full teacher).
Explained in book/generated/02_teacher.ipynb.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

__all__ = ["bytes_per_map", "count_params", "fft_flops", "flops_per_map", "model_card"]

aten = torch.ops.aten


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def fft_flops(n_points: int, n_transforms: int = 1, real: bool = False) -> float:
    r"""Analytic FFT cost: $5 N \log_2 N$ per complex transform of N points, half for a real one."""
    if n_points <= 1:
        return 0.0
    per = 5.0 * n_points * math.log2(n_points)
    return n_transforms * (per / 2 if real else per)


def _numel(shape: Sequence[int]) -> int:
    return int(math.prod(shape)) if len(shape) else 1


def _fft_r2c(self_shape, dim, *args, out_shape=None, **kwargs) -> int:
    n = _numel([self_shape[d] for d in dim])
    return int(fft_flops(n, _numel(self_shape) // n, real=True))


def _fft_c2r(self_shape, dim, *args, out_shape=None, **kwargs) -> int:
    n = _numel([out_shape[d] for d in dim])  # the real output holds the full transform length
    return int(fft_flops(n, _numel(out_shape) // n, real=True))


def _fft_c2c(self_shape, dim, *args, out_shape=None, **kwargs) -> int:
    n = _numel([self_shape[d] for d in dim])
    return int(fft_flops(n, _numel(self_shape) // n))


def _sdpa_cpu(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


_EXTRA_FORMULAS = {
    aten._fft_r2c: _fft_r2c,
    aten._fft_c2r: _fft_c2r,
    aten._fft_c2c: _fft_c2c,
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu,
}
_FFT_OPS = {aten._fft_r2c, aten._fft_c2r, aten._fft_c2c}


def _example_input(model: nn.Module, in_shape: Sequence[int]) -> torch.Tensor:
    shape = tuple(in_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4 or shape[0] != 1:
        raise ValueError(f"in_shape={tuple(in_shape)}: give (c, H, W) or (1, c, H, W) -- costs are per map")
    ref = next(iter(model.parameters()), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None else torch.float32
    return torch.zeros(shape, device=device, dtype=dtype)


def _run(model: nn.Module, x: torch.Tensor) -> None:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)


def flops_per_map(model: nn.Module, in_shape: Sequence[int], breakdown: bool = False):
    """Forward FLOPs for one map (batch 1), FFTs and attention included.

    Args:
        model: any model of :mod:`ecodistill.models` (on CPU, GPU or the ``meta`` device).
        in_shape: ``(c, H, W)`` or ``(1, c, H, W)``.
        breakdown: also return the FFT share.

    Returns:
        Total FLOPs as a float, or ``{"total", "fft", "dense"}`` with ``breakdown=True``.
    """
    x = _example_input(model, in_shape)
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FORMULAS)
    with counter:
        _run(model, x)
    per_op = counter.get_flop_counts()["Global"]
    total = float(sum(per_op.values()))
    if not breakdown:
        return total
    fft = float(sum(v for k, v in per_op.items() if k in _FFT_OPS))
    return {"total": total, "fft": fft, "dense": total - fft}


class _ActivationBytes(TorchDispatchMode):
    """Sums the bytes of every tensor produced by a non-view operator."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            for t in torch.utils._pytree.tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    self.bytes += t.numel() * t.element_size()
        return out


def bytes_per_map(model: nn.Module, in_shape: Sequence[int]) -> float:
    """Approximate bytes moved for one map: weights read once + activations written once.

    See the module docstring for the model of memory traffic and its limits.
    """
    weights = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    x = _example_input(model, in_shape)
    mode = _ActivationBytes()
    with mode:
        _run(model, x)
    return float(weights + mode.bytes)


def model_card(model: nn.Module, in_shape: Sequence[int]) -> dict[str, float]:
    """One table row: ``n_params``, ``flops_per_map``, ``fft_flops``, ``bytes_per_map``, ``weights_mb`` (fp32)."""
    flops = flops_per_map(model, in_shape, breakdown=True)
    n = count_params(model)
    return {"n_params": n, "flops_per_map": flops["total"], "fft_flops": flops["fft"],
            "bytes_per_map": bytes_per_map(model, in_shape), "weights_mb": n * 4 / 2**20}
