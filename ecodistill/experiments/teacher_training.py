"""Training a teacher: pre-training, adaptation, from scratch, its predictions and its run.

The building blocks of :mod:`ecodistill.experiments.teacher` (the pipeline) and
:mod:`ecodistill.experiments.teacher_choice` (the fair choice of the teacher).
Explained in book/generated/02_teacher.ipynb.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..config import to_dict
from ..data.tasks import Forecast
from ..models import adapt_to_new_task, afno_from_config
from ..training.distributed import is_main_process
from ..training.loop import FitResult, fit
from ..training.objectives import truth_loss
from ..utils import seed_everything
from .teacher_files import PRED_SPLITS
from .workspace import Workspace


def pretrain(ws: Workspace, seed: int = 0, budget_s: float | None = None, task: Forecast | None = None,
             **fit_options) -> tuple[Any, FitResult]:
    """Forecasting on the training years (``task``, default :attr:`Workspace.pretrain_task`:
    today's fields -> each target at its lead), ``(b, n_inputs, h, w) -> (b, n_targets, h, w)``.

    The cached state depends on the forecast, the architecture, the training settings and the
    years only, so every history setting of the same inputs shares one pre-training."""
    seed_everything(seed)
    task = task or ws.pretrain_task
    model = afno_from_config(ws.cfg.teacher, len(task.inputs), len(task.targets), ws.img_size, tanh_head=False)
    cfg = ws.train_cfg("pretrain", seed)
    train = ws.train_loader(cfg, task=task, weather_only=True)
    val = ws.val_loader(cfg, task=task, weather_only=True)
    data = ws.cfg.data
    key = {"train": cfg, "teacher": to_dict(ws.cfg.teacher), "task": [task.inputs, task.targets],
           "years": [data.train_years, data.val_years, data.extra_years], "world": data.world}
    result = fit(model, train, val, truth_loss("mse"), cfg, lat_weights=ws.lat_weights,
                 ckpt_path=ws.checkpoint_path(f"pretrain-s{seed}-state", key, whole_config=False),
                 device=ws.device, budget_s=budget_s, **fit_options)
    return model, result


def train_on_ndvi(ws: Workspace, model, seed: int, name: str, budget_s: float | None = None,
                  lr_scale: float = 1.0, label_years: int | None = None, epochs_factor: float = 1.0,
                  **fit_options) -> FitResult:
    """Fit an NDVI model (adapted or scratch teacher) with the profile's ``adapt`` settings
    (learning rate times ``lr_scale``, epochs times ``epochs_factor``; labels of the last
    ``label_years`` training years only)."""
    epochs = max(1, round(ws.cfg.adapt.epochs * epochs_factor))
    cfg = ws.train_cfg("adapt", seed, lr=ws.cfg.adapt.lr * lr_scale, epochs=epochs)
    train = ws.train_loader(cfg, label_years=label_years)
    key = [cfg, label_years]
    return fit(model, train, ws.val_loader(cfg), truth_loss("mse"), cfg, lat_weights=ws.lat_weights,
               ckpt_path=ws.checkpoint_path(f"{name}-s{seed}-state", key), device=ws.device, budget_s=budget_s,
               **fit_options)


def adapt(ws: Workspace, pretrained, seed: int = 0, freeze_blocks: int = 0, budget_s: float | None = None,
          label_years: int | None = None, lr_scale: float = 1.0, epochs_factor: float = 1.0,
          **fit_options) -> tuple[Any, FitResult]:
    """New first layer + new head on a copy of the pre-trained blocks, then fine-tuning on NDVI."""
    seed_everything(seed)
    model = adapt_to_new_task(pretrained, ws.in_chans, 1, freeze_blocks=freeze_blocks,
                              tanh_head=ws.cfg.teacher.tanh_head)
    name = "adapted" if label_years is None else f"adapted-y{label_years}"
    return model, train_on_ndvi(ws, model, seed, name, budget_s, lr_scale=lr_scale, label_years=label_years,
                                epochs_factor=epochs_factor, **fit_options)


def scratch_teacher(ws: Workspace, seed: int = 0, budget_s: float | None = None, lr_scale: float = 1.0,
                    epochs_factor: float = 1.0, label_years: int | None = None) -> tuple[Any, FitResult]:
    """The teacher's architecture trained on NDVI from random weights (the adaptation's settings)."""
    seed_everything(seed)
    model = afno_from_config(ws.cfg.teacher, ws.in_chans, 1, ws.img_size)
    return model, train_on_ndvi(ws, model, seed, f"scratch-teacher-lr{lr_scale:g}", budget_s, lr_scale,
                                label_years=label_years, epochs_factor=epochs_factor)


def predict_splits(ws: Workspace, model, splits: tuple[str, ...] = PRED_SPLITS) -> dict[str, np.ndarray]:
    """``split -> (n_days, 1, h, w)`` predictions of every split present, each made once
    (``extra``: the unlabelled years), for the rows and for the students alike."""
    return {split: ws.predict(model, split, unlabeled=(split == "extra"))
            for split in splits if ws.prep.has_split(split)}


def record_teacher(ws: Workspace, model, init: str, seed: int, result: FitResult,
                    pretrain_result: FitResult | None = None, preds: dict | None = None, **identity) -> str:
    """Evaluate a teacher on the validation and test years and write its run.

    Its run id hashes the configuration *and* the steps actually trained (a budget-cut or
    interrupted teacher is a different run), plus ``identity`` (e.g. ``label_years``,
    ``lr_scale``). Under torchrun only rank 0 evaluates and writes (others return "")."""
    if not is_main_process():
        return ""
    preds = preds or predict_splits(ws, model, ("val", "test"))
    rows = [r for split in ("val", "test") for r in ws.evaluate(preds[split], split)]
    n_params, flops = ws.model_cost(model)
    trained = {"steps": result.steps, "planned_steps": result.planned_steps, "stop_reason": result.stop_reason}
    if pretrain_result is not None:
        trained["pretrain"] = {"steps": pretrain_result.steps, "planned_steps": pretrain_result.planned_steps,
                               "stop_reason": pretrain_result.stop_reason}
    config = ws.run_config(role="teacher", init=init, seed=seed, trained=trained, **identity)
    name = f"teacher-afno_{init}" + (f"-y{identity['label_years']}" if identity.get("label_years") else "")
    history = {"fit": result.history, "pretrain": pretrain_result.history if pretrain_result else []}
    run_id = ws.record(name, {"kind": "teacher", "init": init, "method": f"afno-{init}", "family": "afno",
                              "n_params": n_params, "flops_per_map": flops, "seed": seed,
                              "label_years": identity.get("label_years") or -1},
                       rows, config, history)
    ws.save_error_map(run_id, preds["test"])
    return run_id
