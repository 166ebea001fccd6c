"""Tests for ecodistill.evaluate with hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ecodistill.evaluate import (
    bias_map,
    error_map,
    fidelity,
    gap_closed,
    latitude_weights,
    metrics,
    per_month,
    per_region,
    retained_skill,
    to_rows,
)
from ecodistill.store import runs

RNG = np.random.default_rng(0)


def test_perfect_prediction_and_mean_prediction():
    y = RNG.standard_normal((5, 4, 6))
    mask = RNG.random((5, 4, 6)) > 0.3
    clim = RNG.standard_normal((4, 6))
    m = metrics(y, y, mask, clim=clim, lat_weights=latitude_weights(np.linspace(-60, 60, 4)))
    assert m["r2"] == 1.0 and m["rmse"] == 0.0 and m["bias"] == 0.0
    assert m["rmse_latw"] == 0.0 and m["r2_anom"] == 1.0 and m["n_cells"] == int(mask.sum())
    mean = np.full_like(y, y[mask].mean())
    assert metrics(mean, y, mask)["r2"] == pytest.approx(0.0, abs=1e-12)


def test_hand_computed_case_with_mask_and_channel_axis():
    y = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    y_hat = np.array([[[1.0, 3.0], [2.0, 6.0]]])
    m = metrics(y_hat, y, np.ones((2, 2), bool))
    assert m["r2"] == pytest.approx(1 - 6 / 5) and m["rmse"] == pytest.approx(math.sqrt(6 / 4))
    assert m["bias"] == pytest.approx(0.5)
    mask = np.array([[True, True], [True, False]])
    m = metrics(y_hat[:, None], y[:, None], mask[None, None])  # (n, 1, h, w) inputs
    assert m["r2"] == pytest.approx(0.0) and m["rmse"] == pytest.approx(math.sqrt(2 / 3))
    assert m["n_cells"] == 3


def test_latitude_weighting_direction():
    lat = np.array([-60.0, 0.0, 60.0])
    y = np.zeros((1, 3, 2))
    polar = np.array([3.0, 1.0, 3.0])[None, :, None] * np.ones((1, 3, 2))
    m = metrics(polar, y, np.ones((3, 2), bool), lat_weights=latitude_weights(lat))
    # weights cos = .5, 1, .5 -> normalised .75, 1.5, .75: (.75*9 + 1.5*1 + .75*9) / 3 = 5
    assert m["rmse"] == pytest.approx(math.sqrt(19 / 3)) and m["rmse_latw"] == pytest.approx(math.sqrt(5))
    tropical = np.array([1.0, 3.0, 1.0])[None, :, None] * np.ones((1, 3, 2))
    m = metrics(tropical, y, np.ones((3, 2), bool), lat_weights=latitude_weights(lat))
    assert m["rmse_latw"] > m["rmse"]


def test_anomaly_skill_of_climatology_is_zero():
    clim = np.sin(np.linspace(0, 6, 20))[:, None, None] * np.ones((20, 3, 4)) * 5
    anom = RNG.standard_normal((20, 3, 4))
    anom -= anom.mean()
    y = clim + anom
    m = metrics(clim, y, np.ones((3, 4), bool), clim=clim)
    assert m["r2"] > 0.9  # the seasonal cycle alone looks skilful...
    assert m["r2_anom"] == pytest.approx(0.0, abs=1e-12)  # ...but adds nothing above climatology
    assert m["rmse_anom"] == pytest.approx(m["rmse"])


def test_nan_handling_and_empty_mask():
    y = RNG.standard_normal((3, 2, 2))
    y_hat = y + 0.1
    y_nan = y.copy()
    y_nan[0, 0, 0] = np.nan
    mask = np.ones((3, 2, 2), bool)
    cut = mask.copy()
    cut[0, 0, 0] = False
    assert metrics(y_hat, y_nan, mask) == metrics(y_hat, y, cut)  # NaN truth = not observed
    bad = y_hat.copy()
    bad[1, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN/Inf value"):
        metrics(bad, y, mask)
    assert metrics(bad, y, ~(np.arange(12).reshape(3, 2, 2) == 7))["rmse"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="empty evaluation mask"):
        metrics(y_hat, y, np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="shape"):
        metrics(y_hat[:2], y, mask)


def test_fidelity():
    t = RNG.standard_normal((4, 3, 3))
    assert fidelity(t, t, np.ones((3, 3), bool))["fidelity_r2"] == 1.0
    assert fidelity(np.full_like(t, t.mean()), t, np.ones((3, 3), bool))["fidelity_r2"] == pytest.approx(0.0)


def test_per_region_and_per_month():
    n, h, w = 12, 4, 5
    y = RNG.standard_normal((n, h, w))
    y_hat = y + RNG.standard_normal((n, h, w)) * 0.3
    regions = np.zeros((h, w), int)
    regions[:2] = 1
    regions[2:, :4] = 2
    regions[3, 4] = 3  # one cell only: below min_cells
    names = {1: "Evergreen Needleleaf Forests", 2: "Croplands (rainfed)", 3: "Barren"}
    land = np.ones((h, w), bool)
    rows = per_region(y_hat, y, land, None, None, regions, names)
    assert [r for r, _ in rows] == ["global", "biome:Evergreen Needleleaf Forests", "biome:Croplands _rainfed_"]
    assert rows[0][1] == metrics(y_hat, y, land)
    assert rows[1][1] == metrics(y_hat[:, :2], y[:, :2], land[:2])
    months = np.repeat([1, 2, 3], 4)
    mrows = per_month(y_hat, y, land, None, months)
    assert [r for r, _ in mrows] == ["month:1", "month:2", "month:3"]
    assert mrows[1][1] == metrics(y_hat[4:8], y[4:8], land)


def test_error_and_bias_maps():
    y = np.zeros((2, 2, 2))
    y_hat = np.array([[[1.0, 2.0], [0.0, 5.0]], [[3.0, -2.0], [0.0, 9.0]]])
    mask = np.array([[[True, True], [True, False]], [[True, True], [True, False]]])
    np.testing.assert_allclose(error_map(y_hat, y, mask), [[math.sqrt(5), 2.0], [0.0, np.nan]])
    np.testing.assert_allclose(bias_map(y_hat, y, mask), [[2.0, 0.0], [0.0, np.nan]])


def test_to_rows_feed_the_result_store(tmp_path, monkeypatch):
    y = RNG.standard_normal((6, 3, 4))
    table = per_region(y + 0.1, y, np.ones((3, 4), bool), np.zeros((3, 4)), latitude_weights([-30, 0, 30]),
                       np.ones((3, 4), int), {1: "Savannas"})
    rows = to_rows(table, "test")
    assert ("test", "global", "rmse", pytest.approx(0.1)) in rows
    assert not any(r[2] == "n_cells" for r in rows)
    assert {r[2] for r in rows} == {"r2", "rmse", "rmse_latw", "bias", "r2_anom", "rmse_anom"}
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    meta = {"run_id": "teacher-test", "target": "ndvi", "kind": "teacher", "init": "scratch"}
    path = runs.write_run("smoke", runs.make_rows(meta, rows), {"x": 1})
    assert len(runs.read_runs("smoke")) == len(rows) and path.is_file()


def test_retained_skill_and_gap_closed():
    assert retained_skill(0.7, 0.8, 0.2) == pytest.approx(0.5 / 0.6)
    assert math.isnan(retained_skill(0.7, 0.2, 0.2))
    np.testing.assert_allclose(retained_skill(np.array([0.5, 0.8]), 0.8, 0.2), [0.5, 1.0])
    value, reason = gap_closed(1.0, 0.8, 0.6)
    assert value == pytest.approx(0.5) and reason == ""
    value, reason = gap_closed(1.0, 0.8, 0.6, spread=0.25)
    assert math.isnan(value) and "not resolvable" in reason
    value, reason = gap_closed([0.9, 1.0, 1.1], [0.7, 0.8, 0.9], 0.6)  # seed std 0.1: gap 0.4 > 0.2
    assert value == pytest.approx(0.5) and reason == ""
    value, reason = gap_closed(0.6, 0.5, 0.7)
    assert math.isnan(value) and "not better" in reason
