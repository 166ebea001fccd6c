"""The teacher chapter's new tables: the probe of what pre-training teaches, the teacher
choice among validated candidates, and pre-training as its own contrast at each label budget
-- on known frames and records, old records without candidates, and empty results."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import report_fakes as fake

from ecodistill.report import frames
from ecodistill.report import pretraining as P
from ecodistill.utils import results_dir


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    frames._config_variant.cache_clear()
    return tmp_path


def _probe(profile: str = fake.PROFILE) -> pd.DataFrame:
    rows = pd.DataFrame({"variant": ["atmosphere", "atmosphere", "land", "land"],
                         "features": ["pre-trained", "raw inputs"] * 2, "dataset_hash": "h", "lambda": 0.01,
                         "r2_val": [0.5, 0.4, 0.9, 0.6], "r2_test": [0.55, 0.45, 0.85, 0.62]})
    path = results_dir(profile) / "teacher" / "probe.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(path, index=False)
    return rows


def test_probe_table_judges_both_variants(store):
    _probe()
    table = P.probe_table(fake.PROFILE).set_index("pre-training")
    assert table.loc["land", "met?"] == "yes" and table.loc["atmosphere", "met?"] == "no"
    assert table.loc["atmosphere", "added by pre-training"] == pytest.approx(0.10)
    assert "10 days ahead" in table.loc["land", "what it forecasts"]  # the cpu profile's land lead
    text = P.probe_text(P.probe_table(fake.PROFILE))
    assert "R² = 0.55" in text and "short of the target of 0.8" in text and "meeting" in text


def test_probe_without_results(store):
    table = P.probe_table(fake.PROFILE)
    assert table.empty and "python -m ecodistill probe --profile cpu" in table.attrs["missing"]
    assert P.probe_text(table) == table.attrs["missing"]


def _val(name, meta, rmse):
    return fake.write(name, meta, {"rmse": rmse}, seed=0)


def test_teacher_choice_from_candidates(store):
    """A record with candidates: the chosen one is marked, and the sentence says whether it is
    the best validated (here it is not: a candidate validates lower)."""
    a, s, s2 = (fake.teacher("pretrained", 0.6), fake.teacher("scratch", 0.65), fake.teacher("scratch", 0.7, name="t2"))
    record = {"run_id": a, "candidates": [  # the keys teacher_choice writes
        {"kind": "adapted", "lr_scale": 1, "epochs_factor": 1, "run_id": a, "val_rmse": 0.040},
        {"kind": "scratch", "lr_scale": 4, "epochs_factor": 1, "run_id": s, "val_rmse": 0.041},
        {"kind": "scratch", "lr_scale": 4, "epochs_factor": 2, "run_id": s2, "val_rmse": 0.038}]}
    table = P.teacher_choice_table(record, frames.read_results(fake.PROFILE), fake.PROFILE)
    assert list(table["chosen"]) == ["yes", "", ""]
    assert list(table["length"]) == ["1 × the epochs", "1 × the epochs", "2 × the epochs"]
    assert P.choice_text(table).startswith("the teacher is not the best validated candidate")
    record["run_id"] = s2
    table = P.teacher_choice_table(record, frames.read_results(fake.PROFILE), fake.PROFILE)
    assert P.choice_text(table).startswith("the teacher is the best validated candidate: from scratch at 4 ×")


def test_teacher_choice_from_an_older_record(store):
    """Without candidates: the adapted teacher, the scratch trials and the 2x-steps scratch
    teacher, their validation RMSE read from the runs."""
    a = _val("teacher-a", {"kind": "teacher", "init": "pretrained"}, 0.05)
    s1 = _val("teacher-s1", {"kind": "teacher", "init": "scratch"}, 0.06)
    s2 = _val("teacher-s2", {"kind": "teacher", "init": "scratch"}, 0.045)
    long = _val("teacher-long", {"kind": "teacher", "init": "scratch"}, 0.04)
    frame = frames.read_results(fake.PROFILE).assign(split="val")
    record = {"run_id": a, "scratch_trials": {"2": s1, "4": s2}, "scratch_lr": {"best": 4.0},
              "scratch_long_run_id": long}
    table = P.teacher_choice_table(record, frame, fake.PROFILE)
    assert list(table["validation RMSE"]) == pytest.approx([0.05, 0.06, 0.045, 0.04])
    assert list(table["learning rate"]) == ["1 ×", "2 ×", "4 ×", "4 ×"]
    assert "not the best validated" in P.choice_text(table)


def test_pretraining_contrast_at_every_budget(store):
    ids = {}
    for years, (adapted, scratch) in {"1": (0.3, 0.1), "3": (0.5, 0.45)}.items():
        ids[("a", years)] = fake.teacher("pretrained", adapted, name=f"teacher-a-y{years}")
        ids[("s", years)] = fake.teacher("scratch", scratch, name=f"teacher-s-y{years}")
    a, s = fake.teacher("pretrained", 0.6), fake.teacher("scratch", 0.65)
    record = {"run_id": a, "label_budget_run_ids": {"1": ids[("a", "1")], "3": ids[("a", "3")]},
              "scratch_budget_run_ids": {"1": ids[("s", "1")], "3": ids[("s", "3")]},
              "candidates": [{"name": "adapted", "lr_scale": 1, "run_id": a, "val_rmse": 0.04},
                             {"name": "scratch", "lr_scale": 2, "run_id": s, "val_rmse": 0.039}]}
    table = P.pretraining_contrast(record, frames.read_results(fake.PROFILE), fake.PROFILE, total_years=16)
    assert list(table["labelled years"]) == ["1", "3", "all (16)"]
    assert table["Δ anomaly R² (adapted − scratch)"].tolist() == pytest.approx([0.2, 0.05, -0.05])


def test_pretraining_contrast_from_budget_candidates(store):
    """teacher_choice records both kinds per budget (``budget_candidates``); the better one, not
    necessarily the adapted, is ``label_budget_run_ids``."""
    a1, s1 = fake.teacher("pretrained", 0.2, name="t-a1"), fake.teacher("scratch", 0.3, name="t-s1")
    a, s = fake.teacher("pretrained", 0.6), fake.teacher("scratch", 0.65)
    record = {"run_id": s, "label_budget_run_ids": {"1": s1},
              "budget_candidates": {"1": [{"kind": "adapted", "run_id": a1, "val_rmse": 0.05},
                                          {"kind": "scratch", "run_id": s1, "val_rmse": 0.04}]},
              "candidates": [{"kind": "adapted", "lr_scale": 1, "run_id": a, "val_rmse": 0.04},
                             {"kind": "scratch", "lr_scale": 2, "run_id": s, "val_rmse": 0.039}]}
    table = P.pretraining_contrast(record, frames.read_results(fake.PROFILE), fake.PROFILE)
    assert table["Δ anomaly R² (adapted − scratch)"].tolist() == pytest.approx([-0.1, -0.05])
    assert P.candidates(record)[1]["name"] == "scratch"


def test_pretraining_contrast_without_scratch_budget_teachers(store):
    a = fake.teacher("pretrained", 0.6)
    table = P.pretraining_contrast({"run_id": a, "label_budget_run_ids": {"1": a}}, frames.read_results(fake.PROFILE),
                                   fake.PROFILE)
    assert table.empty and "--label-budgets" in table.attrs["missing"]
    none = P.pretraining_contrast(None, frames.read_results(fake.PROFILE), fake.PROFILE)
    assert none.empty and "train-teacher --profile cpu" in none.attrs["missing"]
    assert P.teacher_choice_table(None, frames.read_results(fake.PROFILE), fake.PROFILE).empty


def test_teacher_ids_know_the_new_record_keys():
    record = {"run_id": "a", "scratch_budget_run_ids": {"1": "s1"}, "by_history": {"today": "t0"},
              "candidates": [{"name": "scratch", "lr_scale": 2, "epochs_factor": 2, "run_id": "c"}]}
    ids = frames.teacher_ids(record)
    assert ids["scratch, 1 label year"] == "s1" and ids["teacher at history today"] == "t0"
    assert "c" in ids.values() and ids["adapted"] == "a"
    assert np.isnan(P.candidates({"run_id": "a"})[0]["val_rmse"])


def test_teacher_names_of_a_fair_choice_record():
    """With candidates, the best validated of each kind is named (the chosen one may be either),
    and both kinds at each label budget."""
    from ecodistill.report.teacher import TEACHER_MODELS, teacher_models

    record = {"run_id": "s2", "candidates": [
        {"kind": "adapted", "run_id": "a1", "val_rmse": 0.05}, {"kind": "adapted", "run_id": "a2", "val_rmse": 0.045},
        {"kind": "scratch", "run_id": "s1", "val_rmse": 0.05}, {"kind": "scratch", "run_id": "s2", "val_rmse": 0.04}],
        "budget_candidates": {"1": [{"kind": "adapted", "run_id": "b1"}, {"kind": "scratch", "run_id": "b2"}]}}
    names = teacher_models(record)
    assert names["a2"] == TEACHER_MODELS["adapted"] and names["s2"] == TEACHER_MODELS["scratch"]
    assert "a1" not in names and names["b2"] == "teacher (scratch, 1 label year)"


def test_the_book_says_what_the_profiles_teacher_is_pretrained_on():
    from dataclasses import replace

    from ecodistill.config import get_profile
    from ecodistill.report.pretraining import pretraining_text

    cpu = get_profile("cpu")
    assert pretraining_text(replace(cpu, pretrain_task="land", land_lead=10)) == \
        "the atmosphere and the land state 10 days ahead"
    assert pretraining_text(replace(cpu, pretrain_task="next_day")) == "the next day's weather from today's"
