"""Contract, golden and cost tests for ecodistill.models (AFNO teacher, students, cost).

Regenerate the golden fixture (only after an intended change of the forward pass):
``python tests/test_models.py``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ecodistill.config import StudentConfig, TeacherConfig, get_profile
from ecodistill.models import (
    AFNO2D,
    AFNONet,
    adapt_to_new_task,
    afno_from_config,
    build_model,
    build_student,
    bytes_per_map,
    count_afno_params,
    count_params,
    flops_per_map,
    model_card,
    split_gaussian,
)

GOLDEN = Path(__file__).parent / "fixtures" / "afno_golden.npz"
FULL_CHANNELS = 30  # assumed input channels of the full profile (the data module decides the real count)


TINY = {"in_chans": 5, "out_chans": 1, "img_size": (16, 32), "embed_dim": 16, "depth": 2, "patch_size": 4,
        "num_blocks": 4}


def _tiny_afno(**kw) -> AFNONet:
    return AFNONet(**{**TINY, **kw})


# ----------------------------------------------------------------------------- shapes and errors
@pytest.mark.parametrize("family,width,depth", [("afno", 16, 2), ("unet", 4, 2), ("cnn", 8, 2), ("mlp", 8, 2)])
def test_every_family_maps_maps_to_maps_with_features(family, width, depth):
    torch.manual_seed(0)
    model = build_student(StudentConfig("s", family, width=width, depth=depth, num_blocks=4), 5, 2, (16, 32))
    x = torch.randn(3, 5, 16, 32)
    y, feats = model(x, return_features=True)
    assert y.shape == (3, 2, 16, 32)
    assert torch.equal(model(x), y)  # deterministic on CPU (BatchNorm uses the same batch statistics)
    assert feats and all(f.ndim == 4 and f.shape[0] == 3 for f in feats)
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_unet_handles_grids_not_divisible_by_its_depth():
    model = build_student(StudentConfig("u", "unet", width=4, depth=3), 3, 1, (21, 45))
    y, feats = model(torch.randn(2, 3, 21, 45), return_features=True)
    assert y.shape == (2, 1, 21, 45)
    assert feats[0].shape[-2:] == (21, 45) and feats[1].shape[-2:] == (11, 23)


def test_afno_features_are_channel_first_token_maps():
    model = _tiny_afno()
    y, feats = model(torch.randn(2, 5, 16, 32), return_features=True)
    assert y.shape == (2, 1, 16, 32)
    assert len(feats) == 2 and all(f.shape == (2, 16, 4, 8) for f in feats)


def test_bad_grid_and_channels_fail_with_the_fix_in_the_message():
    with pytest.raises(ValueError, match="not divisible by patch_size=4.*multiples of 4"):
        _tiny_afno(img_size=(18, 32))
    with pytest.raises(ValueError, match="divisible by num_blocks"):
        _tiny_afno(embed_dim=18)
    with pytest.raises(ValueError, match=r"expects input \(b, 5, 16, 32\)"):
        _tiny_afno()(torch.randn(1, 4, 16, 32))
    with pytest.raises(ValueError, match="expects input"):
        build_student(StudentConfig("m", "mlp", 8, 2), 5, 1, (16, 32))(torch.randn(1, 3, 16, 32))
    with pytest.raises(ValueError, match="unknown student family 'gru'.*afno"):
        build_student(StudentConfig("g", "gru"), 5, 1, (16, 32))


def test_tanh_gaussian_and_build_model():
    teacher = build_model(TeacherConfig(embed_dim=16, depth=1, patch_size=4, num_blocks=4, tanh_head=True),
                          5, 1, (16, 32))
    y = teacher(10 * torch.randn(2, 5, 16, 32))
    assert y.abs().max() <= 1.0
    g = build_model(StudentConfig("m", "mlp", 8, 2), 5, 1, (16, 32), gaussian=True)
    mean, var = split_gaussian(g(torch.randn(2, 5, 16, 32)))
    assert mean.shape == var.shape == (2, 1, 16, 32) and (var > 0).all()
    with pytest.raises(ValueError, match="log-variance"):
        build_model(StudentConfig("m", "mlp", 8, 2), 5, 1, (16, 32), tanh_head=True, gaussian=True)
    with pytest.raises(ValueError, match="even channel count"):
        split_gaussian(torch.zeros(1, 3, 4, 4))


# ----------------------------------------------------------------------------- the AFNO filter
def _reference_filter(f: AFNO2D, x: torch.Tensor) -> torch.Tensor:
    """The AFNO filter in complex arithmetic: an independent check of the real-arithmetic code."""
    b, h, w, d = x.shape
    z = torch.fft.rfft2(x, dim=(1, 2), norm="ortho").reshape(b, h, w // 2 + 1, f.num_blocks, f.block_size)
    w1, b1 = torch.complex(f.w1[0], f.w1[1]), torch.complex(f.b1[0], f.b1[1])
    w2, b2 = torch.complex(f.w2[0], f.w2[1]), torch.complex(f.b2[0], f.b2[1])
    o = torch.einsum("...ki,kio->...ko", z, w1) + b1
    o = torch.complex(F.relu(o.real), F.relu(o.imag))
    o = torch.einsum("...ki,kio->...ko", o, w2) + b2
    o = torch.complex(F.softshrink(o.real, f.sparsity_threshold), F.softshrink(o.imag, f.sparsity_threshold))
    return torch.fft.irfft2(o.reshape(b, h, w // 2 + 1, d), s=(h, w), dim=(1, 2), norm="ortho") + x


def test_afno_filter_matches_complex_arithmetic():
    torch.manual_seed(1)
    f = AFNO2D(16, num_blocks=4).double()
    with torch.no_grad():
        for p in f.parameters():
            p.mul_(20)  # well above the shrinkage threshold, so the MLP is not a no-op
    x = torch.randn(2, 6, 10, 16, dtype=torch.float64)
    out = f(x)
    torch.testing.assert_close(out, _reference_filter(f, x), rtol=1e-10, atol=1e-10)
    assert (out - x).abs().max() > 1e-2


def test_hard_thresholding_removes_high_modes():
    torch.manual_seed(2)
    f = AFNO2D(8, num_blocks=2, hard_thresholding_fraction=0.5).double()
    x = torch.randn(1, 8, 16, 8, dtype=torch.float64)
    spec = torch.fft.rfft2(f(x) - x, dim=(1, 2), norm="ortho").abs().sum(dim=(0, 3))
    keep = f.mode_mask(8, 16)
    assert keep is not None and 0 < keep.sum() < keep.numel()
    assert spec[~keep].max() < 1e-12 and spec[keep].max() > 0
    public = AFNO2D(8, num_blocks=2, fourcastnet_modes=True).mode_mask(8, 16)  # the public code's window
    assert public[:, :5].all() and not public[:, 5:].any()


# ----------------------------------------------------------------------------- golden forward pass
def _golden_model() -> AFNONet:
    return AFNONet(3, 2, (8, 16), embed_dim=16, depth=2, patch_size=2, num_blocks=4,
                   hard_thresholding_fraction=0.75, tanh_head=False).double()


def write_golden(path: Path = GOLDEN) -> None:
    """Seeded weights, input and output of a tiny AFNONet in float64 (weights stored too,
    so the test does not depend on torch's random-number streams)."""
    torch.manual_seed(1234)
    model = _golden_model()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))  # move weights off their init so every path matters
    x = torch.randn(2, 3, 8, 16, dtype=torch.float64)
    with torch.no_grad():
        y = model(x)
    arrays = {"x": x.numpy(), "y": y.numpy()}
    arrays.update({f"param/{k}": v.numpy() for k, v in model.state_dict().items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def test_golden_forward_float64():
    data = np.load(GOLDEN)
    model = _golden_model()
    state = {k[len("param/"):]: torch.from_numpy(data[k]) for k in data.files if k.startswith("param/")}
    model.load_state_dict(state)
    with torch.no_grad():
        y = model(torch.from_numpy(data["x"]))
    np.testing.assert_allclose(y.numpy(), data["y"], rtol=1e-6, atol=1e-12)


# ----------------------------------------------------------------------------- sizes and costs
def test_analytic_parameter_count_matches_the_module():
    for kw in [{}, {"embed_dim": 32, "depth": 3, "num_blocks": 8, "patch_size": 2}]:
        model = _tiny_afno(**kw)
        assert count_params(model) == count_afno_params(**{**TINY, **kw})


def test_profile_teachers_have_the_intended_sizes():
    sizes = {}
    for name in ("smoke", "cpu", "full"):
        cfg = get_profile(name)
        with torch.device("meta"):
            model = afno_from_config(cfg.teacher, FULL_CHANNELS, 1, (cfg.data.nlat, cfg.data.nlon))
        sizes[name] = count_params(model)
    assert 1e4 < sizes["smoke"] < 1e6
    assert 1e6 < sizes["cpu"] < 1e7
    assert 80e6 <= sizes["full"] <= 120e6, sizes


def test_full_teacher_flops_counted_on_meta_device_include_ffts():
    cfg = get_profile("full")
    with torch.device("meta"):
        teacher = afno_from_config(cfg.teacher, FULL_CHANNELS, 1, (64, 128))
    flops = flops_per_map(teacher, (FULL_CHANNELS, 64, 128), breakdown=True)
    tokens, d, depth = 16 * 32, 1024, 12
    n = tokens
    assert flops["fft"] == pytest.approx(depth * 2 * d * 2.5 * n * math.log2(n))
    dense = 2 * tokens * (depth * (2 * d * 4 * d) + FULL_CHANNELS * 16 * d + d * 16)  # MLPs + embed + head
    assert flops["dense"] > dense and flops["dense"] < 1.1 * dense


def test_pixel_mlp_flops_and_bytes_are_exact():
    H, W, cin, w = 8, 16, 5, 12
    model = build_student(StudentConfig("m", "mlp", width=w, depth=2), cin, 1, (H, W))
    assert flops_per_map(model, (cin, H, W)) == 2 * H * W * (cin * w + w * w + w * 1)
    n = count_params(model)
    activations = H * W * (w + w + w + w + 1)  # conv, relu, conv, relu, head conv outputs
    assert bytes_per_map(model, (cin, H, W)) == 4 * (n + activations)
    card = model_card(model, (cin, H, W))
    assert card["n_params"] == n and card["fft_flops"] == 0 and card["weights_mb"] == pytest.approx(n * 4 / 2**20)


class _Attention(torch.nn.Module):
    """Self-attention over the pixels of a map: FlopCounterMode alone misses its CPU kernel."""

    def forward(self, x):
        q = x.flatten(2).transpose(1, 2)[:, None]  # (b, 1 head, h*w tokens, c)
        return F.scaled_dot_product_attention(q, q, q)


def test_cpu_attention_kernel_is_counted():
    c, h, w = 4, 4, 8
    n = h * w
    assert flops_per_map(_Attention(), (c, h, w)) == 4 * n * n * c  # QK^T and AV, 2 FLOPs per multiply-add


# ----------------------------------------------------------------------------- adaptation
def test_adapt_to_new_task_keeps_blocks_and_swaps_first_layer_and_head():
    torch.manual_seed(3)
    src = _tiny_afno(in_chans=20, out_chans=20, depth=3)
    new = adapt_to_new_task(src, in_chans=7, out_chans=1, freeze_blocks=2, tanh_head=True, img_size=(24, 48))
    assert new.patch_embed.proj.weight.shape == (16, 7, 4, 4) and new.head.weight.shape == (16, 16)
    assert new.pos_embed.shape == (1, 6 * 12, 16) and src.pos_embed.shape == (1, 4 * 8, 16)
    for a, b in zip(src.blocks.state_dict().values(), new.blocks.state_dict().values()):
        assert torch.equal(a, b)
    frozen = [all(not p.requires_grad for p in blk.parameters()) for blk in new.blocks]
    assert frozen == [True, True, False]
    assert all(p.requires_grad for p in src.parameters())  # the source is untouched
    assert new(torch.randn(1, 7, 24, 48)).abs().max() <= 1
    with pytest.raises(ValueError, match="freeze_blocks=4"):
        adapt_to_new_task(src, 7, 1, freeze_blocks=4)


def test_same_seed_same_output_on_cpu():
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        model = _tiny_afno()
        outs.append(model(torch.ones(1, 5, 16, 32)))
    assert torch.equal(outs[0], outs[1])


if __name__ == "__main__":
    write_golden()
    print(f"wrote {GOLDEN}")
