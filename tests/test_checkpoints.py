"""FourCastNet-format loading/adaptation and our own checkpoints (ecodistill.models.checkpoints)."""
from __future__ import annotations

import argparse

import pytest
import torch
import torch.nn.functional as F

from ecodistill import __version__
from ecodistill.config import StudentConfig, get_profile, to_dict
from ecodistill.models import (
    AFNONet,
    build_student,
    load_checkpoint,
    load_fourcastnet_backbone,
    save_checkpoint,
)
from ecodistill.models.checkpoints import infer_afno_arch, read_state_dict


def _write_fourcastnet_layout(path, model: torch.nn.Module, extra_keys: dict | None = None) -> None:
    """What NVlabs/FourCastNet's trainer writes: DDP ``module.`` keys under ``model_state``."""
    state = {f"module.{k}": v.clone() for k, v in model.state_dict().items()}
    if isinstance(model, AFNONet):  # the public model also holds an unused final LayerNorm
        d = model.embed_dim
        state["module.norm.weight"], state["module.norm.bias"] = torch.ones(d), torch.zeros(d)
    state.update(extra_keys or {})
    torch.save({"iters": 10, "epoch": 1, "model_state": state, "optimizer_state_dict": {"state": {}}}, path)


@pytest.fixture()
def fourcastnet_ckpt(tmp_path):
    torch.manual_seed(0)
    src = AFNONet(20, 20, (16, 32), embed_dim=16, depth=2, patch_size=4, num_blocks=4)
    path = tmp_path / "backbone.ckpt"
    _write_fourcastnet_layout(path, src)
    return path, src


def test_fourcastnet_layout_loads_and_adapts_to_a_new_grid_and_channels(fourcastnet_ckpt):
    path, src = fourcastnet_ckpt
    arch = infer_afno_arch(read_state_dict(path))
    assert (arch["embed_dim"], arch["depth"], arch["patch_size"], arch["num_blocks"]) == (16, 2, 4, 4)
    assert (arch["in_chans"], arch["out_chans"], arch["mlp_ratio"]) == (20, 20, 4.0)
    model = load_fourcastnet_backbone(path, img_size=(24, 48), in_chans=7, out_chans=1, freeze_blocks=1)
    assert model.patch_embed.proj.weight.shape == (16, 7, 4, 4) and model.head.weight.shape == (16, 16)
    for key, value in src.blocks.state_dict().items():
        assert torch.equal(model.blocks.state_dict()[key], value)
    expected = F.interpolate(src.pos_embed.detach().reshape(1, 4, 8, 16).permute(0, 3, 1, 2), size=(6, 12),
                             mode="bicubic", align_corners=False).permute(0, 2, 3, 1).reshape(1, 72, 16)
    torch.testing.assert_close(model.pos_embed.detach(), expected)
    assert not any(p.requires_grad for p in model.blocks[0].parameters())
    assert model(torch.randn(2, 7, 24, 48)).shape == (2, 1, 24, 48)


def test_same_grid_keeps_the_position_embedding_exactly(fourcastnet_ckpt):
    path, src = fourcastnet_ckpt
    model = load_fourcastnet_backbone(path, img_size=(16, 32), in_chans=20, out_chans=1)
    assert torch.equal(model.pos_embed.detach(), src.pos_embed.detach())


def test_another_architecture_is_refused_with_the_differences(tmp_path, fourcastnet_ckpt):
    unet = build_student(StudentConfig("u", "unet", width=4, depth=2), 20, 20, (16, 32))
    path = tmp_path / "unet.ckpt"
    _write_fourcastnet_layout(path, unet)
    with pytest.raises(ValueError, match="not an AFNO.*missing"):
        load_fourcastnet_backbone(path, (16, 32), 20, 1)
    good, _ = fourcastnet_ckpt
    state = torch.load(good, weights_only=True)
    state["model_state"]["module.blocks.1.extra.weight"] = torch.zeros(3)
    state["model_state"]["module.blocks.0.mlp.fc2.bias"] = torch.zeros(5)
    bad = tmp_path / "tampered.ckpt"
    torch.save(state, bad)
    with pytest.raises(ValueError, match=r"unexpected keys.*blocks\.1\.extra\.weight.*shape mismatches.*fc2\.bias"):
        load_fourcastnet_backbone(bad, (16, 32), 20, 1)


def test_source_grid_must_be_known(fourcastnet_ckpt, tmp_path):
    src = AFNONet(20, 20, (12, 12), embed_dim=16, depth=1, patch_size=4, num_blocks=4)
    path = tmp_path / "square.ckpt"
    _write_fourcastnet_layout(path, src)
    with pytest.raises(ValueError, match="src_img_size"):
        load_fourcastnet_backbone(path, (16, 32), 20, 1)
    model = load_fourcastnet_backbone(path, (16, 32), 20, 1, src_img_size=(12, 12))
    assert model.pos_embed.shape == (1, 32, 16)


def test_missing_file_and_unsafe_pickle_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        load_checkpoint(tmp_path / "nope.pt")
    path = tmp_path / "pickle.pt"
    torch.save({"model_state": {}, "config": argparse.Namespace(a=1)}, path)
    with pytest.raises(ValueError, match="weights_only"):
        load_checkpoint(path)


