r"""ONNX export and sizes: DFT as matrix products, export, numerical check, CPU sessions.

* **Export**: :func:`export_onnx` (``torch.onnx.export(dynamo=True)``; the TorchScript
  exporter cannot export ``rfft2``) with a numerical check against PyTorch
  (:func:`check_onnx`, :func:`onnx_max_abs_diff`) in an ONNX Runtime CPU session
  (:func:`ort_session`). AFNO's FFTs become ONNX ``DFT`` operators, which onnxruntime 1.32
  (x86) runs but onnxruntime 1.20 (aarch64) rejects (one-sided inverse DFT);
  ``fft="matmul"`` exports them as products with real DFT matrices instead
  (:func:`rfft2_matmul`, :func:`irfft2_matmul`, swapped in by :func:`fft_as_matmul`; equal
  to ``torch.fft`` to float64 round-off), which every runtime runs.
* **Sizes**: :func:`state_dict_bytes` (a model as a checkpoint) and :func:`file_bytes`
  (an exported or quantized file).

Quantization of the exported files lives in :mod:`ecodistill.deploy.compress.quantize`.

Explained in book/generated/05_pi_timings.ipynb.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...utils import atomic_write_bytes


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: the model's size on disk as a checkpoint."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def file_bytes(path: str | Path) -> int:
    """Size of a file on disk (raises FileNotFoundError with the path when absent)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: export or save the model first")
    return path.stat().st_size


