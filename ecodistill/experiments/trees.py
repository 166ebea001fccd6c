"""A tree-ensemble baseline: LightGBM on the same per-pixel inputs and history as the networks.

Ecosystem upscaling (FLUXCOM, Tramontana et al. 2016) uses tree ensembles, so a field
scientist asks first whether a gradient-boosting model does as well as a network. Each
pixel-day of the NDVI domain is one row of the model's input channels at that pixel
(today's fields, their history, static maps, calendar: :attr:`Prepared.input_channels`)
and the observed NDVI its target. The model (``lightgbm``, one thread, deterministic) is
tuned on the validation years -- leaves and learning rate on a small grid, the number of
trees by early stopping -- then scored on the test years like every network.

``kind=baseline, method=lightgbm``; its parameters are counted as 3 numbers per split
(feature, threshold, gain is not needed: feature and threshold) and one per leaf, its
cost per map as one comparison per tree level per pixel. :func:`time_tree` measures its
latency for one map on one thread (``timings.csv``, runtime ``lightgbm``): it runs on a Pi.

Explained in book/generated/02_data.ipynb ("How hard is the task?") and 04_results.ipynb.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import evaluate
from ..config import to_dict
from ..data.loader import DayDataset, split_arrays
from ..data.prepare import Prepared
from ..store import runs
from ..utils import cache_dir, git_commit, library_versions
from .workspace import Workspace, hardware_name

GRID = ({"num_leaves": 31, "learning_rate": 0.1}, {"num_leaves": 127, "learning_rate": 0.1},
        {"num_leaves": 127, "learning_rate": 0.03})
#: Per profile: training rows, the most trees, the settings tried (smoke: a quick check only).
BUDGETS = {"smoke": (20_000, 150, GRID[:1]), "cpu": (300_000, 1500, GRID), "full": (1_000_000, 3000, GRID)}


def _lightgbm():
    try:
        import lightgbm
    except ImportError as err:  # pragma: no cover - installed by requirements.txt
        raise ImportError("the tree baseline needs lightgbm: pip install lightgbm==4.7.0") from err
    return lightgbm


def pixel_rows(prep: Prepared, split: str, max_rows: int | None = None, seed: int = 0) -> tuple[np.ndarray, ...]:
    """``(x (rows, c_in) float32, y (rows,), day (rows,), cell (rows,))``: the valid pixel-days
    of ``split`` in the NDVI domain, at most ``max_rows`` of them (days drawn evenly)."""
    ds = DayDataset(prep, split)
    cells = np.flatnonzero(prep.ndvi_domain.ravel())
    n_days = len(ds)
    per_day = max(1, int(0.6 * cells.size))  # about the valid share of a day
    take = n_days if max_rows is None else max(1, min(n_days, max_rows // per_day))
    pos = np.unique(np.linspace(0, n_days - 1, take).round().astype(np.int64))
    xs, ys, days, where = [], [], [], []
    for chunk in np.array_split(pos, max(1, pos.size // 32)):
        b = ds.batch(chunk)
        x = b["x"].reshape(len(chunk), b["x"].shape[1], -1)[:, :, cells].transpose(0, 2, 1)
        y = b["y"].reshape(len(chunk), -1)[:, cells]
        ok = b["mask"].reshape(len(chunk), -1)[:, cells]
        xs.append(x[ok])
        ys.append(y[ok])
        days.append(np.broadcast_to(b["t"][:, None], ok.shape)[ok])
        where.append(np.broadcast_to(cells[None], ok.shape)[ok])
    x, y = np.concatenate(xs), np.concatenate(ys)
    if max_rows is not None and y.size > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(y.size, max_rows, replace=False))
        return x[keep], y[keep], np.concatenate(days)[keep], np.concatenate(where)[keep]
    return x, y, np.concatenate(days), np.concatenate(where)


def fit_tree(prep: Prepared, seed: int = 0, grid=GRID, train_rows: int = 300_000, max_trees: int = 1500):
    """Tune and fit on the training years; returns ``(booster, trials)`` where ``trials`` holds
    each setting's validation RMSE and best number of trees."""
    lgb = _lightgbm()
    x, y, _, _ = pixel_rows(prep, "train", train_rows, seed)
    xv, yv, _, _ = pixel_rows(prep, "val", train_rows // 3, seed)
    trials, best = [], None
    for setting in grid:
        params = {"objective": "regression", "num_threads": 1, "deterministic": True, "force_row_wise": True,
                  "seed": seed, "verbosity": -1, "min_data_in_leaf": 100, "feature_fraction": 0.8,
                  "bagging_fraction": 0.8, "bagging_freq": 1, **setting}
        booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=max_trees,
                            valid_sets=[lgb.Dataset(xv, yv)],
                            callbacks=[lgb.early_stopping(50, verbose=False)])
        rmse = float(np.sqrt(np.mean((booster.predict(xv, num_iteration=booster.best_iteration) - yv) ** 2)))
        trials.append({**setting, "val_rmse": rmse, "trees": int(booster.best_iteration)})
        if best is None or rmse < best[0]:
            best = (rmse, booster)
    return best[1], trials


