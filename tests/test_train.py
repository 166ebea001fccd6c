"""Tests for ecodistill.training.loop: loss, optimizer, schedule, determinism, resume, distillation
hooks (teacher, features, co-model, loss-owned adapters), predictions and their storage."""
from __future__ import annotations

import itertools
import json
import math
import os
import signal

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ecodistill.config import TrainConfig
from ecodistill.data import Batch
from ecodistill.training.distributed import epoch_loader
from ecodistill.training.loop import fit
from ecodistill.training.objectives import LossContext, truth_loss
from ecodistill.training.optim import cosine_schedule, make_optimizer
from ecodistill.training.predictions import (
    load_predictions,
    predict,
    predict_land,
    save_predictions,
    unpack_land,
)

masked_mse_loss = truth_loss("mse")

H, W = 6, 8


class MapData(Dataset):
    """Synthetic maps in the batch contract: y depends linearly on x, some cells masked out."""

    def __init__(self, n: int = 24, seed: int = 0, sign: float = 1.0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 3, H, W, generator=g)
        y = sign * (0.8 * self.x[:, :1] - 0.3 * self.x[:, 1:2]) + 0.05 * torch.randn(n, 1, H, W, generator=g)
        self.mask = torch.rand(n, 1, H, W, generator=g) > 0.2
        self.y = torch.where(self.mask, y, torch.zeros_like(y))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i], "mask": self.mask[i], "t": torch.tensor(i)}


class Tiny(nn.Module):
    """1x1-conv net with dropout (so resuming must restore the RNG) and a pos_embed."""

    def __init__(self, seed: int = 0, dropout: float = 0.2) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.a, self.b = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 1, 1)
        self.pos_embed = nn.Parameter(torch.zeros(1, 8, 1, 1))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        h = torch.relu(self.a(x) + self.pos_embed)
        out = self.b(self.drop(h))
        return (out, [h]) if return_features else out


CFG = TrainConfig(epochs=4, batch_size=4, lr=1e-2, warmup_frac=0.1, patience=0, seed=3, bf16=False)
LAT = np.cos(np.deg2rad(np.linspace(-75, 75, H)))


def loaders(seed: int = 0):
    train = DataLoader(MapData(24, seed), batch_size=4, shuffle=True)
    val = DataLoader(MapData(8, seed + 100), batch_size=4)
    return train, val


