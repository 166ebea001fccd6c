r"""Quantization: fp16/bf16 weights, PyTorch dynamic int8, ONNX Runtime dynamic and static int8.

Every function returns a *new* model or file and leaves its input untouched, so a
benchmark can time the original and its quantized variants side by side.

* **Dynamic int8** (weights int8, activations quantized on the fly per call;
  {cite}`jacob2018quantization`): :func:`quantize_dynamic_torch` (``nn.Linear`` only:
  PyTorch has no dynamic conv) and :func:`quantize_onnx_dynamic` (ONNX Runtime
  ``MatMulInteger``/``ConvInteger``; {cite}`onnxruntime_quantization`).
* **Static int8** (activation ranges calibrated once on real input batches, read through
  :class:`BatchReader`; QDQ format, per-channel weights): :func:`quantize_onnx_static`.
* **fp16 / bf16 weights**: :func:`cast_weights` (a wrapper that casts inputs and outputs,
  so callers keep feeding fp32 maps).

The ONNX quantizers read a file written by :func:`ecodistill.deploy.compress.export.export_onnx`.
Findings that shape the benchmark (see scripts/arm64_check.sh): onnxruntime's *dynamic*
int8 turns convolutions into ``ConvInteger``, which the aarch64 build 1.20.1 does not
implement; its *static* QDQ int8 runs there, but per-channel ``QLinearMatMul`` (AFNO's
linear layers) does not.

Explained in book/generated/05_pi_timings.ipynb.
"""
from __future__ import annotations

import copy
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .export import _quiet

_OP_TYPES = ("MatMul", "Gemm", "Conv")


class CastWrapper(nn.Module):
    """Run ``model`` with weights in ``dtype`` while callers pass and receive fp32 maps.

    ``forward(x)``: ``x (b, c, H, W)`` fp32 -> cast to ``dtype`` -> model (under CPU
    autocast, so ops without a low-precision kernel, e.g. FFTs, fall back to fp32) ->
    output cast back to fp32.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=self.dtype):
            return self.model(x.to(self.dtype)).float()


def cast_weights(model: nn.Module, dtype: str | torch.dtype) -> CastWrapper:
    """A copy of ``model`` with weights in fp16 or bf16, wrapped in :class:`CastWrapper`.

    Raises:
        ValueError: for a dtype other than float16/bfloat16.
    """
    names = {"fp16": torch.float16, "bf16": torch.bfloat16}
    dtype = names.get(dtype, dtype)  # type: ignore[arg-type]
    if dtype not in (torch.float16, torch.bfloat16):
        raise ValueError(f"cast_weights: dtype={dtype!r}; use 'fp16' or 'bf16'")
    return CastWrapper(copy.deepcopy(model).eval().to(dtype), dtype).eval()


def quantize_dynamic_torch(model: nn.Module) -> nn.Module:
    """Post-training dynamic int8 of every ``nn.Linear`` (a copy; convs stay fp32).

    Uses ``torch.ao.quantization.quantize_dynamic`` (deprecated in favour of torchao, still
    shipped). The kernel engine follows the CPU: ``qnnpack`` on ARM, the default elsewhere.
    """
    import platform

    arm = platform.machine().lower() in ("aarch64", "arm64")
    if arm and "qnnpack" in torch.backends.quantized.supported_engines:
        torch.backends.quantized.engine = "qnnpack"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear},
                                                      dtype=torch.qint8)


def _write_via_tmp(path: Path, write: Callable[[str], None]) -> Path:
    """Let a library write into a temporary file beside ``path``, then rename atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".onnx")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def quantize_onnx_dynamic(src: str | Path, dst: str | Path, per_channel: bool = False,
                          op_types: Sequence[str] | None = _OP_TYPES) -> Path:
    """ONNX Runtime dynamic int8 (weights int8, activations uint8 per call) of ``src``.

    Weights use 7 of their 8 bits (``reduce_range``): on x86 without VNNI, ONNX Runtime's
    u8 x s8 kernel (``vpmaddubsw``) saturates 16-bit sums of full-range products, which cost
    one test model 22 % of its output scale; with 7-bit weights it cannot, on any host.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def write(tmp: str) -> None:
        with _quiet():
            quantize_dynamic(str(src), tmp, per_channel=per_channel, weight_type=QuantType.QInt8,
                             reduce_range=True,
                             op_types_to_quantize=list(op_types) if op_types else None)
    return _write_via_tmp(Path(dst), write)


class BatchReader:
    """ONNX Runtime calibration reader over real input batches, each ``(b, c, H, W)``."""

    def __init__(self, batches: Iterable[np.ndarray | torch.Tensor],
                 input_name: str = "x") -> None:
        self.items = [{input_name: np.asarray(b, dtype=np.float32)} for b in batches]
        if not self.items:
            raise ValueError("BatchReader: no calibration batches; pass a few real input batches")
        self._it = iter(self.items)

    def get_next(self):
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self.items)


def quantize_onnx_static(src: str | Path, dst: str | Path,
                         batches: Iterable[np.ndarray | torch.Tensor], per_channel: bool = True,
                         op_types: Sequence[str] = _OP_TYPES) -> Path:
    """ONNX Runtime static int8 in QDQ format (per-channel 7-bit weights, MinMax calibration).

    ``reduce_range`` as in :func:`quantize_onnx_dynamic`: x86 hosts without VNNI run QDQ
    int8 through the saturating u8 x s8 kernel.

    Args:
        batches: real input batches ``(b, c, H, W)`` (e.g. a few training days).
    """
    from onnxruntime import quantization as ortq

    reader = BatchReader(batches)
    ortq.CalibrationDataReader.register(BatchReader)

    def write(tmp: str) -> None:
        with _quiet():
            ortq.quantize_static(str(src), tmp, reader, quant_format=ortq.QuantFormat.QDQ,
                                 per_channel=per_channel, activation_type=ortq.QuantType.QInt8,
                                 weight_type=ortq.QuantType.QInt8, reduce_range=True,
                                 op_types_to_quantize=list(op_types))
    return _write_via_tmp(Path(dst), write)
