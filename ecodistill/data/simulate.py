"""The default global benchmark: a simulated Earth anchored on real static maps.

:func:`simulate_earth` runs the weather generator (:mod:`ecodistill.data.weather`) and the
land model (:mod:`ecodistill.data.vegetation`) day by day over ``cfg.all_years`` (after
one discarded spin-up year) on the ``cfg.nlat`` x ``cfg.nlon`` grid, deterministically from
``cfg.seed``. ``ndvi`` (the observation, with gaps) is NaN in ``cfg.extra_years``: those
years have weather but no labels, like ERA5 before the satellite NDVI record.
``ndvi_true`` is the simulator's noise- and gap-free NDVI, for controls only.

The simulation runs with BLAS pinned to one thread (``threadpoolctl``): multi-threaded
BLAS sums in another order, so the values would depend on the host's thread count (relative
differences ~1e-6) while the dataset hash does not -- and one thread is also faster here.

:func:`load_dataset` returns the cached file (``utils.cache_dir()/data/``) or builds it;
the file name carries the dataset hash, a digest of the simulator's source code, its
parameters, the static maps and the config, stored as ``ds.attrs["dataset_hash"]``. The
file's content is checked against the fingerprint written beside it when it was built
(:mod:`ecodistill.data.fingerprint`), so an edited file is refused, never trusted by its
label. A real dataset (``cfg.source`` a path) is opened by :func:`ecodistill.data.source.open_real`.

Explained in book/generated/02_data.ipynb ("The simulated Earth").
"""
from __future__ import annotations

import ast
import hashlib
import inspect
import json
import textwrap
import time as _time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..config import DataConfig
from ..utils import cache_dir, sha256_file
from . import world as worlds
from .fingerprint import sidecar_path
from .schema import VAR_ATTRS, coord_attrs
from .static import STATIC_PATH, static_maps
from .store import DatasetWriter, default_format, open_dataset
from .world import days_of, one_blas_thread

#: The variables of a v1 dataset (:func:`ecodistill.data.world.output_vars` gives every world's).
OUTPUT_VARS = worlds.output_vars("v1")
STATIC_OUT = ("land_fraction", "land_mask", "igbp", "biome", "orography", "ndvi_max", "ndvi_min", "ndvi_domain")


def code_digest(obj) -> str:
    """SHA-256 of what a module or function *does*: its syntax tree without docstrings, so
    comments, docstrings and line wrapping do not make a new dataset, any change of code does."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def dataset_hash(cfg: DataConfig) -> str:
    """12-hex digest of the world's simulator code and parameters, the static maps and the
    relevant config (a v1 dataset keeps the hash it had before world versions existed)."""
    world = worlds.check_world(cfg.world)
    h = hashlib.sha256()
    for code in worlds.code_parts(world):
        h.update(code_digest(code).encode())
    # the static maps enter by value on this grid: regridding code that gives the same maps
    # (e.g. a new check on real inputs) does not make a new dataset
    static = static_maps(cfg.nlat, cfg.nlon)
    for name in sorted(static.data_vars):
        h.update(name.encode() + np.ascontiguousarray(static[name].values).tobytes())
    h.update(json.dumps(worlds.param_parts(world), sort_keys=True).encode())
    h.update(sha256_file(STATIC_PATH).encode())
    keys = {"nlat": cfg.nlat, "nlon": cfg.nlon, "seed": cfg.seed, "years": cfg.all_years,
            "extra_years": cfg.extra_years}
    if world != "v1":
        keys["world"] = world
    h.update(json.dumps(keys, sort_keys=True, default=list).encode())
    return h.hexdigest()[:12]


def _attrs(cfg: DataConfig, digest: str) -> dict:
    return {"title": "ecodistill simulated Earth (weather + vegetation, real static maps)",
            "dataset_hash": digest, "source": "simulated", "world": cfg.world, "seed": cfg.seed,
            "grid": f"{cfg.nlat}x{cfg.nlon}", "years": f"{cfg.all_years[0]}-{cfg.all_years[1]}",
            "extra_years": "" if cfg.extra_years is None else f"{cfg.extra_years[0]}-{cfg.extra_years[1]}",
            "Conventions": "CF-1.8", "references": "book/generated/02_data.ipynb"}


def _static_block(cfg: DataConfig) -> dict:
    with one_blas_thread():
        st = static_maps(cfg.nlat, cfg.nlon)
    out = {}
    for name in STATIC_OUT:
        at = {k: v for k, v in st[name].attrs.items()}
        out[name] = (st[name].values, at)
    return out, st.attrs


def simulate_years(cfg: DataConfig) -> Iterator[tuple[int, pd.DatetimeIndex, dict[str, np.ndarray]]]:
    """Yield ``(year, days, {var: (ndays, nlat, nlon) float32})`` for every year of
    ``cfg``'s world (:mod:`ecodistill.data.world`)."""
    world = worlds.check_world(cfg.world)
    return worlds.simulate_years(cfg) if world == "v1" else worlds.simulate_years_v2(cfg)


