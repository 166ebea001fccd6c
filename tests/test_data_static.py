"""The committed static maps, their provenance, and conservative regridding."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ecodistill.data import regrid, static
from ecodistill.utils import sha256_file


def test_static_file_is_small_and_matches_its_provenance():
    path = static.STATIC_PATH
    assert path.stat().st_size < 5e6
    prov = json.loads(path.with_suffix(".json").read_text())
    assert prov["sha256"] == sha256_file(path)
    assert set(prov["sources"]) == {"igbp_counts", "ndvi_max/ndvi_min", "orography"}
    assert "build-static" in prov["rebuild"]
    arr = static.static_arrays()
    assert arr["igbp_counts"].shape == (17, 180, 360) and (arr["igbp_counts"].sum(0) == 400).all()
    land = 1 - arr["igbp_counts"][0] / 400
    w = np.cos(np.deg2rad(arr["lat"]))[:, None] * np.ones((1, 360))
    assert 0.26 < (land * w).sum() / w.sum() < 0.31  # Earth's land fraction is ~0.29


@pytest.mark.parametrize("grid", [(24, 48), (32, 64), (64, 128), (20, 36)])
def test_static_maps_on_project_grids(grid):
    st = static.static_maps(*grid)
    assert st["land_mask"].dtype == bool and st["land_mask"].shape == grid
    assert np.all(np.diff(st["lat"].values) > 0) and st["lat"].attrs["units"] == "degrees_north"
    assert st["lon"].values.min() > -180 and st["lon"].values.max() < 180
    frac = st["igbp_fraction"].values
    np.testing.assert_allclose(frac.sum(0), 1.0, atol=1e-5)
    land = st["land_mask"].values
    # majority class from fractions, never an average of class numbers
    np.testing.assert_array_equal(st["igbp"].values[land], 1 + frac[1:, land].argmax(0))
    assert (st["igbp"].values[~land] == 0).all()
    dom = st["ndvi_domain"].values
    assert dom.any() and not (dom & ~land).any()
    assert (st["ndvi_min"].values[dom] <= st["ndvi_max"].values[dom]).all()
    assert (st["orography"].values >= 0).all() and st["orography"].values.max() > 2000
    assert set(np.unique(st["biome"].values)) <= set(range(len(static.BIOME_NAMES)))


def test_conservative_regrid_preserves_the_area_mean():
    rng = np.random.default_rng(0)
    src_lat, src_lon = regrid.grid_centres(180, 360)
    dst_lat, dst_lon = regrid.grid_centres(24, 50)  # 360/50 does not divide 1° cells
    field = rng.normal(size=(180, 360))
    out = regrid.Regridder(src_lat, src_lon, dst_lat, dst_lon)(field)

    def area_mean(f, lat):
        w = np.cos(np.deg2rad(lat))[:, None] * np.ones((1, f.shape[1]))
        return (f * w).sum() / w.sum()
    assert area_mean(out, dst_lat) == pytest.approx(area_mean(field, src_lat), abs=2e-4)


def test_regrid_ignores_nan_and_block_mean():
    src_lat, src_lon = regrid.grid_centres(4, 8)
    field = np.ones((4, 8))
    field[:, :4] = np.nan
    out = regrid.Regridder(src_lat, src_lon, *regrid.grid_centres(2, 4))(field, min_cover=0.6)
    assert np.isnan(out[:, :2]).all() and np.allclose(out[:, 2:], 1.0)
    a = np.arange(16.0).reshape(4, 4)
    a[0, 0] = np.nan
    np.testing.assert_allclose(regrid.block_mean(a, 2, 2), [[(1 + 4 + 5) / 3, 4.5], [10.5, 12.5]])
    with pytest.raises(ValueError, match="not divisible"):
        regrid.block_mean(a, 3, 3)


def test_build_static_names_the_missing_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get download ferret-datasets"):
        static.build_static(tmp_path / "s.npz", etopo=tmp_path / "missing.cdf")


def test_static_npz_is_deterministic():
    arrays = {"a": np.arange(3), "b": np.ones((2, 2), np.float32)}
    assert static._zip_npz(arrays) == static._zip_npz(dict(reversed(list(arrays.items()))))


def test_damaged_static_file_and_seam_grid_give_one_line_errors(tmp_path):
    from ecodistill.data.regrid import Regridder
    from ecodistill.data.static import STATIC_PATH, static_arrays

    bad = tmp_path / "static_maps.npz"
    bad.write_bytes(STATIC_PATH.read_bytes()[:1000])
    with pytest.raises(ValueError, match="static maps .*static_maps.npz is damaged.*build-static") as err:
        static_arrays(str(bad))
    assert "\n" not in str(err.value)
    lat, lon = np.linspace(-85, 85, 18), np.arange(-180, 180.1, 10.0)  # -180 and 180: the seam twice
    with pytest.raises(ValueError, match="seam column twice; drop the last column"):
        Regridder(lat, lon, lat, lon[:-1])
