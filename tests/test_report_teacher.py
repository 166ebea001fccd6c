"""The teacher chapter's and the one-run distillation chapter's tables, checks and figures
(``ecodistill.report.teacher`` / ``ecodistill.report.run`` and ``ecodistill.plots`` helpers of
chapters 02 and 03), on small
hand-made result trees whose expected values are worked out in the comments."""
from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from ecodistill import plots, report
from ecodistill.config import DataConfig, DistillConfig, get_profile
from ecodistill.models import afno_from_config, count_params
from ecodistill.store import runs
from ecodistill.utils import atomic_write_json, results_dir

matplotlib.use("Agg")
PROFILE = "cpu"


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    return tmp_path


def _run(name, meta, metrics, seed=0, dataset="abc", biomes=None, split="test"):
    config = {"name": name, "seed": seed, "metrics": metrics, "dataset": dataset}
    run_id = runs.make_run_id(name, config)
    rows = [(split, "global", m, v) for m, v in metrics.items()]
    rows += [(split, f"biome:{b}", "r2_anom", v) for b, v in (biomes or {}).items()]
    base = {"run_id": run_id, "dataset_hash": dataset, "target": "ndvi", "seed": seed,
            "family": "afno", **meta}
    history = [{"epoch": 0, "train_loss": 1.0}]
    runs.write_run(PROFILE, runs.make_rows(base, rows), {**config, "history": history})
    return run_id


def _teachers():
    """Adapted (r2_anom 0.6) and scratch (0.4) teachers, a stale adapted teacher of the same
    dataset and a baseline; returns the teacher record."""
    t = {"kind": "teacher", "init": "pretrained", "method": "afno-pretrained", "n_params": 1000,
         "flops_per_map": 1e6}
    metrics = {"r2": 0.9, "r2_anom": 0.6, "rmse": 0.05, "rmse_latw": 0.04}
    adapted = _run("teacher-afno_pretrained", t, metrics, biomes={"forest": 0.7, "desert": 0.2})
    scratch = _run("teacher-afno_scratch", dict(t, init="scratch", method="afno-scratch"),
                   dict(metrics, r2_anom=0.4, rmse=0.07), biomes={"forest": 0.5, "desert": 0.1})
    # stale: not in the record
    _run("teacher-afno_pretrained", t, dict(metrics, r2_anom=-5.0), seed=7)
    _run("baseline-climatology", {"kind": "baseline", "init": "scratch", "method": "climatology"},
         {"r2": 0.5, "r2_anom": 0.0, "rmse": 0.2, "rmse_latw": 0.2})
    return {"run_id": adapted, "scratch_run_id": scratch, "dataset_hash": "abc", "seed": 0}


def test_input_channels_and_architecture_table():
    assert report.input_channel_count(get_profile("smoke").data) == 15 * 3 + 5 + 2  # era5 inputs: 15 fields
    assert report.input_channel_count(DataConfig(history_windows=(7,))) == 11 * 2 + 5 + 2
    arch = report.architecture_table(("smoke",)).set_index("stage")
    cfg = get_profile("smoke")
    adapted = arch.loc["adapted"]
    assert (adapted["in_chans"], adapted["out_chans"], adapted["tokens"]) == (52, 1, "6x12")
    # the count on the meta device equals the real network's
    real = afno_from_config(cfg.teacher, 52, 1, (cfg.data.nlat, cfg.data.nlon))
    assert adapted["n_params"] == count_params(real)
    assert arch.loc["pre-training", "in_chans"] == arch.loc["pre-training", "out_chans"] == 15
    assert 0 < adapted["fft_flops"] < adapted["flops_per_map"]


def test_teacher_tables_use_the_record_only(store):
    record = _teachers()
    frame = report.teacher_frame(runs.read_runs(PROFILE), record)
    skill = report.teacher_skill(frame).set_index("model")
    assert list(skill.index) == ["teacher (adapted)", "teacher (scratch, tuned lr)",
                                 "baseline: climatology"]
    # the stale run's -5 is left out
    assert skill.loc["teacher (adapted)", "r2_anom_mean"] == pytest.approx(0.6)
    assert skill.loc["teacher (adapted)", "n_seeds"] == 1
    biomes = report.teacher_biomes(frame)
    assert biomes.loc["desert", "teacher (scratch, tuned lr)"] == pytest.approx(0.1)
    head = report.teacher_headline(report.teacher_skill(frame))
    assert head["teacher_test_rmse_latw"] == pytest.approx(0.04)
    assert head["scratch_teacher_test_r2_anom"] == pytest.approx(0.4)
    assert "0.200 above" in head["adaptation_text"] and "one seed" in head["adaptation_text"]
    assert report.teacher_frame(runs.read_runs(PROFILE), None).empty


def _headroom(means, stds, teacher=0.6, teacher_std=np.nan):
    rows = [{"model": "headroom", "init": "scratch", "n_params": n, "r2_anom_mean": mean,
             "r2_anom_std": std}
            for n, mean, std in zip([1e4, 1e5, 1e6, 1e7], means, stds)]
    rows.append({"model": "teacher (pretrained)", "init": "pretrained", "n_params": 1e8,
                 "r2_anom_mean": teacher, "r2_anom_std": teacher_std})
    return pd.DataFrame(rows)