def simulate_earth(cfg: DataConfig) -> xr.Dataset:
    """The simulated Earth of ``cfg`` in memory (for small grids; see :func:`load_dataset`).

    Returns:
        Dataset ``(time, lat, lon)`` with the world's variables
        (:func:`ecodistill.data.world.output_vars`) and the static maps; attrs hold
        ``dataset_hash`` and ``world``.
    """
    names = worlds.output_vars(cfg.world)
    days, blocks = [], {k: [] for k in names}
    for _, d, block in simulate_years(cfg):
        days.append(d)
        for k in names:
            blocks[k].append(block[k])
    static, st_attrs = _static_block(cfg)
    st = static_maps(cfg.nlat, cfg.nlon)
    data = {k: (("time", "lat", "lon"), np.concatenate(v), VAR_ATTRS[k]) for k, v in blocks.items()}
    data.update({k: (("lat", "lon"), a, at) for k, (a, at) in static.items()})
    ds = xr.Dataset(data, coords={"time": days[0].append(days[1:]), "lat": st["lat"].values,
                                  "lon": st["lon"].values})
    ds.attrs.update(_attrs(cfg, dataset_hash(cfg)), **st_attrs)
    return coord_attrs(ds)


def dataset_path(cfg: DataConfig, fmt: str | None = None) -> Path:
    """Cache path of the simulated dataset of ``cfg`` (``.nc`` or ``.npy`` folder)."""
    fmt = fmt or default_format()
    y0, y1 = cfg.all_years
    stem = f"sim-{cfg.nlat}x{cfg.nlon}-s{cfg.seed}-{y0}-{y1}-{dataset_hash(cfg)}"
    return cache_dir() / "data" / (stem + (".nc" if fmt == "netcdf" else ".npy"))


def build_dataset(cfg: DataConfig, path: str | Path | None = None, fmt: str | None = None,
                  verbose: bool = False) -> Path:
    """Simulate ``cfg``'s Earth year by year straight into a file (atomic). Returns the path."""
    fmt = fmt or default_format()
    path = Path(path) if path else dataset_path(cfg, fmt)
    static, st_attrs = _static_block(cfg)
    st = static_maps(cfg.nlat, cfg.nlon)
    digest = dataset_hash(cfg)
    writer = DatasetWriter(path, days_of(cfg.all_years).values, st["lat"].values, st["lon"].values,
                           {k: VAR_ATTRS[k] for k in worlds.output_vars(cfg.world)}, static,
                           {**_attrs(cfg, digest), **st_attrs}, fmt)
    t0, start = 0, _time.perf_counter()
    try:
        for year, days, block in simulate_years(cfg):
            writer.write(t0, block)
            t0 += len(days)
            if verbose:
                print(f"  {year}: {t0} days, {_time.perf_counter() - start:.1f} s", flush=True)
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def load_dataset(cfg: DataConfig, build: bool = True, verbose: bool = False) -> xr.Dataset:
    """The dataset of ``cfg``, opened lazily and checked against its fingerprint: the cached
    simulation (built when missing and ``build``), or the real dataset at ``cfg.source``
    (:func:`ecodistill.data.source.open_real`).

    Raises:
        FileNotFoundError: when the file is missing and cannot be built.
        ValueError: when the file differs from its fingerprint or has none (a cached
            simulation: rebuild it), or a real dataset breaks the schema or the config's
            grid (each message says what to fix).
    """
    if cfg.source != "simulated":
        from .source import open_real

        return open_real(cfg)
    for fmt in ("netcdf", "npy"):
        path = dataset_path(cfg, fmt)
        if path.exists():
            return _open_cached(path, cfg)
    if not build:
        raise FileNotFoundError(f"no cached dataset for {cfg}; run `python -m ecodistill data "
                                "build`")
    return _open_cached(build_dataset(cfg, verbose=verbose), cfg)


def _open_cached(path: Path, cfg: DataConfig) -> xr.Dataset:
    """A cached simulation, refused unless its fingerprint matches and names ``cfg``'s hash."""
    fix = ("rebuild it with `python -m ecodistill data build --profile <profile> --force` "
           "(or delete it)")
    if not sidecar_path(path).is_file():
        raise ValueError(f"cached dataset {path} has no fingerprint {sidecar_path(path).name} "
                         "(built before fingerprints, or its build was interrupted), so its "
                         f"content cannot be trusted; {fix}")
    ds = open_dataset(path)
    if ds.attrs.get("dataset_hash") != dataset_hash(cfg):
        raise ValueError(f"cached dataset {path} is recorded as {ds.attrs.get('dataset_hash')!r}, "
                         f"not {dataset_hash(cfg)!r} of this config; {fix}")
    return ds