@pytest.mark.parametrize("family", ["afno", "unet", "cnn", "mlp"])
def test_own_checkpoint_roundtrip(tmp_path, family):
    torch.manual_seed(1)
    model = build_student(StudentConfig("s", family, width=8, depth=2, num_blocks=2), 6, 1, (16, 32))
    model.eval()
    run = to_dict(get_profile("smoke"))
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, run, extra={"epoch": 3, "val_rmse": 0.1})
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt", "m.pt.sha256"]  # no temporary left
    loaded, meta = load_checkpoint(path)
    loaded.eval()
    x = torch.randn(2, 6, 16, 32)
    assert torch.equal(model(x), loaded(x))
    assert meta["run"]["profile"] == "smoke" and meta["extra"]["epoch"] == 3
    assert meta["ecodistill_version"] == __version__ and meta["model_class"] == type(model).__name__


def test_own_checkpoint_errors(tmp_path, fourcastnet_ckpt):
    model = build_student(StudentConfig("m", "mlp", width=8, depth=2), 6, 1, (16, 32))
    with pytest.raises(TypeError, match="extra.*Namespace"):
        save_checkpoint(tmp_path / "x.pt", model, {}, extra={"args": argparse.Namespace()})
    with pytest.raises(TypeError, match="config must be a dict"):
        save_checkpoint(tmp_path / "x.pt", model, get_profile("smoke"))
    path = save_checkpoint(tmp_path / "m.pt", model, {})
    obj = torch.load(path, weights_only=True)
    obj["config"]["arch"]["width"] = 16
    torch.save(obj, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="do not match the stored PixelMLP.*shape mismatches"):
        load_checkpoint(tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="load_fourcastnet_backbone"):
        load_checkpoint(fourcastnet_ckpt[0])


# --- damaged and foreign files (issue 14, case 6) ------------------------------------------

def _flip_bytes_of(path, tensor: torch.Tensor, n: int = 64) -> None:
    """Flip (XOR 0xFF) the high byte of ``n`` float32 values of ``tensor`` inside the file,
    as a damaged disk or transfer would: torch does not notice (no checksum on tensor data)."""
    raw = bytearray(path.read_bytes())
    data = tensor.detach().contiguous().numpy().tobytes()
    at = raw.find(data)
    assert at >= 0, "tensor bytes not found in the file"
    for i in range(n):
        raw[at + 4 * i + 3] ^= 0xFF  # little-endian float32: byte 3 holds the sign and exponent
    path.write_bytes(bytes(raw))


def test_flipped_bytes_give_implausible_weights_that_are_refused(fourcastnet_ckpt):
    path, src = fourcastnet_ckpt
    w = src.blocks[0].mlp.fc1.weight
    assert float(w.detach().abs().max()) < 0.1
    _flip_bytes_of(path, w)
    state = torch.load(path, weights_only=True)["model_state"]
    assert float(state["module.blocks.0.mlp.fc1.weight"].abs().max()) > 10  # torch loads it happily
    with pytest.raises(ValueError, match=r"blocks\.0\.mlp\.fc1\.weight holds \|w\| = .*implausible") as err:
        load_fourcastnet_backbone(path, (16, 32), 20, 1)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_sidecar_or_expected_hash_catches_any_change(fourcastnet_ckpt):
    from ecodistill.store.integrity import write_sha256

    path, src = fourcastnet_ckpt
    good = write_sha256(path)
    load_fourcastnet_backbone(path, (16, 32), 20, 1)  # verified against the sidecar
    raw = bytearray(path.read_bytes())
    at = raw.find(src.blocks[0].mlp.fc1.weight.detach().numpy().tobytes())
    raw[at] ^= 0x01  # one bit of one mantissa: plausible weights, still a different file
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="is damaged: its SHA-256 .* differs") as err:
        load_fourcastnet_backbone(path, (16, 32), 20, 1)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    path.with_name(path.name + ".sha256").unlink()
    with pytest.raises(ValueError, match="differs from .* the expected hash"):
        load_fourcastnet_backbone(path, (16, 32), 20, 1, sha256=good)