def test_headroom_check():
    # best <=1M scratch model: 0.4; margin 0.2 > 2 x 0.05 -> passes
    ok = report.headroom_check(_headroom([0.1, 0.3, 0.4, 0.5], [0.02, 0.03, 0.05, 0.01]))
    assert ok["passes"] is True and ok["rising"] is True
    assert ok["margin"] == pytest.approx(0.2) and ok["spread"] == pytest.approx(0.05)
    assert ok["best_small_params"] == 1e6 and ok["verdict"].startswith("passes")
    # margin 0.2 but spread 0.15 (2 x 0.15 = 0.3 > 0.2) -> does not beat; skill falls at the
    # last step
    bad = report.headroom_check(_headroom([0.1, 0.3, 0.4, 0.35], [0.02, 0.03, 0.15, 0.01]))
    assert bad["beats"] is False and bad["rising"] is False and bad["passes"] is False
    assert "2 of 3 steps up" in bad["verdict"]
    one = report.headroom_check(_headroom([0.1, 0.3, 0.4, 0.5], [np.nan] * 4))
    assert one["passes"] is None and one["verdict"].startswith("not judged")
    assert report.headroom_check(pd.DataFrame())["passes"] is None


def test_run_helpers(store):
    record = _teachers()
    frame = runs.read_runs(PROFILE)
    table = report.run_metrics(frame, {"teacher": record["run_id"], "missing": "nope-123"},
                               metrics=("rmse", "fidelity_r2"))
    assert table.loc["teacher", "rmse"] == pytest.approx(0.05)
    assert np.isnan(table.loc["teacher", "fidelity_r2"]) and np.isnan(table.loc["missing", "rmse"])
    assert report.run_history(PROFILE, record["run_id"]) == [{"epoch": 0, "train_loss": 1.0}]
    assert report.run_history(PROFILE, "nope-123") == []
    path = results_dir(PROFILE) / "maps" / f"{record['run_id']}.npz"
    path.parent.mkdir(parents=True)
    np.savez(path, rmse=np.ones((2, 3)))
    maps = report.stored_maps(PROFILE, {"teacher": record["run_id"], "other": "nope-123"})
    assert list(maps) == ["teacher"] and maps["teacher"].shape == (2, 3)
    assert not report.teacher_predictions_ready(PROFILE)
    from ecodistill.experiments.teacher_files import predictions_folder

    folder = predictions_folder(PROFILE, record["run_id"])
    atomic_write_json(results_dir(PROFILE) / "teacher" / "teacher.json", {"run_id": record["run_id"]})
    assert not report.teacher_predictions_ready(PROFILE)  # a record, but no predictions
    for name in [f"pred_{s}.manifest.json" for s in ("train", "val", "test")]:
        atomic_write_json(folder / name, {})
    assert report.teacher_predictions_ready(PROFILE)  # in the record's teacher's own folder
    atomic_write_json(results_dir(PROFILE) / "teacher" / "pred_train.manifest.json", {})  # the old flat layout
    (folder / "pred_test.manifest.json").unlink()
    assert not report.teacher_predictions_ready(PROFILE)
    assert report.no_teacher_message("full").endswith("gpu-run --budget-s 540 on a GPU")
    assert report.no_teacher_message("cpu", "teacher predictions") == (
        "no cpu teacher predictions yet — run python -m ecodistill train-teacher --profile cpu")


def test_objective_cost_and_headline():
    assert "L = 0.7·D(s, t) + 0.3·D(s, y)" in report.objective_text(DistillConfig(alpha=0.7))
    assert report.objective_text(DistillConfig(mode="scratch")).startswith("mode scratch")
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        report.objective_text(DistillConfig(loss="nope"))
    cards = {"teacher": {"n_params": 1000, "flops_per_map": 1e6, "bytes_per_map": 4e3,
                         "weights_mb": 1.0},
             "s": {"n_params": 10, "flops_per_map": 2e5, "bytes_per_map": 1e3, "weights_mb": 0.01}}
    cost = report.cost_table(cards)
    assert cost.loc["s", "params_ratio"] == 100 and cost.loc["s", "flops_ratio"] == 5
    skill = pd.DataFrame({"rmse": [0.05, 0.08, 0.06], "r2_anom": [0.6, 0.3, 0.5]},
                         index=["teacher", "scratch", "distilled"])
    head = report.run_headline(skill, pd.Series({"distilled": 0.9}), cost, "s", DistillConfig())
    assert head["fidelity_r2"] == 0.9 and head["params_ratio"] == 100
    assert head["distill_verdict"].startswith(
        "the distilled student's test RMSE is 0.0200 lower than")
    empty = report.run_headline(None, None, cost, "s", DistillConfig())
    assert np.isnan(empty["distill_test_rmse"]) and empty["distill_verdict"] == "no runs to compare"


def test_curve_plots():
    history = [{"epoch": 0, "train_loss": 1.0, "val_loss": 0.9},
               {"epoch": 1, "train_loss": 0.5, "val_loss": float("nan")}]
    fig = plots.teacher_curves({"pretrain": history, "adapt": history, "scratch": []})
    left, right = fig.axes
    assert len(left.lines) == 2 and len(right.lines) == 2  # the empty scratch history adds nothing
    assert list(left.lines[0].get_xdata()) == [1, 2]
    matplotlib.pyplot.close(fig)



def test_biome_skill_limits():
    raw = pd.DataFrame({"a": [0.8, -1.7], "b": [0.7, 0.2]}, index=["forest", "barren"])
    anom = pd.DataFrame({"a": [-0.2, -9.0], "b": [0.1, -0.3]}, index=["forest", "barren"])
    fig = plots.biome_skill({"test R²": raw, "test anomaly R²": anom})
    left, right = fig.axes
    assert left.get_xlim() == (-2.0, 1.0)  # -1.7 rounded down to a half
    assert right.get_xlim() == (-4.0, 1.0)  # -9 clipped at the floor
    assert left.get_legend() is None and right.get_legend() is not None
    matplotlib.pyplot.close(fig)
