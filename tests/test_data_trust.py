"""Content, not labels: dataset fingerprints, the identity of real data, and ECODISTILL_DATA
honoured by every data entry point (issue 14, cases 4 and 6)."""
from __future__ import annotations

import os
import shutil

import h5py
import numpy as np
import pytest

from ecodistill import cli
from ecodistill.config import DataConfig, get_profile
from ecodistill.data import (
    describe,
    fingerprint,
    load_dataset,
    prepare,
    schema,
    simulate,
    source_from_env,
    store,
    with_env_source,
    write_dataset,
)
from ecodistill.store import runs

TINY = DataConfig(nlat=12, nlon=24, seed=5, train_years=(2001, 2001), val_years=(2002, 2002),
                  test_years=(2003, 2003), extra_years=None)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A cache holding TINY's simulation, built once; tests edit copies of it."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECODISTILL_CACHE", str(cache))
        simulate.build_dataset(TINY)
    return cache


@pytest.fixture
def cache(built, tmp_path, monkeypatch):
    copy = tmp_path / "cache"
    shutil.copytree(built, copy)
    monkeypatch.setenv("ECODISTILL_CACHE", str(copy))
    monkeypatch.delenv("ECODISTILL_DATA", raising=False)
    return copy


def _edit(path, name: str, day: int, delta: float = 0.25) -> None:
    """Change one day of one variable in place; the file's attributes (its hash) stay."""
    with h5py.File(path, "r+") as f:
        f[name][day] = f[name][day] + np.float32(delta)


def _verify(*args: str) -> int:
    return cli.main(["data", "verify", *args])


def test_edited_values_with_a_kept_hash_are_refused(cache, capsys):
    path = simulate.dataset_path(TINY)
    _edit(path, "ndvi", 0)  # day 0 is always sampled
    with h5py.File(path, "r") as f:
        assert f.attrs["dataset_hash"] == simulate.dataset_hash(TINY)  # the label survived the edit
    with pytest.raises(ValueError, match="does not match its fingerprint .*variable ndvi.*data build") as err:
        load_dataset(TINY)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert _verify("--path", str(path)) == 2
    assert "does not match its fingerprint" in capsys.readouterr().err


def test_an_edit_between_sampled_days_needs_the_full_check(cache):
    path = simulate.dataset_path(TINY)
    day = next(d for d in range(1, 40) if d not in fingerprint.sample_days(3 * 365 + 1))
    _edit(path, "t2m", day)
    assert load_dataset(TINY).attrs["content_check"] == "fingerprint"  # the quick check cannot see it
    assert _verify("--path", str(path)) == 0
    assert _verify("--path", str(path), "--full") == 2


def test_a_cached_simulation_without_fingerprint_is_refused(cache):
    path = simulate.dataset_path(TINY)
    fingerprint.sidecar_path(path).unlink()
    with pytest.raises(ValueError, match="no fingerprint .*--force"):
        load_dataset(TINY)
    assert _verify("--path", str(path)) == 2


def test_damaged_npy_dataset_names_the_file(tmp_path):
    path = simulate.build_dataset(TINY, tmp_path / "d.npy", fmt="npy")
    assert store.open_dataset(path).attrs["content_check"] == "fingerprint"
    meta = path / "meta.json"
    meta.write_text(meta.read_text()[:100])
    with pytest.raises(ValueError, match="meta.json is not valid JSON.*rebuild") as err:
        store.open_dataset(path)
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """TINY's Earth written as a real dataset (write_dataset): identity from its values."""
    folder = tmp_path_factory.mktemp("real")
    ds = simulate.simulate_earth(TINY)
    return ds, write_dataset(ds, folder / "real.nc")


