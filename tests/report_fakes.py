"""Result runs with known answers for the report tests: each run is written as the pipeline
writes it (tidy CSV plus its config JSON, with the data variant in ``profile.data`` for
networks and ``data`` for baselines), so :func:`ecodistill.report.frames.with_variants` reads
the same files it reads in a real results folder. Imported by tests/test_report_*.py."""
from __future__ import annotations

from ecodistill.config import DataConfig, to_dict, with_history
from ecodistill.store import runs

PROFILE = "cpu"
DATASET = "abc123"


def data_dict(history: str = "long", inputs: str = "era5", world: str = "v2", ndvi_latency: int = 0) -> dict:
    """A saved data config (``to_dict`` form, "added" fields at their default left out)."""
    cfg = with_history(DataConfig(world=world, inputs=inputs, ndvi_latency=ndvi_latency), history)
    return to_dict(cfg)


def write(name: str, meta: dict, metrics: dict, *, seed: int = -1, history: str = "long", inputs: str = "era5",
          world: str = "v2", ndvi_latency: int = 0, dataset: str = DATASET, biomes: dict | None = None,
          profile: str = PROFILE, extra: dict | None = None) -> str:
    """Write one run of ``metrics`` (test split, global; ``biomes``: per-biome anomaly R²) and
    return its run id. ``name`` is the run name (``scratch-afno_s-final``, ``baseline-linear``)."""
    data = data_dict(history, inputs, world, ndvi_latency)
    baseline = meta.get("kind") == "baseline"
    config = {"name": name, "seed": seed, "metrics": metrics, "dataset_hash": dataset, **(extra or {})}
    config.update({"data": data} if baseline else {"profile": {"data": data}})
    run_id = runs.make_run_id(name, config)
    rows = [("test", "global", m, v) for m, v in metrics.items()]
    rows += [("test", f"biome:{b}", "r2_anom", v) for b, v in (biomes or {}).items()]
    base = {"run_id": run_id, "dataset_hash": dataset, "target": "ndvi", "seed": seed, "family": "afno",
            "init": "scratch", "method": "scratch", **meta}
    runs.write_run(profile, runs.make_rows(base, rows), config)
    return run_id


def baseline(method: str, r2_anom: float, **variant) -> str:
    return write(f"baseline-{method}", {"kind": "baseline", "method": method, "family": "baseline"},
                 {"r2": 0.9, "r2_anom": r2_anom, "rmse": 0.05 - r2_anom / 100}, **variant)


def student(arm: str, size: str, tag: str, seed: int, r2_anom: float, teacher: str, n_params: int = 1000,
            family: str = "afno", **variant) -> str:
    """A student run: ``arm`` is ``scratch`` or ``distilled`` (method ``kd-mse-offline``)."""
    name = f"scratch-{size}-{tag}" if arm == "scratch" else f"kd-mse-offline-{size}_from_teacher-{tag}"
    meta = {"kind": "student", "init": arm, "method": "scratch" if arm == "scratch" else "kd-mse-offline",
            "family": family, "n_params": n_params, "teacher_run_id": teacher, "alpha": 0.5 if arm != "scratch" else 0}
    return write(name, meta, {"r2": 0.95, "r2_anom": r2_anom, "rmse": 0.05 - r2_anom / 100}, seed=seed,
                 biomes={"forest": r2_anom + 0.01, "desert": r2_anom - 0.01}, **variant)


def teacher(init: str = "pretrained", r2_anom: float = 0.7, n_params: int = 100_000, name: str | None = None,
            **variant) -> str:
    name = name or f"teacher-afno_{init}"
    meta = {"kind": "teacher", "init": init, "method": f"afno-{init}", "n_params": n_params}
    return write(name, meta, {"r2": 0.97, "r2_anom": r2_anom, "rmse": 0.04 - r2_anom / 100}, seed=0, **variant)
