"""The study on the realistic world, end to end at smoke (after the book's smoke build has made
its results): the fair choice of the teacher, the headroom ladder, the privileged-information
case, the nowcast and memory variants, LightGBM, the realism check and the probe."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from ecodistill.config import LADDER_HISTORIES, get_profile, history_name
from ecodistill.experiments.ladder import ladder_sizes
from ecodistill.experiments.probe import probe_path
from ecodistill.experiments.protocol import NOWCAST_LATENCIES
from ecodistill.experiments.realism import read_realism
from ecodistill.experiments.teacher_files import predictions_folder, teacher_record
from ecodistill.store import runs
from ecodistill.utils import results_dir

pytestmark = pytest.mark.slow
PROFILE = "smoke"


def _data(run_id: str) -> dict:
    return runs.read_run_config(PROFILE, run_id)["profile"]["data"]


def test_the_teacher_is_the_best_validated_candidate(built_book):
    record = teacher_record(PROFILE)
    candidates = record["candidates"]
    assert {(c["kind"], c["epochs_factor"]) for c in candidates} == {
        ("adapted", 1.0), ("adapted", 2.0), ("scratch", 1.0), ("scratch", 2.0)}
    best = min(candidates, key=lambda c: c["val_rmse"])
    assert record["run_id"] == best["run_id"] == record["choice"]["run_id"]
    for c in candidates:  # the recorded validation RMSE is the run's own
        val = runs.read_runs(PROFILE, run_id=c["run_id"], split="val", region="global", metric="rmse")
        assert val["value"].iloc[0] == pytest.approx(c["val_rmse"], rel=1e-6)
    assert predictions_folder(PROFILE, record["run_id"]).is_dir()
    own = history_name(get_profile(PROFILE).data)
    assert set(record["by_history"]) == set(LADDER_HISTORIES) | {own}
    # pre-training is its own contrast at every label budget: both kinds, the better chosen
    for years, cands in record["budget_candidates"].items():
        assert {c["kind"] for c in cands} == {"adapted", "scratch"}
        assert record["label_budget_run_ids"][years] == min(cands, key=lambda c: c["val_rmse"])["run_id"]


def test_the_ladder_covers_every_size_and_history(built_book):
    records = json.loads((results_dir(PROFILE) / "ladder.json").read_text())
    assert {(r["history"], r["student"]) for r in records} == {
        (h, s.name) for h in LADDER_HISTORIES for s in ladder_sizes(PROFILE)}
    seeds = get_profile(PROFILE).seeds
    for r in records:
        assert len(r["run_ids"]) == len(seeds)
        assert {history_name(_data_cfg(rid)) for rid in r["run_ids"]} == {r["history"]}


def _data_cfg(run_id: str):
    from ecodistill.config import DataConfig, from_dict

    return from_dict(DataConfig, _data(run_id))


def test_privileged_students_see_a_field_devices_inputs_only(built_book):
    records = json.loads((results_dir(PROFILE) / "privileged.json").read_text())
    teacher = teacher_record(PROFILE)["run_id"]
    assert records and all(r["teacher_run_id"] == teacher for r in records)
    for r in records:
        for run_id in r["run_ids"]:
            data = _data_cfg(run_id)
            assert data.inputs == r["inputs"] == "anchor" and history_name(data) == r["history"]
        distilled = [i for i in r["run_ids"] if i.startswith("kd-")]
        assert distilled and {runs.read_runs(PROFILE, run_id=i)["teacher_run_id"].iloc[0] for i in distilled} == {
            teacher}


def test_nowcast_and_memory_variants(built_book):
    ids = runs.read_runs(PROFILE)["run_id"].drop_duplicates()
    for latency in NOWCAST_LATENCIES:
        tagged = [i for i in ids if runs.parse_run_id(i)[1] == f"nowcast{latency}"]
        assert len(tagged) == len(get_profile(PROFILE).seeds)
        assert {_data_cfg(i).ndvi_latency for i in tagged} == {latency}
    histories = {history_name(_data_cfg(i)) for i in ids if runs.parse_run_id(i)[0]}
    assert {"stack", "sequence", *LADDER_HISTORIES} <= histories


def test_lightgbm_per_history_scored_and_timed(built_book):
    trees = runs.read_runs(PROFILE, method="lightgbm")
    own = history_name(get_profile(PROFILE).data)
    assert {history_name(_data_cfg(i)) for i in trees["run_id"].unique()} == set(LADDER_HISTORIES) | {own}
    assert set(trees["split"]) == {"val", "test"}
    timings = runs.read_timings(PROFILE)
    assert set(trees["run_id"]) <= set(timings.loc[timings["runtime"] == "lightgbm", "run_id"])


def test_realism_and_probe_results(built_book):
    table = read_realism(PROFILE)
    assert {"v1", "v2"} <= set(table["source"])
    assert table["value"].notna().all()
    probe = pd.read_csv(probe_path(PROFILE))
    assert set(zip(probe["variant"], probe["features"])) == {
        (v, f) for v in ("atmosphere", "land") for f in ("pre-trained", "raw inputs")}
