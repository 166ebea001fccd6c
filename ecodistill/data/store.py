"""Dataset files: NetCDF (h5netcdf) when available, else a folder of ``.npy`` arrays.

Both are written one block of days at a time (decades never sit in memory) and become
visible only when complete (a temporary name, then an atomic rename); the content
fingerprint of :mod:`ecodistill.data.fingerprint` is computed while writing and stored
beside the file, and :func:`open_dataset` checks it on every open. Both open lazily:
NetCDF through xarray's lazy backend arrays, the ``.npy`` folder through memory maps, so
reading one day reads one day. The ``.npy`` folder is the fallback for machines without
netCDF libraries (the GPU machine); an ``.npz`` archive cannot be memory-mapped, hence
one ``.npy`` per variable plus ``meta.json``.

Explained in book/generated/02_data.ipynb ("The dataset").
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..store.integrity import read_json, read_npy, read_npz
from . import fingerprint
from .schema import BOOL_VARS, coord_attrs

EPOCH = np.datetime64("1970-01-01", "D")


def netcdf_available() -> bool:
    """True when h5netcdf (with h5py) can be imported."""
    try:
        import h5netcdf  # noqa: F401
        return True
    except ImportError:
        return False


def default_format() -> str:
    """``netcdf`` where h5netcdf is installed, else ``npy``."""
    return "netcdf" if netcdf_available() else "npy"


class DatasetWriter:
    """Write a ``(time, lat, lon)`` dataset block by block.

    Args:
        path: final path (``.nc`` file or ``.npy`` folder).
        time: all days (``datetime64[D]``).
        lat, lon: coordinates.
        variables: name -> attrs of the ``(time, lat, lon)`` float32 variables.
        static: name -> ``(array (lat, lon), attrs)``.
        attrs: global attributes (str/number values); ``dataset_hash`` and ``source`` go
            into the fingerprint sidecar.
        fmt: ``netcdf`` or ``npy``.
        content_id: set ``attrs["dataset_hash"]`` to the first 12 hex digits of the content
            hash when the file is closed (real data: the identity follows the values).
    """

    def __init__(self, path, time, lat, lon, variables: dict, static: dict, attrs: dict, fmt: str,
                 content_id: bool = False) -> None:
        if fmt not in ("netcdf", "npy"):
            raise ValueError(f"format {fmt!r} unknown: use 'netcdf' or 'npy'")
        self.path, self.fmt, self.content_id = Path(path), fmt, content_id
        self.attrs = dict(attrs)
        self.hasher = fingerprint.Hasher(time, lat, lon, list(variables),
                                         {k: np.asarray(a) for k, (a, _) in static.items()})
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.shape = (len(time), len(lat), len(lon))
        days = (np.asarray(time, dtype="datetime64[D]") - EPOCH).astype(np.int64)
        self.names = list(variables)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "netcdf":
            self._open_netcdf(days, lat, lon, variables, static, attrs)
        else:
            self._open_npy(days, lat, lon, variables, static, attrs)

    def _open_netcdf(self, days, lat, lon, variables, static, attrs) -> None:
        import h5netcdf

        f = self.file = h5netcdf.File(self.tmp, "w")
        f.dimensions = {"time": self.shape[0], "lat": self.shape[1], "lon": self.shape[2]}
        t = f.create_variable("time", ("time",), "i4")
        t[:] = days
        t.attrs.update(units="days since 1970-01-01", calendar="proleptic_gregorian")
        for name, values in (("lat", lat), ("lon", lon)):
            f.create_variable(name, (name,), "f4")[:] = np.asarray(values, np.float32)
        for name, (arr, at) in static.items():
            arr = np.asarray(arr)
            store = arr.astype(np.int8) if arr.dtype == bool else arr
            v = f.create_variable(name, tuple(d for d in ("igbp_class", "lat", "lon")[-arr.ndim:]), store.dtype)
            v[...] = store
            v.attrs.update({k: _attr(x) for k, x in at.items()})
        for name, at in variables.items():
            v = f.create_variable(name, ("time", "lat", "lon"), "f4", chunks=(1,) + self.shape[1:],
                                  fillvalue=np.float32(np.nan))
            v.attrs.update({k: _attr(x) for k, x in at.items()})
        f.attrs.update({k: _attr(x) for k, x in attrs.items()})

    def _open_npy(self, days, lat, lon, variables, static, attrs) -> None:
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
        meta = {"days": days.tolist(), "lat": np.asarray(lat, float).tolist(),
                "lon": np.asarray(lon, float).tolist(), "attrs": attrs,
                "variables": variables, "static": {k: at for k, (_, at) in static.items()}}
        self.meta = meta
        (self.tmp / "meta.json").write_text(json.dumps(meta, default=str))
        np.savez(self.tmp / "static.npz", **{k: np.asarray(a) for k, (a, _) in static.items()})
        self.arrays = {n: np.lib.format.open_memmap(self.tmp / f"{n}.npy", mode="w+", dtype=np.float32,
                                                    shape=self.shape) for n in variables}

    def write(self, t0: int, block: dict[str, np.ndarray]) -> None:
        """Write ``block[name]`` (``(n, lat, lon)``) at days ``t0 .. t0 + n - 1`` (in order)."""
        self.hasher.update(t0, {name: np.asarray(block[name], np.float32) for name in self.names})
        for name in self.names:
            a = block[name]
            if self.fmt == "netcdf":
                self.file.variables[name][t0:t0 + a.shape[0]] = a
            else:
                self.arrays[name][t0:t0 + a.shape[0]] = a

    def close(self) -> Path:
        """Finish the file, move it to its final name (atomically), then write its
        fingerprint sidecar (atomically)."""
        result = self.hasher.result()
        if self.content_id:
            self.attrs["dataset_hash"] = result["content_sha256"][:12]
        digest = str(self.attrs.get("dataset_hash", ""))
        if self.fmt == "netcdf":
            self.file.attrs["dataset_hash"] = digest
            self.file.close()
            # never pair a new file with an old fingerprint
            fingerprint.sidecar_path(self.path).unlink(missing_ok=True)
            os.replace(self.tmp, self.path)
        else:
            for a in self.arrays.values():
                a.flush()
            self.arrays = {}
            self.meta["attrs"]["dataset_hash"] = digest
            (self.tmp / "meta.json").write_text(json.dumps(self.meta, default=str))
            fingerprint.sidecar_path(self.path).unlink(missing_ok=True)
            if self.path.exists():
                shutil.rmtree(self.path)
            os.replace(self.tmp, self.path)
        fingerprint.write_sidecar(self.path, result, digest, str(self.attrs.get("source", "real")))
        fingerprint.remember(self.path, result)  # the full hash is known now: no second read
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        if self.fmt == "netcdf":
            with contextlib.suppress(Exception):  # cleaning up after another error
                self.file.close()
            self.tmp.unlink(missing_ok=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _attr(x):
    return json.dumps(x) if isinstance(x, (list, tuple, dict)) else x


def open_dataset(path: str | Path, verify: bool = True) -> xr.Dataset:
    """Open a dataset file lazily (NetCDF file or ``.npy`` folder); bool statics restored.

    With ``verify`` the file is checked against its fingerprint sidecar
    (:mod:`~ecodistill.data.fingerprint`) and ``attrs["dataset_hash"]`` is the sidecar's;
    ``attrs["content_check"]`` says ``"fingerprint"`` (checked) or ``"no sidecar"``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file differs from its fingerprint, or cannot be read (naming the fix).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset {path} not found; build it with `python -m ecodistill "
                                "data build`")
    if path.is_dir():
        ds = _open_npy(path)
    else:
        try:
            ds = xr.open_dataset(path, engine="h5netcdf" if netcdf_available() else None)
        except ValueError as err:
            raise ValueError(f"cannot open {path}: {str(err).splitlines()[0][:200]}. Install "
                             "h5netcdf (pip install 'h5netcdf[h5py]') or rebuild the data as .npy "
                             "with --format npy") from None
        except OSError as err:  # truncated, zero bytes, or not HDF5/NetCDF at all
            raise ValueError(f"cannot open dataset {path}: damaged or not a NetCDF file "
                             f"({str(err).splitlines()[0][:120]}); {fingerprint.fix_for('real')} "
                             "or rebuild it with `python -m ecodistill data build "
                             "--force`") from None
    for name in BOOL_VARS:
        if name in ds:
            ds[name] = ds[name].astype(bool)
    ds = coord_attrs(ds)
    ds.encoding.setdefault("source", str(path))
    if verify:
        record = fingerprint.read_sidecar(path)
        if record is None:
            ds.attrs["content_check"] = "no sidecar"
        else:
            fingerprint.verify(ds, path, record)
            ds.attrs.update(dataset_hash=record["dataset_hash"], content_check="fingerprint",
                            content_fingerprint=record["fingerprint_digest"])
    return ds


