"""Opening real files: paths and globs, what a file really is, GRIB, CDS layouts, one time axis.

The readers (:mod:`~ecodistill.data.readers`, :mod:`~ecodistill.data.ndvi`) open every file
through :func:`open_files`, which

* expands paths, glob patterns and lists (:func:`expand_paths`);
* looks at the first bytes before handing a file to a library (:func:`sniff`): an empty
  file, an HTML or JSON page saved under a ``.nc`` name (a failed download) or anything that
  is neither NetCDF, HDF5 nor GRIB is refused in one line naming the file and the fix;
* reads **GRIB** (as the CDS delivers it) through xarray's ``cfgrib`` engine, one dataset
  per GRIB hypercube, without ever writing an index (``indexpath=""``: the file's folder may
  be read-only). ERA5's accumulations come as forecasts (``time`` x ``step``); every field
  is put on its valid time;
* accepts both CDS NetCDF layouts (:func:`standardise`): the one delivered since 2024
  (``valid_time``, ``pressure_level``, extra ``number`` and ``expver`` coordinates) and the
  older one (``time``, ``level``);
* combines **ERA5 and ERA5T** (:func:`combine_expver`): where ``expver`` is a dimension
  (final ERA5 ``1``/``"0001"`` beside the preliminary ERA5T ``5``/``"0005"``), each step
  takes the final ERA5 where it has values and ERA5T elsewhere, and the dataset's
  ``expver`` attribute says so (with a warning naming the steps from ERA5T); where it is a
  coordinate along time (the 2024 layout), the ERA5T steps are named the same way;
* puts several files on one time axis (:func:`combine_time`), after checking that their
  grids agree: grids that differ by float noise (up to :data:`GRID_TOL` degrees) are snapped
  onto the first file's with a warning, anything larger is refused naming both files.

Explained in book/generated/02_data.ipynb ("Real data").
"""
from __future__ import annotations

import glob
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

#: Largest coordinate difference (degrees) between two grids that are the same grid in
#: float noise; they are snapped together (1e-3° is ~100 m, 1/250 of an ERA5 cell).
GRID_TOL = 1e-3
#: expver values of the final ERA5 (preferred) and of the preliminary ERA5T.
FINAL_EXPVER = ("1", "0001", "01", "001")
RENAME = {"valid_time": "time", "latitude": "lat", "longitude": "lon", "pressure_level": "level",
          "isobaricInhPa": "level"}


def expand_paths(paths, what: str = "file") -> list[Path]:
    """Files named by ``paths``: a path, a glob pattern, or a list of them (each pattern's
    matches sorted; order of the list kept).

    Raises:
        FileNotFoundError: a pattern matching nothing, or a missing file (naming it).
    """
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise FileNotFoundError(f"no {what} given: pass a path, a glob pattern or a list of paths")
    out = []
    for item in items:
        text = str(item)
        if glob.has_magic(text):
            found = sorted(glob.glob(text))
            if not found:
                raise FileNotFoundError(f"no {what} matches {text!r} (relative to {Path.cwd()}); "
                                        "check the pattern and the folder")
            out += [Path(f) for f in found]
        elif not Path(text).is_file():
            raise FileNotFoundError(f"{what} {text} not found; check the path")
        else:
            out.append(Path(text))
    return out


def label(paths: list[Path]) -> str:
    """``a.nc`` or ``a.nc (+3 more)``, for messages."""
    return str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} more)"


def sniff(path: Path, what: str = "file") -> str:
    """``netcdf3``, ``hdf5`` (NetCDF-4) or ``grib``, from the file's first bytes.

    Raises:
        ValueError: an empty file, an HTML/XML/JSON page, or another format -- one line
            naming the file and the fix.
    """
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{what} {path} is empty (0 bytes): the download failed or was cut; "
                         "download it again")
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if head[:3] == b"CDF":
        return "netcdf3"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if b"GRIB" in head[:128]:
        return "grib"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
        raise ValueError(f"{what} {path} is an HTML/XML page ({size} bytes), not NetCDF or GRIB: a "
                         "login or error page was saved instead of the data; download it again (CDS: "
                         "check the request and your licence acceptance)")
    if text.startswith((b"{", b"[")):
        raise ValueError(f"{what} {path} is a JSON text ({size} bytes), not NetCDF or GRIB: an API "
                         "error message was saved instead of the data; download it again")
    raise ValueError(f"{what} {path} is neither NetCDF, HDF5 nor GRIB (it starts with {head[:8]!r}): "
                     "a damaged or different file; download it again")


