"""The cost of memory (Pi chapter): the table from history_cost.csv with the 720 x 1440
projection as arithmetic, the recurrent state's sentence, and the LightGBM timing rows -- on
known files and on empty results."""
from __future__ import annotations

import pandas as pd
import pytest
import report_fakes as fake

from ecodistill.report import frames
from ecodistill.report import memory_cost as M
from ecodistill.utils import results_dir


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    frames._config_variant.cache_clear()
    return tmp_path


def _cost(profile: str = fake.PROFILE) -> None:
    rows = []
    for history, latency, state, ms in (("today", 0, 0, 1.0), ("long", 0, 21900, 3.0), ("recurrent", 0, 240, 1.5),
                                        ("recurrent", 16, 248, 1.6)):
        for student in ("afno_s", "mlp_xs"):
            rows.append({"history": history, "ndvi_latency": latency, "student": student, "in_chans": 22,
                         "n_params": 1000, "flops_per_map": 2e6, "state_bytes_per_pixel": state,
                         "state_mb_per_map": state * 2048 / 1e6, "median_ms": ms, "p90_ms": ms, "n": 10,
                         "threads": 1, "cpu": "x"})
    path = results_dir(profile) / "history_cost.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def test_memory_cost_table_projects_by_arithmetic(store):
    _cost()
    table = M.memory_cost_table(fake.PROFILE)
    year = table[(table["history"] == "long") & (table["student"] == "afno_s")].iloc[0]
    assert year["state per 720×1440 map (MB, arithmetic)"] == pytest.approx(21900 * 720 * 1440 / 1e6)
    assert year["MFLOP per map"] == pytest.approx(2.0)
    assert set(table["NDVI input"]) == {"none", "observed ≥ 16 d before"}
    text = M.memory_cost_text(table)
    assert "keeps 240 bytes per pixel" in text and "21,900 bytes" in text and "91 times less" in text
    assert "arithmetic, not measured" in text


def test_memory_cost_without_results(store):
    table = M.memory_cost_table(fake.PROFILE)
    assert table.empty and "python -m ecodistill history-cost --profile cpu" in table.attrs["missing"]
    assert M.memory_cost_text(table) == table.attrs["missing"]


def test_lightgbm_timings_carry_history_and_skill(store):
    rid = fake.baseline("lightgbm", 0.55, history="today")
    timings = pd.DataFrame([{"run_id": rid, "model": "lightgbm", "runtime": "lightgbm", "n_params": 5000,
                             "flops_per_map": 1e5, "median_ms": 12.0, "grid": "32x64"},
                            {"run_id": "x", "model": "afno_s", "runtime": "torch", "n_params": 1,
                             "flops_per_map": 1.0, "median_ms": 1.0, "grid": "32x64"}])
    table = M.lightgbm_timings(fake.PROFILE, timings, frames.read_results(fake.PROFILE))
    assert len(table) == 1 and table["history"].iloc[0] == "today"
    assert table["test anomaly R²"].iloc[0] == pytest.approx(0.55)
    empty = M.lightgbm_timings(fake.PROFILE, timings.iloc[1:])
    assert empty.empty and "--stages trees" in empty.attrs["missing"]
