"""One distillation run (chapter 3): its objective in words, its metrics beside the teacher's
and the scratch twin's, fidelity to the teacher, training history, error maps and cost.

Reads the result rows of :func:`ecodistill.report.read_results`, a run's config
``results/<profile>/runs/<run_id>.json`` (:func:`run_history`) and its error map
``results/<profile>/maps/<run_id>.npz`` (:func:`stored_maps`). :func:`model_cards` builds the
teacher and the student on PyTorch's ``meta`` device from the profile's config to count
their cost: no weights, no data. Explained in book/generated/03_distill.ipynb.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..store import runs
from ..training.objectives import objective_text
from ..utils import results_dir
from .frames import empty_table, labelled, profile_of, wide
from .teacher import input_channel_count
from .text import hardware_label, no_teacher_message, provenance_text

RUN_METRICS = ("rmse", "rmse_latw", "r2", "r2_anom", "fidelity_r2")


def run_metrics(frame: pd.DataFrame, run_ids: dict[str, str], split: str = "test",
                metrics: tuple[str, ...] = RUN_METRICS) -> pd.DataFrame:
    """Global ``metrics`` of named runs side by side: one row per label (``label -> run_id``),
    NaN where a run has no such row (e.g. ``fidelity_r2`` of a run without the teacher); no
    rows, and the teacher-predictions message, when ``run_ids`` is empty."""
    missing = no_teacher_message(profile_of(frame), "teacher predictions")
    if not run_ids:
        return empty_table(["model", "run_id", *metrics], missing, index="model")
    w = wide(frame, split).set_index("run_id")
    rows = []
    for label, run_id in run_ids.items():
        row = w.loc[run_id] if run_id in w.index else pd.Series(dtype=float)
        rows.append({"model": label, "run_id": run_id,
                     **{m: float(row.get(m, np.nan)) for m in metrics}})
    return labelled(pd.DataFrame(rows).set_index("model"), missing)


def fidelity_table(frame: pd.DataFrame, run_ids: dict[str, str],
                   splits: tuple[str, ...] = ("val", "test")) -> pd.DataFrame:
    """``fidelity_r2`` of the students (every label but ``teacher``) per split: one column per
    split, NaN for a run that never saw the teacher."""
    students = {label: run_id for label, run_id in run_ids.items() if label != "teacher"}
    columns = {split: run_metrics(frame, students, split, ("fidelity_r2",))["fidelity_r2"]
               for split in splits}
    table = pd.DataFrame(columns, columns=list(splits))
    table.index.name = "model"
    return labelled(table, no_teacher_message(profile_of(frame), "teacher predictions"))


def run_history(profile: str, run_id: str) -> list[dict]:
    """The training history (one dict per epoch) stored in a run's config JSON ([] if none)."""
    try:
        return list(runs.read_run_config(profile, run_id).get("history", []))
    except FileNotFoundError:
        return []


def stored_maps(profile: str, run_ids: dict[str, str], key: str = "rmse") -> dict[str, np.ndarray]:
    """``label -> (h, w)`` test error maps of the runs whose
    ``results/<profile>/maps/<run_id>.npz`` exists."""
    out = {}
    for label, run_id in run_ids.items():
        path = results_dir(profile) / "maps" / f"{run_id}.npz"
        if run_id and path.is_file():
            with np.load(path) as arrays:
                out[label] = arrays[key]
    return out


def run_provenance(profile: str, seed: int, run_ids: dict[str, str], students_on: str) -> str:
    """Profile, hardware (teacher's and students') and seed of a chapter-3 run, or, without
    runs, what makes the teacher predictions they need."""
    if not run_ids:
        return no_teacher_message(profile, "teacher predictions")
    teacher = hardware_label(profile)
    hardware = f"teacher and students on {teacher}" if teacher == students_on else \
        f"teacher on {teacher}, students on {students_on}"
    return provenance_text(profile, [seed], hardware)


def model_cards(profile: str, students: tuple = ()) -> dict[str, dict]:
    """:func:`ecodistill.models.model_card` of the profile's adapted teacher (``teacher``) and
    of the given :class:`~ecodistill.config.StudentConfig` presets (by name), built on the
    ``meta`` device: the architecture's cost, no weights or data needed."""
    import torch

    from ..config import get_profile
    from ..models import afno_from_config, build_student, model_card

    cfg = get_profile(profile)
    c_in, grid = input_channel_count(cfg.data), (cfg.data.nlat, cfg.data.nlon)
    with torch.device("meta"):
        models = {"teacher": afno_from_config(cfg.teacher, c_in, 1, grid),
                  **{s.name: build_student(s, c_in, 1, grid) for s in students}}
    return {name: model_card(m, (c_in, *grid)) for name, m in models.items()}