def _grib_on_valid_time(ds: xr.Dataset) -> xr.Dataset:
    """A cfgrib hypercube on its valid times (``valid_time`` dimension, no ``time``/``step``)."""
    if "valid_time" not in ds.coords:
        return ds
    dims = ds["valid_time"].dims
    if len(dims) == 0:
        ds = ds.expand_dims("valid_time").assign_coords(valid_time=[ds["valid_time"].values])
    elif len(dims) == 1:
        ds = ds.swap_dims({dims[0]: "valid_time"})
    else:  # forecasts: (time, step) -> one axis of valid times
        ds = ds.stack(_vt=dims)
        vt = ds["valid_time"].values
        ds = ds.drop_vars(["_vt", *dims, "valid_time"], errors="ignore")
        ds = ds.assign_coords(valid_time=("_vt", vt)).swap_dims({"_vt": "valid_time"})
        ds = ds.transpose("valid_time", ...)
        present = np.ones(ds.sizes["valid_time"], bool)
        for v in ds.data_vars:
            present &= ~np.isnan(ds[v].values.reshape(ds.sizes["valid_time"], -1)).all(1)
        ds = ds.isel(valid_time=np.flatnonzero(present)).sortby("valid_time")
    return ds.drop_vars([c for c in ("time", "step") if c in ds.coords and c not in ds.dims])


def _open_grib(path: Path) -> xr.Dataset:
    import cfgrib

    with warnings.catch_warnings():  # cfgrib's own merge warns about xarray's future defaults
        warnings.simplefilter("ignore", FutureWarning)
        found = cfgrib.open_datasets(str(path), backend_kwargs={"indexpath": ""})
    parts = [_grib_on_valid_time(d) for d in found]
    if not parts:
        raise ValueError(f"{path} holds no GRIB field cfgrib can read; download it again")
    scalars = ("number", "surface", "heightAboveGround", "depthBelowLandLayer", "meanSea", "entireAtmosphere")
    parts = [p.drop_vars([c for c in scalars if c in p.coords and c not in p.dims]) for p in parts]
    times = [p.indexes["valid_time"] for p in parts]
    if any(not t.equals(times[0]) for t in times[1:]):
        common = times[0]
        for t in times[1:]:
            common = common.intersection(t)
        if not len(common):
            raise ValueError(f"{path}: its GRIB fields share no valid time; download all variables for "
                             "the same dates and hours")
        dropped = max(len(t) for t in times) - len(common)
        warnings.warn(f"{path}: GRIB fields cover different valid times; kept the {len(common)} common "
                      f"steps ({dropped} dropped)", stacklevel=3)
        parts = [p.sel(valid_time=common) for p in parts]
    return xr.merge(parts, compat="override", combine_attrs="drop_conflicts")


def open_file(path: Path, what: str = "file", **netcdf_options) -> xr.Dataset:
    """One file as an xarray Dataset (NetCDF through xarray, GRIB through cfgrib), standardised.

    Raises:
        ValueError: one line naming the file when it is not readable (see :func:`sniff`).
    """
    kind = sniff(path, what)
    try:
        if kind == "grib":
            try:
                ds = _open_grib(path)
            except ImportError as err:
                raise ValueError(f"{path} is GRIB, which needs cfgrib and eccodes: pip install "
                                 "cfgrib==0.9.15.1 eccodes==2.50.1 (pinned in requirements.txt)") from err
        else:
            engine = "h5netcdf" if kind == "hdf5" else None
            ds = xr.open_dataset(path, engine=engine, **netcdf_options)
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise ValueError(f"{what} {path} cannot be read ({str(err).splitlines()[0][:160]}); download "
                         "it again or check that it is ERA5/NDVI NetCDF or GRIB") from None
    except (OSError, RuntimeError, KeyError, IndexError, EOFError) as err:
        first = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise ValueError(f"{what} {path} is damaged or truncated ({first}); download it again") from None
    ds.encoding.setdefault("source", str(path))
    return standardise(ds, str(path))


def combine_expver(ds: xr.Dataset, where: str = "") -> xr.Dataset:
    """ERA5 and ERA5T in one time axis (module docstring): final ERA5 first, ERA5T elsewhere."""
    if "expver" not in ds.coords:
        return ds
    values = [str(v).strip() for v in np.atleast_1d(ds["expver"].values)]
    if "expver" not in ds.dims:
        t_steps = [i for i, v in enumerate(values) if v not in FINAL_EXPVER]
        ds = ds.drop_vars("expver")
        if t_steps and "time" in ds.dims and len(values) == ds.sizes["time"]:
            first = str(ds["time"].values[t_steps[0]])[:16]
            ds.attrs["expver"] = (f"{len(t_steps)} step(s) from ERA5T (preliminary, from {first}), the rest "
                                  "from the final ERA5")
        return ds
    order = sorted(range(len(values)), key=lambda i: (values[i] not in FINAL_EXPVER, values[i]))
    parts = [ds.isel(expver=i, drop=True) for i in order]
    out = parts[0]
    for part in parts[1:]:
        out = out.combine_first(part)
    final = parts[0]
    from_t = np.zeros(ds.sizes.get("time", 0), bool)
    for v in out.data_vars:
        if "time" in out[v].dims:
            have = np.isfinite(final[v].values).reshape(final.sizes["time"], -1).any(1)
            from_t |= ~have
    how = (f"ERA5 (expver {values[order[0]]}) where it has values, else ERA5T (expver "
           f"{', '.join(values[i] for i in order[1:])})")
    if from_t.any():
        first = str(out["time"].values[np.flatnonzero(from_t)[0]])[:16]
        how += f": {int(from_t.sum())} step(s) from ERA5T, the first {first}"
        warnings.warn(f"{where}combined ERA5 and ERA5T: {how}", stacklevel=3)
    out.attrs.update(ds.attrs)
    out.attrs["expver"] = how
    return out