@pytest.mark.parametrize("case", ["random", "empty", "truncated"])
def test_unreadable_files_give_our_one_line_error(tmp_path, fourcastnet_ckpt, case):
    path = tmp_path / "backbone.ckpt"
    if case == "random":
        path.write_bytes(bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                             dtype=torch.uint8).tolist()))
    elif case == "empty":
        path.write_bytes(b"")
    else:
        good = fourcastnet_ckpt[0].read_bytes()
        path.write_bytes(good[: len(good) // 2])
    expected = {"random": "not a PyTorch file", "empty": "is empty", "truncated": "damaged or truncated"}
    for load in (lambda: load_fourcastnet_backbone(path, (16, 32), 20, 1), lambda: load_checkpoint(path)):
        with pytest.raises(ValueError, match=expected[case]) as err:
            load()
        text = str(err.value)
        assert str(path) in text and "\n" not in text and "weights_only=False" not in text


def test_nan_weights_are_refused_naming_the_tensor(tmp_path, fourcastnet_ckpt):
    _, src = fourcastnet_ckpt
    with torch.no_grad():
        src.head.weight[0, 0] = float("nan")
    path = tmp_path / "nan.ckpt"
    _write_fourcastnet_layout(path, src)
    with pytest.raises(ValueError, match=r"tensor head\.weight holds 1 NaN/Inf"):
        load_fourcastnet_backbone(path, (16, 32), 20, 1)
    model = build_student(StudentConfig("m", "mlp", width=8, depth=2), 6, 1, (16, 32))
    with torch.no_grad():
        next(model.parameters()).fill_(float("inf"))
    with pytest.raises(ValueError, match="NaN/Inf"):
        load_checkpoint(save_checkpoint(tmp_path / "inf.pt", model, {}))


def test_own_checkpoint_sidecar_is_checked(tmp_path):
    model = build_student(StudentConfig("m", "mlp", width=8, depth=2), 6, 1, (16, 32))
    path = save_checkpoint(tmp_path / "m.pt", model, {})
    raw = bytearray(path.read_bytes())
    raw[-30] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="m.pt is damaged.*train the model again"):
        load_checkpoint(path)


def test_save_verified_and_load_verified(tmp_path):
    from ecodistill.store.integrity import load_verified, save_verified

    path = save_verified({"step": 3, "w": torch.ones(2)}, tmp_path / "state.pt")
    assert path.with_name("state.pt.sha256").read_text().endswith("  state.pt\n")  # sha256sum -c format
    assert load_verified(path, what="training state")["step"] == 3
    torch.save({"step": 4}, tmp_path / "plain.pt")
    with pytest.warns(UserWarning, match="no SHA-256 sidecar"):
        assert load_verified(tmp_path / "plain.pt")["step"] == 4
    with pytest.raises(ValueError, match="training state .*plain.pt has no SHA-256 sidecar.*rerun"):
        load_verified(tmp_path / "plain.pt", what="training state", fix="rerun", unverified="refuse")
    with pytest.raises(FileNotFoundError, match="training state .*none.pt not found; rerun"):
        load_verified(tmp_path / "none.pt", what="training state", fix="rerun")


# --- issue 20, item 5: every checkpoint checked, ours included; resume never unsafe ---------

def _flip_exponent(path, tensor: torch.Tensor) -> None:
    """Set the top exponent bits of the first weight of ``tensor`` in the file (0.05 -> ~4e36)."""
    raw = bytearray(path.read_bytes())
    at = raw.find(tensor.detach().numpy().tobytes())
    assert at >= 0
    raw[at + 3] |= 0x7C  # float32 little-endian: byte 3 holds the sign and the high exponent bits
    path.write_bytes(bytes(raw))


def test_own_checkpoint_without_sidecar_is_checked_for_magnitudes(tmp_path):
    model = build_student(StudentConfig("m", "mlp", width=8, depth=2), 6, 1, (16, 32))
    path = save_checkpoint(tmp_path / "m.pt", model, {})
    path.with_name("m.pt.sha256").unlink()  # no sidecar: before, only a warning, and weights of 4e36 loaded
    first = next(iter(model.state_dict().items()))
    _flip_exponent(path, first[1])
    with pytest.warns(UserWarning, match="no SHA-256 sidecar"), \
            pytest.raises(ValueError, match=rf"tensor {first[0]} holds \|w\| = .*e\+3\d, implausible") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_resume_checkpoint_failing_its_hash_is_never_opened_unsafely(tmp_path, monkeypatch):
    from ecodistill.config import TrainConfig
    from ecodistill.training import resume

    model = build_student(StudentConfig("m", "mlp", width=8, depth=2), 6, 1, (16, 32))
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    cfg = TrainConfig()
    path = tmp_path / "state.pt"
    resume.save_state(path, cfg, 1, [model], [], opt, sched, resume.LoopState(), None, resume.rng_state(),
                      resume.rng_state())
    raw = bytearray(path.read_bytes())
    raw[-40] ^= 0x01
    path.write_bytes(bytes(raw))
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k.get("weights_only")) or real(*a, **k))
    with pytest.raises(ValueError, match="state.pt is damaged.*delete it to start the run over") as err:
        resume.load_state(path, cfg, [model], [], opt, sched)
    assert "\n" not in str(err.value)
    assert False not in calls  # before: opened with weights_only=False before it was refused


def test_damaged_zip_header_gets_no_weights_only_hint(tmp_path):
    model = build_student(StudentConfig("m", "mlp", width=8, depth=2), 6, 1, (16, 32))
    path = save_checkpoint(tmp_path / "m.pt", model, {})
    path.with_name("m.pt.sha256").unlink()
    raw = bytearray(path.read_bytes())
    raw[0:2] = b"\x80\x80"  # the zip signature overwritten: torch falls back to the old pickle reader
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="m.pt is damaged: it cannot be read as a PyTorch checkpoint") as err:
        load_checkpoint(path)
    text = str(err.value)
    assert "\n" not in text and "weights_only" not in text and "Weights only" not in text