def cost_table(cards: dict[str, dict], reference: str = "teacher") -> pd.DataFrame:
    """Cost per map of models (``label -> model_card``) and the ``reference`` model's multiple of
    each (``params_ratio``, ``flops_ratio``, ``bytes_ratio``: reference / model)."""
    columns = ["n_params", "flops_per_map", "bytes_per_map", "weights_mb"]
    table = pd.DataFrame(cards).T[columns].astype(float)
    ref = table.loc[reference]
    for column, ratio in (("n_params", "params_ratio"), ("flops_per_map", "flops_ratio"),
                          ("bytes_per_map", "bytes_ratio")):
        table[ratio] = ref[column] / table[column]
    return table


def run_headline(skill: pd.DataFrame | None, fidelity_test: pd.Series | None, cost: pd.DataFrame,
                 student: str, dcfg: Any) -> dict[str, float | str]:
    """The distillation chapter's quoted numbers (NaN when absent) and sentences.

    Args:
        skill: :func:`run_metrics` on the test split with rows ``teacher, scratch, distilled``
            (no rows, or None, without runs).
        fidelity_test: the test ``fidelity_r2`` per row label (e.g. a column of
            :func:`fidelity_table`).
        cost: :func:`cost_table` with rows ``teacher`` and ``student``.
    """
    nan = float("nan")
    table = skill if skill is not None else pd.DataFrame()
    fidelity = fidelity_test if fidelity_test is not None else pd.Series(dtype=float)

    def get(row: str, column: str) -> float:
        return float(table.loc[row, column]) if row in table.index and column in table else nan

    out: dict[str, float | str] = {
        "distill_test_rmse": get("distilled", "rmse"), "scratch_test_rmse": get("scratch", "rmse"),
        "teacher_test_rmse": get("teacher", "rmse"),
        "distill_test_r2_anom": get("distilled", "r2_anom"),
        "scratch_test_r2_anom": get("scratch", "r2_anom"),
        "fidelity_r2": float(fidelity.get("distilled", nan)),
        "student_params": float(cost.loc[student, "n_params"]),
        "params_ratio": float(cost.loc[student, "params_ratio"]),
        "flops_ratio": float(cost.loc[student, "flops_ratio"]),
        "bytes_ratio": float(cost.loc[student, "bytes_ratio"]),
        "distill_setting": f"{student} distilled with {objective_text(dcfg)}"}
    diff = out["scratch_test_rmse"] - out["distill_test_rmse"]
    if not np.isfinite(diff):
        out["distill_verdict"] = "no runs to compare"
    else:
        relation = "lower than" if diff > 0 else "higher than" if diff < 0 else "equal to"
        out["distill_verdict"] = (f"the distilled student's test RMSE is {abs(diff):.4f} "
                                  f"{relation} the scratch student's, from one seed (chapter 4 "
                                  "tests such differences over seeds)")
    return out


def find_run(profile: str, name: str, dcfg: Any, seed: int, lr: float,
             record: dict | None) -> str:
    """The id of a recorded run named ``name`` (e.g. ``scratch-afno_s-final``) with the
    objective ``dcfg``, ``seed``, learning rate ``lr``, the noisy NDVI target, on the teacher
    record's dataset and teacher; ``""`` when there is none. Reads the run configs only (no
    dataset, no training), so chapters at ``cpu``/``full`` can show a run without its workspace.
    """
    from dataclasses import asdict

    if not record:
        return ""
    want = asdict(dcfg)
    for path in sorted(runs.runs_dir(profile).glob(f"{name}-*.json")):
        try:
            config = runs.read_run_config(profile, path.stem)
        except (FileNotFoundError, ValueError):
            continue
        if (config.get("distill") == want and config.get("seed") == seed
                and config.get("target") == "ndvi" and config.get("dataset_hash") == record.get("dataset_hash")
                and (config.get("teacher") or {}).get("run_id") == record.get("run_id")
                and np.isclose(float(config.get("train", {}).get("lr", np.nan)), lr)):
            return path.stem
    return ""


def demo_command(profile: str, student: str, dcfg: Any, seed: int, lr_scale: float, tag: str) -> str:
    """The ``python -m ecodistill distill`` command that records a chapter-3 run."""
    setting = ("--mode scratch" if dcfg.mode == "scratch"
               else f"--mode {dcfg.mode} --loss {dcfg.loss} --alpha {dcfg.alpha:g}")
    if dcfg.mode == "scratch":
        setting += f" --loss {dcfg.loss}"
    return (f"python -m ecodistill distill --profile {profile} --student {student} {setting} "
            f"--lr-scale {lr_scale:g} --seed {seed} --tag {tag}")
