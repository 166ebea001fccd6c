"""The data chapter's report functions: the data variant of every run (world, inputs, history,
NDVI latency, use), the realism table judged against its targets, the world versions, the
history settings and the references of each use -- on frames whose answer is known, and on
empty results (the message naming the command)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import report_fakes as fake

from ecodistill.config import DataConfig, get_profile, to_dict
from ecodistill.data.realism import EXCURSION, TARGETS, factor_two
from ecodistill.report import frames, uses
from ecodistill.report import realism as R


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    frames._config_variant.cache_clear()
    return tmp_path


# ---- variants -----------------------------------------------------------------------------

def test_use_names():
    assert frames.use_name(0) == "emulation"
    assert frames.use_name(16) == "nowcast L=16"
    assert frames.use_name(0, "persistence") == "nowcast L=1"
    assert frames.use_name(0, "persistence-30d") == "nowcast L=30"
    assert frames.use_name(0, "ceiling-bayes") == "ceiling"


def test_data_variant_reads_absent_added_fields_as_defaults():
    """``to_dict`` leaves "added" fields out at their default: v1, v1 inputs, no NDVI input."""
    old = to_dict(DataConfig())
    assert "world" not in old and "ndvi_latency" not in old
    assert frames.data_variant(old) == {"world": "v1", "inputs": "v1", "history": "short", "ndvi_latency": 0}
    assert frames.data_variant(fake.data_dict("recurrent", "anchor"))["history"] == "recurrent"
    assert frames.data_variant(None) == {}


def test_with_variants_reads_each_runs_config(store):
    t = fake.teacher()
    fake.student("scratch", "afno_s", "final", 0, 0.5, t)
    fake.student("scratch", "afno_s", "final", 0, 0.4, t, history="today")
    fake.student("distilled", "afno_s", "field", 0, 0.3, t, history="recurrent", inputs="anchor")
    fake.student("scratch", "afno_s", "nowcast16", 0, 0.8, t, ndvi_latency=16)
    fake.baseline("persistence-16d", 0.2)
    fake.baseline("linear", 0.3, world="v1", inputs="v1", history="short")
    frame = frames.with_variants(frames.read_results(fake.PROFILE))
    w = frame.drop_duplicates("run_id").set_index("run_id")
    assert set(w["history"]) == {"long", "today", "recurrent", "short"}
    assert set(w["use"]) == {"emulation", "nowcast L=16"}
    assert (w.loc[w["method"] == "linear", "world"] == "v1").all()
    nowcast = w[w["ndvi_latency"].astype(int) == 16]
    assert len(nowcast) == 1 and (nowcast["use"] == "nowcast L=16").all()
    own = frames.select_variant(frame, {"world": "v2", "inputs": "era5", "history": "long", "ndvi_latency": 0})
    own_runs = own.drop_duplicates("run_id")
    assert len(own_runs) == 3  # the teacher, the long-history scratch student, the persistence baseline
    assert set(own_runs["kind"]) == {"teacher", "student", "baseline"}


def test_own_variant_is_the_teachers(store):
    """The main comparison's variant is the chosen teacher's (a v1 record keeps v1 results
    together); without a record, the profile's own data config."""
    t = fake.teacher(world="v1", inputs="v1", history="short")
    assert frames.own_variant(fake.PROFILE, {"run_id": t})["world"] == "v1"
    assert frames.own_variant(fake.PROFILE, None) == frames.data_variant(to_dict(get_profile(fake.PROFILE).data))


def test_read_current_keeps_only_the_main_variant(store):
    t = fake.teacher()
    keep = fake.student("scratch", "afno_s", "final", 0, 0.5, t)
    other = fake.student("scratch", "afno_s", "final", 0, 0.4, t, history="today")
    record = {"run_id": t, "dataset_hash": fake.DATASET}
    main = frames.read_current(fake.PROFILE, record)
    assert keep in set(main["run_id"]) and other not in set(main["run_id"])
    every = frames.read_current(fake.PROFILE, record, variant=None)
    assert {keep, other} <= set(every["run_id"])


# ---- realism ------------------------------------------------------------------------------

