"""What a dataset file holds, checked against what was written: content fingerprints.

A dataset's ``dataset_hash`` keys its cached statistics and every result row, so it must
follow the *content*, not a label that survives an edit. Every dataset file written by
:class:`~ecodistill.data.store.DatasetWriter` (:func:`~ecodistill.data.build_dataset`,
:func:`~ecodistill.data.write_dataset`) gets a sidecar ``<file>.fingerprint.json``,
written atomically right after the file, holding

* the **fingerprint**: variable names, dims, shapes, kinds (float/int), SHA-256 of the
  coordinates and of the static maps, and SHA-256 of :data:`N_SAMPLE` evenly spaced day
  slices of every ``(time, lat, lon)`` variable -- cheap (at 64x128 x 12,784 days it reads
  32 of the days, ~13 MB), checked every time the file is opened;
* the **content hash**: SHA-256 of every value, computed while writing (no extra pass)
  and checked on demand (``python -m ecodistill data verify --full``);
* the ``dataset_hash`` the data is known by (for real data the first 12 hex digits of the
  content hash; for the simulated Earth the digest of its code and config).

The full SHA-256 of each variable, computed while writing, is also recorded in the cache
with the file's size, modification time and inode (:func:`remember`, :func:`recall`), so
that :mod:`ecodistill.data.identity` can key caches by every value without reading the file
again while it is unchanged.

A mismatch is a one-line error naming the file and the fix (rebuild it with
``python -m ecodistill data build --force``, or write it again with ``write_dataset``).
A real file without a sidecar gets a content-derived identity: the fingerprint digest.
Values are hashed canonically (floats as little-endian float32 with one NaN pattern,
integers and booleans as int64), so a file and its in-memory dataset agree.

Explained in book/generated/02_data.ipynb ("The dataset").
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import xarray as xr

from ..store.integrity import read_json
from ..utils import atomic_write_json, cache_dir

FORMAT = 1
N_SAMPLE = 32
BLOCK = 366  # days per read when hashing everything


def sidecar_path(path: str | Path) -> Path:
    """``<path>.fingerprint.json`` (beside a ``.nc`` file or a ``.npy`` folder)."""
    path = Path(path)
    return path.with_name(path.name + ".fingerprint.json")


def sample_days(n_time: int) -> list[int]:
    """:data:`N_SAMPLE` evenly spaced day indices (first and last included)."""
    return sorted({round(x) for x in np.linspace(0, max(n_time - 1, 0), min(n_time, N_SAMPLE))})


def canonical(values) -> bytes:
    """Bytes of ``values`` in a storage-independent form (see the module docstring)."""
    a = np.asarray(values)
    if a.dtype.kind == "f":
        a = a.astype("<f4", copy=True)
        a[np.isnan(a)] = np.float32(np.nan)
    elif a.dtype.kind in "biu":
        a = a.astype("<i8")
    else:
        raise TypeError(f"cannot fingerprint values of dtype {a.dtype}")
    return np.ascontiguousarray(a).tobytes()


def _kind(dtype) -> str:
    return "float" if np.dtype(dtype).kind == "f" else "int"


def _sha(values) -> str:
    return hashlib.sha256(canonical(values)).hexdigest()


def _days(time) -> np.ndarray:
    epoch = np.datetime64("1970-01-01", "D")
    return (np.asarray(time, dtype="datetime64[D]") - epoch).astype(np.int64)


class Hasher:
    """Fingerprint and content hash of a dataset fed block by block, in time order.

    Args:
        time, lat, lon: the coordinates.
        dynamic: names of the ``(time, lat, lon)`` variables.
        static: name -> ``(lat, lon)`` (or ``(k, lat, lon)``) array.
    """

    def __init__(self, time, lat, lon, dynamic, static: dict) -> None:
        days = _days(time)
        self.n_time, self.next = days.size, 0
        self.samples = sample_days(days.size)
        shape = (days.size, len(lat), len(lon))
        self.coords = {"time": _sha(days), "lat": _sha(lat), "lon": _sha(lon)}
        self.full = {n: hashlib.sha256() for n in dynamic}
        self.part = {n: hashlib.sha256() for n in dynamic}
        self.variables = {n: {"dims": ["time", "lat", "lon"], "shape": list(shape), "kind": "float"}
                          for n in dynamic}
        for name, arr in static.items():
            arr = np.asarray(arr)
            self.variables[name] = {"dims": ["...", "lat", "lon"][-arr.ndim:],
                                    "shape": list(arr.shape), "kind": _kind(arr.dtype),
                                    "sha256": _sha(arr)}

    def update(self, t0: int, block: dict[str, np.ndarray]) -> None:
        """Add days ``t0 .. t0 + n - 1`` of every dynamic variable (blocks in time order)."""
        n = next(iter(block.values())).shape[0]
        if t0 != self.next:
            raise ValueError(f"blocks must come in time order: got day {t0}, expected {self.next}")
        picks = [d - t0 for d in self.samples if t0 <= d < t0 + n]
        for name in self.full:
            a = block[name]
            self.full[name].update(canonical(a))
            if picks:
                self.part[name].update(canonical(a[picks]))
        self.next = t0 + n

    def result(self) -> dict:
        """``{"fingerprint": ..., "fingerprint_digest", "content_sha256"}`` once every day is in."""
        if self.next != self.n_time:
            raise ValueError(f"only {self.next} of {self.n_time} days were hashed")
        variables = {k: dict(v) for k, v in self.variables.items()}
        for name in self.full:
            variables[name]["sample_sha256"] = self.part[name].hexdigest()
        fp = {"format": FORMAT, "coords": self.coords, "sample_days": self.samples,
              "variables": variables}
        content = hashlib.sha256(json.dumps({"coords": self.coords, "values": {
            n: v.get("sha256") or self.full[n].hexdigest() for n, v in sorted(variables.items())}},
            sort_keys=True).encode()).hexdigest()
        return {"fingerprint": fp, "fingerprint_digest": digest(fp), "content_sha256": content,
                "variables_sha256": {n: h.hexdigest() for n, h in self.full.items()}}


def digest(fp: dict) -> str:
    """12-hex digest of a fingerprint."""
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:12]


def _split(ds: xr.Dataset) -> tuple[list[str], dict]:
    dynamic = [n for n in ds.data_vars if ds[n].dims == ("time", "lat", "lon")]
    static = {n: ds[n].values for n in ds.data_vars
              if n not in dynamic and ds[n].dims[-2:] == ("lat", "lon")}
    return dynamic, static


def _hasher(ds: xr.Dataset) -> tuple[Hasher, list[str]]:
    dynamic, static = _split(ds)
    return Hasher(ds["time"].values, ds["lat"].values, ds["lon"].values, dynamic, static), dynamic


def fingerprint(ds: xr.Dataset, days: list[int] | None = None) -> dict:
    """The cheap fingerprint of ``ds`` (reads only the sampled days; see the module docstring)."""
    h, dynamic = _hasher(ds)
    if days is not None:
        h.samples = list(days)
    for name in dynamic:
        h.part[name].update(canonical(ds[name].isel(time=h.samples).values))
    variables = {k: dict(v) for k, v in h.variables.items()}
    for name in dynamic:
        variables[name]["sample_sha256"] = h.part[name].hexdigest()
    return {"format": FORMAT, "coords": h.coords, "sample_days": h.samples, "variables": variables}


def hash_all(ds: xr.Dataset) -> dict:
    """:meth:`Hasher.result` of ``ds``, reading every value (:data:`BLOCK` days at a time)."""
    h, dynamic = _hasher(ds)
    for t0 in range(0, h.n_time, BLOCK):
        sl = slice(t0, min(h.n_time, t0 + BLOCK))
        h.update(t0, {n: ds[n].isel(time=sl).values for n in dynamic})
    return h.result()


def content_hash(ds: xr.Dataset) -> str:
    """SHA-256 of every value of ``ds`` (reads it all)."""
    return hash_all(ds)["content_sha256"]


def write_sidecar(path: str | Path, result: dict, dataset_hash: str, source: str) -> Path:
    """Write ``<path>.fingerprint.json`` (atomically) from :meth:`Hasher.result`."""
    path = Path(path)
    record = {**result, "file": path.name, "dataset_hash": dataset_hash, "source": source}
    return atomic_write_json(sidecar_path(path), record)


def fix_for(source: str) -> str:
    """How to make a damaged or stale dataset file again."""
    if source == "simulated":
        return "rebuild it with `python -m ecodistill data build --profile <profile> --force`"
    return "write it again with ecodistill.data.write_dataset (from the source files)"


def read_sidecar(path: str | Path) -> dict | None:
    """The sidecar record of ``path``, or None when there is none."""
    side = sidecar_path(path)
    if not side.exists():
        return None
    record = read_json(side, "dataset fingerprint", "delete it and " + fix_for("real").replace(
        "write", "write the dataset"))
    if not isinstance(record, dict) or record.get("fingerprint", {}).get("format") != FORMAT:
        raise ValueError(f"dataset fingerprint {side} has an unknown layout; delete it and write "
                         "the dataset again (write_dataset or `data build --force`)")
    return record


def verify(ds: xr.Dataset, path: str | Path, record: dict, full: bool = False) -> None:
    """Check ``ds`` (opened from ``path``) against its sidecar ``record``.

    Raises:
        ValueError: one line naming the file, what differs and the fix.
    """
    fix = fix_for(record.get("source", "real"))
    want = record["fingerprint"]
    got = fingerprint(ds, want["sample_days"]) if _n_time(ds) == _n_time_of(want) else None
    if got is None or got != want:
        raise ValueError(f"{path} does not match its fingerprint {sidecar_path(path).name} "
                         f"({_difference(want, got)}): the file changed after it was written; "
                         f"{fix}")
    if full:
        content = content_hash(ds)
        if content != record["content_sha256"]:
            raise ValueError(f"{path}: the SHA-256 of its values differs from "
                             f"{sidecar_path(path).name} (a value changed on a day the quick check "
                             f"does not read); {fix}")


def _n_time(ds: xr.Dataset) -> int:
    return int(ds.sizes.get("time", 0))


def _n_time_of(fp: dict) -> int:
    shapes = [v["shape"][0] for v in fp["variables"].values() if v["dims"][0] == "time"]
    return shapes[0] if shapes else 0


def _difference(want: dict, got: dict | None) -> str:
    if got is None:
        return f"{_n_time_of(want)} days expected"
    for name in sorted(set(want["variables"]) | set(got["variables"])):
        a, b = want["variables"].get(name), got["variables"].get(name)
        if a is None or b is None:
            return f"variable {name} {'added' if a is None else 'missing'}"
        if a != b:
            keys = [k for k in a if a.get(k) != b.get(k)]
            return f"variable {name}: {', '.join(keys)} differ"
    coords = [k for k in want["coords"] if want["coords"][k] != got["coords"].get(k)]
    return f"coordinates {coords} differ" if coords else "layout differs"


# --------------------------------------------------------------------------- caches follow every value
def _signature(path: Path) -> list:
    """Size, modification time and inode of a file, or of every file of a ``.npy`` folder."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino] for p in files]


def _record_path(path: Path) -> Path:
    key = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:20]
    return cache_dir() / "data" / "verified" / f"{key}.json"


def remember(path: str | Path, result: dict, **facts) -> None:
    """Record that ``path``, as it is now on disk, holds the values hashed in ``result``
    (:meth:`Hasher.result`), with other ``facts`` about them (e.g. ``values_checked=True``);
    best effort (a read-only cache just means hashing again)."""
    path = Path(path)
    try:
        atomic_write_json(_record_path(path), {"path": str(path.resolve()), "signature": _signature(path),
                                               "content_sha256": result["content_sha256"],
                                               "variables_sha256": result["variables_sha256"], **facts})
    except OSError:
        pass


def recall(path: str | Path) -> dict | None:
    """The record of :func:`remember` while ``path`` is unchanged on disk, else None."""
    path, record_path = Path(path), _record_path(Path(path))
    try:
        record = json.loads(record_path.read_text())
        return record if record.get("signature") == _signature(path) else None
    except (OSError, ValueError):
        return None
