"""The headroom check: is there something to distil?

Scratch AFNO models of roughly 10k to 10M parameters are trained on NDVI with the
students' budget; the teacher must beat the best small one by more than the seed spread,
and skill must rise with size. Each size's learning rate is searched as every arm's is
(:func:`ecodistill.training.lr_search.search_lr`, seed 0, validation years), then every seed is
trained at it and scored on the test years.

``python -m ecodistill matrix --stages headroom`` or :func:`run_headroom`.
Explained in book/generated/02_teacher.ipynb ("Headroom").
"""
from __future__ import annotations

from dataclasses import asdict, replace

from ..config import StudentConfig
from ..models import build_student
from ..store import runs
from ..store.integrity import read_json
from ..training.loop import fit
from ..training.lr_search import search_lr
from ..training.objectives import truth_loss
from ..utils import seed_everything
from .workspace import Workspace, open_workspace


def headroom_sizes(profile: str) -> list[StudentConfig]:
    """Scratch AFNO sizes of roughly 10k, 100k, 1M and 10M parameters (fewer at small profiles)."""
    widths = {"smoke": [(8, 1, 2), (16, 1, 2), (32, 2, 4)],
              "cpu": [(16, 2, 2), (48, 2, 4), (128, 3, 8)],
              "full": [(16, 2, 2), (64, 2, 4), (176, 3, 8), (512, 4, 8)]}[profile]
    return [StudentConfig(f"afno_w{w}d{d}", "afno", width=w, depth=d, num_blocks=b) for w, d, b in widths]


def headroom_run(ws: Workspace, scfg: StudentConfig, seed: int, lr_scale: float, loss: str = "mse",
                 splits: tuple[str, ...] = ("test",)) -> tuple[str, float]:
    """Train one headroom model with the truth loss ``loss`` and record it (skipped when its
    rows exist); returns ``(run_id, validation RMSE)`` (NaN when ``splits`` has no ``val``)."""
    cfg = ws.train_cfg("student_train", seed, lr=ws.cfg.student_train.lr * lr_scale)
    cfg = replace(cfg, steps_per_epoch=ws.steps_per_epoch(cfg))
    tag = "final" if "test" in splits else "tune"
    config = ws.run_config(role="headroom", student=asdict(scfg), seed=seed, train=asdict(cfg),
                           loss=loss, splits=list(splits))
    name = f"headroom-{scfg.name}-{tag}"
    run_id = runs.make_run_id(name, config)
    if not runs.has_run(ws.profile, run_id):
        seed_everything(seed)
        model = build_student(scfg, ws.in_chans, 1, ws.img_size)
        result = fit(model, ws.train_loader(cfg), ws.val_loader(cfg), truth_loss(loss), cfg,
                     lat_weights=ws.lat_weights, device=ws.device, progress=False)
        rows = [r for split in splits for r in ws.evaluate(ws.predict(model, split), split, monthly=False)]
        n_params, flops = ws.model_cost(model)
        ws.record(name, {"run_id": run_id, "kind": "student", "init": "scratch", "method": "headroom",
                         "family": "afno", "n_params": n_params, "flops_per_map": flops, "seed": seed},
                  rows, config, result.history)
    val = runs.read_runs(ws.profile, run_id=run_id, split="val", region="global", metric="rmse")
    return run_id, float(val.value.iloc[0]) if len(val) else float("nan")


def run_headroom(profile: str, seeds: tuple[int, ...] | None = None, device: str | None = None,
                 sizes: list[StudentConfig] | None = None) -> list[str]:
    """Search each size's learning rate (seed 0), then train every seed at it; returns run ids.

    The truth loss is the scratch arm's selected one (``results/<profile>/selection.json``),
    MSE before a selection exists, and the search starts from the scratch arm's tuned
    learning-rate multiple for the AFNO family (1 before a selection) and widens as far as
    every arm's: headroom models are tuned as the scratch students are.
    """
    ws = open_workspace(profile, device)
    path = runs.selection_path(profile)
    selection = read_json(path, "selection record", "rerun the matrix's select stage") if path.is_file() else {}
    loss = selection.get("scratch_loss", "mse")
    centre = float(selection.get("lr_searches", {}).get("afno", {}).get("scratch", {}).get("best", 1.0))
    seeds = seeds or ws.cfg.seeds
    ids = []
    for scfg in sizes or headroom_sizes(profile):
        search = search_lr(lambda m, s=scfg: headroom_run(ws, s, 0, m, loss, splits=("val",))[1], centre=centre)
        ids += [headroom_run(ws, scfg, seed, search.best, loss)[0] for seed in seeds]
    return ids
