"""Checks that find, when a dataset is prepared, what would otherwise fail only after the
teacher has trained (issue 14, case 7): all-NaN targets, empty or constant regions, gaps."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from ecodistill import evaluate
from ecodistill.config import DataConfig
from ecodistill.data import BIOME_NAMES, check_prepared, prepare, simulate, split_arrays

TINY = DataConfig(nlat=12, nlon=24, seed=3, train_years=(2001, 2001), val_years=(2002, 2002),
                  test_years=(2003, 2003), extra_years=(2000, 2000))


@pytest.fixture(scope="module")
def earth():
    return simulate.simulate_earth(TINY)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_CACHE", str(tmp_path / "cache"))


def _variant(earth, tag: str, **ndvi_edit):
    ds = earth.copy(deep=True)
    ds.attrs["dataset_hash"] = f"variant-{tag}"  # its own cached statistics
    return ds


def _prepared(ds, cfg=TINY):
    """``prepare`` then the checks (prepare may call them itself: both orders raise the same)."""
    prep = prepare(ds, cfg, patch_size=4)
    check_prepared(prep)
    return prep


def test_the_simulated_earth_passes(earth):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prep = _prepared(_variant(earth, "ok"))
    assert len(prep.biome_names) >= 5


@pytest.mark.parametrize("split, year", [("test", 2003), ("train", 2001)])
def test_all_nan_targets_in_a_labelled_split_are_refused(earth, split, year):
    ds = _variant(earth, f"nan-{split}")
    ds["ndvi"][ds["time"].dt.year.values == year] = np.nan
    with pytest.raises(ValueError, match=f"ndvi has no valid value .* {split} years {year}-{year}.*{split}_years"):
        _prepared(ds)


def test_constant_region_is_excluded_with_a_warning(earth):
    ds = _variant(earth, "snow")
    dom, biome = ds["ndvi_domain"].values, ds["biome"].values
    label = int(np.bincount(biome[dom]).argmax())  # the most common biome: surely evaluated otherwise
    cells = dom & (biome == label)
    nd = ds["ndvi"].values
    nd[:, cells] = np.where(np.isfinite(nd[:, cells]), np.float32(-0.05), np.nan)  # snow and ice
    name = BIOME_NAMES[label]
    with pytest.warns(UserWarning, match=f"biome:{name} \\(constant NDVI in train\\)"):
        prep = prepare(ds, TINY, patch_size=4)  # prepare runs the checks before any training
    assert label not in prep.biome_names
    truth = split_arrays(prep, "test")  # no per-region metric of the constant biome, no NaN row
    table = evaluate.per_region(truth["clim"], truth["y"], truth["mask"], truth["clim"], prep.lat_weights,
                                prep.biome, prep.biome_names)
    assert f"biome:{name}" not in dict(table)
    assert all(np.isfinite(v) for _, m in table for k, v in m.items() if k != "r2_anom"), table


def test_constant_ndvi_everywhere_is_refused(earth):
    ds = _variant(earth, "const")
    ds["ndvi"].values[np.isfinite(ds["ndvi"].values)] = 0.3
    with pytest.raises(ValueError, match="ndvi is constant .* over the NDVI domain in the train years"):
        _prepared(ds)


def test_unscaled_ndvi_is_refused(earth):
    ds = _variant(earth, "scale")
    ds["ndvi"] = ds["ndvi"] * 10000  # GIMMS int16 scaling not applied
    with pytest.raises(ValueError, match="outside \\[-1, 1\\].*scale factor"):
        _prepared(ds)


def test_a_missing_day_is_refused(earth):
    ds = _variant(earth, "gap")
    keep = np.ones(ds.sizes["time"], bool)
    keep[500] = False
    with pytest.raises(ValueError, match="not consecutive days .*2001-05-1[45]"):
        _prepared(ds.isel(time=keep))


def test_overlapping_splits_are_refused(earth):
    cfg = DataConfig(**{**TINY.__dict__, "val_years": (2001, 2002)})
    with pytest.raises(ValueError, match="splits 'train' and 'val' share 365 day"):
        _prepared(_variant(earth, "overlap"), cfg)