def _realism_rows() -> pd.DataFrame:
    """realism.csv rows: v1 and v2 values of every target, the real values of the computed ones."""
    rows = []
    for t in TARGETS:
        sim = "vegetation" if t.variable.startswith("vegetation") else t.variable
        real = 0.2 if t.real is None and t.low == t.high == 0 else None
        if real is not None:
            rows.append(("real", "fluxval", t.statistic, t.variable, real, 100))
        low, high = factor_two(real) if real is not None else (t.low, t.high)
        inside = (low + high) / 2
        rows.append(("v2", "newhash", t.statistic, sim, inside, 10))
        rows.append(("v1", "oldhash", t.statistic, sim, high * 3 + 1, 10))  # every v1 value above its target
    rows.append(("v2", "newhash", "monthly lag-1 autocorrelation of anomalies", "tp", 0.9, 10))
    rows.append(("real", "fluxval", "monthly lag-1 autocorrelation of anomalies", "tp", 0.1, 10))
    frame = pd.DataFrame(rows, columns=["source", "dataset_hash", "statistic", "variable", "value", "n"])
    return frame.drop_duplicates(["source", "statistic", "variable"])


def test_realism_table_judges_every_target():
    rows = _realism_rows()
    table = R.realism_table("cpu", rows)
    assert list(table.columns) == R.COLUMNS and len(table) == len(TARGETS)
    verdicts = table["within target? v1 → v2"].str.split(" → ")
    assert (verdicts.str[1] == "yes").all() and (verdicts.str[0] == "above").all()
    uk = table[table["variable"] == "t2m"].iloc[0]
    assert uk["statistic"] == "daily lag-1 autocorrelation (one month, British Isles)"
    assert uk["target"] == "0.100–0.400 (× 2 of real)"
    summary = R.realism_summary("cpu", rows)
    assert summary["n_within_v2"] == summary["n_targets"] == len(TARGETS)
    assert summary["n_within_v1"] == 0 and summary["misses_text"] == "the new world is within every target."


def test_a_miss_is_named_with_what_it_biases():
    rows = _realism_rows()
    lag = (rows["statistic"] == "monthly lag-1 autocorrelation of anomalies") & (rows["variable"] == "vegetation")
    rows.loc[lag & (rows["source"] == "v2"), "value"] = 0.62  # above 0.1-0.4, the factor-2 range of both
    summary = R.realism_summary("cpu", rows)
    assert summary["n_within_v2"] == len(TARGETS) - 2  # against LAI and against GPP (same real value here)
    assert "persistence and every model with memory" in summary["misses_text"]
    frame = R.realism_frame(rows)
    assert set(R.misses(frame)["variable"]) == {"vegetation (LAI)", "vegetation (GPP)"}


def test_further_statistics_use_the_factor_of_two_rule():
    table = R.further_table("cpu", _realism_rows())
    row = table[table["variable"] == "tp"].iloc[0]
    assert row["within × 2 of real? v1 → v2"] == "– → above"


def test_values_outside_the_domain_are_stated_not_tabled():
    rows = _realism_rows()
    assert "outside" not in R.realism_summary("cpu", rows)["misses_text"]
    extra = pd.DataFrame([("v2", "newhash", EXCURSION, "z500", 2.3e-5, 372),
                          ("v1", "oldhash", EXCURSION, "tcwv", 6e-8, 1)], columns=rows.columns)
    rows = pd.concat([rows, extra], ignore_index=True)
    text = R.realism_summary("cpu", rows)["misses_text"]
    assert "z500 2.3e-05 (372 values)" in text and "tcwv" not in text  # the shown world's only
    assert EXCURSION not in set(R.further_table("cpu", rows)["statistic"])


def test_excursion_rows_count_finite_values_outside_the_domain():
    import xarray as xr

    from ecodistill.experiments.realism import excursion_rows

    z500 = np.full((4, 5), 55000.0)
    z500[0, 0], z500[1, 1] = 1.0e6, np.nan
    ds = xr.Dataset({"z500": (("time", "lat"), z500), "t2m": (("time", "lat"), np.full((4, 5), 280.0))})
    rows = excursion_rows("v2", "hash", ds)
    assert [(r["variable"], r["n"]) for r in rows] == [("z500", 1)]
    assert rows[0]["value"] == pytest.approx(1 / 19) and rows[0]["statistic"] == EXCURSION