def _dft_mats(n: int, n_out: int, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` of ``2 pi k m / n`` for ``k < n_out``, ``m < n``: ``(n_out, n)``."""
    k = torch.arange(n_out, dtype=torch.float64, device=device)[:, None]
    m = torch.arange(n, dtype=torch.float64, device=device)[None, :]
    ang = 2 * torch.pi * k * m / n
    return torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)


def rfft2_matmul(x: torch.Tensor, s=None, dim=(-2, -1), norm: str = "backward") -> torch.Tensor:
    r"""``torch.fft.rfft2`` written as matrix products with real DFT matrices.

    $X_{lk} = \sum_{m,n} x_{mn} e^{-2\pi i (lm/H + kn/W)}$: a real DFT along the last of
    ``dim`` (W, keeping ``W//2+1`` frequencies), then a complex DFT along the first (H).
    O(N^2) instead of O(N log N), but only MatMul in ONNX: it runs on onnxruntime builds
    whose ``DFT`` operator differs (onnxruntime 1.20 on aarch64 rejects the exporter's
    one-sided inverse DFT). ``x``: real, any shape; returns complex ``(..., H, W//2+1)``
    along ``dim``.
    """
    if s is not None:
        raise ValueError("rfft2_matmul: s= is not supported (pad or crop the input instead)")
    x = x.movedim(tuple(dim), (-2, -1))
    h, w = x.shape[-2:]
    cw, sw = _dft_mats(w, w // 2 + 1, x.dtype, x.device)
    ch, sh = _dft_mats(h, h, x.dtype, x.device)
    a, b = x @ cw.T, -(x @ sw.T)  # along W: (..., H, K)
    real, imag = ch @ a + sh @ b, ch @ b - sh @ a  # along H, e^{-i theta}
    scale = {"backward": 1.0, "ortho": (h * w) ** -0.5, "forward": 1.0 / (h * w)}[norm]
    return torch.complex(real * scale, imag * scale).movedim((-2, -1), tuple(dim))


def irfft2_matmul(z: torch.Tensor, s=None, dim=(-2, -1), norm: str = "backward") -> torch.Tensor:
    r"""``torch.fft.irfft2`` as matrix products (inverse of :func:`rfft2_matmul`).

    A complex inverse DFT along the first of ``dim``, then the real inverse along the last,
    where every frequency except DC and (for even W) Nyquist counts twice (Hermitian
    symmetry); their imaginary parts are ignored, as in ``torch.fft.irfft``.
    """
    z = z.movedim(tuple(dim), (-2, -1))
    h, k = z.shape[-2:]
    h, w = (h, 2 * (k - 1)) if s is None else (int(s[0]), int(s[1]))
    zr, zi = z.real, z.imag
    ch, sh = _dft_mats(h, h, zr.dtype, zr.device)
    ur, ui = ch @ zr - sh @ zi, ch @ zi + sh @ zr  # along H, e^{+i theta}
    cw, sw = _dft_mats(w, k, zr.dtype, zr.device)  # (k, w)
    weight = torch.full((k, 1), 2.0, dtype=zr.dtype, device=zr.device)
    weight[0] = 1.0
    if w % 2 == 0 and k == w // 2 + 1:
        weight[-1] = 1.0
    x = ur @ (weight * cw) - ui @ (weight * sw)
    scale = {"backward": 1.0 / (h * w), "ortho": (h * w) ** -0.5, "forward": 1.0}[norm]
    return (x * scale).movedim((-2, -1), tuple(dim))


@contextlib.contextmanager
def fft_as_matmul():
    """Within the block, ``torch.fft.rfft2``/``irfft2`` are the matmul versions (for export)."""
    saved = torch.fft.rfft2, torch.fft.irfft2
    torch.fft.rfft2, torch.fft.irfft2 = rfft2_matmul, irfft2_matmul
    try:
        yield
    finally:
        torch.fft.rfft2, torch.fft.irfft2 = saved


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' and quantizers' advice printed through ``logging``/``warnings``."""
    root, tlog = logging.getLogger(), logging.getLogger("torch.onnx")
    levels = root.level, tlog.level
    root.setLevel(logging.ERROR)
    tlog.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(levels[0])
        tlog.setLevel(levels[1])


def ort_session(path: str | Path, threads: int = 1):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads (all graph optimizations).

    Raises:
        ImportError: with the install command, when onnxruntime is missing.
    """
    try:
        import onnxruntime as ort
    except ImportError as err:  # optional on a Raspberry Pi
        raise ImportError("onnxruntime is not installed: pip install onnxruntime") from err
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts,
                                providers=["CPUExecutionProvider"])


def onnx_max_abs_diff(path: str | Path, model: nn.Module, example: torch.Tensor) -> float:
    """``max |onnxruntime(path)(example) - model(example)|`` (both fp32)."""
    sess = ort_session(path, threads=1)
    name = sess.get_inputs()[0].name
    y_ort = sess.run(None, {name: example.detach().numpy().astype(np.float32)})[0]
    with torch.no_grad():
        y_pt = model.eval()(example).numpy()
    return float(np.max(np.abs(y_ort - y_pt)))


def check_onnx(path: str | Path, model: nn.Module, example: torch.Tensor, atol: float = 1e-4,
               rtol: float = 1e-4) -> float:
    """Max abs difference of the ONNX model vs PyTorch on ``example``; raises when too large.

    Raises:
        RuntimeError: when ``max|diff| > atol + rtol * max|y|``.
    """
    diff = onnx_max_abs_diff(path, model, example)
    with torch.no_grad():
        scale = float(model.eval()(example).abs().max())
    if not diff <= atol + rtol * scale:
        raise RuntimeError(f"ONNX export of {type(model).__name__} differs from PyTorch by "
                           f"{diff:.3g} (> {atol} + {rtol}*{scale:.3g}); "
                           "time this model in PyTorch only")
    return diff


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | Path, *,
                dynamic_batch: bool = True, atol: float = 1e-4, rtol: float = 1e-4,
                check: bool = True, fft: str = "dft") -> dict:
    """Export ``model`` to ONNX (dynamo exporter) and compare it with PyTorch in onnxruntime.

    Args:
        model: the network (exported in eval mode).
        example: an input ``(b, c, H, W)`` fixing everything but the batch size.
        path: the ``.onnx`` file, written atomically.
        dynamic_batch: make the batch dimension symbolic.
        atol, rtol: the check passes when ``max|diff| <= atol + rtol * max|y|``.
        check: run the check (needs onnxruntime).
        fft: ``"dft"`` exports FFTs as ONNX ``DFT`` operators; ``"matmul"`` as matrix products
            (:func:`fft_as_matmul`), for onnxruntime builds whose DFT differs (e.g. 1.20 on ARM).

    Returns:
        ``{"path", "size_bytes", "max_abs_diff"}`` (``max_abs_diff`` NaN without check).

    Raises:
        RuntimeError: when the exported model disagrees with PyTorch beyond the tolerance.
    """
    path = Path(path)
    model = model.eval()
    shapes = ({0: torch.export.Dim.DYNAMIC},) if dynamic_batch else None
    if fft not in ("dft", "matmul"):
        raise ValueError(f"export_onnx: fft={fft!r}; use 'dft' or 'matmul'")
    patch = fft_as_matmul() if fft == "matmul" else contextlib.nullcontext()
    with _quiet(), torch.no_grad(), patch:
        program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=shapes,
                                    input_names=["x"], output_names=["y"], optimize=True,
                                    verbose=False)
    atomic_write_bytes(path, program.model_proto.SerializeToString())
    diff = check_onnx(path, model, example, atol, rtol) if check else float("nan")
    return {"path": str(path), "size_bytes": file_bytes(path), "max_abs_diff": diff}
