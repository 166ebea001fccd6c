r"""How realistic is a dataset? Statistics computed the same way on simulated and real data.

Each statistic is a plain function of arrays, so the simulated Earth and the real data
(FLUXNET2015 site-months, the ERA5 sample) pass through the same code; the data chapter
puts them side by side (:mod:`ecodistill.report.realism`). The targets they are judged
against (:data:`TARGETS`) come from real data and the literature only, and were fixed
before the simulated world was revised toward them (never from distillation results).

* **Day-to-day memory** -- :func:`lag_correlation` of daily anomalies (the per-cell daily
  climatology removed), and :func:`window_lag1`: the same within one month after removing
  its mean and linear trend, which is what one month of real ERA5 allows.
* **Next-day predictability** -- :func:`ecodistill.data.baselines.forecastability`: the
  RMSE skill :math:`1 - \mathrm{RMSE}_{ridge} / \mathrm{RMSE}_{persistence}` of a ridge
  forecast of tomorrow from today's fields in a 5 x 5 neighbourhood.
* **Monthly variability** -- :func:`monthly_variance_share`: the share of a monthly
  series' variance outside the mean seasonal cycle, :math:`\mathrm{var}(x - \bar x_{moy}) /
  \mathrm{var}(x)`, and :func:`monthly_anomaly_lag1`: the lag-1 autocorrelation of the
  monthly anomalies (vegetation memory).
* **Memory of the land state** -- :func:`efolding_days`: the lag at which the
  autocorrelation of daily anomalies first falls below :math:`1/e`.

Explained in book/generated/02_data.ipynb ("Is the simulated Earth realistic?").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Target:
    """A realism target: a value or range from real data or the literature.

    ``low``/``high`` bound the acceptable simulated value; ``real`` is the reference
    (None when it is computed from the shared data at run time).
    """

    statistic: str
    variable: str
    real: float | None
    low: float
    high: float
    source: str


#: Fixed before the world was revised (commit history shows them first). Computed real
#: values (``real=None``) are read from ``../shared/data`` at run time; their bounds are a
#: factor of 2 around the real value (:func:`factor_two`).
TARGETS = (
    Target("daily lag-1 autocorrelation", "z500", 0.70, 0.60, 0.90,
           "WeatherBench persistence vs weekly-climatology RMSE at 3 and 5 days (rasp2020weatherbench; "
           "calc: ρ(L) = 1 − RMSE_pers²/(2 RMSE_wclim²), τ ≈ 2.8-3.1 d); hemispheric Z500 maps correlate "
           "0.7-0.9 from day to day (horel1985persistence)"),
    Target("daily lag-1 autocorrelation", "t850", 0.67, 0.55, 0.85,
           "WeatherBench persistence vs weekly-climatology RMSE (rasp2020weatherbench; calc: 0.65-0.69)"),
    Target("daily lag-1 autocorrelation, one March, British Isles", "t2m", None, 0.0, 0.0,
           "ERA5 sample, March 2019, 50-58° N, 10° W-2° E (hersbach2020era5): each cell's daily means, "
           "the month's mean and linear trend removed"),
    Target("next-day RMSE skill over persistence", "z500", None, 0.40, 1.0,
           "a learned model cuts persistence RMSE by 71 % (Z500) and 61 % (T850) at day 3 on WeatherBench "
           "(rasp2021resnet, weatherbench_readme); a ridge forecast at day 1 should cut it by at least 40 %"),
    Target("next-day RMSE skill over persistence", "t2m", None, 0.40, 1.0,
           "as for z500 (rasp2021resnet, weatherbench_readme)"),
    Target("monthly variance share outside the seasonal cycle", "vpd", None, 0.0, 0.0,
           "FLUXNET2015 sites, CARDAMOM-FluxVal (pastorello2020fluxnet): median over sites"),
    Target("monthly variance share outside the seasonal cycle", "ssrd", None, 0.0, 0.0,
           "FLUXNET2015 sites, CARDAMOM-FluxVal (pastorello2020fluxnet): median over sites"),
    Target("monthly variance share outside the seasonal cycle", "t2m", None, 0.0, 0.0,
           "FLUXNET2015 sites, CARDAMOM-FluxVal, (Tmin + Tmax)/2 (pastorello2020fluxnet)"),
    Target("monthly variance share outside the seasonal cycle", "tp", None, 0.0, 0.0,
           "FLUXNET2015 sites, CARDAMOM-FluxVal (pastorello2020fluxnet)"),
    Target("monthly variance share outside the seasonal cycle", "vegetation (LAI)", None, 0.0, 0.0,
           "FLUXNET2015 sites, CARDAMOM-FluxVal LAI (pastorello2020fluxnet); simulated: observed NDVI"),
    Target("monthly variance share outside the seasonal cycle", "vegetation (GPP)", None, 0.0, 0.0,
           "FLUXNET2015 sites, GPP (pastorello2020fluxnet); simulated: observed NDVI"),
    Target("monthly lag-1 autocorrelation of anomalies", "vegetation (LAI)", None, 0.0, 0.0,
           "FLUXNET2015 sites, CARDAMOM-FluxVal LAI (pastorello2020fluxnet); simulated: observed NDVI"),
    Target("monthly lag-1 autocorrelation of anomalies", "vegetation (GPP)", None, 0.0, 0.0,
           "FLUXNET2015 sites, GPP (pastorello2020fluxnet); simulated: observed NDVI"),
    Target("e-folding time of daily anomalies [d]", "swvl1", None, 1.0, 20.0,
           "surface soil moisture dries down in days (mccoll2017global; shellito: most drying within ~5 d)"),
    Target("e-folding time of daily anomalies [d]", "swvl3", None, 20.0, 270.0,
           "root-zone anomalies persist for weeks to months (orth2013inferring, seneviratne2006memory), "
           "up to 9 months (stacke2016lifetime)"),
    Target("correlation of reanalysis with true soil water", "swvl1", 0.70, 0.55, 0.85,
           "median R of land models with data assimilation vs 826 in-situ sensors at 5 cm: 0.72; "
           "without: 0.69 (beck2021evaluation)"),
    Target("unbiased RMSE of reanalysis soil water [m3 m-3]", "swvl1", 0.045, 0.03, 0.06,
           "ERA5 vs in-situ: ubRMSE > 0.04 over China (ling2021comprehensive), 0.052 in Jiangsu"),
    Target("share of land cells whose NDVI anomalies are water-driven", "ndvi", 0.61, 0.40, 0.90,
           "about 61 % of the vegetated surface was primarily water-limited in 1981-2010 "
           "(papagiannopoulou2017vegetation)"),
)


#: The statistic naming the share of a simulated variable's values outside its physical domain.
EXCURSION = "share of values outside the physical domain"


def factor_two(real: float) -> tuple[float, float]:
    """The ``(low, high)`` range within a factor of 2 of ``real`` (for positive statistics)."""
    return (real / 2, real * 2) if real >= 0 else (real * 2, real / 2)


def target_bounds(target: Target, real: float | None) -> tuple[float, float, str]:
    """``(low, high, kind)`` of a target: the cited range (``kind="range"``), or within a
    factor of 2 of the real value computed from data (``kind="x2"``, for the targets whose
    bounds are written ``0, 0``; NaN without a real value)."""
    if target.real is None and target.low == target.high == 0.0:
        if real is None or not np.isfinite(real):
            return float("nan"), float("nan"), "x2"
        low, high = factor_two(real)
        return low, high, "x2"
    return target.low, target.high, "range"


def lag_correlation(a: np.ndarray, lag: int = 1) -> np.ndarray:
    """Lag-``lag`` autocorrelation along axis 0 of anomalies ``a`` ``(n, ...)`` (NaN-aware,
    each series centred first); ``(...)``."""
    a = np.asarray(a, dtype=np.float64)
    a = a - np.nanmean(a, axis=0)
    x, y = a[lag:], a[:-lag]
    ok = np.isfinite(x) & np.isfinite(y)
    num = np.where(ok, x * y, 0).sum(0)
    den = np.sqrt(np.where(ok, x * x, 0).sum(0) * np.where(ok, y * y, 0).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def window_lag1(x: np.ndarray) -> np.ndarray:
    """Lag-1 autocorrelation within one window of daily values ``x`` ``(n, ...)`` after
    removing the window's mean and linear trend (what one month of data allows)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    design = np.stack([np.ones(n), np.arange(n) - (n - 1) / 2], axis=1)
    flat = x.reshape(n, -1)
    coef = np.linalg.lstsq(design, flat, rcond=None)[0]
    return lag_correlation(flat - design @ coef).reshape(x.shape[1:])


