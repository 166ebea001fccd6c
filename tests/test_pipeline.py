"""End-to-end contract of the experiment pipeline at the smoke profile, two steps per stage:
teacher pre-training + adaptation, cached predictions, every distillation mode and loss,
resumability of student runs, and the budgeted GPU run's CPU path."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ecodistill.config import DistillConfig
from ecodistill.experiments.gpu import cap_steps, gpu_run
from ecodistill.experiments.teacher import load_teacher_predictions, run_teacher_pipeline
from ecodistill.experiments.teacher_files import predictions_folder
from ecodistill.experiments.workspace import open_workspace
from ecodistill.store import runs


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("results")
    mp.setenv("ECODISTILL_RESULTS", str(root))
    workspace = open_workspace("smoke", "cpu")
    saved = workspace.cfg
    cap_steps(workspace, 2)
    yield workspace
    workspace.cfg = saved
    mp.undo()


@pytest.fixture(scope="module")
def teacher(ws):
    return run_teacher_pipeline("smoke", "cpu", seed=0)


def test_teacher_rows_and_predictions(ws, teacher):
    frame = runs.read_runs("smoke", kind="teacher", split="test", region="global")
    assert set(frame.init) == {"pretrained", "scratch"}
    assert {"r2", "rmse", "rmse_latw", "r2_anom"} <= set(frame.metric)
    assert (frame.n_params > 50_000).all()
    for split in ("train", "val", "test", "extra"):
        pred = load_teacher_predictions(ws, split)
        n_days = ws.prep.split_days(split).size
        assert pred.shape == (n_days, 1, *ws.img_size)
        assert np.isfinite(pred).all()
    manifest = json.loads((predictions_folder("smoke", teacher.run_id) / "pred_test.manifest.json").read_text())
    assert manifest["chunks"] and all(len(part["sha256"]) == 64 for part in manifest["chunks"])
    assert ws.error_map_path(teacher.run_id).is_file()


@pytest.mark.parametrize("dcfg, init, method", [
    (DistillConfig(mode="scratch"), "scratch", "scratch"),
    (DistillConfig(loss="mse", alpha=0.5), "distilled", "kd-mse-offline"),
    (DistillConfig(loss="bounded", alpha=0.5, margin=0.01), "distilled", "kd-bounded-offline"),
    (DistillConfig(loss="spectral", alpha=0.5), "distilled", "kd-spectral-offline"),
    (DistillConfig(loss="hint", alpha=0.5), "distilled", "kd-hint-offline"),
    (DistillConfig(loss="attention", alpha=0.5), "distilled", "kd-attention-offline"),
    (DistillConfig(loss="relational", alpha=0.5), "distilled", "kd-relational-offline"),
    (DistillConfig(loss="mse", mode="online", alpha=0.5), "distilled", "kd-mse-online"),
    (DistillConfig(mode="self", alpha=0.5), "distilled", "kd-mse-self"),
    (DistillConfig(loss="mse", alpha=0.5, extra_unlabeled=False, label_years=1), "distilled", "kd-mse-offline"),
])
def test_every_mode_trains_and_records(ws, teacher, dcfg, init, method):
    from ecodistill.experiments.distill import train_student

    scfg = ws.cfg.student(ws.cfg.headline_student)
    res = train_student(ws, scfg, dcfg, seed=0, tag="contract", splits=("val",))
    frame = runs.read_runs("smoke", run_id=res.run_id)
    assert set(frame.init) == {init} and set(frame.method) == {method}
    assert np.isfinite(res.val_rmse) and res.val_rmse > 0
    again = train_student(ws, scfg, dcfg, seed=0, tag="contract", splits=("val",))
    assert again.run_id == res.run_id and again.history == []  # finished runs are not redone


def test_noise_free_control_and_unknown_loss(ws, teacher):
    from ecodistill.experiments.distill import train_student

    scfg = ws.cfg.student(ws.cfg.headline_student)
    res = train_student(ws, scfg, DistillConfig(mode="scratch"), 0, tag="contract", target="ndvi_true",
                        splits=("val",))
    assert runs.has_run("smoke", res.run_id)
    with pytest.raises(ValueError, match="unknown loss"):
        train_student(ws, scfg, DistillConfig(loss="kl-div"), 0, tag="contract", splits=("val",))


def test_gpu_run_cpu_path_packs_every_stage_and_unpacks(ws, teacher, tmp_path, monkeypatch):
    from ecodistill.store.archive import unpack

    out = tmp_path / "out"
    summary = gpu_run(budget_s=900, profile="smoke", out=out, device="cpu", max_steps=2)
    assert summary["teacher"]["run_id"] and summary["students"]["runs"] > 0
    assert set(summary["stage_s"]) == {"data", "teacher", "students", "live"}
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(p.is_file() and p.stat().st_size <= 15 * 2**20 for p in out.iterdir())
    assert "gpu_run.json" in files and any(f.startswith("results-smoke.tar.gz.part") for f in files)
    restored = tmp_path / "restored"
    paths = unpack(out, dest_root=restored)
    rid = summary["teacher"]["run_id"]
    assert (restored / "smoke" / "teacher" / f"pred_{rid}" / "pred_test.manifest.json") in paths
    assert (restored / "smoke" / "runs" / f"{summary['teacher']['run_id']}.csv").is_file()


def test_reported_distilled_student_is_kept_and_loads(ws, teacher):
    import torch

    from ecodistill.experiments.distill import train_student
    from ecodistill.models import load_checkpoint
    from ecodistill.utils import results_dir

    scfg = ws.cfg.student(ws.cfg.headline_student)
    res = train_student(ws, scfg, DistillConfig(loss="mse", alpha=0.5), seed=0, tag="final", keep_model=True)
    path = results_dir("smoke") / "students" / f"{res.run_id}.pt"
    model, _ = load_checkpoint(path)
    x = ws.example_x(1)
    with torch.no_grad():
        assert torch.allclose(model(x), res.model.cpu().eval()(x), atol=1e-6)


def test_compressed_students_are_evaluated_and_resume(ws, teacher):
    """int8 / pruned+distilled variants of the kept student get test runs of their own."""
    pytest.importorskip("onnxruntime")
    from ecodistill.experiments.compressed_skill import (
        compressed_skill,
        evaluate_compressed,
        reported_students,
    )

    assert reported_students("smoke"), "the previous test keeps one distilled student"
    ids = evaluate_compressed("smoke", "cpu", prune_amount=0.5, only=("int8torchdyn", "int8ortstatic", "pruned"))
    table = compressed_skill("smoke")
    table = table[table["source_run_id"].str.startswith("kd-mse-offline-")]  # the matrix's kind of student
    assert sorted(table["variant"]) == ["int8ortstatic", "int8torchdyn", "pruned50kd"]
    assert len(ids) >= 3 and table["r2_fp32"].notna().all()
    src = runs.read_runs("smoke", run_id=table["source_run_id"].iloc[0], split="test", region="global",
                         metric="r2")
    assert table["r2_fp32"].iloc[0] == pytest.approx(src["value"].iloc[0])
    int8 = table[table["variant"].str.startswith("int8")]
    assert (int8["r2"] - int8["r2_fp32"]).abs().max() < 0.05  # int8 barely moves a small model
    frame = runs.read_runs("smoke", run_id=[i for i in ids if i.startswith("kd-mse-offline-")], split="test",
                           region="global", metric="r2")
    by_method = frame.set_index("method")
    pruned = by_method.filter(like="+pruned50kd", axis=0)
    assert len(pruned) == 1 and pruned["n_params"].iloc[0] < by_method.filter(like="+int8", axis=0)["n_params"].iloc[0]
    assert evaluate_compressed("smoke", "cpu", only=("int8torchdyn", "int8ortstatic", "pruned")) == []
    with pytest.raises(ValueError, match="outside"):
        evaluate_compressed("smoke", "cpu", prune_amount=1.5)


def test_selection_gives_both_arms_equal_trials_and_a_tuned_learning_rate(ws, teacher):
    from ecodistill.experiments.protocol import best_distilled, best_scratch, select_settings

    sel = select_settings(ws)
    trials = sel["trials"]
    head = [t for t in trials if t["student"] == ws.cfg.headline_student]
    kd = [t for t in head if t["arm"] == "distilled"]
    scratch = [t for t in head if t["arm"] == "scratch"]
    assert len({t["run_id"] for t in kd}) == len({t["run_id"] for t in scratch})  # equal trial counts
    assert sel["n_trials_each"]["distilled"] == sel["n_trials_each"]["scratch"] == len({t["run_id"] for t in kd})
    truth = {n for n in ws.cfg.losses if n in ("mse", "l1", "huber")}
    assert {t["loss"] for t in scratch if t["stage"] == "loss"} == truth == {"mse", "l1"}  # truth terms searched
    assert {t["alpha"] for t in kd if t["stage"] == "alpha"} == {a for a in ws.cfg.alphas if a > 0}
    for family, searches in sel["lr_searches"].items():  # every family's learning rate, both arms
        assert len(searches["distilled"]["scores"]) == len(searches["scratch"]["scores"]) or family == "afno"
        for arm, search in searches.items():
            grid = sorted(float(m) for m in search["scores"])
            assert search["interior"] == (grid[0] < search["best"] < grid[-1])
            assert sel["lr_by_family"][family][arm] == search["best"]
    dcfg, kd_lr = best_distilled(sel, "mlp")
    assert (dcfg.loss, dcfg.alpha) == (sel["loss"], sel["alpha"]) and kd_lr == sel["lr_by_family"]["mlp"]["distilled"]
    scratch_cfg, _ = best_scratch(sel)
    assert scratch_cfg.mode == "scratch" and scratch_cfg.loss == sel["scratch_loss"]


def test_every_arm_takes_the_same_steps_whatever_its_labels(ws, teacher):
    from ecodistill.experiments.distill import train_student

    scfg = ws.cfg.student(ws.cfg.headline_student)
    steps = {}
    for name, dcfg in {"scratch-1y": DistillConfig(mode="scratch", label_years=1),
                       "scratch-all": DistillConfig(mode="scratch"),
                       "kd-1y": DistillConfig(loss="mse", label_years=1)}.items():
        res = train_student(ws, scfg, dcfg, seed=3, tag="steps", splits=("val",), keep_model=True,
                            train_changes={"max_steps": None, "epochs": 1, "steps_per_epoch": None, "batch_size": 64})
        steps[name] = res.history[-1]["step"]
    one_pass = -(-ws.prep.split_days("train").size // 64)  # an epoch: one pass over all training days
    assert set(steps.values()) == {one_pass}, steps  # 1 labelled year: the same steps, its days seen 3x


def test_any_recorded_run_reruns_from_the_command_line_with_another_seed(ws, teacher, capsys):
    import json

    from ecodistill.cli import main
    from ecodistill.experiments.distill import train_student

    scfg = ws.cfg.student(ws.cfg.headline_student)
    dcfg = DistillConfig(loss="bounded", alpha=0.75, margin=0.01, label_years=2)
    first = train_student(ws, scfg, dcfg, seed=0, tag="cli", lr_scale=2.0, splits=("val",))
    capsys.readouterr()
    assert main(["distill", "--profile", "smoke", "--from-run", first.run_id, "--seed", "7"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_id"]
    old, new = runs.read_run_config("smoke", first.run_id), runs.read_run_config("smoke", again)
    assert new["seed"] == 7 and new["train"]["seed"] == 7
    for key in ("distill", "student", "target", "tag", "splits", "teacher"):
        assert new[key] == old[key], key
    assert {k: v for k, v in new["train"].items() if k != "seed"} == {k: v for k, v in old["train"].items()
                                                                      if k != "seed"}