def _open_npy(path: Path) -> xr.Dataset:
    fix = ("rebuild it (`python -m ecodistill data build --force`, or write_dataset for real "
           "data); a folder of .npy files is whole only when written by ecodistill")
    meta = read_json(path / "meta.json", "dataset metadata", fix)
    time = pd.to_datetime(EPOCH + np.asarray(meta["days"], dtype="timedelta64[D]"))
    data = {}
    for n, at in meta["variables"].items():
        arr = read_npy(path / f"{n}.npy", f"dataset variable {n}", fix, mmap_mode="r")
        if arr.shape != (time.size, len(meta["lat"]), len(meta["lon"])):
            raise ValueError(f"dataset variable {path / (n + '.npy')} has shape {arr.shape}, "
                             f"expected {(time.size, len(meta['lat']), len(meta['lon']))}; {fix}")
        data[n] = (("time", "lat", "lon"), arr, at)
    z = read_npz(path / "static.npz", "dataset static maps", fix)
    for n, at in meta["static"].items():
        if n not in z:
            raise ValueError(f"dataset static maps {path / 'static.npz'} lack {n!r}; {fix}")
        dims = ("igbp_class", "lat", "lon")[-z[n].ndim:]
        data[n] = (dims, z[n], at)
    ds = xr.Dataset(data, coords={"time": time, "lat": np.asarray(meta["lat"], np.float32),
                                  "lon": np.asarray(meta["lon"], np.float32)})
    ds.attrs.update(meta["attrs"])
    return ds