def test_realism_without_results_names_the_command(store):
    for table in (R.realism_table("cpu"), R.further_table("cpu")):
        assert table.empty and "python -m ecodistill realism --profile cpu" in table.attrs["missing"]
    assert "python -m ecodistill realism" in R.realism_summary("cpu")["misses_text"]
    worlds = R.world_table("cpu")
    assert list(worlds["world"]) == ["v1", "v2"] and (worlds["dataset hash at this profile"] == "–").all()


def test_world_table_marks_the_shown_dataset():
    table = R.world_table("cpu", _realism_rows(), current="newhash").set_index("world")
    assert table.loc["v2", "shown in this chapter"] == "yes" and table.loc["v1", "dataset hash at this profile"] == "oldhash"


def test_citations_in_cells_read_as_names():
    assert R.cite_names("see (rasp2020weatherbench; horel1985persistence)") == "see (Rasp et al. 2020; Horel 1985)"
    assert R.cite_names("(rasp2021resnet)") == "(Rasp & Thuerey 2021)"
    assert R.cite_names("no key here") == "no key here"


def test_world_numbers_are_the_modules_constants():
    from ecodistill.data import atmosphere, weather

    numbers = R.world_numbers()
    assert numbers["v2_p_tau"] == atmosphere.ATMOSPHERE_PARAMS["p_tau"]
    assert numbers["v1_p_tau"] == weather.WEATHER_PARAMS["p_tau"]
    assert numbers["v2_layers"] == "0–7, 7–28, 28–100, 100–289 cm"
    constants = R.world_constants()
    v2 = constants[constants["module"] == "atmosphere (v2)"]
    assert "p_tau" in set(v2["constant"]) and "S0" not in set(v2["constant"])  # only what v2 changes


# ---- uses ---------------------------------------------------------------------------------

def test_history_table_counts_channels_and_state():
    table = uses.history_table("cpu").set_index("history")
    assert list(table.index) == ["today", "short", "long", "stack", "sequence", "recurrent"]
    assert table.loc["today", "state per pixel (bytes)"] == 0
    assert table.loc["long", "state per pixel (bytes)"] == 4 * 15 * 365  # a year of 15 fields, fp32
    assert table.loc["recurrent", "state per pixel (bytes)"] == 4 * 15 * 4  # four integrators per field
    assert table.loc["long", "input channels"] > table.loc["today", "input channels"]


def test_reference_table_per_use(store):
    for method, skill in (("climatology", 0.0), ("linear", 0.3), ("lightgbm", 0.5), ("persistence", 0.75),
                          ("persistence-16d", 0.1), ("ceiling-noise-free", 0.85), ("ceiling-bayes", 0.9)):
        fake.baseline(method, skill)
    fake.baseline("lightgbm", 0.6, history="today")  # another history: not this variant's reference
    rows = frames.read_results(fake.PROFILE)
    data = DataConfig(world="v2", inputs="era5", history_windows=(7, 30, 90, 180, 365))
    table = uses.reference_table(rows, data)
    assert list(table["use"]) == ["emulation"] * 3 + ["nowcast L=1", "nowcast L=16", "ceiling", "ceiling"]
    skill = uses.reference_skill(table)
    assert skill["lightgbm"] == pytest.approx(0.5) and skill["ceiling-bayes"] == pytest.approx(0.9)
    assert np.isfinite(table["test RMSE"]).all()


def test_reference_table_without_results(store):
    table = uses.reference_table(frames.read_results(fake.PROFILE))
    assert table.empty and "python -m ecodistill matrix --profile cpu" in table.attrs["missing"]


def test_lag_table_names_every_latency():
    table = uses.lag_table()
    assert list(table["use"]) == ["emulation", "nowcast L=1", "nowcast L=16", "nowcast L=30"]
