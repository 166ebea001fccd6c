"""The FLUXNET experiment: per (target, fold) a teacher and baselines, per seed the students.

For one outer fold the training sites are split once more into inner-training and
validation sites. On the inner-training sites, before the held-out years:

1. baselines: per-IGBP monthly climatology, ridge regression;
2. teacher candidates: gradient boosting (``gbm``), random forest (``rf``), an MLP deep
   ensemble (``mlp``), and every mean of two or three of them; the one with the lowest
   validation MSE is the fold's teacher (``kind=teacher``), the rest are reported as baselines;
3. students (per seed and size), trained together on every month of the inner-training sites:
   ``scratch`` (observations only; searches weight decay), ``kd-mse`` (alpha * teacher +
   (1 - alpha) * observations on labelled months; searches alpha) and ``kd-mse-unlabeled``
   (the same plus the teacher alone on the sites' unlabelled months). Every arm gets the same
   number of trials; each picks its trial and epoch on the validation sites.

Test sites and the held-out years are never seen by any model, teacher labels included.
Explained in book/generated/06_fluxnet.ipynb.
"""
from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..store import runs
from ..utils import (
    atomic_write_json,
    cache_dir,
    host_info,
    library_versions,
    results_dir,
    seed_everything,
    sha256_file,
    stable_hash,
)
from . import models
from .benchmark import Split, Table, build_table, make_splits
from .config import FluxConfig
from .evaluate import metric_rows
from .reader import dataset_hash, load_fluxval, read_sites

ARMS = ("scratch", "kd-mse", "kd-mse-unlabeled")


@dataclass
class Data:
    """The loaded benchmark: the table of rows, the sites, the data's hash."""

    table: Table
    sites: pd.DataFrame
    hash: str


def load_data(cfg: FluxConfig, root: str | Path | None = None) -> Data:
    """Read the original distribution and build the inputs for ``cfg``."""
    frame = load_fluxval(root)
    sites = read_sites(root)
    digest = dataset_hash(root)
    if cfg.static_maps:  # the static file is data too: its hash joins the dataset hash
        from ..data.static import STATIC_PATH
        digest = stable_hash([digest, sha256_file(STATIC_PATH)], n=12)
    return Data(build_table(frame, cfg.history, cfg.site_climate, cfg.static_maps), sites, digest)


