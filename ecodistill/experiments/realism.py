"""The realism check: the statistics of :mod:`ecodistill.data.realism` for each simulated
world of a profile, beside the same statistics of real data.

``python -m ecodistill realism --profile cpu`` writes ``results/<profile>/data/realism.csv``:
one row per ``(source, statistic, variable)`` with ``source`` a world (``v1``, ``v2``, with its
dataset hash) or ``real`` (the FLUXNET2015 site-months and the ERA5 sample in
``../shared/data``, when present; the literature values of
:data:`~ecodistill.data.realism.TARGETS` are not rows, they are the targets). The data chapter
reads the file (:func:`ecodistill.report.realism.realism_table`); at ``smoke`` it is computed
when missing.

Explained in book/generated/02_data.ipynb ("Is the simulated Earth realistic?").
"""
from __future__ import annotations

import argparse
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..config import PROFILES, DataConfig, get_profile
from ..data import load_dataset, prepare
from ..data import realism as R
from ..data.baselines import forecastability
from ..data.schema import DOMAIN
from ..data.world import WORLDS, simulate_years_v2
from ..fluxnet.reader import fluxval_dir, load_fluxval
from ..utils import atomic_write_text, results_dir, shared_data_dir

COLUMNS = ("source", "dataset_hash", "statistic", "variable", "value", "n")
DAILY_VARS = ("t2m", "z500", "t850", "msl", "tcwv")
MONTHLY_VARS = {"t2m": "t2m", "ssrd": "ssrd", "tp": "tp", "vpd": "vpd", "vegetation": "ndvi"}
ERA5_SAMPLE = Path("era5-sample") / "era5-2mt-2019-03-uk.grib"
UK = {"lat": (48.0, 60.0), "lon": (-12.0, 4.0)}  # the ERA5 sample's region, widened by a cell


def realism_path(profile: str) -> Path:
    return results_dir(profile) / "data" / "realism.csv"


def world_config(profile: str, world: str) -> DataConfig:
    """The profile's data config in ``world`` (v1 with its own inputs, v2 with ERA5's)."""
    data = get_profile(profile).data
    return replace(data, world=world, inputs="v1" if world == "v1" else "era5")


def _row(source, digest, statistic, variable, value, n) -> dict:
    return dict(zip(COLUMNS, (source, digest, statistic, variable, float(value), int(n))))


