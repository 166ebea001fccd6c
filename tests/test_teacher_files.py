"""Issue 20, items 3 and 4: a teacher's predictions live under its run id and are switched in
whole; students read them through the teacher they record; an interrupted save can never mix
two teachers; an incomplete teacher never silently replaces a completed one; the results and
cache folders are checked before any training; options mean what they say."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from ecodistill import cli
from ecodistill.config import DistillConfig, TeacherConfig, TrainConfig
from ecodistill.experiments import teacher_files as tf
from ecodistill.losses import loss_spec
from ecodistill.store import preflight, runs

PROFILE = "smoke"
LAND = np.zeros((4, 8), bool)
LAND[1:3, 2:6] = True


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("ECODISTILL_CACHE", str(tmp_path / "cache"))
    prep = SimpleNamespace(has_split=lambda split: split in ("train", "val", "test"))
    return SimpleNamespace(profile=PROFILE, land=LAND, img_size=LAND.shape, dataset_hash="d1", prep=prep)


def preds(value: float) -> dict[str, np.ndarray]:
    return {s: np.full((5, 1, *LAND.shape), value, np.float32) for s in ("train", "val", "test")}


def teacher_run(run_id: str, stop: str = "done", steps: int = 40) -> str:
    meta = {"run_id": run_id, "dataset_hash": "d1", "target": "ndvi", "kind": "teacher", "init": "pretrained"}
    trained = {"steps": steps, "planned_steps": 40, "stop_reason": stop,
               "pretrain": {"steps": 40, "planned_steps": 40, "stop_reason": "done"}}
    runs.write_run(PROFILE, runs.make_rows(meta, [("test", "global", "rmse", 0.1)]), {"trained": trained})
    return run_id


def adopt_teacher(ws, run_id: str, value: float) -> None:
    tf.save_teacher_predictions(ws, preds(value), run_id)
    tf.update_record(ws, run_id=run_id)
    tf.retire_predictions(PROFILE, keep=run_id)


def test_interrupted_save_never_mixes_two_teachers(ws, monkeypatch):
    adopt_teacher(ws, teacher_run("teacher-a"), 0.25)
    calls = []

    def interrupted(prefix, array, **kw):
        calls.append(prefix.name)
        if prefix.name == "pred_train" and len(calls) > 0:
            raise KeyboardInterrupt  # Ctrl-C while the new teacher saves its predictions

    real = tf.save_predictions
    monkeypatch.setattr(tf, "save_predictions", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tf.save_teacher_predictions(ws, preds(0.52), teacher_run("teacher-b"))
    monkeypatch.setattr(tf, "save_predictions", real)
    assert tf.teacher_record(PROFILE)["run_id"] == "teacher-a"
    assert not tf.predictions_folder(PROFILE, "teacher-b").exists()  # whole or absent
    for split in ("train", "val", "test"):  # before: teacher-a's id over teacher-b's train predictions
        np.testing.assert_allclose(tf.load_teacher_predictions(ws, split)[:, 0][:, LAND], 0.25, atol=1e-3)
        np.testing.assert_allclose(tf.load_teacher_predictions(ws, split, "teacher-a")[:, 0][:, LAND], 0.25,
                                   atol=1e-3)
    # the next save of teacher-b cleans the staging folder, and students follow the run id they record
    tf.save_teacher_predictions(ws, preds(0.52), "teacher-b")
    assert not list(tf.teacher_dir(PROFILE).glob(".staging-*"))
    np.testing.assert_allclose(tf.load_teacher_predictions(ws, "train", "teacher-b")[:, 0][:, LAND], 0.52, atol=1e-3)
    np.testing.assert_allclose(tf.load_teacher_predictions(ws, "train")[:, 0][:, LAND], 0.25, atol=1e-3)
    assert tf.predictions_digest(ws, "teacher-a") != tf.predictions_digest(ws, "teacher-b")


def test_a_replaced_teacher_moves_to_the_cache_and_old_students_are_told_what_to_do(ws):
    adopt_teacher(ws, teacher_run("teacher-a"), 0.25)
    adopt_teacher(ws, teacher_run("teacher-b"), 0.5)
    assert sorted(p.name for p in tf.teacher_dir(PROFILE).iterdir()) == ["pred_teacher-b", "teacher.json"]
    np.testing.assert_allclose(tf.load_teacher_predictions(ws, "test", "teacher-a")[:, 0][:, LAND], 0.25,
                               atol=1e-3)  # still here, in the cache: --from-run of an old student works
    import shutil

    shutil.rmtree(tf.cached_predictions_folder(PROFILE, "teacher-a"))
    with pytest.raises(FileNotFoundError, match="teacher teacher-a left no 'train' predictions.*now teacher-b.*"
                                                "--teacher-run-id teacher-b") as err:
        tf.load_teacher_predictions(ws, "train", "teacher-a")  # before: "run train-teacher" (no help)
    assert "\n" not in str(err.value)


def test_old_layout_and_renamed_folders_are_refused(ws):
    teacher_run("teacher-a")
    tf.update_record(ws, run_id="teacher-a")
    legacy = tf.teacher_dir(PROFILE) / "pred_train.manifest.json"
    legacy.write_text("{}")
    with pytest.raises(FileNotFoundError, match="old layout, which names no teacher.*train-teacher"):
        tf.load_teacher_predictions(ws, "train")
    tf.save_teacher_predictions(ws, preds(0.3), "teacher-b")
    tf.predictions_folder(PROFILE, "teacher-b").rename(tf.predictions_folder(PROFILE, "teacher-a"))
    with pytest.raises(ValueError, match="holds the predictions of teacher teacher-b, not teacher-a"):
        tf.load_teacher_predictions(ws, "test")


def test_an_incomplete_teacher_never_silently_replaces_a_completed_one(ws):
    adopt_teacher(ws, teacher_run("teacher-a"), 0.25)
    teacher_run("teacher-c", stop="budget", steps=12)
    with pytest.warns(UserWarning, match="teacher-c stopped by budget after 12 of 40 steps; the completed teacher "
                                         "teacher-a stays.*--accept-incomplete"):
        assert not tf.adopt(ws, "teacher-c")
    assert tf.adopt(ws, "teacher-c", accept_incomplete=True)
    assert tf.teacher_status(PROFILE, "teacher-c") == {"stop_reason": "budget", "steps": 12, "planned_steps": 40,
                                                       "completed": False}
    with pytest.warns(UserWarning, match="did not complete its training \\(stopped by budget"):
        note = tf.status_note(PROFILE, "teacher-c")  # shown wherever the teacher is used
    assert note == {"teacher_run_id": "teacher-c", "teacher_stop_reason": "budget"}
    assert tf.status_note(PROFILE, "teacher-a")["teacher_stop_reason"] == "done"


def test_unwritable_or_full_results_are_found_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="the results folder .*a-file/smoke cannot be written.*nothing has been "
                                         "trained yet") as err:
        preflight.check_writable({"results": blocker / "smoke"})
    assert "\n" not in str(err.value)
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda _: SimpleNamespace(free=5 * 2**20))
    with pytest.raises(ValueError, match="has 5 MiB free, but the run needs about 150 MiB"):
        preflight.check_writable({"results": tmp_path / "ok"}, need_bytes=100 * 2**20)


def test_teacher_pipeline_checks_its_folders_before_training(tmp_path, monkeypatch):
    from ecodistill.experiments import teacher

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("ECODISTILL_RESULTS", str(blocker))
    monkeypatch.setattr(teacher, "pretrain", lambda *a, **k: pytest.fail("trained before checking the folders"))
    assert cli.main(["train-teacher", "--profile", "smoke", "--no-scratch"]) == 2


# --- options mean what they say (issue 20, item 3) ----------------------------------------

@pytest.mark.parametrize("option, value, match", [
    ("--lr", "0", "TrainConfig.lr=0.0: must be a finite number > 0"),
    ("--lr", "inf", "TrainConfig.lr=inf"),
    ("--lr", "nan", "TrainConfig.lr=nan"),
    ("--lr-scale", "0", "TrainConfig.lr=0.0"),
    ("--epochs", "0", "TrainConfig.epochs=0: must be at least 1"),
    ("--steps-per-epoch", "0", "TrainConfig.steps_per_epoch=0: must be at least 1"),
    ("--alpha", "nan", "DistillConfig.alpha=nan"),
    ("--margin", "nan", "DistillConfig.margin=nan"),
    ("--feature-weight", "inf", "DistillConfig.feature_weight=inf"),
])
def test_distill_options_are_used_or_refused_never_replaced(monkeypatch, capsys, option, value, match):
    from ecodistill.experiments import distill

    monkeypatch.setattr(distill, "open_workspace", lambda *a, **k: pytest.fail("worked before validating"))
    assert cli.main(["distill", "--profile", "smoke", option, value]) == 2  # before: rc 0, the default run
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 2, err


def test_numeric_fields_are_validated_where_declared():
    for bad in ({"lr": math.inf}, {"weight_decay": math.nan}, {"grad_clip": -1.0}, {"warmup_frac": 1.0},
                {"batch_size": 0}, {"patience": -1}, {"epochs": 2.5}):
        with pytest.raises(ValueError, match=f"TrainConfig.{next(iter(bad))}="):
            TrainConfig(**bad)
    with pytest.raises(ValueError, match="TeacherConfig.drop_path_rate=nan"):
        TeacherConfig(drop_path_rate=math.nan)
    with pytest.raises(ValueError, match="loss 'bounded': option margin=nan must be a finite number 0..4"):
        loss_spec("bounded").check_options({"margin": math.nan})
    with pytest.raises(ValueError, match="option margin=9.0 must be a finite number 0..4"):
        loss_spec("bounded").check_options({"margin": 9.0})
    from ecodistill.training.objectives import check_objective

    dcfg = DistillConfig(loss="bounded", margin=2.0)
    assert check_objective(dcfg) is dcfg
    object.__setattr__(dcfg, "margin", 5.0)  # a value the dataclass was not asked about
    with pytest.raises(ValueError, match="option margin=5.0"):
        check_objective(dcfg)


def test_record_stays_plain_json(ws):
    adopt_teacher(ws, teacher_run("teacher-a"), 0.25)
    record = json.loads((tf.teacher_dir(PROFILE) / "teacher.json").read_text())
    assert record == {"dataset_hash": "d1", "run_id": "teacher-a"}
    ident = json.loads((tf.predictions_folder(PROFILE, "teacher-a") / "run.json").read_text())
    assert ident == {"dataset_hash": "d1", "run_id": "teacher-a", "splits": ["test", "train", "val"]}