def _standardise(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Inputs standardised with the mean/std of ``rows`` (constant columns keep std 1)."""
    mu, sd = X[rows].mean(axis=0), X[rows].std(axis=0)
    return ((X - mu) / np.where(sd > 0, sd, 1.0)).astype(np.float32)


def teacher_run_id(cfg: FluxConfig, data: Data, target: str, fold: int) -> str:
    """The run id of one fold's teacher + baselines."""
    return runs.make_run_id(f"fluxnet-{target}-f{fold}-teacher",
                            {**cfg.teacher_part(), "target": target, "fold": fold, "data": data.hash})


def student_run_id(cfg: FluxConfig, data: Data, target: str, fold: int, seed: int) -> str:
    """The run id of one fold's students at one seed."""
    return runs.make_run_id(f"fluxnet-{target}-f{fold}-s{seed}-students",
                            {**cfg.student_part(), "target": target, "fold": fold, "seed": seed,
                             "data": data.hash})


def device_of(cfg: FluxConfig) -> torch.device:
    """The torch device of ``cfg.device`` ("auto": CUDA when available)."""
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("FluxConfig.device='cuda' but torch sees no GPU; use device='cpu' or 'auto'")
    return torch.device(cfg.device)


def _fit_mlp_teacher(cfg: FluxConfig, Xs: np.ndarray, ys: np.ndarray, split: Split, lab: np.ndarray):
    """The MLP deep ensemble on standardised inputs; returns (predictions (n,), parameters)."""
    seed_everything(cfg.teacher_seed)
    dev = device_of(cfg)
    tr = split.train & lab
    m = cfg.teacher_members
    net = models.BatchedMLP(m, Xs.shape[1], cfg.teacher_width, cfg.teacher_depth).to(dev)
    X, y = torch.from_numpy(Xs).to(dev), torch.from_numpy(ys).float().to(dev)
    models.fit_batched(net, X[tr], y[tr], None, np.zeros(m), np.zeros(m),
                       np.full(m, cfg.distill_weight_decay), X[split.val], y[split.val],
                       epochs=cfg.teacher_epochs, patience=cfg.patience, batch_size=cfg.batch_size,
                       lr=cfg.teacher_lr, seed=cfg.teacher_seed)
    with torch.no_grad():
        pred = net(X).mean(dim=0).cpu().numpy().astype(float)
    return pred, m * models.mlp_params(Xs.shape[1], cfg.teacher_width, cfg.teacher_depth)


def run_teacher(cfg: FluxConfig, data: Data, target: str, fold: int, log: Callable = print) -> np.ndarray:
    """Fit the baselines and the teacher of one (target, fold); write their run; return the
    teacher's predictions (n,) for every row (cached under ``cache_dir()/fluxnet``)."""
    run_id = teacher_run_id(cfg, data, target, fold)
    cache = cache_dir() / "fluxnet" / f"{run_id}.npy"
    if cache.is_file() and runs.has_run(cfg.profile, run_id):
        return np.load(cache)
    t0 = time.time()
    table = data.table
    split = make_splits(table, data.sites, target, fold, cfg.n_folds, cfg.inner_folds, cfg.heldout_years,
                        cfg.split_seed)
    y = table.y[target]
    lab = ~np.isnan(y)
    tr = split.train & lab
    Xs = _standardise(table.X, split.train)
    mu, sd = y[tr].mean(), y[tr].std()
    preds, sizes, val_mse = {}, {}, {}
    clim = models.igbp_climatology(table.igbp[tr], table.month[tr], y[tr])
    preds["climatology"], sizes["climatology"] = clim(table.igbp, table.month), 12 * len(set(table.igbp[tr]))
    ridge = models.fit_ridge(Xs[tr], y[tr], Xs[split.val], y[split.val])
    preds["linear"], sizes["linear"] = ridge.predict(Xs), Xs.shape[1] + 1
    gbm = models.fit_gbm(table.X[tr], y[tr], cfg.gbm_iter, cfg.gbm_lr, cfg.gbm_leaves, cfg.teacher_seed)
    preds["gbm"], sizes["gbm"] = gbm.predict(table.X), models.tree_nodes(gbm)
    rf = models.fit_rf(table.X[tr], y[tr], cfg.rf_trees, cfg.rf_min_leaf, cfg.teacher_seed)
    preds["rf"], sizes["rf"] = rf.predict(table.X), models.tree_nodes(rf)
    mlp_std, sizes["mlp"] = _fit_mlp_teacher(cfg, Xs, (y - mu) / sd, split, lab)
    preds["mlp"] = mlp_std * sd + mu
    members = ("gbm", "rf", "mlp")
    combos = [c for k in (1, 2, 3) for c in itertools.combinations(members, k)]
    for combo in combos:
        p = np.mean([preds[m] for m in combo], axis=0)
        val_mse["+".join(combo)] = float(np.mean((p[split.val] - y[split.val]) ** 2))
    chosen = min(val_mse, key=val_mse.get).split("+")
    teacher = np.mean([preds[m] for m in chosen], axis=0)
    rows = []
    base = {"run_id": run_id, "dataset_hash": data.hash, "target": target, "fold": fold,
            "seed": cfg.teacher_seed, "init": "scratch"}
    for name in ("climatology", "linear", "gbm", "rf", "mlp"):
        meta = dict(base, kind="baseline", method=name, family=name, n_params=sizes[name])
        rows += runs.make_rows(meta, metric_rows(table, split, target, preds[name]))
    method = chosen[0] if len(chosen) == 1 else "ensemble"
    meta = dict(base, kind="teacher", method=method, family="+".join(chosen),
                n_params=sum(sizes[m] for m in chosen))
    rows += runs.make_rows(meta, metric_rows(table, split, target, teacher))
    config = {"experiment": "fluxnet", "target": target, "fold": fold, "profile": cfg.profile,
              "flux_config": asdict(cfg), "teacher": "+".join(chosen), "val_mse": val_mse,
              "n_params_note": "tree ensembles: n_params = number of tree nodes",
              "heldout_years": list(split.heldout_years), "seconds": round(time.time() - t0, 1),
              "host": _host(cfg)}
    if not runs.has_run(cfg.profile, run_id):  # a lost cache is rebuilt; the result file is kept
        runs.write_run(cfg.profile, rows, config)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, teacher)
    log(f"  {target} fold {fold}: teacher {'+'.join(chosen)} ({time.time() - t0:.0f} s)")
    return teacher


