r"""Compression and export: int8 quantization, fp16/bf16 weights, structured pruning, ONNX.

Every function returns a *new* model or file and leaves its input untouched, so a
benchmark can time the original and its compressed variants side by side.

* **Dynamic int8** (weights int8, activations quantized on the fly per call;
  {cite}`jacob2018quantization`): :func:`quantize_dynamic_torch` (``nn.Linear`` only:
  PyTorch has no dynamic conv) and :func:`quantize_onnx_dynamic` (ONNX Runtime
  ``MatMulInteger``/``ConvInteger``; {cite}`onnxruntime_quantization`).
* **Static int8** (activation ranges calibrated once on real input batches, QDQ format,
  per-channel weights): :func:`quantize_onnx_static`.
* **fp16 / bf16 weights**: :func:`cast_weights` (a wrapper that casts inputs and outputs,
  so callers keep feeding fp32 maps).
* **Structured pruning** ({cite}`han2016deep`, {cite}`fang2023depgraph`): :func:`prune_structured`
  removes hidden units (conv channels or linear features) of every layer pair
  ``A -> (channel-wise ops) -> B`` with the smallest L1 norm of their weights in ``A``,
  then hands the model to an optional ``finetune_fn(model) -> model`` (e.g. distillation
  fine-tuning from :mod:`ecodistill.train`). The removal is checked numerically: it must
  equal zeroing the same units, or the pair is left alone.
* **Export**: :func:`export_onnx` (``torch.onnx.export(dynamo=True)``; the TorchScript
  exporter cannot export ``rfft2``) with a numerical check against PyTorch. AFNO's FFTs
  become ONNX ``DFT`` operators, which onnxruntime 1.32 (x86) runs but onnxruntime 1.20
  (aarch64) rejects (one-sided inverse DFT); ``fft="matmul"`` exports them as products
  with real DFT matrices instead (:func:`rfft2_matmul`, :func:`irfft2_matmul`, equal to
  ``torch.fft`` to float64 round-off), which every runtime runs.

Findings that shape the benchmark (see scripts/arm64_check.sh): onnxruntime's *dynamic*
int8 turns convolutions into ``ConvInteger``, which the aarch64 build 1.20.1 does not
implement; its *static* QDQ int8 runs there, but per-channel ``QLinearMatMul`` (AFNO's
linear layers) does not.

Explained in book/generated/05_pi_timings.ipynb.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .utils import atomic_write_bytes

_CHANNELWISE = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Tanh, nn.Sigmoid,
                nn.Mish, nn.Hardswish, nn.Dropout, nn.Dropout2d, nn.Identity,
                nn.BatchNorm1d, nn.BatchNorm2d)
_LAYERS = (nn.Linear, nn.Conv2d, nn.Conv1d)


# ----------------------------------------------------------------------------- sizes

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


# ----------------------------------------------------------------------------- dtypes

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
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(dtype, dtype)  # type: ignore[arg-type]
    if dtype not in (torch.float16, torch.bfloat16):
        raise ValueError(f"cast_weights: dtype={dtype!r}; use 'fp16' or 'bf16'")
    return CastWrapper(copy.deepcopy(model).eval().to(dtype), dtype).eval()


def quantize_dynamic_torch(model: nn.Module) -> nn.Module:
    """Post-training dynamic int8 of every ``nn.Linear`` (a copy; convs stay fp32).

    Uses ``torch.ao.quantization.quantize_dynamic`` (deprecated in favour of torchao, still
    shipped). The kernel engine follows the CPU: ``qnnpack`` on ARM, the default elsewhere.
    """
    import platform

    if platform.machine().lower() in ("aarch64", "arm64") and "qnnpack" in torch.backends.quantized.supported_engines:
        torch.backends.quantized.engine = "qnnpack"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear},
                                                      dtype=torch.qint8)


# ----------------------------------------------------------------------------- pruning

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
    """Flatten nested ``Sequential``/``ModuleList`` containers into their leaf modules, in order."""
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
            if isinstance(m, type(a)) and getattr(m, "groups", 1) == 1 and _width(m, False) == _width(a, True):
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
        if isinstance(mod, (nn.Sequential, nn.ModuleList)) and not any(name.startswith(s) for s in seen):
            seen.add(pre)
            chain = _leaves(mod, pre)
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            head = getattr(getattr(parent, "head", None), "proj", None)
            if name.endswith("layers") and isinstance(head, _LAYERS):
                chain.append((name.rpartition(".")[0] + ("." if "." in name else "") + "head.proj", head))
            pairs += _chain_pairs(chain)
        fc1, fc2 = getattr(mod, "fc1", None), getattr(mod, "fc2", None)
        if isinstance(fc1, nn.Linear) and isinstance(fc2, nn.Linear) and fc1.out_features == fc2.in_features:
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
                    setattr(new, attr, type(t)(t[keep].clone()) if isinstance(t, nn.Parameter) else t[keep].clone())
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
    return y1.shape == y2.shape and torch.allclose(y1, y2, rtol=1e-4, atol=1e-5 * (1 + float(y1.abs().max())))


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
        raise ValueError(f"prune_structured: amount={amount} outside (0, 1), e.g. 0.5 removes half the units")
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


# ----------------------------------------------------------------------------- ONNX

def _dft_mats(n: int, n_out: int, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` of ``2 pi k m / n`` for ``k < n_out``, ``m < n``: ``(n_out, n)`` each."""
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
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


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
        raise RuntimeError(f"ONNX export of {type(model).__name__} differs from PyTorch by {diff:.3g} "
                           f"(> {atol} + {rtol}*{scale:.3g}); time this model in PyTorch only")
    return diff


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | Path, *, dynamic_batch: bool = True,
                atol: float = 1e-4, rtol: float = 1e-4, check: bool = True, fft: str = "dft") -> dict:
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
                                    input_names=["x"], output_names=["y"], optimize=True, verbose=False)
    atomic_write_bytes(path, program.model_proto.SerializeToString())
    diff = check_onnx(path, model, example, atol, rtol) if check else float("nan")
    return {"path": str(path), "size_bytes": file_bytes(path), "max_abs_diff": diff}