def simulated_rows(profile: str, world: str, sites: pd.DataFrame | None) -> list[dict]:
    """Every realism statistic of the profile's dataset in ``world``."""
    cfg = world_config(profile, world)
    ds = load_dataset(cfg)
    digest = ds.attrs["dataset_hash"]
    rows: list[dict] = []
    land = ds["land_mask"].values
    doy = ds["time"].dt.dayofyear.values
    for v in DAILY_VARS:
        lag1 = R.lag_correlation(R.daily_anomalies(ds[v].values[:, land], doy))
        rows.append(_row(world, digest, "daily lag-1 autocorrelation", v, np.nanmedian(lag1), land.sum()))
    uk = ds.sel(lat=slice(*UK["lat"]))
    cols = (uk["lon"].values >= UK["lon"][0]) & (uk["lon"].values <= UK["lon"][1])
    t2m, times = uk["t2m"].values[:, :, cols], pd.DatetimeIndex(ds["time"].values)
    march = [np.nanmedian(R.window_lag1(t2m[(times.year == y) & (times.month == 3)])) for y in sorted(set(times.year))]
    rows.append(_row(world, digest, "daily lag-1 autocorrelation, one March, British Isles", "t2m",
                     np.median(march), len(march)))
    prep = prepare(ds, cfg, patch_size=get_profile(profile).teacher.patch_size)
    skill = forecastability(prep).set_index("variable")["skill"]
    for v in ("z500", "t2m"):
        rows.append(_row(world, digest, "next-day RMSE skill over persistence", v, skill[v], prep.days["test"].size))
    if sites is not None:
        months = R.simulated_site_months(ds, sites)
        stats = R.site_statistics(months, {k: k for k in MONTHLY_VARS.values() if k in months})
        for name, col in MONTHLY_VARS.items():
            part = stats[stats["variable"] == col]
            if part.empty or part["variance_share"].isna().all():
                continue  # e.g. VPD: world v1 has no near-surface humidity
            rows.append(_row(world, digest, "monthly variance share outside the seasonal cycle", name,
                             part["variance_share"].median(), part["variance_share"].notna().sum()))
            rows.append(_row(world, digest, "monthly lag-1 autocorrelation of anomalies", name,
                             part["anomaly_lag1"].median(), part["anomaly_lag1"].notna().sum()))
    for v in ("swvl1", "swvl3"):
        if v in ds:
            every = max(1, int(land.sum()) // 200)
            efold = R.efolding_days(R.daily_anomalies(ds[v].values[:, land][:, ::every], doy), 365)
            rows.append(_row(world, digest, "e-folding time of daily anomalies [d]", v, np.median(efold), efold.size))
    if world != "v1":
        rows += _land_rows(cfg, ds, digest)
    return rows + excursion_rows(world, digest, ds)


def excursion_rows(world: str, digest: str, ds: xr.Dataset) -> list[dict]:
    """The share of finite values outside the physical domain the readers check on real files
    (:data:`~ecodistill.data.schema.DOMAIN`), for each variable that has any: what a real ERA5
    file with such values would be refused for."""
    rows = []
    for name, (low, high) in DOMAIN.items():
        if name not in ds:
            continue
        values = ds[name].values
        finite = np.isfinite(values)
        outside = int((finite & ((values < low) | (values > high))).sum())
        if outside:
            rows.append(_row(world, digest, R.EXCURSION, name, outside / finite.sum(), outside))
    return rows


def _land_rows(cfg: DataConfig, ds: xr.Dataset, digest: str, years: int = 3) -> list[dict]:
    """The reanalysis estimate against the true top-layer water (re-simulated: the truth is not
    written) and the share of cells whose NDVI anomalies are water-driven."""
    short = replace(cfg, train_years=(cfg.train_years[0], cfg.train_years[0] + years - 1),
                    val_years=cfg.val_years, test_years=cfg.test_years, extra_years=None)
    truth, estimate = [], []
    cells = None
    for year, _, block in simulate_years_v2(short):
        if year > short.train_years[1]:
            break
        land = ds["land_mask"].values.ravel()
        cells = np.flatnonzero(land)
        truth.append(block["_theta1_true"])
        estimate.append(block["swvl1"].reshape(block["swvl1"].shape[0], -1)[:, cells])
    t, e = np.concatenate(truth), np.concatenate(estimate)
    t_anom, e_anom = t - t.mean(0), e - e.mean(0)
    r = (t_anom * e_anom).sum(0) / np.sqrt((t_anom**2).sum(0) * (e_anom**2).sum(0) + 1e-30)
    ubrmse = np.sqrt(((e_anom - t_anom) ** 2).mean(0))
    land = ds["land_mask"].values
    doy = ds["time"].dt.dayofyear.values
    ndvi = ds["ndvi_true"].values[:, land]
    ok = np.isfinite(ndvi).all(0)
    anomalies = {k: R.daily_anomalies(ds[k].values[:, land][:, ok], doy) for k in ("rootzone_availability", "gsi")}
    share = R.water_driven_share(R.daily_anomalies(ndvi[:, ok], doy), anomalies["rootzone_availability"],
                                 anomalies["gsi"])
    return [_row(cfg.world, digest, "correlation of reanalysis with true soil water", "swvl1", np.median(r), r.size),
            _row(cfg.world, digest, "unbiased RMSE of reanalysis soil water [m3 m-3]", "swvl1", np.median(ubrmse),
                 ubrmse.size),
            _row(cfg.world, digest, "share of land cells whose NDVI anomalies are water-driven", "ndvi", share,
                 int(ok.sum()))]


def fluxval_sites(root: Path | None = None) -> pd.DataFrame | None:
    """The FLUXNET2015 site-months (CARDAMOM-FluxVal) in the realism columns, or None when
    the data is absent."""
    try:
        frame = load_fluxval(fluxval_dir(root))
    except FileNotFoundError:
        return None
    return frame.assign(t2m=(frame["tmin_C"] + frame["tmax_C"]) / 2)


def real_rows(sites_frame: pd.DataFrame | None, era5_path: Path | None) -> list[dict]:
    """The same statistics of real data: FLUXNET2015 site-months and the ERA5 sample."""
    rows: list[dict] = []
    if sites_frame is not None:
        columns = {"t2m": "t2m", "ssrd": "ssrd_MJ_m2_d", "tp": "precip_mm_d", "vpd": "vpd_hPa",
                   "vegetation (LAI)": "lai", "vegetation (GPP)": "gpp"}
        stats = R.site_statistics(sites_frame, columns)
        for name in columns:
            part = stats[stats["variable"] == name]
            rows.append(_row("real", "fluxval", "monthly variance share outside the seasonal cycle", name,
                             part["variance_share"].median(), part["variance_share"].notna().sum()))
            rows.append(_row("real", "fluxval", "monthly lag-1 autocorrelation of anomalies", name,
                             part["anomaly_lag1"].median(), part["anomaly_lag1"].notna().sum()))
    if era5_path is not None and era5_path.is_file():
        t2m = xr.open_dataset(era5_path, engine="cfgrib", backend_kwargs={"indexpath": ""})["t2m"]
        daily = t2m.resample(time="1D").mean().values
        lag1 = R.window_lag1(daily)
        rows.append(_row("real", "era5-sample", "daily lag-1 autocorrelation, one March, British Isles", "t2m",
                         np.nanmedian(lag1), np.isfinite(lag1).sum()))
    return rows


def run_realism(profile: str, worlds: tuple[str, ...] = WORLDS) -> pd.DataFrame:
    """Compute the realism rows of ``profile`` for ``worlds`` and real data; write them."""
    try:
        shared = shared_data_dir()
    except FileNotFoundError:
        shared = None
    frame = fluxval_sites() if shared is not None else None
    sites = frame.groupby("site")[["lat", "lon"]].first().reset_index() if frame is not None else None
    rows = real_rows(frame, shared / ERA5_SAMPLE if shared is not None else None)
    for world in worlds:
        rows += simulated_rows(profile, world, sites)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    buf = io.StringIO()
    table.to_csv(buf, index=False, float_format="%.6g")
    atomic_write_text(realism_path(profile), buf.getvalue())
    return table


def read_realism(profile: str) -> pd.DataFrame:
    """``results/<profile>/data/realism.csv`` (no rows when absent)."""
    path = realism_path(profile)
    if not path.is_file():
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.read_csv(path, dtype={"source": str, "dataset_hash": str})


def _cmd_realism(args: argparse.Namespace) -> int:
    table = run_realism(args.profile, tuple(args.worlds))
    print(table.to_string(index=False))
    print(f"wrote {realism_path(args.profile)}")
    return 0


def register_cli(subparsers) -> None:
    """Add ``realism``."""
    p = subparsers.add_parser("realism", help="realism statistics of the simulated worlds beside real data",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="smoke", choices=PROFILES)
    p.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=WORLDS)
    p.set_defaults(func=_cmd_realism)