def daily_anomalies(x: np.ndarray, doy: np.ndarray, window: int = 31) -> np.ndarray:
    """Anomalies of daily values ``x`` ``(n, ...)`` from the per-cell climatology of the same
    day of year (day-of-year means smoothed by a circular ``window``-day running mean)."""
    x = np.asarray(x, dtype=np.float64)
    idx = np.asarray(doy) - 1
    sums = np.zeros((366,) + x.shape[1:])
    counts = np.zeros(366)
    np.add.at(sums, idx, np.nan_to_num(x))
    np.add.at(counts, idx, 1)
    clim = sums / np.maximum(counts, 1).reshape((366,) + (1,) * (x.ndim - 1))
    kernel = np.ones(window) / window
    pad = window // 2
    padded = np.concatenate([clim[-pad:], clim, clim[:pad]], axis=0)
    smooth = np.apply_along_axis(lambda s: np.convolve(s, kernel, mode="valid"), 0, padded)
    return x - smooth[idx]


def efolding_days(a: np.ndarray, max_lag: int = 365) -> np.ndarray:
    """First lag (days) at which the autocorrelation of anomalies ``a`` ``(n, ...)`` drops
    below 1/e; ``max_lag`` where it never does within ``max_lag`` days."""
    a = np.asarray(a, dtype=np.float64)
    out = np.full(a.shape[1:], float(max_lag))
    done = np.zeros(a.shape[1:], dtype=bool)
    for lag in range(1, min(max_lag, a.shape[0] // 2)):
        below = (lag_correlation(a, lag) < np.exp(-1)) & ~done
        out[below] = lag
        done |= below
        if done.all():
            break
    return out


def vpd_hpa(t_k: np.ndarray, td_k: np.ndarray) -> np.ndarray:
    """Vapour-pressure deficit [hPa] from temperature and dew point [K] (FAO-56 eqs. 11, 14:
    Tetens saturation vapour pressure)."""
    def es(t_c):
        return 6.108 * np.exp(17.27 * t_c / (t_c + 237.3))
    return np.maximum(es(t_k - 273.15) - es(td_k - 273.15), 0.0)


def _monthly_anomalies(values: np.ndarray, month: np.ndarray) -> np.ndarray:
    """A monthly series minus the mean of its calendar month (NaN-aware, NaN stays NaN)."""
    x = np.asarray(values, dtype=np.float64)
    idx = np.asarray(month, dtype=np.int64) - 1
    ok = np.isfinite(x)
    sums = np.bincount(idx[ok], weights=x[ok], minlength=12)
    counts = np.bincount(idx[ok], minlength=12)
    with np.errstate(invalid="ignore", divide="ignore"):
        return x - (sums / counts)[idx]


def monthly_variance_share(values: np.ndarray, month: np.ndarray) -> float:
    """Share of the variance of a monthly series outside its mean seasonal cycle,
    ``var(x - mean_by_month(x)) / var(x)`` (NaN-aware; NaN when fewer than 24 months)."""
    x = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(x)
    if ok.sum() < 24:
        return float("nan")
    total = x[ok].var(ddof=1)
    return float(_monthly_anomalies(x, month)[ok].var(ddof=1) / total) if total > 0 else float("nan")


def monthly_anomaly_lag1(values: np.ndarray, month: np.ndarray) -> float:
    """Lag-1 autocorrelation of the monthly anomalies of a consecutive monthly series
    (pairs with a gap are skipped; NaN when fewer than 12 pairs)."""
    anom = _monthly_anomalies(values, month)
    x, y = anom[1:], anom[:-1]
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 12:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def site_statistics(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Per-site monthly statistics of a site-month frame.

    Args:
        frame: one row per site-month with ``site``, ``month`` (1-12), in time order per site.
        columns: ``{variable: column}`` to summarise.

    Returns:
        One row per site and variable: ``site, variable, variance_share, anomaly_lag1``.
    """
    rows = []
    for site, group in frame.groupby("site", sort=True):
        for var, col in columns.items():
            rows.append({"site": site, "variable": var,
                         "variance_share": monthly_variance_share(group[col].to_numpy(), group["month"].to_numpy()),
                         "anomaly_lag1": monthly_anomaly_lag1(group[col].to_numpy(), group["month"].to_numpy())})
    return pd.DataFrame(rows)


def nearest_land_cells(ds, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the land cell (``land_mask``) nearest to each point (great-circle
    distance), ``(n,)`` each: where a site is compared with the simulated Earth."""
    glat, glon = np.deg2rad(ds["lat"].values), np.deg2rad(ds["lon"].values)
    rows, cols = np.nonzero(ds["land_mask"].values)
    la, lo = glat[rows], glon[cols]
    p_lat, p_lon = np.deg2rad(np.asarray(lat))[:, None], np.deg2rad(np.asarray(lon))[:, None]
    cos_d = np.sin(p_lat) * np.sin(la) + np.cos(p_lat) * np.cos(la) * np.cos(p_lon - lo)
    best = np.argmax(cos_d, axis=1)
    return rows[best], cols[best]


def simulated_site_months(ds, sites: pd.DataFrame, min_valid_days: int = 3) -> pd.DataFrame:
    """Monthly means of the dataset at the land cell nearest to each site, in the units of
    the FLUXNET site-months: ``t2m`` [°C], ``ssrd`` [MJ m-2 d-1], ``tp`` [mm d-1], ``vpd``
    [hPa] (when ``d2m`` exists) and ``ndvi`` (observed NDVI: a month's mean of its valid
    days, NaN with fewer than ``min_valid_days``).

    Args:
        sites: one row per site with ``site``, ``lat``, ``lon``.

    Returns:
        One row per site and month: ``site, date, month`` and the variables.
    """
    rows, cols = nearest_land_cells(ds, sites["lat"].to_numpy(), sites["lon"].to_numpy())
    r_idx = ds["lat"].isel(lat=rows).values  # vectorised point selection
    points = ds.isel(lat=("site", rows), lon=("site", cols))
    del r_idx
    daily = {"t2m": points["t2m"] - 273.15, "ssrd": points["ssrd"] / 1e6, "tp": points["tp"] * 1000.0}
    if "d2m" in points:
        daily["vpd"] = vpd_hpa(points["t2m"], points["d2m"])
    monthly = {k: v.resample(time="MS").mean() for k, v in daily.items()}
    ndvi = points["ndvi"]
    valid = ndvi.notnull().resample(time="MS").sum()
    monthly["ndvi"] = ndvi.resample(time="MS").mean().where(valid >= min_valid_days)
    frames = []
    for name, da in monthly.items():
        f = da.to_pandas()
        f.columns = sites["site"].to_numpy()
        frames.append(f.stack().rename(name))
    out = pd.concat(frames, axis=1).reset_index()
    out = out.rename(columns={"level_1": "site"}).rename(columns={out.columns[0]: "date"})
    out["month"] = pd.DatetimeIndex(out["date"]).month
    return out.sort_values(["site", "date"]).reset_index(drop=True)


def water_driven_share(ndvi: np.ndarray, water: np.ndarray, gsi: np.ndarray, window: int = 25) -> float:
    """Share of cells whose NDVI anomalies follow water more than the growing-season index.

    Args:
        ndvi, water, gsi: ``(n_days, n_cells)`` daily anomalies of the noise-free NDVI, the
            root-zone water availability and the 21-day GSI.
        window: days of the trailing mean of the drivers (vegetation responds in weeks).

    Returns:
        The share of cells where ``corr(ndvi, water_w)² > corr(ndvi, gsi_w)²``, the drivers'
        anomalies averaged over the ``window`` days up to each day.
    """
    def trailing(a):
        c = np.cumsum(np.concatenate([np.zeros((1,) + a.shape[1:]), a]), axis=0)
        lo = np.maximum(np.arange(1, a.shape[0] + 1) - window, 0)
        return (c[1:] - c[lo]) / (np.arange(1, a.shape[0] + 1) - lo)[:, None]

    def corr2(a, b):
        a, b = a - a.mean(0), b - b.mean(0)
        return (a * b).sum(0) ** 2 / ((a * a).sum(0) * (b * b).sum(0) + 1e-30)

    return float(np.mean(corr2(ndvi, trailing(water)) > corr2(ndvi, trailing(gsi))))


def judge(rows: pd.DataFrame, sources: tuple[str, ...] = ("v1", "v2")) -> pd.DataFrame:
    """Every :data:`TARGETS` entry against the statistics of ``rows`` (the realism file:
    ``source, statistic, variable, value``).

    A target's real value is the literature's, or the ``real`` row of the same statistic and
    variable, with bounds a factor of 2 around it; a simulated vegetation statistic is the
    observed NDVI's (``variable`` ``vegetation``) against the real LAI or GPP.

    Returns:
        One row per target: ``statistic, variable, real, low, high, source`` (the reference's
        words) and, per world of ``sources``, its value and ``within_<world>`` (True, False, or
        None where either side is missing).
    """
    def value(source: str, statistic: str, variable: str) -> float | None:
        hit = rows[(rows["source"] == source) & (rows["statistic"] == statistic) & (rows["variable"] == variable)]
        return float(hit["value"].iloc[0]) if len(hit) else None

    out = []
    for t in TARGETS:
        real = t.real if t.real is not None else value("real", t.statistic, t.variable)
        low, high, _ = target_bounds(t, real)
        low, high = (None, None) if not np.isfinite(low) else (low, high)
        sim_var = "vegetation" if t.variable.startswith("vegetation") else t.variable
        row = {"statistic": t.statistic, "variable": t.variable, "real": real, "low": low, "high": high,
               "source": t.source}
        for world in sources:
            v = value(world, t.statistic, sim_var)
            row[world] = v
            row[f"within_{world}"] = None if v is None or low is None else bool(low <= v <= high)
        out.append(row)
    return pd.DataFrame(out)
