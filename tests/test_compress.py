"""Tests for ecodistill.deploy: quantization, casting, pruning and ONNX export."""
import numpy as np
import pytest
import torch
from torch import nn

from ecodistill.deploy import compress
from ecodistill.models import AFNONet, ConvNet, PixelMLP, UNet

pytest.importorskip("onnxruntime")


def _afno():
    torch.manual_seed(0)
    return AFNONet(6, 1, (8, 16), embed_dim=16, depth=1, patch_size=4, num_blocks=2).eval()


def _x(b=2, c=6, h=8, w=16):
    return torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(1))


def _with_bn_stats(model):
    """Non-trivial BatchNorm statistics, so that pruning a wrong channel would show."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
    return model.eval()


def test_afno_onnx_export_matches_torch_for_other_batch_sizes(tmp_path):
    model = _afno()
    info = compress.export_onnx(model, _x(), tmp_path / "afno.onnx")
    assert info["max_abs_diff"] < 1e-4
    assert info["size_bytes"] == (tmp_path / "afno.onnx").stat().st_size
    for b in (1, 3):  # the batch axis is symbolic
        assert compress.onnx_max_abs_diff(tmp_path / "afno.onnx", model, _x(b)) < 1e-4
    other = _afno()
    with torch.no_grad():
        other.head.weight.add_(0.5)
    with pytest.raises(RuntimeError, match="differs from PyTorch"):
        compress.check_onnx(tmp_path / "afno.onnx", other, _x())


def test_onnx_int8_dynamic_and_static_are_smaller_and_close(tmp_path):
    torch.manual_seed(0)
    model = PixelMLP(6, 1, width=64, depth=2).eval()
    src = compress.export_onnx(model, _x(), tmp_path / "m.onnx")["path"]
    dyn = compress.quantize_onnx_dynamic(src, tmp_path / "d.onnx")
    sta = compress.quantize_onnx_static(src, tmp_path / "s.onnx", [_x(4) for _ in range(3)])
    with torch.no_grad():
        scale = float(model(_x()).abs().max())
    for path in (dyn, sta):
        assert compress.onnx_max_abs_diff(path, model, _x()) < 0.1 * scale
    assert compress.file_bytes(sta) < compress.file_bytes(src)
    with pytest.raises(ValueError, match="calibration"):
        compress.quantize_onnx_static(src, tmp_path / "x.onnx", [])


def test_torch_dynamic_int8_quantizes_linear_only():
    model = _afno()
    q = compress.quantize_dynamic_torch(model)
    assert any("quantized" in type(m).__module__ for m in q.modules())
    assert isinstance(model.blocks[0].mlp.fc1, nn.Linear)  # the original is untouched
    with torch.no_grad():
        assert (q(_x()) - model(_x())).abs().max() < 0.05


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_cast_weights_runs_and_halves_size(dtype):
    model = ConvNet(6, 1, width=64, depth=2).eval()
    cast = compress.cast_weights(model, dtype)
    with torch.no_grad():
        y, y0 = cast(_x()), model(_x())
    assert y.dtype == torch.float32 and y.shape == y0.shape
    assert (y - y0).abs().max() < 0.05 * (1 + y0.abs().max())
    assert compress.state_dict_bytes(cast.model) < 0.6 * compress.state_dict_bytes(model)
    with pytest.raises(ValueError, match="fp16"):
        compress.cast_weights(model, "int4")


@pytest.mark.parametrize("make", [lambda: _with_bn_stats(ConvNet(6, 1, width=8, depth=3)),
                                  lambda: PixelMLP(6, 1, width=16, depth=2).eval(),
                                  lambda: _with_bn_stats(UNet(6, 1, width=4, depth=2)),
                                  _afno])
def test_pruning_removes_units_and_equals_masking(make):
    model = make()
    pruned, info = compress.prune_structured(model, 0.5, _x())
    assert info["params_after"] < info["params_before"] == sum(p.numel() for p in model.parameters())
    assert pruned(_x()).shape == model(_x()).shape


def test_pruning_keeps_largest_l1_units_and_rejects_skip_connections():
    torch.manual_seed(0)
    model = PixelMLP(6, 1, width=4, depth=1).eval()
    with torch.no_grad():
        model.layers[0][0].weight.copy_(torch.tensor([1.0, 5.0, 0.1, 3.0])[:, None, None, None].expand(4, 6, 1, 1))
    pruned, info = compress.prune_structured(model, 0.5, _x())
    kept = pruned.layers[0][0].weight[:, 0, 0, 0]
    assert sorted(kept.tolist()) == [3.0, 5.0]
    unet = _with_bn_stats(UNet(6, 1, width=4, depth=2))
    _, info = compress.prune_structured(unet, 0.5, _x())
    # encoder outputs feed skip connections: only pairs inside a double conv survive
    assert all(p.split("->")[0].rsplit(".", 2)[0] == p.split("->")[1].rsplit(".", 2)[0] for p in info["pairs"])


def test_pruning_finetune_callback_and_bad_amount():
    seen = []
    model = PixelMLP(6, 1, width=8, depth=2).eval()
    pruned, info = compress.prune_structured(model, 0.25, _x(), finetune_fn=lambda m: seen.append(m) or m)
    assert seen and seen[0] is pruned and info["finetuned"]
    with pytest.raises(ValueError, match="amount"):
        compress.prune_structured(model, 1.0, _x())
    with pytest.raises(ValueError, match="no prunable"):
        compress.prune_structured(nn.Sequential(nn.Conv2d(6, 1, 1)), 0.5, _x())


def test_rfft2_irfft2_roundtrip_exports_exactly(tmp_path):
    """AFNO's FFT pair exports to ONNX DFT ops (so no FFT-as-matmul fallback is needed)."""
    class Spectral(nn.Module):
        def forward(self, x):
            z = torch.fft.rfft2(x, norm="ortho")
            return torch.fft.irfft2(z * 0.5, s=x.shape[-2:], norm="ortho")
    info = compress.export_onnx(Spectral(), _x(), tmp_path / "s.onnx")
    assert info["max_abs_diff"] < 1e-5
    np.testing.assert_allclose(compress.ort_session(tmp_path / "s.onnx").run(None, {"x": _x().numpy()})[0],
                               0.5 * _x().numpy(), atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 6, 10, 3), (1, 8, 16, 4), (3, 5, 7, 2)])
def test_fft_as_matmul_matches_torch_fft(shape):
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    hw = shape[1:3]
    for norm in ("ortho", "backward", "forward"):
        z = torch.fft.rfft2(x, dim=(1, 2), norm=norm)
        assert torch.allclose(compress.rfft2_matmul(x, dim=(1, 2), norm=norm), z, atol=1e-10)
        z = z * (0.7 + 0.2j)
        assert torch.allclose(compress.irfft2_matmul(z, s=hw, dim=(1, 2), norm=norm),
                              torch.fft.irfft2(z, s=hw, dim=(1, 2), norm=norm), atol=1e-10)


def test_afno_exports_without_dft_operator(tmp_path):
    import onnx

    model = _afno()
    info = compress.export_onnx(model, _x(), tmp_path / "m.onnx", fft="matmul")
    assert info["max_abs_diff"] < 1e-4
    ops = {n.op_type for n in onnx.load(tmp_path / "m.onnx").graph.node}
    assert "DFT" not in ops and "MatMul" in ops
    assert torch.fft.rfft2 is not compress.rfft2_matmul  # the patch is undone