def predict_maps(booster, prep: Prepared, split: str) -> np.ndarray:
    """``(n, 1, h, w)`` predictions over the NDVI domain of every day of ``split`` (NaN off it)."""
    ds = DayDataset(prep, split)
    cells = np.flatnonzero(prep.ndvi_domain.ravel())
    out = np.full((len(ds), prep.land_mask.size), np.nan, np.float32)
    for chunk in np.array_split(np.arange(len(ds)), max(1, len(ds) // 32)):
        x = ds.batch(chunk)["x"].reshape(len(chunk), len(prep.input_channels), -1)[:, :, cells]
        flat = x.transpose(0, 2, 1).reshape(-1, x.shape[1])
        out[chunk[:, None], cells[None]] = booster.predict(flat, num_iteration=booster.best_iteration).reshape(
            len(chunk), cells.size)
    return out.reshape(len(ds), 1, *prep.land_mask.shape)


def tree_size(booster) -> tuple[int, float]:
    """``(parameters, comparisons per pixel)``: 2 per split (feature, threshold), 1 per leaf;
    the mean depth of the leaves summed over the trees."""
    info = booster.dump_model(num_iteration=booster.best_iteration)["tree_info"]
    params, depth = 0, 0.0
    for tree in info:
        n_leaves = tree["num_leaves"]
        params += 2 * (n_leaves - 1) + n_leaves
        depth += np.log2(max(n_leaves, 2))  # balanced-tree estimate of a leaf's depth
    return params, depth


def time_tree(booster, prep: Prepared, runs_n: int = 5) -> dict:
    """Median and 90th-percentile milliseconds to predict one map (the NDVI domain) on one thread."""
    x = pixel_rows(prep, "test", max_rows=int(prep.ndvi_domain.sum()))[0]
    booster.predict(x[:100], num_iteration=booster.best_iteration, num_threads=1)  # warm up
    times = []
    for _ in range(runs_n):
        start = time.perf_counter()
        booster.predict(x, num_iteration=booster.best_iteration, num_threads=1)
        times.append(1000 * (time.perf_counter() - start))
    return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)), "n": runs_n}


def run_tree(ws: Workspace, seed: int = 0, force: bool = False) -> str:
    """Tune, fit, score (val, test) and time the LightGBM baseline on the workspace's inputs
    and history; returns its run id (skipped when its rows exist)."""
    prep = ws.prep
    train_rows, max_trees, grid = BUDGETS[ws.profile]
    config = ws.run_config(role="baseline", method="lightgbm", seed=seed, grid=list(grid), max_trees=max_trees,
                           train_rows=train_rows, data=to_dict(ws.cfg.data))
    run_id = runs.make_run_id("baseline-lightgbm", config)
    if runs.has_run(ws.profile, run_id) and not force:
        return run_id
    booster, trials = fit_tree(prep, seed, grid, train_rows, max_trees)
    rows = []
    for split in ("val", "test"):
        truth = split_arrays(prep, split)
        pred = np.where(truth["mask"], predict_maps(booster, prep, split), 0.0)
        table = evaluate.per_region(pred, truth["y"], truth["mask"], truth["clim"], prep.lat_weights,
                                    prep.biome, prep.biome_names)
        rows += evaluate.to_rows(table, split)
    n_params, depth = tree_size(booster)
    cells = int(prep.ndvi_domain.sum())
    meta = {"run_id": run_id, "dataset_hash": ws.dataset_hash, "target": "ndvi", "kind": "baseline",
            "init": "scratch", "method": "lightgbm", "family": "tree", "n_params": n_params,
            "flops_per_map": depth * cells, "seed": seed}
    runs.write_run(ws.profile, runs.make_rows(meta, rows), {**config, "trials": trials})
    timing = time_tree(booster, prep)
    runs.write_timings(ws.profile, [{"run_id": run_id, "model": "lightgbm", "kind": "baseline",
                                     "n_params": n_params, "flops_per_map": depth * cells,
                                     "bytes_per_map": 4 * cells * len(prep.input_channels),
                                     "grid": f"{prep.land_mask.shape[0]}x{prep.land_mask.shape[1]}",
                                     "runtime": "lightgbm", "dtype": "fp32", "threads": 1, "batch": 1,
                                     "device": "cpu", "cpu": hardware_name("cpu"),
                                     "versions": str({**library_versions(), "commit": git_commit()}),
                                     **timing}])
    booster.save_model(str(_model_path(ws, run_id)), num_iteration=booster.best_iteration)
    return run_id


def _model_path(ws: Workspace, run_id: str) -> Path:
    path = cache_dir() / ws.profile / "trees" / f"{run_id}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _cmd_trees(args) -> int:
    from .workspace import open_workspace

    ws = open_workspace(args.profile, history=args.history)
    run_id = run_tree(ws, seed=args.seed, force=args.force)
    frame = runs.read_runs(args.profile, run_id=run_id, region="global", metric="r2_anom")
    print(frame[["split", "value"]].to_string(index=False))
    print(f"run {run_id}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``trees``."""
    from ..config import HISTORY, PROFILES

    p = subparsers.add_parser("trees", help="the LightGBM baseline on the models' inputs and history (tuned, timed)")
    p.add_argument("--profile", default="smoke", choices=PROFILES)
    p.add_argument("--history", default=None, choices=list(HISTORY), help="history setting (default: the profile's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="refit even when the run exists")
    p.set_defaults(func=_cmd_trees)
