"""Time axes of real files: the time step, CF calendars, and daily aggregation.

The dataset schema is **daily** on the standard (proleptic Gregorian) calendar. Real files
come hourly, 6-hourly, daily or monthly, on any CF calendar; the rules here are:

* **Time step** -- the smallest spacing of the time coordinate. Steps coarser than a day
  (monthly means, CMIP ``Amon`` files) are refused: the history windows of the inputs are
  counted in days, so monthly data would silently turn 7- and 30-day windows into months.
  A step must divide the day (1, 2, 3, 4, 6, 8, 12 or 24 steps per day), steps must be
  regular, and a daily record must have no missing day.
* **Daily aggregation** (sub-daily data) -- per variable: states and fluxes (K, Pa, m s-1,
  W m-2, kg m-2 s-1, ...) are averaged over the calendar day of their valid time (UTC);
  accumulated *amounts* (ERA5 hourly ``tp`` in m, ``ssrd`` in J m-2) are summed, each
  attributed to the step that ends at its valid time, so a day's total is the steps
  01 UTC .. 00 UTC of the next day (as ECMWF defines ERA5 daily totals). Incomplete days at
  the start or the end of the record are dropped with a warning (to keep the first day of an
  accumulated record, include 00 UTC of the day after the last one); an incomplete day
  inside the record is an error.
* **Calendars** (through ``cftime``) -- ``standard``, ``gregorian``,
  ``proleptic_gregorian``: kept; ``julian``: converted by the instant (the same physical
  day; labels move by 13 days in 1900-2099); ``noleap``/``365_day``: dates kept, and
  Feb 29 of leap years inserted as the mean of Feb 28 and Mar 1 (daily data has no
  missing day); ``all_leap``/``366_day``: dates kept, Feb 29 of non-leap years dropped;
  ``360_day`` and anything else: refused (30-day months have no one-to-one mapping to
  real days; convert such a file explicitly first, e.g. with xarray's
  ``convert_calendar("standard", align_on="year", missing=np.nan)`` and a gap fill).

Explained in book/generated/02_data.ipynb ("Real data").
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

EPOCH = np.datetime64("1970-01-01", "D")
KEEP = ("standard", "gregorian", "proleptic_gregorian")
NOLEAP = ("noleap", "365_day")
ALLLEAP = ("all_leap", "366_day")


def _hours(index, where: str) -> tuple[np.ndarray, str]:
    """Hours since 1970-01-01 in the file's own calendar, and the calendar's name."""
    if isinstance(index, pd.DatetimeIndex):
        hours = (index - pd.Timestamp("1970-01-01")) / pd.Timedelta(hours=1)
        return np.asarray(hours, float), "standard"
    if isinstance(index, xr.CFTimeIndex):
        import cftime

        cal = index.calendar
        hours = cftime.date2num(list(index), "hours since 1970-01-01", calendar=cal)
        return np.asarray(hours, float), cal
    raise ValueError(f"{where}: the time coordinate is not a date (dtype "
                     f"{getattr(index, 'dtype', '?')}); give it CF units such as 'hours since "
                     "1970-01-01' and a calendar attribute")


def _standard_dates(day_numbers: np.ndarray, calendar: str, where: str) -> pd.DatetimeIndex:
    """Standard-calendar dates of day numbers (days since 1970-01-01) of ``calendar``."""
    if calendar in KEEP:
        return pd.DatetimeIndex(EPOCH + day_numbers.astype("timedelta64[D]"))
    import cftime

    if calendar == "julian":  # the same instant: Julian Day numbers are absolute
        dates = cftime.num2date(day_numbers * 24.0, "hours since 1970-01-01", calendar="julian")
        greg = [cftime.datetime.fromordinal(d.toordinal(), calendar="proleptic_gregorian")
                for d in dates]
        return pd.DatetimeIndex([pd.Timestamp(g.year, g.month, g.day) for g in greg])
    if calendar in NOLEAP + ALLLEAP:
        dates = cftime.num2date(day_numbers * 24.0, "hours since 1970-01-01", calendar=calendar)
        out = []
        for d in dates:
            try:
                out.append(pd.Timestamp(d.year, d.month, d.day))
            except ValueError:  # Feb 29 of a non-leap year (all_leap): no such day
                out.append(pd.NaT)
        return pd.DatetimeIndex(out)
    raise ValueError(f"{where}: calendar {calendar!r} has no one-to-one mapping to real days; "
                     "convert the file to the standard calendar first (xarray: "
                     "ds.convert_calendar('standard', align_on='year', missing=np.nan), then fill "
                     "the gaps)")


def to_standard_index(index, where: str) -> pd.DatetimeIndex:
    """The time coordinate as a standard ``DatetimeIndex`` (calendar rules above, no filling)."""
    if isinstance(index, pd.DatetimeIndex):
        return index
    hours, cal = _hours(index, where)
    days = np.floor(hours / 24.0)
    base = _standard_dates(days, cal, where)
    if base.isna().any():
        raise ValueError(f"{where}: dates that do not exist on the standard calendar ({cal}); "
                         "drop them or convert the file first")
    return base + pd.to_timedelta(hours - days * 24.0, unit="h").round("s")


def infer_step(hours: np.ndarray, where: str) -> float:
    """The time step in hours; refuses coarser-than-daily, irregular and non-dividing steps."""
    if hours.size < 2:
        raise ValueError(f"{where}: one time step only, so its resolution is unknown; daily or "
                         "sub-daily data with at least two steps is needed")
    diffs = np.diff(hours)
    if (diffs <= 0).any():
        raise ValueError(f"{where}: time is not strictly increasing; sort it and drop duplicates "
                         "(ds.sortby('time').drop_duplicates('time'))")
    step = float(np.round(diffs.min(), 6))
    if step > 24.0 + 1e-6:
        kind = "monthly" if step >= 24 * 27 else f"{step / 24:g}-daily"
        raise ValueError(f"{where}: time step is {step / 24:g} days ({kind}); daily or sub-daily "
                         "data is needed (the history windows count days): download hourly data or "
                         "daily statistics, not monthly means")
    if abs(24.0 / step - round(24.0 / step)) > 1e-6:
        raise ValueError(f"{where}: time step of {step:g} h does not divide the day; resample it "
                         "to 1, 3 or 6 hours first")
    bad = np.flatnonzero(np.abs(diffs - step) > 1e-6)
    if bad.size and step < 24:
        raise ValueError(f"{where}: irregular time steps ({bad.size} gaps, the first after step "
                         f"{int(bad[0])}); every {step:g} h step must be present: fill or drop the "
                         "gap")
    return step


def _aggregate(ds: xr.Dataset, hours: np.ndarray, step: float, shift: float, how: str,
               where: str) -> tuple[xr.Dataset, np.ndarray, list]:
    """Daily mean/sum of ``ds`` with each step attributed to ``hours - shift``."""
    per_day = round(24.0 / step)
    day = np.floor((hours - shift) / 24.0 + 1e-9).astype(np.int64)
    uniq, first, counts = np.unique(day, return_index=True, return_counts=True)
    full = counts == per_day
    if not full.any():
        raise ValueError(f"{where}: no complete day ({per_day} steps of {step:g} h) in the record")
    inner = np.flatnonzero(~full)
    edge = [i for i in inner if i in (0, len(uniq) - 1)]
    if len(edge) < inner.size:
        bad = [int(uniq[i]) for i in inner if i not in edge][:3]
        raise ValueError(f"{where}: incomplete day(s) inside the record (day numbers {bad} since "
                         f"1970-01-01 have not {per_day} steps); add the missing steps or cut the "
                         "record")
    keep = uniq[full]
    i0 = int(first[np.flatnonzero(full)[0]])
    sub = ds.isel(time=slice(i0, i0 + keep.size * per_day))
    # np.sum/np.mean propagate NaN (no skipna): a missing value must not shrink a daily total
    out = sub.coarsen(time=per_day).reduce(np.sum if how == "sum" else np.mean, keep_attrs=True)
    return out, keep, [int(uniq[i]) for i in edge]


def to_daily(ds: xr.Dataset, amounts=(), where: str = "dataset") -> xr.Dataset:
    """Daily values on the standard calendar (rules in the module docstring).

    Args:
        ds: a dataset with a ``time`` dimension (datetime64 or cftime).
        amounts: names of accumulated amounts (summed; see above); others are averaged.
        where: the file(s), for messages.

    Returns:
        The daily dataset, ``time`` = midnight of each standard-calendar day.

    Raises:
        ValueError: for monthly or coarser data, irregular or non-dividing steps,
            incomplete days inside the record, an unsupported calendar, or accumulated
            amounts at steps other than hourly.
    """
    hours, cal = _hours(ds.indexes["time"], where)
    step = infer_step(hours, where)
    ds = ds.assign_coords(time=np.arange(hours.size))  # positions: cftime cannot be averaged
    amounts = [v for v in amounts if v in ds.data_vars]
    states = [v for v in ds.data_vars if v not in amounts]
    if step >= 24.0 - 1e-6:
        days = np.floor(hours / 24.0 + 1e-9).astype(np.int64)
        return _to_standard(ds, days, cal, where)
    if amounts and step != 1.0:
        raise ValueError(f"{where}: {amounts} are accumulated amounts at {24 / step:g} steps per "
                         "day; ERA5 amounts cover the hour before each step, so all 24 hours are "
                         "needed for a daily total (or use daily statistics, or a mean rate such "
                         "as W m-2)")
    parts, dropped = [], set()
    for names, shift, how in ((states, 0.0, "mean"), (amounts, step, "sum")):
        if names:
            daily, days, edge = _aggregate(ds[names], hours, step, shift, how, where)
            parts.append((daily, days))
            dropped.update(edge)
    common = parts[0][1]
    for _, days in parts[1:]:
        common = np.intersect1d(common, days)
    merged = xr.merge([d.assign_coords(time=days).sel(time=common) for d, days in parts],
                      compat="override", combine_attrs="override")
    lost = sorted(dropped | {int(x) for _, d in parts for x in d if x not in common})
    if lost:
        warnings.warn(f"{where}: dropped {len(lost)} incomplete day(s) at the record's edges (day "
                      f"numbers {lost[:4]} since 1970-01-01)", stacklevel=2)
    return _to_standard(merged.assign_coords(time=np.arange(common.size)), common, cal, where)


def _to_standard(ds: xr.Dataset, days: np.ndarray, cal: str, where: str) -> xr.Dataset:
    """Label positional days with standard dates; noleap: insert Feb 29; all_leap: drop it."""
    dates = _standard_dates(days.astype(float), cal, where)
    ok = ~dates.isna()
    ds = ds.isel(time=np.flatnonzero(ok)).assign_coords(time=dates[ok])
    full = pd.date_range(dates[ok].min(), dates[ok].max(), freq="D")
    missing = full.difference(dates[ok])
    if missing.empty:
        return ds
    if cal in NOLEAP and ((missing.month == 2) & (missing.day == 29)).all():
        filled = ds.reindex(time=full)
        mid = 0.5 * (filled.shift(time=1) + filled.shift(time=-1))
        new = xr.DataArray(full.isin(missing), dims="time", coords={"time": full})
        out = filled.where(~new, mid)
        for name in out.data_vars:
            out[name].attrs = dict(ds[name].attrs)
        return out.assign_attrs(ds.attrs, feb29="inserted: mean of Feb 28 and Mar 1")
    raise ValueError(f"{where}: {missing.size} missing day(s) in daily data (first "
                     f"{missing[0].date()}); the history windows need every day: fill them or cut "
                     "the record")


def require_daily(ds: xr.Dataset, where: str) -> xr.Dataset:
    """``ds`` with a standard daily ``time`` (midnights), else a one-line error.

    Converts CF calendars as :func:`to_daily` does; refuses sub-daily data (aggregate it
    with :func:`to_daily` first), coarser data and missing days.
    """
    hours, cal = _hours(ds.indexes["time"], where)
    step = infer_step(hours, where)
    if step < 24.0 - 1e-6:
        raise ValueError(f"{where}: time step is {step:g} h; aggregate to daily first "
                         "(ecodistill.data.readers.read_era5 does, or timeaxis.to_daily)")
    days = np.floor(hours / 24.0 + 1e-9).astype(np.int64)
    return _to_standard(ds.assign_coords(time=np.arange(days.size)), days, cal, where)
