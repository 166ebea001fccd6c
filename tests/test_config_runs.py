"""Profiles and the result store."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from ecodistill import config
from ecodistill.store import runs


def test_profiles_roundtrip_and_unknown_name():
    for name in config.PROFILES:
        cfg = config.get_profile(name)
        again = config.from_dict(config.RunConfig, config.to_dict(cfg))
        assert again == cfg
    with pytest.raises(ValueError, match="unknown profile"):
        config.get_profile("huge")


def test_test_years_never_overlap_training():
    with pytest.raises(ValueError, match="overlaps the test years"):
        config.DataConfig(train_years=(2000, 2013), test_years=(2013, 2013))
    with pytest.raises(ValueError, match="alpha"):
        config.DistillConfig(alpha=1.5)


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    return tmp_path


def _rows(run_id="kd-x-abc", value=0.5, **over):
    meta = {"run_id": run_id, "dataset_hash": "h", "target": "ndvi", "kind": "student",
            "init": "distilled", "method": "kd-mse", "family": "mlp", "seed": 0, **over}
    return runs.make_rows(meta, [("test", "global", "r2", value), ("test", "biome:forest", "rmse", 0.1)])


def test_write_and_read_run(store):
    path = runs.write_run("smoke", _rows(), {"a": 1})
    assert path.is_file() and path.with_suffix(".json").is_file()
    frame = runs.read_runs("smoke", metric="r2")
    assert len(frame) == 1 and frame.value.iloc[0] == 0.5
    assert runs.has_run("smoke", "kd-x-abc")
    assert list(runs.read_runs("smoke").columns) == runs.COLUMNS


@pytest.mark.parametrize("bad, match", [
    (dict(value=math.nan), "not a finite number"),
    (dict(kind="oracle"), "kind='oracle' unknown"),
    (dict(target="lst"), "target='lst' unknown"),
])
def test_bad_rows_are_refused(store, bad, match):
    value = bad.pop("value", 0.5)
    with pytest.raises(ValueError, match=match):
        runs.write_run("smoke", _rows(value=value, **bad), {})
    assert not list(store.rglob("*.csv")), "a refused run must leave no file"


def test_make_run_id_is_config_hash():
    a = runs.make_run_id("kd-mlp", {"x": 1, "y": 2})
    assert a == runs.make_run_id("kd-mlp", {"y": 2, "x": 1}) != runs.make_run_id("kd-mlp", {"x": 2})
    with pytest.raises(ValueError):
        runs.make_run_id("bad name!", {})


def test_timings_merge_replaces_same_key(store):
    row = {c: 0 for c in runs.TIMING_COLUMNS} | {"run_id": "r", "model": "m", "median_ms": 2.0,
                                                  "p90_ms": 3.0, "runtime": "torch", "dtype": "fp32"}
    runs.write_timings("smoke", [row])
    runs.write_timings("smoke", [row | {"median_ms": 1.0}])
    frame = runs.read_timings("smoke")
    assert len(frame) == 1 and frame.median_ms.iloc[0] == 1.0
    with pytest.raises(ValueError, match="latency"):
        runs.write_timings("smoke", [row | {"median_ms": 0.0}])
    assert isinstance(frame, pd.DataFrame)


def test_cli_reports_user_errors_without_traceback(capsys, monkeypatch):
    """A bad input exits with code 2 and one readable line; ECODISTILL_DEBUG=1 re-raises."""
    from ecodistill.cli import main

    monkeypatch.delenv("ECODISTILL_DEBUG", raising=False)
    monkeypatch.setenv("ECODISTILL_DATA", "/nonexistent/era5_ndvi.nc")
    assert main(["distill", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "ECODISTILL_DATA=/nonexistent/era5_ndvi.nc: no such dataset" in err and "Traceback" not in err
    monkeypatch.setenv("ECODISTILL_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        main(["distill", "--profile", "smoke"])
