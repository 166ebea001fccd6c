"""Which dataset an entry point uses, and opening a real one.

Every entry point -- the experiment workspace, ``python -m ecodistill data ...`` and the
data chapter -- resolves the dataset the same way: the profile's simulated Earth, unless
the environment variable ``ECODISTILL_DATA`` names a dataset file written by
:func:`ecodistill.data.write_dataset` (real ERA5 + NDVI on the profile's grid and years)::

    from ecodistill import data
    cfg = data.with_env_source(get_profile("full").data)   # or data.source_from_env()
    ds = data.load_dataset(cfg)
    print(data.describe(ds))                               # source, path and dataset hash

A real dataset is checked when it is opened: its fingerprint sidecar (when present), the
schema, the profile's grid, a daily time axis, and every value in its physical domain with
NaN only where allowed (:mod:`ecodistill.data.domain`; once per content, recorded in the
cache). Without a sidecar its identity is the
digest of its content fingerprint (never its path or modification time), and
``python -m ecodistill data verify --write`` stores one.

Explained in book/generated/02_data.ipynb ("Real data").
"""
from __future__ import annotations

import os
import warnings
from dataclasses import replace
from pathlib import Path

import xarray as xr

from ..config import DataConfig
from . import fingerprint
from .schema import validate
from .store import open_dataset

ENV = "ECODISTILL_DATA"
SIMULATED = "simulated"
MAKE_HELP = ("make one from ERA5 + NDVI files with ecodistill.data.make_dataset and write_dataset "
             "(README 'Your own data')")


def source_from_env() -> str:
    """``"simulated"``, or the dataset path in ``ECODISTILL_DATA`` (which must exist).

    Raises:
        FileNotFoundError: ``ECODISTILL_DATA`` names no file or folder.
    """
    source = os.environ.get(ENV, "").strip() or SIMULATED
    if source != SIMULATED and not Path(source).exists():
        raise FileNotFoundError(f"{ENV}={source}: no such dataset; {MAKE_HELP}, or unset {ENV} for "
                                "the simulated Earth")
    return source


def with_env_source(cfg: DataConfig) -> DataConfig:
    """``cfg`` with ``source`` from :func:`source_from_env` (unchanged when it is unset)."""
    source = source_from_env()
    return cfg if source == cfg.source or source == SIMULATED else replace(cfg, source=source)


def open_real(cfg: DataConfig) -> xr.Dataset:
    """The real dataset at ``cfg.source``, checked (see the module docstring).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a fingerprint mismatch, a schema violation, another grid than
            ``cfg``'s, a time axis that is not daily, or a value outside its domain or NaN
            where not allowed -- naming the file and the fix.
    """
    path = Path(cfg.source)
    if not path.exists():
        raise FileNotFoundError(f"dataset {path} not found (DataConfig.source / {ENV}); "
                                f"{MAKE_HELP}")
    ds = open_dataset(path)
    try:
        validate(ds)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    grid = (ds.sizes["lat"], ds.sizes["lon"])
    if grid != (cfg.nlat, cfg.nlon):
        raise ValueError(f"{path} is on a {grid[0]}x{grid[1]} grid but the profile needs "
                         f"{cfg.nlat}x{cfg.nlon}; make it with make_dataset(..., nlat={cfg.nlat}, "
                         f"nlon={cfg.nlon})")
    from .checks import check_time_axis
    from .identity import check_values_once

    check_time_axis(ds.indexes["time"], str(path))
    check_values_once(ds, path)  # every value in its domain, once per content
    if ds.attrs.get("content_check") == "no sidecar":
        declared = ds.attrs.get("dataset_hash")
        ds.attrs["dataset_hash"] = fingerprint.digest(fingerprint.fingerprint(ds))
        if declared and declared != ds.attrs["dataset_hash"]:
            ds.attrs["declared_dataset_hash"] = declared
        warnings.warn(f"{path} has no fingerprint sidecar: its identity is a digest of sampled "
                      f"content ({ds.attrs['dataset_hash']}); store one with `python -m ecodistill "
                      f"data verify --path {path} --write`", stacklevel=2)
    return ds


def describe(ds: xr.Dataset) -> str:
    """One line saying which dataset ``ds`` is: source, file, grid, years and hash."""
    t = ds.indexes["time"]
    span = f"{t[0].year}-{t[-1].year}" if len(t) else "no days"
    grid = f"{ds.sizes.get('lat', '?')}x{ds.sizes.get('lon', '?')}"
    where = ds.encoding.get("source")
    if ds.attrs.get("source") == SIMULATED:
        what = f"simulated Earth (seed {ds.attrs.get('seed', '?')})"
    else:
        what = "real data" + (f" from {where}" if where else "")
    check = ds.attrs.get("content_check", "not checked")
    return f"{what}, grid {grid}, years {span}, dataset_hash {ds.attrs.get('dataset_hash', '?')} " \
           f"(content check: {check})"