def quantize_onnx_dynamic(src: str | Path, dst: str | Path, per_channel: bool = False,
                          op_types: Sequence[str] | None = ("MatMul", "Gemm", "Conv")) -> Path:
    """ONNX Runtime dynamic int8 (weights int8, activations uint8 per call) of ``src``.

    Weights use 7 of their 8 bits (``reduce_range``): on x86 without VNNI, ONNX Runtime's
    u8 x s8 kernel (``vpmaddubsw``) saturates 16-bit sums of full-range products, which cost
    one test model 22 % of its output scale; with 7-bit weights it cannot, on any host.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def write(tmp: str) -> None:
        with _quiet():
            quantize_dynamic(str(src), tmp, per_channel=per_channel, weight_type=QuantType.QInt8,
                             reduce_range=True, op_types_to_quantize=list(op_types) if op_types else None)
    return _write_via_tmp(Path(dst), write)


class BatchReader:
    """ONNX Runtime calibration reader over real input batches, each ``(b, c, H, W)``."""

    def __init__(self, batches: Iterable[np.ndarray | torch.Tensor], input_name: str = "x") -> None:
        self.items = [{input_name: np.asarray(b, dtype=np.float32)} for b in batches]
        if not self.items:
            raise ValueError("BatchReader: no calibration batches; pass a few real input batches")
        self._it = iter(self.items)

    def get_next(self):
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self.items)


def quantize_onnx_static(src: str | Path, dst: str | Path, batches: Iterable[np.ndarray | torch.Tensor],
                         per_channel: bool = True, op_types: Sequence[str] = ("MatMul", "Gemm", "Conv")) -> Path:
    """ONNX Runtime static int8 in QDQ format (per-channel 7-bit weights, MinMax calibration).

    ``reduce_range`` as in :func:`quantize_onnx_dynamic`: x86 hosts without VNNI run QDQ
    int8 through the saturating u8 x s8 kernel.

    Args:
        batches: real input batches ``(b, c, H, W)`` (e.g. a few training days).
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    reader = BatchReader(batches)
    CalibrationDataReader.register(BatchReader)

    def write(tmp: str) -> None:
        with _quiet():
            quantize_static(str(src), tmp, reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            reduce_range=True, op_types_to_quantize=list(op_types))
    return _write_via_tmp(Path(dst), write)
