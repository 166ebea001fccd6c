r"""What does pre-training teach? A linear probe from the frozen pre-trained teacher to
root-zone water.

Pre-training is only worth distilling from if its features hold what drives vegetation.
The probe freezes a pre-trained AFNO (either variant of :mod:`ecodistill.data.tasks`: the
FourCastNet-faithful ``atmosphere`` forecaster, which never sees the land state, or the
``land`` forecaster of the atmosphere and the land state 10 days ahead), takes its last
block's token features :math:`f \in \mathbb{R}^{D}` per patch, and fits a ridge map to the
simulator's root-zone water availability at the patch's :math:`p \times p` cells (the
quantity that drives NDVI; a diagnostic no model is given) on the training years:
:math:`\hat w = W f + b`, :math:`W = \arg\min \lVert W F - Y\rVert^2 + \lambda n \lVert W \rVert^2`.
Its skill on the test years (R² over land cells of the NDVI domain) is set beside the same
probe on the patch's raw inputs: what the forecaster's features add to what its inputs
already say linearly.

``python -m ecodistill probe --profile cpu`` writes ``results/<profile>/teacher/probe.csv``.
Explained in book/generated/02_teacher.ipynb ("What pre-training teaches").
"""
from __future__ import annotations

import argparse
import io

import numpy as np
import pandas as pd
import torch

from ..config import PROFILES
from ..data.loader import DayDataset
from ..data.tasks import PRETRAIN_VARIANTS, Forecast, pretrain_task
from ..utils import atomic_write_text, results_dir
from .teacher import pretrain
from .workspace import Workspace, open_workspace

TARGET = "rootzone_availability"
LAMBDAS = (1e-4, 1e-2, 1.0)
VARIANT_INPUTS = {"atmosphere": "anchor", "land": "era5"}


def probe_path(profile: str):
    return results_dir(profile) / "teacher" / "probe.csv"


def _patches(a: np.ndarray, p: int) -> np.ndarray:
    """``(n, c, H, W)`` -> ``(n * H/p * W/p, c * p * p)`` rows, one per patch."""
    n, c, h, w = a.shape
    a = a.reshape(n, c, h // p, p, w // p, p).transpose(0, 2, 4, 1, 3, 5)
    return a.reshape(n * (h // p) * (w // p), c * p * p)


def probe_rows(ws: Workspace, task: Forecast, model: torch.nn.Module | None, split: str,
               days: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(features, target, valid)`` per patch of ``days``: the model's last-block features
    (or, with ``model=None``, the raw inputs of the forecast) and the root-zone water of the
    patch's cells with their validity (land cells of the NDVI domain)."""
    data = DayDataset(ws.prep, split, task=task, weather_only=True)
    pos = np.searchsorted(data.days, days)
    x = data.batch(pos)["x"]
    p = ws.cfg.teacher.patch_size
    if model is None:
        feats = _patches(x, p)
    else:
        with torch.no_grad():
            _, features = model(torch.from_numpy(x), return_features=True)
        f = features[-1].numpy()  # (n, d, H/p, W/p)
        feats = f.transpose(0, 2, 3, 1).reshape(-1, f.shape[1])
    y = ws.prep.reader.read(TARGET, np.sort(data.days[pos]))[:, None]
    valid = np.isfinite(y) & ws.prep.ndvi_domain
    return feats.astype(np.float64), _patches(np.nan_to_num(y), p), _patches(valid.astype(np.float64), p) > 0


def _ridge(f: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    a = np.concatenate([f, np.ones((f.shape[0], 1))], axis=1)
    eye = np.eye(a.shape[1])
    eye[-1, -1] = 0.0
    return np.linalg.solve(a.T @ a + lam * a.shape[0] * eye, a.T @ y)


def _predict(f: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.concatenate([f, np.ones((f.shape[0], 1))], axis=1) @ w


def _r2(pred: np.ndarray, y: np.ndarray, valid: np.ndarray) -> float:
    t, e = y[valid], pred[valid]
    return float(1 - ((e - t) ** 2).sum() / ((t - t.mean()) ** 2).sum())


def fit_probe(ws: Workspace, task: Forecast, model: torch.nn.Module | None, n_days: int = 300,
              seed: int = 0) -> dict[str, float]:
    """Validation-chosen ridge probe on ``n_days`` training days; R² on the validation and test years."""
    rng = np.random.default_rng(seed)
    split_days = {s: ws.prep.split_days(s, task=task) for s in ("train", "val", "test")}
    rows = {}
    for split, days in split_days.items():
        take = days if split != "train" else np.sort(rng.choice(days, min(n_days, days.size), replace=False))
        parts = [probe_rows(ws, task, model, split, chunk) for chunk in np.array_split(take, max(1, take.size // 32))]
        rows[split] = tuple(np.concatenate(z) for z in zip(*parts))
    f, y, _ = rows["train"]
    mean, std = f.mean(0), f.std(0) + 1e-8
    weights = {lam: _ridge((f - mean) / std, y, lam) for lam in LAMBDAS}
    fv, yv, vv = rows["val"]
    best = max(LAMBDAS, key=lambda lam: _r2(_predict((fv - mean) / std, weights[lam]), yv, vv))
    out = {"lambda": best}
    for split in ("val", "test"):
        fs, ys, vs = rows[split]
        out[f"r2_{split}"] = _r2(_predict((fs - mean) / std, weights[best]), ys, vs)
    return out


def run_probe(profile: str, variants: tuple[str, ...] = ("atmosphere", "land"), device: str | None = None,
              seed: int = 0) -> pd.DataFrame:
    """The probe for each pre-training variant (the frozen forecaster, pre-trained or resumed
    from its cache) and for its raw inputs; writes and returns the table."""
    rows = []
    for variant in variants:
        ws = open_workspace(profile, device, inputs=VARIANT_INPUTS[variant], history="today")
        task = pretrain_task(variant, ws.prep.weather_vars, ws.cfg.land_lead)
        model, _ = pretrain(ws, seed, task=task)
        model.eval().cpu()
        for features, m in (("pre-trained", model), ("raw inputs", None)):
            rows.append({"variant": variant, "features": features, "dataset_hash": ws.dataset_hash,
                         **fit_probe(ws, task, m, seed=seed)})
    table = pd.DataFrame(rows)
    buf = io.StringIO()
    table.to_csv(buf, index=False, float_format="%.6g")
    atomic_write_text(probe_path(profile), buf.getvalue())
    return table


def _cmd_probe(args: argparse.Namespace) -> int:
    print(run_probe(args.profile, tuple(args.variants), args.device).to_string(index=False))
    return 0


def register_cli(subparsers) -> None:
    """Add ``probe``."""
    p = subparsers.add_parser("probe", help="linear probe: does pre-training teach root-zone water?",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="smoke", choices=PROFILES)
    p.add_argument("--variants", nargs="+", default=["atmosphere", "land"],
                   choices=[v for v in PRETRAIN_VARIANTS if v != "next_day"])
    p.add_argument("--device", default=None)
    p.set_defaults(func=_cmd_probe)
