"""Checks of a prepared dataset that would otherwise fail only after the teacher has trained.

:func:`check_prepared` runs when a dataset is prepared (:func:`ecodistill.data.prepare`)
and reads at most :data:`MAX_SAMPLE` evenly spaced days of NDVI per labelled split
(~32 MB at 64x128), so it costs seconds at the full profile. It refuses, with one line
naming the file and the fix:

* a time axis that is not daily and gap-free (the history windows count array positions);
* splits that share days (training on validation or test days);
* a labelled split (train, val, test) without any valid NDVI in the NDVI domain -- the
  sample is confirmed by reading the whole split before refusing;
* NDVI outside [-1, 1] (a scale factor not applied);
* NDVI that is constant over the whole domain in a labelled split (:data:`MIN_STD`):
  there is nothing to learn and every R² would be 0/0.

**Evaluation regions** (the biomes of ``prep.biome_names``) that have no valid NDVI, or
constant NDVI (snow and ice), in a labelled split are **excluded** from the per-region
metrics: they are removed from ``prep.biome_names``, so no run writes a ``biome:<name>``
row for them (an R² of a constant is undefined, and a NaN row would be refused only after
training). Constant regions are named in a warning; empty ones are dropped silently, as
:func:`ecodistill.evaluate.per_region` always skipped them (the simulated Earth's
snow-and-ice cells are never observed). The global region stays and is checked above.

Explained in book/generated/02_data.ipynb ("From data to model inputs").
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

MAX_SAMPLE = 1000  # days of NDVI read per split
MIN_STD = 1e-4  # NDVI standard deviation below which a region counts as constant
LABELLED = ("train", "val", "test")


def check_time_axis(index, where: str) -> None:
    """Refuse a time axis that is not consecutive standard days.

    Raises:
        ValueError: naming ``where``, the first gap and the fix.
    """
    if not isinstance(index, pd.DatetimeIndex):  # the file's content, not the caller's type
        raise ValueError(  # noqa: TRY004
            f"{where}: time is not a standard datetime axis ({type(index).__name__}); write the "
            "dataset with ecodistill.data.make_dataset, which converts CF calendars")
    if len(index) < 2:
        return
    step = np.diff(index.values.astype("datetime64[D]").astype(np.int64))
    bad = np.flatnonzero(step != 1)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{where}: time is not consecutive days ({bad.size} gap(s) or repeats, "
                         f"the first between {index[i].date()} and {index[i + 1].date()}); the "
                         "history windows need every day: fill or cut the record before "
                         "make_dataset")


def _sample(days: np.ndarray, limit: int = MAX_SAMPLE) -> np.ndarray:
    if days.size <= limit:
        return days
    return days[np.unique(np.linspace(0, days.size - 1, limit).round().astype(np.int64))]


def _where(prep) -> str:
    return str(prep.ds.encoding.get("source") or f"dataset {prep.dataset_hash}")


def _span(prep, split: str) -> str:
    span = getattr(prep.cfg, f"{split}_years", None)
    return f"{span[0]}-{span[1]}" if span else "?"


def _any_valid(prep, days: np.ndarray) -> bool:
    for t0 in range(0, days.size, 366):
        if np.isfinite(prep.target(days[t0:t0 + 366])).any():
            return True
    return False


def _check_splits(prep, where: str) -> None:
    names = [s for s in prep.days if prep.days[s].size]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = np.intersect1d(prep.days[a], prep.days[b])
            if both.size:
                raise ValueError(f"{where}: splits {a!r} and {b!r} share {both.size} day(s) (first "
                                 f"year {int(prep.year[both[0]])}); make DataConfig.{a}_years and "
                                 f"{b}_years disjoint")


def region_stats(prep, split: str) -> dict[str, tuple[int, float]]:
    """``region -> (valid observations, NDVI standard deviation)`` over sampled days of
    ``split``, for ``global`` and every ``biome:<name>`` of ``prep.biome_names``."""
    y = prep.target(_sample(prep.days[split]))
    out = {}
    regions = {"global": prep.ndvi_domain}
    regions.update({f"biome:{name}": prep.ndvi_domain & (prep.biome == label)
                    for label, name in prep.biome_names.items()})
    for region, cells in regions.items():
        v = y[:, cells]
        v = v[np.isfinite(v)].astype(np.float64)
        out[region] = (int(v.size), float(v.std()) if v.size else float("nan"))
    return out


def check_prepared(prep) -> None:
    """Find what would fail only after training (see the module docstring).

    Args:
        prep: an :class:`ecodistill.data.prepare.Prepared`; ``prep.biome_names`` loses the
            biomes that are empty or constant in a labelled split (with a warning).

    Raises:
        ValueError: one line naming the file, the problem and the fix.
    """
    where = _where(prep)
    check_time_axis(prep.ds.indexes["time"], where)
    _check_splits(prep, where)
    excluded = {}
    for split in LABELLED:
        days = prep.days.get(split, np.zeros(0, np.int64))
        if not days.size:
            continue
        stats = region_stats(prep, split)
        n, std = stats["global"]
        if n == 0 and not _any_valid(prep, days):
            raise ValueError(f"{where}: ndvi has no valid value in the NDVI domain in the {split} "
                             f"years {_span(prep, split)}; check the ndvi variable (all NaN?) and "
                             f"DataConfig.{split}_years")
        y = prep.target(_sample(days, 64))
        bad = np.isfinite(y) & ((y < -1.0) | (y > 1.0))
        if bad.any():
            raise ValueError(f"{where}: ndvi holds {int(bad.sum())} value(s) outside [-1, 1] in "
                             f"the {split} years (max {float(np.nanmax(np.abs(y))):.4g}); apply "
                             "the file's scale factor (read_ndvi does) before make_dataset")
        if n and std < MIN_STD:
            raise ValueError(f"{where}: ndvi is constant ({std:.2g} standard deviation) over the "
                             f"NDVI domain in the {split} years {_span(prep, split)}: nothing to "
                             "learn and R² undefined; check the ndvi variable")
        for region, (count, sd) in stats.items():
            if region != "global" and (count == 0 or sd < MIN_STD) and region not in excluded:
                why = "no valid NDVI" if count == 0 else "constant NDVI"
                excluded[region] = f"{why} in {split}"
    if excluded:
        names = {r.split(":", 1)[1] for r in excluded}
        prep.biome_names = {k: v for k, v in prep.biome_names.items() if v not in names}
        constant = [f"{r} ({why})" for r, why in sorted(excluded.items()) if "constant" in why]
        if constant:
            warnings.warn(f"{where}: evaluation region(s) excluded from per-region metrics: "
                          f"{'; '.join(constant)}", stacklevel=2)