def _arm_settings(cfg: FluxConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """alpha, unlabelled weight, weight decay and arm name of every network of one search."""
    k = len(cfg.alphas)
    alpha = np.r_[np.zeros(k), cfg.alphas, cfg.alphas]
    unlab = np.r_[np.zeros(2 * k), np.ones(k)]
    decay = np.r_[cfg.scratch_weight_decays, np.full(2 * k, cfg.distill_weight_decay)]
    return alpha, unlab, decay, [a for a in ARMS for _ in range(k)]


def run_students(cfg: FluxConfig, data: Data, target: str, fold: int, seed: int, teacher: np.ndarray,
                 log: Callable = print) -> Path:
    """Train every student size and arm of one (target, fold, seed); write their run."""
    run_id = student_run_id(cfg, data, target, fold, seed)
    table = data.table
    split = make_splits(table, data.sites, target, fold, cfg.n_folds, cfg.inner_folds, cfg.heldout_years,
                        cfg.split_seed)
    y = table.y[target]
    lab = ~np.isnan(y)
    mu, sd = y[split.train & lab].mean(), y[split.train & lab].std()
    dev = device_of(cfg)
    Xs = torch.from_numpy(_standardise(table.X, split.train)).to(dev)
    ys = torch.from_numpy((y - mu) / sd).float().to(dev)
    ts = torch.from_numpy((teacher - mu) / sd).float().to(dev)
    tr = torch.from_numpy(split.train).to(dev)
    val = torch.from_numpy(split.val).to(dev)
    alpha, unlab, decay, arm = _arm_settings(cfg)
    rows, chosen = [], {}
    teacher_id = teacher_run_id(cfg, data, target, fold)
    for width in cfg.student_widths:
        t0 = time.time()
        seed_everything(seed * 1000 + width)
        net = models.BatchedMLP(len(arm), Xs.shape[1], width, cfg.student_depth).to(dev)
        fit = models.fit_batched(net, Xs[tr], ys[tr], ts[tr], alpha, unlab, decay, Xs[val], ys[val],
                                 epochs=cfg.epochs, patience=cfg.patience, batch_size=cfg.batch_size,
                                 lr=cfg.lr, seed=seed)
        with torch.no_grad():
            pred = net(Xs).cpu().numpy().astype(float) * sd + mu
        n_params = models.mlp_params(Xs.shape[1], width, cfg.student_depth)
        for name in ARMS:
            idx = [i for i, a in enumerate(arm) if a == name]
            best = idx[int(np.argmin(fit.best_val_mse[idx]))]
            chosen[f"{name}-w{width}"] = {"alpha": float(alpha[best]), "weight_decay": float(decay[best]),
                                          "best_epoch": int(fit.best_epoch[best]),
                                          "val_mse_trials": [float(fit.best_val_mse[i]) for i in idx]}
            meta = {"run_id": run_id, "dataset_hash": data.hash, "target": target, "kind": "student",
                    "init": "scratch" if name == "scratch" else "distilled", "method": name, "family": "mlp",
                    "n_params": n_params,
                    "flops_per_map": models.mlp_flops(Xs.shape[1], width, cfg.student_depth),
                    "alpha": float(alpha[best]), "teacher_run_id": teacher_id, "seed": seed, "fold": fold}
            rows += runs.make_rows(meta, metric_rows(table, split, target, pred[best], teacher))
        chosen[f"seconds-w{width}"] = round(time.time() - t0, 1)
    config = {"experiment": "fluxnet", "target": target, "fold": fold, "seed": seed, "profile": cfg.profile,
              "flux_config": asdict(cfg), "teacher_run_id": teacher_id, "selected": chosen,
              "host": _host(cfg)}
    out = runs.write_run(cfg.profile, rows, config)
    seconds = sum(v for k, v in chosen.items() if k.startswith("seconds"))
    log(f"  {target} fold {fold} seed {seed}: students {seconds:.0f} s")
    return out


def _host(cfg: FluxConfig) -> dict:
    """Where a run was computed: host facts, torch threads, device."""
    return {**host_info(), "torch_threads": cfg.threads, "device": str(device_of(cfg))}


def run_benchmark(cfg: FluxConfig, root: str | Path | None = None, log: Callable = print) -> dict:
    """Every (target, fold, seed) of ``cfg`` whose run is missing; returns counts and seconds.

    Existing runs in ``results/<profile>/runs`` are kept (the run id hashes the settings and
    the data), so an interrupted run resumes and a notebook computes only what is missing.
    Each call that computes something is logged in ``results/<profile>/fluxnet_invocations.json``
    (wall-clock seconds, host, load average before and after).
    """
    t0 = time.time()
    load0 = os.getloadavg()
    data = load_data(cfg, root)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        made, done = _run_missing(cfg, data, log)
    finally:
        torch.set_num_threads(threads)
    summary = {"profile": cfg.profile, "student_runs_made": made, "student_runs_kept": done,
               "seconds": round(time.time() - t0, 1)}
    if made:
        path = results_dir(cfg.profile) / "fluxnet_invocations.json"
        log_rows = json.loads(path.read_text()) if path.is_file() else []
        log_rows.append({**summary, "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t0)),
                         "load_average_before": load0, "load_average_after": os.getloadavg(),
                         "host": _host(cfg), "versions": library_versions(), "flux_config": asdict(cfg)})
        atomic_write_json(path, log_rows)
    return summary


def _run_missing(cfg: FluxConfig, data: Data, log: Callable) -> tuple[int, int]:
    """The loop of :func:`run_benchmark`; returns (student runs made, student runs kept)."""
    done = made = 0
    for target in cfg.targets:
        for fold in cfg.fold_list:
            missing = [s for s in cfg.seeds
                       if not runs.has_run(cfg.profile, student_run_id(cfg, data, target, fold, s))]
            if not missing and runs.has_run(cfg.profile, teacher_run_id(cfg, data, target, fold)):
                done += len(cfg.seeds)
                continue
            teacher = run_teacher(cfg, data, target, fold, log)
            for seed in missing:
                run_students(cfg, data, target, fold, seed, teacher, log)
                made += 1
            done += len(cfg.seeds) - len(missing)
    return made, done
