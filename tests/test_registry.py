"""A new loss and a new student family are one decorated definition each (here, in this test
file only): configs, objectives, the command line, a distillation run and chapter 3 use them."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ecodistill import losses
from ecodistill.config import DistillConfig, StudentConfig, get_profile
from ecodistill.losses import register_loss
from ecodistill.models import check_student, register_family, student_config
from ecodistill.store import runs

HERE = Path(__file__).resolve().parent


def _pseudo_huber(pred, target, mask, lat_weights=None):
    return losses.masked_mean((1 + (pred - target) ** 2).sqrt() - 1, mask, lat_weights)


@register_loss("toy_pseudo_huber", kind="output", truth=_pseudo_huber, distance="pseudo-Huber error",
               formula="L = {a}·P(s, t) + {b}·P(s, y), P the pseudo-Huber error")
def toy_pseudo_huber(student, teacher, y, mask_truth, mask_teacher=None, alpha=0.5, lat_weights=None):
    mask_teacher = mask_truth if mask_teacher is None else mask_teacher
    return (alpha * _pseudo_huber(student, teacher.detach(), mask_teacher, lat_weights)
            + (1 - alpha) * _pseudo_huber(student, y, mask_truth, lat_weights))


@register_family("toy1x1")
class Toy1x1(nn.Module):
    """One 1x1 convolution per layer: the smallest student that follows the contract."""

    def __init__(self, in_chans: int, out_chans: int, width: int = 4, depth: int = 1,
                 tanh_head: bool = False) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.arch = {"in_chans": in_chans, "out_chans": out_chans, "width": width, "depth": depth,
                     "tanh_head": tanh_head}
        self.body = nn.Sequential(nn.Conv2d(in_chans, width, 1), nn.ReLU())
        self.head = nn.Conv2d(width, out_chans, 1)

    def forward(self, x, return_features: bool = False):
        h = self.body(x)
        y = self.head(h)
        return (y, [h]) if return_features else y


def test_registered_names_reach_configs_objectives_and_the_cli():
    from ecodistill.cli import build_parser
    from ecodistill.training.objectives import make_objective, objective_text

    assert "toy_pseudo_huber" in losses.OUTPUT_LOSSES and "toy_pseudo_huber" in losses.loss_names(truth=True)
    dcfg = DistillConfig(loss="toy_pseudo_huber", alpha=0.25)
    assert "0.25·P(s, t) + 0.75·P(s, y)" in objective_text(dcfg)
    assert "pseudo-Huber" in objective_text(DistillConfig(loss="toy_pseudo_huber", mode="scratch"))
    batch_y = torch.zeros(1, 1, 2, 2)
    from ecodistill.data import Batch
    from ecodistill.training.objectives import LossContext

    batch = Batch(x=batch_y, y=batch_y, mask=torch.ones(1, 1, 2, 2, dtype=torch.bool), teacher_pred=batch_y)
    loss = make_objective(dcfg)(torch.zeros(1, 1, 2, 2), batch, LossContext())
    assert loss.item() == pytest.approx(0.0)
    assert StudentConfig("t", "toy1x1").family == "toy1x1"
    with pytest.raises(ValueError, match="toy1x1"):  # the error lists the registered families
        check_student(StudentConfig("t", "no-such-family"))
    with pytest.raises(ValueError, match="no student 'no-such-family' in profile 'smoke'.*toy1x1"):
        student_config(get_profile("smoke"), "no-such-family")
    assert student_config(get_profile("smoke"), "toy1x1").family == "toy1x1"
    help_text = build_parser()._subparsers._group_actions[0].choices["distill"].format_help()
    assert "toy_pseudo_huber" in help_text


def test_one_distillation_with_the_toy_loss_and_student(tmp_path, monkeypatch):
    from ecodistill.experiments.distill import train_student
    from ecodistill.experiments.gpu import cap_steps
    from ecodistill.experiments.teacher import run_teacher_pipeline
    from ecodistill.experiments.workspace import open_workspace
    from ecodistill.models import load_checkpoint

    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    ws = open_workspace("smoke", "cpu")
    saved = ws.cfg
    try:
        cap_steps(ws, 2)
        run_teacher_pipeline("smoke", "cpu", with_scratch=False)
        scfg = ws.cfg.student("toy1x1")
        res = train_student(ws, scfg, DistillConfig(loss="toy_pseudo_huber", alpha=0.5), 0, tag="final")
        frame = runs.read_runs("smoke", run_id=res.run_id, split="test", region="global")
        assert set(frame.method) == {"kd-toy_pseudo_huber-offline"} and set(frame.family) == {"toy1x1"}
        assert np.isfinite(frame.value).all()
        model, meta = load_checkpoint(tmp_path / "smoke" / "students" / f"{res.run_id}.pt")
        assert type(model).__name__ == "Toy1x1" and meta["run"]["distill"]["loss"] == "toy_pseudo_huber"
    finally:
        ws.cfg = saved


@pytest.mark.slow
def test_chapter_3_runs_with_the_toy_loss_and_student(tmp_path, monkeypatch):
    from ecodistill import book

    monkeypatch.setenv("ECODISTILL_PLUGINS", "test_registry")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    record = book.execute_notebook("03_distill", "smoke", {"student": "toy1x1", "loss": "toy_pseudo_huber"},
                                   output_dir=tmp_path)
    assert record["status"] == "ok"
    text = (tmp_path / "03_distill.ipynb").read_text()
    assert "toy_pseudo_huber" in text and "pseudo-Huber" in text
    assert list((tmp_path / "smoke" / "runs").glob("kd-toy_pseudo_huber-offline-toy1x1_from_teacher-*.csv"))