def standardise(ds: xr.Dataset, where: str = "") -> xr.Dataset:
    """Rename CDS/CF dims to ``time, lat, lon, level``; ERA5/ERA5T combined; latitude
    ascending; longitude in [-180, 180) ascending, a duplicated seam column dropped; the
    ensemble ``number`` dropped when single.

    Raises:
        ValueError: no latitude/longitude, or several ensemble members (naming the fix).
    """
    prefix = f"{where}: " if where else ""
    if "time" in ds.coords and "valid_time" in ds.coords and "time" not in ds.dims:
        ds = ds.drop_vars("time")  # the 2024 CDS layout's forecast reference time
    ds = ds.rename({k: v for k, v in RENAME.items() if k in ds.dims or k in ds.coords})
    ds = combine_expver(ds, prefix)
    if "number" in ds.dims and ds.sizes["number"] > 1:
        raise ValueError(f"{prefix}holds {ds.sizes['number']} ensemble members (number): read one member, "
                         "e.g. ds.sel(number=0), or download the reanalysis instead of the ensemble")
    for dim in [d for d in ds.dims if d not in ("time", "lat", "lon", "level") and ds.sizes[d] == 1]:
        ds = ds.squeeze(dim, drop=True)
    for c in ("number", "surface", "step"):
        if c in ds.coords and c not in ds.dims:
            ds = ds.drop_vars(c)
    missing = [d for d in ("lat", "lon") if d not in ds.dims]
    if missing:
        raise ValueError(f"{prefix}no {missing} dimension (found {list(ds.dims)}); rename it to lat/lon")
    lon = ((ds["lon"].values.astype(np.float64) + 180.0) % 360.0) - 180.0
    lon = np.where(np.isclose(lon, 180.0), -180.0, lon)
    ds = ds.assign_coords(lon=lon)
    _, first = np.unique(np.round(lon, 6), return_index=True)
    if first.size < lon.size:  # the seam stored twice (0 and 360, or -180 and 180)
        ds = ds.isel(lon=np.sort(first))
    return ds.sortby(["lat", "lon"])


def snap_grid(ds: xr.Dataset, ref: xr.Dataset, where: str, ref_where: str) -> xr.Dataset:
    """``ds`` on ``ref``'s latitudes and longitudes when they agree within :data:`GRID_TOL`.

    Raises:
        ValueError: the grids differ (size, or by more than the tolerance), naming both files.
    """
    diffs = {}
    for c in ("lat", "lon"):
        a, b = np.asarray(ds[c].values, float), np.asarray(ref[c].values, float)
        if a.shape != b.shape:
            raise ValueError(f"{where} and {ref_where} are on different grids ({c}: {a.size} vs {b.size} "
                             "points); download both on the same grid, or regrid one first")
        diffs[c] = float(np.abs(a - b).max()) if a.size else 0.0
    worst = max(diffs.values())
    if worst == 0.0:
        return ds
    if worst > GRID_TOL:
        raise ValueError(f"{where} and {ref_where} are on different grids (coordinates differ by up to "
                         f"{worst:.3g} degrees, more than the {GRID_TOL:g} degrees of float noise); download "
                         "both on the same grid, or regrid one first")
    warnings.warn(f"{where}: grid snapped onto that of {ref_where} (coordinates differed by up to "
                  f"{worst:.2g} degrees, within the {GRID_TOL:g}-degree tolerance)", stacklevel=2)
    return ds.assign_coords(lat=ref["lat"].values, lon=ref["lon"].values)


def combine_time(parts: list[xr.Dataset], paths: list[Path]) -> xr.Dataset:
    """Files on one time axis: grids snapped onto the first file's, sorted by time.

    Raises:
        ValueError: different grids, or a time step present in two files (naming both).
    """
    if len(parts) == 1:
        return parts[0]
    parts = [parts[0]] + [snap_grid(p, parts[0], str(path), str(paths[0]))
                          for p, path in zip(parts[1:], paths[1:])]
    seen: dict = {}
    for p, path in zip(parts, paths):
        if "time" not in p.dims:
            continue
        for t in np.asarray(p["time"].values):
            if t in seen:
                raise ValueError(f"{path} and {seen[t]} both hold the time step {str(t)[:16]}: give each "
                                 "step once (drop the duplicated file or steps)")
            seen[t] = path
    out = xr.concat(parts, dim="time", data_vars="minimal", coords="minimal", compat="override",
                    join="override", combine_attrs="drop_conflicts")
    return out.sortby("time")


def open_files(paths, what: str = "file", **netcdf_options) -> tuple[xr.Dataset, str]:
    """Every file of ``paths`` opened and put on one time axis; returns ``(dataset, label)``."""
    files = expand_paths(paths, what)
    parts = [open_file(p, what, **netcdf_options) for p in files]
    return combine_time(parts, files), label(files)