def test_real_identity_follows_the_values(real, tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_CACHE", str(tmp_path / "cache"))
    ds, path = real
    cfg = DataConfig(**{**TINY.__dict__, "source": str(path)})
    first = load_dataset(cfg)
    assert first.attrs["dataset_hash"] != simulate.dataset_hash(TINY)  # not the simulator's label
    assert first.attrs["dataset_hash"] == fingerprint.content_hash(first)[:12]
    edited = ds.copy(deep=True)
    edited["t2m"] = edited["t2m"] + np.float32(0.5)  # attrs, dataset_hash included, kept
    other = write_dataset(edited, tmp_path / "edited.nc")
    second = load_dataset(DataConfig(**{**TINY.__dict__, "source": str(other)}))
    assert second.attrs["dataset_hash"] != first.attrs["dataset_hash"]
    copy = tmp_path / "copy.nc"
    shutil.copy(path, copy)
    _edit(copy, "t2m", 0)
    shutil.copy(fingerprint.sidecar_path(path), fingerprint.sidecar_path(copy))
    with pytest.raises(ValueError, match="copy.nc does not match.*write_dataset"):
        load_dataset(DataConfig(**{**TINY.__dict__, "source": str(copy)}))
    with pytest.raises(ValueError, match="12x24 grid but the profile needs 24x48.*nlat=24"):
        load_dataset(DataConfig(**{**TINY.__dict__, "source": str(path), "nlat": 24, "nlon": 48}))


def test_real_file_without_sidecar_gets_a_content_identity(real, tmp_path):
    _, path = real
    a, b = tmp_path / "a.nc", tmp_path / "sub" / "b.nc"
    b.parent.mkdir()
    shutil.copy(path, a)
    shutil.copy(path, b)
    os.utime(b, (1e9, 1e9))  # another path and modification time, the same content
    hashes = []
    for p in (a, b):
        with pytest.warns(UserWarning, match="no fingerprint sidecar"):
            hashes.append(load_dataset(DataConfig(**{**TINY.__dict__, "source": str(p)})).attrs["dataset_hash"])
    ha, hb = hashes
    assert ha == hb
    _edit(b, "ndvi", 0, delta=-0.01)  # stays in the NDVI domain (+0.25 gave 1.02: refused)
    with pytest.warns(UserWarning, match="no fingerprint sidecar"):
        assert load_dataset(DataConfig(**{**TINY.__dict__, "source": str(b)})).attrs["dataset_hash"] != ha
    assert _verify("--path", str(a)) == 2  # no sidecar: nothing to verify against
    assert _verify("--path", str(a), "--write") == 0
    checked = load_dataset(DataConfig(**{**TINY.__dict__, "source": str(a)}))
    assert checked.attrs["content_check"] == "fingerprint"
    assert checked.attrs["dataset_hash"] == fingerprint.content_hash(checked)[:12]


def test_ecodistill_data_is_resolved_once_for_every_entry_point(real, tmp_path, monkeypatch, capsys):
    _, path = real
    monkeypatch.setenv("ECODISTILL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ECODISTILL_DATA", raising=False)
    assert source_from_env() == "simulated" and with_env_source(TINY) is TINY
    monkeypatch.setenv("ECODISTILL_DATA", str(tmp_path / "missing.nc"))
    with pytest.raises(FileNotFoundError, match="ECODISTILL_DATA=.*missing.nc: no such dataset"):
        source_from_env()
    for action in ("build", "baselines", "verify"):
        assert cli.main(["data", action, "--profile", "smoke"]) == 2, action
    monkeypatch.setenv("ECODISTILL_DATA", str(path))
    assert with_env_source(TINY).source == str(path)
    ds = load_dataset(with_env_source(TINY))
    assert f"real data from {path}" in describe(ds) and ds.attrs["dataset_hash"] in describe(ds)
    # the smoke profile's grid is 24x48: a 12x24 real dataset is refused, never replaced by simulation
    assert cli.main(["data", "baselines", "--profile", "smoke"]) == 2
    assert "12x24 grid but the profile needs 24x48" in capsys.readouterr().err


@pytest.mark.slow
def test_data_baselines_use_ecodistill_data(tmp_path, monkeypatch, capsys):
    """`data baselines` on real data records rows of the real dataset only (no simulated rows)."""
    monkeypatch.setenv("ECODISTILL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path / "results"))
    cfg = get_profile("smoke").data
    sim = simulate.simulate_earth(cfg).drop_vars(["rootzone_availability", "gsi"])  # simulator diagnostics
    for name in ("z500", "tcwv"):  # world v2's rare impossible extremes (Limitations): not in a real file
        sim[name] = sim[name].clip(*schema.DOMAIN[name]).assign_attrs(sim[name].attrs)
    path = write_dataset(sim, tmp_path / "real_smoke.nc")
    monkeypatch.setenv("ECODISTILL_DATA", str(path))
    assert cli.main(["data", "baselines", "--profile", "smoke"]) == 0
    assert "real data from" in capsys.readouterr().out
    hashes = set(runs.read_runs("smoke", kind="baseline")["dataset_hash"])
    assert hashes == {fingerprint.read_sidecar(path)["dataset_hash"]}
    assert simulate.dataset_hash(cfg) not in hashes


# --- caches follow every value; every value in its domain (issue 20, items 2 and 5) ---------

def _t2m_week(prep, day: int) -> float:
    """The standardised 7-day trailing mean of t2m at one land cell on ``day`` (an input channel)."""
    k = prep.input_channels.index("t2m@7d")
    return float(prep.dynamic_inputs(np.array([day]))[0, k, 5, 10])


def test_an_unsampled_edit_is_never_served_from_cached_sums(cache):
    path = simulate.dataset_path(TINY)
    prepare(load_dataset(TINY), TINY, patch_size=4)  # caches cumulative sums and statistics
    day = next(d for d in range(40, 80) if d not in fingerprint.sample_days(3 * 365 + 1))
    _edit(path, "t2m", day, delta=30.0)
    edited = load_dataset(TINY)
    assert edited.attrs["content_check"] == "fingerprint"  # the quick check cannot see it
    with pytest.raises(ValueError, match="SHA-256 of its values differs.*changed after it was written") as err:
        prepare(edited, TINY, patch_size=4)  # before: the old sums were reused (-0.033 instead of 0.334)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_without_a_sidecar_the_sums_follow_the_values(real, tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_CACHE", str(tmp_path / "cache"))
    _, path = real
    copy = tmp_path / "nosidecar.nc"
    shutil.copy(path, copy)
    cfg = DataConfig(**{**TINY.__dict__, "source": str(copy)})
    day = next(d for d in range(40, 80) if d not in fingerprint.sample_days(3 * 365 + 1))
    with pytest.warns(UserWarning, match="no fingerprint sidecar"):
        before = _t2m_week(prepare(load_dataset(cfg), cfg, patch_size=4), day)
    _edit(copy, "t2m", day, delta=30.0)
    with pytest.warns(UserWarning, match="no fingerprint sidecar"):
        prep = prepare(load_dataset(cfg), cfg, patch_size=4)
    after = _t2m_week(prep, day)
    week = prep.reader.read("t2m", np.arange(day - 6, day + 1))[:, 5, 10].mean()
    k = prep.input_channels.index("t2m@7d")
    assert after == pytest.approx((week - prep.mean[k]) / prep.std[k], rel=1e-4)
    assert after != pytest.approx(before, abs=0.05)


def test_an_in_memory_change_is_hashed_before_any_cache_is_trusted(cache):
    ds = load_dataset(TINY)
    first = prepare(ds, TINY, patch_size=4)
    warm = ds.copy()
    warm["t2m"] = warm["t2m"] + np.float32(30.0)  # attrs (and dataset_hash) kept
    second = prepare(warm, TINY, patch_size=4)
    k = second.input_channels.index("t2m")
    assert second.mean[k] == pytest.approx(first.mean[k] + 30.0, abs=1e-3)  # before: the stored statistics
    assert second.cum_dir != first.cum_dir


@pytest.mark.parametrize("name, value, match", [
    ("tp", 5.0, "tp has 1 value.*outside its physical domain 0..2 m.*time 2001-01-04"),
    ("t2m", np.nan, "t2m holds 1 NaN/Inf value.*time 2001-01-04"),
    ("swvl1", np.nan, "swvl1 holds 1 NaN over land.*time 2001-01-04"),
])
def test_ecodistill_data_values_are_checked_when_opened(real, tmp_path, monkeypatch, name, value, match):
    monkeypatch.setenv("ECODISTILL_CACHE", str(tmp_path / "cache"))
    ds, _ = real
    bad = ds.copy(deep=True)
    land = np.argwhere(ds["land_mask"].values)[0]
    bad[name][3, land[0], land[1]] = value
    path = write_dataset(bad, tmp_path / "bad.nc")
    monkeypatch.setenv("ECODISTILL_DATA", str(path))
    with pytest.raises(ValueError, match=match) as err:
        load_dataset(with_env_source(TINY))
    assert str(path) in str(err.value) and "\n" not in str(err.value)
