r"""Compression and export of trained networks, one module per concept.

Every function returns a *new* model or file and leaves its input untouched, so a
benchmark can time the original and its compressed variants side by side.

* :mod:`~ecodistill.deploy.compress.quantize`: fp16/bf16 weights, dynamic int8 in PyTorch and
  ONNX Runtime ({cite}`jacob2018quantization`, {cite}`onnxruntime_quantization`), static
  QDQ int8 calibrated on real batches.
* :mod:`~ecodistill.deploy.compress.prune`: structured pruning of hidden units between layer
  pairs, verified numerically ({cite}`han2016deep`, {cite}`fang2023depgraph`).
* :mod:`~ecodistill.deploy.compress.export`: ONNX export (FFTs as ``DFT`` or as matrix products),
  its numerical check, ONNX Runtime sessions, and model/file sizes.

Every public name is re-exported here, so ``from ecodistill.deploy import compress`` then
``compress.export_onnx(...)`` works as before the split.

Explained in book/generated/05_pi_timings.ipynb.
"""
from .export import (
    check_onnx,
    export_onnx,
    fft_as_matmul,
    file_bytes,
    irfft2_matmul,
    onnx_max_abs_diff,
    ort_session,
    rfft2_matmul,
    state_dict_bytes,
)
from .prune import PrunePair, find_prunable_pairs, prune_structured
from .quantize import (
    BatchReader,
    CastWrapper,
    cast_weights,
    quantize_dynamic_torch,
    quantize_onnx_dynamic,
    quantize_onnx_static,
)

__all__ = [
    "BatchReader", "CastWrapper", "PrunePair", "cast_weights", "check_onnx", "export_onnx",
    "fft_as_matmul", "file_bytes", "find_prunable_pairs", "irfft2_matmul", "onnx_max_abs_diff",
    "ort_session", "prune_structured", "quantize_dynamic_torch", "quantize_onnx_dynamic",
    "quantize_onnx_static", "rfft2_matmul", "state_dict_bytes",
]