def weights(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def strip(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def test_masked_mse_known_value():
    y_hat = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
    batch = Batch(x=torch.zeros(1, 1, 2, 2), y=torch.zeros(1, 1, 2, 2),
                  mask=torch.tensor([[[[True, False], [True, True]]]]))
    assert masked_mse_loss(y_hat, batch).item() == pytest.approx((1 + 9 + 16) / 3)
    lat = torch.tensor([1.0, 3.0]).view(1, 1, 2, 1).expand(1, 1, 2, 2)  # row weights, as fit passes them
    ctx = LossContext(lat_weights=lat)
    assert masked_mse_loss(y_hat, batch, ctx).item() == pytest.approx((1 + 27 + 48) / 7)
    empty = batch.replace(mask=torch.zeros(1, 1, 2, 2, dtype=torch.bool))
    y_hat.requires_grad_(True)
    loss = masked_mse_loss(y_hat, empty)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(y_hat.grad == 0)


def test_optimizer_exempts_bias_norm_pos_embed_and_schedule_shape():
    model = nn.Sequential(Tiny(), nn.GroupNorm(1, 1))
    opt = make_optimizer([model], CFG)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    names = {n for n, p in model.named_parameters() if id(p) in decayed}
    assert names == {"0.a.weight", "0.b.weight"}
    sched = cosine_schedule(opt, total_steps=100, warmup_frac=0.1)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(CFG.lr / 10) and lrs[9] == pytest.approx(CFG.lr)
    assert lrs[55] == pytest.approx(CFG.lr * 0.5, rel=1e-6)  # cosine midpoint
    assert lrs[-1] < 0.01 * CFG.lr and all(a >= b for a, b in itertools.pairwise(lrs[9:]))


def test_fit_is_deterministic_and_learns():
    results = []
    for _ in range(2):
        model = Tiny()
        train, val = loaders()
        res = fit(model, train, val, masked_mse_loss, CFG, lat_weights=LAT, progress=False)
        results.append((weights(model), res))
    (w1, r1), (w2, r2) = results
    assert same(w1, w2) and strip(r1.history) == strip(r2.history)
    assert r1.steps == 24 and r1.stop_reason == "done" and len(r1.history) == 4
    assert r1.history[-1]["val_loss"] < 0.5 * r1.history[0]["val_loss"]
    assert r1.best_val == min(h["val_loss"] for h in r1.history)


@pytest.mark.parametrize("at_step, how", [(12, "raise"), (15, "raise"), (15, signal.SIGINT), (9, signal.SIGTERM)])
def test_resume_after_interrupt_is_exact(tmp_path, at_step, how):
    model = Tiny()
    ref = fit(model, *loaders(), masked_mse_loss, CFG, progress=False)
    ref_w = weights(model)

    def interrupting(y_hat, batch, ctx):
        if ctx.training and ctx.step == at_step:
            if how == "raise":
                raise KeyboardInterrupt
            os.kill(os.getpid(), how)  # handled: stop after this step
        return masked_mse_loss(y_hat, batch, ctx)

    ckpt = tmp_path / "fit.pt"
    with pytest.raises(KeyboardInterrupt):
        fit(Tiny(), *loaders(), interrupting, CFG, ckpt_path=ckpt, progress=False)
    saved = torch.load(ckpt, weights_only=False)
    assert saved["state"]["step"] == at_step + (how != "raise")
    assert saved["state"]["epoch"] == (at_step + (how != "raise")) // 6
    model = Tiny(seed=99)  # different init: the checkpoint must win
    res = fit(model, *loaders(), masked_mse_loss, CFG, ckpt_path=ckpt, progress=False)
    assert same(weights(model), ref_w)
    assert strip(res.history) == strip(ref.history) and res.steps == ref.steps
    again = fit(Tiny(seed=5), *loaders(), masked_mse_loss, CFG, ckpt_path=ckpt, progress=False)
    assert again.steps == ref.steps and strip(again.history) == strip(ref.history)  # finished: no training


def test_budget_stops_saves_and_resumes(tmp_path):
    data, vdata = MapData(24), MapData(8, 100)

    def mk():
        return epoch_loader(data, 4, True, seed=1), epoch_loader(vdata, 4, False, seed=1)

    order = []

    def recording(y_hat, batch, ctx):
        if ctx.training:
            order.append(batch.t.tolist())
        return masked_mse_loss(y_hat, batch, ctx)

    model = Tiny()
    ref = fit(model, *mk(), recording, CFG, progress=False)
    ref_w = weights(model)
    assert order[:6] != order[6:12] and sorted(i for b in order[:6] for i in b) == list(range(24))  # reshuffled per epoch
    ckpt = tmp_path / "b.pt"
    first = fit(Tiny(), *mk(), masked_mse_loss, CFG, ckpt_path=ckpt, budget_s=1e-9, progress=False)
    assert first.stop_reason == "budget" and first.steps == 1 and ckpt.is_file()
    model = Tiny()
    res = fit(model, *mk(), masked_mse_loss, CFG, ckpt_path=ckpt, progress=False)
    assert same(weights(model), ref_w) and strip(res.history) == strip(ref.history)


def test_checkpoint_config_mismatch_is_refused(tmp_path):
    ckpt = tmp_path / "c.pt"
    fit(Tiny(), *loaders(), masked_mse_loss, TrainConfig(epochs=1, batch_size=4, bf16=False),
        ckpt_path=ckpt, progress=False)
    with pytest.raises(ValueError, match="same config"):
        fit(Tiny(), *loaders(), masked_mse_loss, TrainConfig(epochs=2, batch_size=4, bf16=False),
            ckpt_path=ckpt, progress=False)


def test_early_stopping_restores_best_weights():
    train = DataLoader(MapData(24), batch_size=4, shuffle=True)
    val = DataLoader(MapData(8, 100, sign=-1.0), batch_size=8)  # learning the train map hurts here
    cfg = TrainConfig(epochs=20, batch_size=4, lr=1e-2, patience=2, seed=0, bf16=False)
    model = Tiny(dropout=0.0)
    res = fit(model, train, val, masked_mse_loss, cfg, progress=False)
    assert res.stopped_early and res.stop_reason == "early_stop"
    assert len(res.history) == res.best_epoch + 1 + cfg.patience
    model.eval()
    batch = next(iter(val))
    with torch.no_grad():
        batch = Batch.from_mapping(batch)
        now = masked_mse_loss(model(batch.x), batch).item()
    assert now == pytest.approx(res.best_val, rel=1e-5)
    assert now < res.history[-1]["val_loss"]


def test_max_steps_steps_per_epoch_log_and_progress(capsys):
    cfg = TrainConfig(epochs=10, batch_size=4, steps_per_epoch=3, max_steps=5, patience=0, bf16=False)
    logged = []
    res = fit(Tiny(), *loaders(), masked_mse_loss, cfg, log=logged.append)
    assert res.steps == 5 and res.stop_reason == "max_steps"
    assert [h["step"] for h in res.history] == [3, 5] and logged == res.history
    assert "epoch 1" in capsys.readouterr().err  # the tqdm bar


def test_divergence_is_reported():
    def nan_loss(y_hat, batch, ctx):
        return masked_mse_loss(y_hat, batch, ctx) * float("nan")

    with pytest.raises(FloatingPointError, match="diverged"):
        fit(Tiny(), *loaders(), nan_loss, TrainConfig(epochs=1, batch_size=4, bf16=False), progress=False)


class HintLoss(nn.Module):
    """Truth MSE + output matching + a FitNets-style hint through a trained adapter."""

    want_features = True

    def __init__(self) -> None:
        super().__init__()
        self.adapter = nn.Conv2d(8, 8, 1)
        self.seen = []

    def forward(self, y_hat, batch, ctx):
        self.seen.append(ctx)
        assert ctx.lat_weights.shape == (1, 1, H, W)  # the (1, 1, h, w) form losses.py takes
        hint = (self.adapter(ctx.features[0]) - ctx.teacher_features[0]).pow(2).mean()
        return masked_mse_loss(y_hat, batch, ctx) + (y_hat - ctx.teacher_out).pow(2).mean() + hint


def test_live_teacher_features_and_loss_module_are_trained(tmp_path):
    teacher = Tiny(seed=7, dropout=0.0).train()
    t_before = weights(teacher)
    loss = HintLoss()
    a_before = weights(loss)
    cfg = TrainConfig(epochs=1, batch_size=4, bf16=False, lr=1e-2)
    fit(Tiny(), *loaders(), loss, cfg, teacher=teacher, lat_weights=LAT, ckpt_path=tmp_path / "h.pt",
        progress=False)
    ctx = loss.seen[0]
    assert ctx.teacher_out.shape == (4, 1, H, W) and not ctx.teacher_out.requires_grad
    assert ctx.features[0].shape == (4, 8, H, W) and ctx.want_features
    assert not teacher.training and same(weights(teacher), t_before)
    assert not same(weights(loss), a_before)  # adapter is in the optimizer
    saved = torch.load(tmp_path / "h.pt", weights_only=False)
    assert same(saved["loss_modules"][0], weights(loss))


def test_lazily_created_adapters_are_refused():
    class Lazy(nn.Module):
        def forward(self, y_hat, batch, ctx):
            if not hasattr(self, "adapter"):
                self.adapter = nn.Conv2d(1, 1, 1)
            return masked_mse_loss(self.adapter(y_hat), batch, ctx)

    with pytest.raises(ValueError, match="build adapters before fit"):
        fit(Tiny(), *loaders(), Lazy(), TrainConfig(epochs=1, batch_size=4, bf16=False), progress=False)


def test_offline_teacher_pred_reaches_the_context():
    class WithTeacher(MapData):
        def __getitem__(self, i):
            return dict(super().__getitem__(i), teacher_pred=torch.full((1, H, W), float(i)))

    seen = []

    def loss(y_hat, batch, ctx):
        seen.append(ctx.teacher_out is batch.teacher_pred)
        return masked_mse_loss(y_hat, batch, ctx)

    fit(Tiny(), DataLoader(WithTeacher(8), batch_size=4), None, loss,
        TrainConfig(epochs=1, batch_size=4, bf16=False), progress=False)
    assert seen and all(seen)


def test_co_model_mutual_learning_in_one_loop():
    seen = []

    def mutual(y_hat, batch, ctx):
        seen.append(ctx.other_out)
        return masked_mse_loss(y_hat, batch, ctx) + 0.5 * (y_hat - ctx.other_out).pow(2).mean()

    a, b = Tiny(seed=1), Tiny(seed=2)
    wa, wb = weights(a), weights(b)
    res = fit(a, *loaders(), mutual, TrainConfig(epochs=2, batch_size=4, bf16=False, patience=0),
              co_model=b, progress=False)
    assert not same(weights(a), wa) and not same(weights(b), wb)
    assert all(o is not None and not o.requires_grad for o in seen)
    assert {"co_train_loss", "co_val_loss"} <= set(res.history[0])


def test_bad_batches_fail_early():
    class FloatMask(MapData):
        def __getitem__(self, i):
            return dict(super().__getitem__(i), mask=self.mask[i].float())

    class NanX(MapData):
        def __getitem__(self, i):
            return dict(super().__getitem__(i), x=self.x[i] * float("nan"))

    cfg = TrainConfig(epochs=1, batch_size=4, bf16=False)
    with pytest.raises(ValueError, match="mask must be bool"):
        fit(Tiny(), DataLoader(FloatMask(8), batch_size=4), None, masked_mse_loss, cfg, progress=False)
    with pytest.raises(ValueError, match="NaN"):
        fit(Tiny(), DataLoader(NanX(8), batch_size=4), None, masked_mse_loss, cfg, progress=False)
    with pytest.raises(ValueError, match="lat_weights"):
        fit(Tiny(), DataLoader(MapData(8), batch_size=4), None, masked_mse_loss, cfg,
            lat_weights=-np.ones(H), progress=False)
    with pytest.raises(ValueError, match="do not fit the grid"):
        fit(Tiny(), DataLoader(MapData(8), batch_size=4), None, masked_mse_loss, cfg,
            lat_weights=np.ones(H + 1), progress=False)


def test_predict_and_land_compaction():
    model = Tiny().train()
    loader = DataLoader(MapData(10), batch_size=4)
    full = predict(model, loader)
    assert full.shape == (10, 1, H, W) and full.dtype == np.float16 and model.training
    land = np.zeros((H, W), bool)
    land[1:4, 2:7] = True
    comp = predict_land(model, loader, land)
    assert comp.shape == (10, int(land.sum())) and comp.dtype == np.float16
    np.testing.assert_array_equal(comp, full[:, 0][:, land])
    back = unpack_land(comp, land)
    assert np.isnan(back[:, :, ~land]).all()
    np.testing.assert_array_equal(back[:, 0][:, land], comp.astype(np.float32))
    with pytest.raises(ValueError, match="land cells"):
        unpack_land(comp, np.ones((H, W), bool))


def test_save_load_predictions_chunks_and_checksums(tmp_path):
    arr = np.random.default_rng(0).standard_normal((50, 300)).astype(np.float16)  # 600 B per row
    chunks = save_predictions(tmp_path / "teacher_test", arr, max_bytes=4096)
    assert len(chunks) == 9  # (4096 - 256) // 600 = 6 rows per chunk
    assert all(os.path.getsize(c["path"]) <= 4096 for c in chunks)
    manifest = tmp_path / "teacher_test.manifest.json"
    meta = json.loads(manifest.read_text())
    assert meta["shape"] == [50, 300] and meta["dtype"] == "float16"
    np.testing.assert_array_equal(load_predictions(manifest), arr)
    np.testing.assert_array_equal(load_predictions(chunks), arr)
    save_predictions(tmp_path / "teacher_test", arr[:6], max_bytes=4096)  # shorter: stale parts removed
    assert len(list(tmp_path.glob("teacher_test.part*.npy"))) == 1
    chunks = save_predictions(tmp_path / "teacher_test", arr, max_bytes=4096)
    with open(chunks[3]["path"], "r+b") as fh:
        fh.seek(-2, 2)
        fh.write(b"\x00\x01")
    with pytest.raises(ValueError, match="sha256 mismatch"):
        load_predictions(manifest)
    os.remove(chunks[4]["path"])
    with pytest.raises(FileNotFoundError, match="missing"):
        load_predictions(chunks[4:])
    with pytest.raises(ValueError, match="max_bytes"):
        save_predictions(tmp_path / "big", arr, max_bytes=512)
    assert math.isfinite(float(load_predictions(chunks[:3]).astype(np.float32).sum()))
