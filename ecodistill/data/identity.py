"""Caches follow every value: the key of everything :func:`ecodistill.data.prepare` caches.

The cumulative sums and statistics that :func:`~ecodistill.data.prepare` caches are keyed by
:func:`content_key`, a hash of every value of the dataset it is given -- not its label
(``dataset_hash``) nor its sampled fingerprint, which an edit on an unsampled day keeps:

* values still in their file are known by the full SHA-256 per variable computed when the
  file was written (:class:`~ecodistill.data.fingerprint.Hasher`); it is trusted while the
  file's size, modification time and inode are the ones recorded then
  (:func:`~ecodistill.data.fingerprint.recall`), and recomputed by reading the whole file
  otherwise (:func:`file_hashes`) -- where a fingerprint sidecar exists, a different result
  is refused: a value changed after the file was written;
* variables loaded or changed in memory (``ds["t2m"] += 30``) are hashed as they are, before
  any cache is trusted.

A file changed in place with its size and modification time restored escapes the record;
``python -m ecodistill data verify --full`` reads every value.

Explained in book/generated/02_data.ipynb ("The dataset").
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import xarray as xr

from .fingerprint import (
    BLOCK,
    _days,
    _sha,
    _split,
    canonical,
    fix_for,
    hash_all,
    read_sidecar,
    recall,
    remember,
    sidecar_path,
)
from .store import open_dataset


def file_hashes(path: str | Path) -> dict[str, str]:
    """Full SHA-256 of every ``(time, lat, lon)`` variable of the dataset file ``path``:
    recalled while the file is unchanged on disk, else computed by reading all of it.

    Raises:
        ValueError: the values differ from those its sidecar was written with (naming the
            file and the fix).
    """
    path = Path(path)
    record = recall(path)
    if record is not None:
        return dict(record["variables_sha256"])
    result = hash_all(open_dataset(path, verify=False))
    side = read_sidecar(path)
    if side is not None and side.get("content_sha256") != result["content_sha256"]:
        raise ValueError(f"{path}: the SHA-256 of its values differs from {sidecar_path(path).name} (a value "
                         f"changed after it was written, on a day the quick check does not read); "
                         f"{fix_for(side.get('source', 'real'))}")
    remember(path, result)
    return dict(result["variables_sha256"])


def _file_backed(da: xr.DataArray) -> bool:
    """True when ``da``'s values are still read from its file (not loaded or changed in memory)."""
    data = da.variable._data
    if isinstance(data, np.memmap):
        return True
    try:
        from xarray.core.indexing import ExplicitlyIndexed
    except ImportError:  # pragma: no cover -- xarray internals moved: hash everything
        return False
    return isinstance(data, ExplicitlyIndexed)


def _values_sha(da: xr.DataArray) -> str:
    h = hashlib.sha256()
    for t0 in range(0, da.sizes["time"], BLOCK):
        h.update(canonical(da.isel(time=slice(t0, t0 + BLOCK)).values))
    return h.hexdigest()


def content_key(ds: xr.Dataset) -> str:
    """16 hex digits that change with any value of ``ds`` (coordinates, static maps, every
    day of every variable): the key of every cache made from it (module docstring)."""
    dynamic, static = _split(ds)
    source = ds.encoding.get("source")
    backed = [n for n in dynamic if _file_backed(ds[n])]
    shas = file_hashes(source) if backed and source and Path(source).exists() else {}
    values = {n: shas[n] if n in backed and n in shas else _values_sha(ds[n]) for n in dynamic}
    values.update({n: _sha(a) for n, a in static.items()})
    coords = {"time": _sha(_days(ds["time"].values)), "lat": _sha(ds["lat"].values), "lon": _sha(ds["lon"].values)}
    return hashlib.sha256(json.dumps({"coords": coords, "values": values}, sort_keys=True).encode()).hexdigest()[:16]


def check_values_once(ds: xr.Dataset, path: str | Path) -> None:
    """Every value of the dataset file ``path`` (opened as ``ds``) in its physical domain, NaN
    only where allowed (:mod:`~ecodistill.data.domain`, the land mask from ``ds``); checked once
    per content (recorded like :func:`file_hashes`).

    Raises:
        ValueError: naming the file, the variable, the count and first place of bad values.
    """
    from .domain import check_range, check_variable
    from .schema import VAR_ATTRS

    path = Path(path)
    record = recall(path)
    if record is not None and record.get("values_checked"):
        return
    file_hashes(path)
    land = np.asarray(ds["land_mask"].values, bool) if "land_mask" in ds else None
    dynamic, _ = _split(ds)
    for name in dynamic:
        if name.startswith("ndvi_"):  # the simulator's noise-free NDVI: NaN off the NDVI domain
            check_range(ds[name], name, f"{path}: ")
        elif name in VAR_ATTRS:
            check_variable(ds[name], name, f"{path}: ", land=land)
    record = recall(path)
    if record is not None:
        remember(path, record, values_checked=True)
