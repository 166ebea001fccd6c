r"""Splits, normalisation, masks, climatology and model inputs of a dataset.

:func:`prepare` turns a schema dataset (simulated or real) into a :class:`Prepared`:

* **splits by year**: ``train`` / ``val`` / ``test`` (labelled) and ``extra`` (weather only);
* **inputs** (identical for teacher and students), channel order :attr:`Prepared.input_channels`:
  today's dynamic variables of the input set ``cfg.inputs`` (ERA5 names), trailing means of each over ``cfg.history_windows`` days
  (``t2m@30d`` = mean of the last 30 days including today), static maps (land fraction,
  orography, NDVI max/min, :math:`\sin\varphi`) and :math:`\sin, \cos` of the day of year.
  Precipitation enters as :math:`\log(1 + tp/1\,\mathrm{mm})`. Every channel is
  standardised with the mean and standard deviation of the **training years only**;
  NaN becomes 0 after standardisation;
* **masks**: land (land fraction >= 0.5), the NDVI domain (land with real NDVI extremes),
  and per day the valid observations;
* **latitude weights** :math:`\cos\varphi`, normalised to mean 1 over the NDVI domain;
* **climatology**: the per-cell daily NDVI climatology of the training years (366 days),
  smoothed by a circular 31-day window, for anomaly metrics.

Trailing means come from cumulative sums (:mod:`ecodistill.data.history`: one pass over the
data, cached beside it as memory-mapped ``.npy``), so a day's inputs cost two reads per
variable and window whatever the window, and decades never sit in memory.

Explained in book/generated/02_data.ipynb ("From data to model inputs").
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..config import DataConfig
from ..utils import atomic_write_json
from .checks import check_prepared
from .history import (
    build_cumsums,
    channel_names,
    cum_dir,
    ema_path,
    history_channels,
    open_history_state,
    transform,
)
from .identity import content_key
from .schema import INPUT_SETS, validate
from .static import BIOME_NAMES
from .tasks import Forecast

STATIC_CHANNELS = ("land_fraction", "orography", "ndvi_max", "ndvi_min", "sin_lat")
CALENDAR_CHANNELS = ("sin_doy", "cos_doy")
SPLITS = ("train", "val", "test", "extra")
TARGETS = ("ndvi", "ndvi_true", "ndvi_bayes")  # the observation, then the simulator's own (controls, ceiling)
CLIM_WINDOW = 31  # days, circular smoothing of the daily climatology
CHUNK = 366  # days per streamed block


class _Reader:
    """Fast day reads of one dataset's ``(time, lat, lon)`` variables (per process)."""

    def __init__(self, ds: xr.Dataset) -> None:
        self.ds = ds
        self.source = ds.encoding.get("source")
        self._pid, self._h5 = None, None

    def _h5file(self):
        if self._pid != os.getpid():  # h5py handles do not survive a fork (loader workers)
            import h5py

            self._h5, self._pid = h5py.File(self.source, "r"), os.getpid()
        return self._h5

    @staticmethod
    def _h5read(dset, days: np.ndarray) -> np.ndarray:
        """Day-chunked, unfiltered float32 variables (what this package writes): raw chunk
        reads, ~8x faster than h5py fancy indexing; anything else: ordinary indexing."""
        if dset.chunks == (1,) + dset.shape[1:] and not dset.compression and dset.dtype == np.float32:
            read = dset.id.read_direct_chunk
            return np.stack([np.frombuffer(read((int(t), 0, 0))[1], "<f4").reshape(dset.shape[1:])
                             for t in days])
        return np.asarray(dset[days], dtype=np.float32)

    def read(self, var: str, days: np.ndarray) -> np.ndarray:
        """``(len(days), lat, lon)`` float32 for sorted, unique day indices."""
        data = self.ds[var].variable._data
        if isinstance(data, np.ndarray):
            return np.asarray(data[days], dtype=np.float32)
        enc = self.ds[var].encoding
        if self.source and str(self.source).endswith(".nc") and not ({"scale_factor", "add_offset"} & set(enc)):
            try:
                return self._h5read(self._h5file()[var], days)
            except (ImportError, OSError, TypeError, KeyError):
                pass
        return self.ds[var].isel(time=days).values.astype(np.float32)


@dataclass
class Prepared:
    """A dataset ready for training and evaluation (see :func:`prepare`).

    Attributes:
        ds: the (lazily opened) dataset.
        cfg: its :class:`~ecodistill.config.DataConfig`.
        patch_size: the model patch the grid was checked against.
        weather_vars: the weather channels (ERA5 short names), also the forecast targets.
        input_channels: names of the ``c_in`` channels of ``x``.
        days: split -> sorted day indices (``train``, ``val``, ``test``, ``extra``).
        mean, std: ``(c_in,)`` standardisation of every input channel: dynamic channels over
            the training years, static maps over all cells, calendar channels unscaled (0, 1).
        land_mask, ndvi_domain: ``(h, w)`` bool.
        lat_weights: ``(h, w)`` float32, cos(lat) with mean 1 over the NDVI domain.
        biome: ``(h, w)`` int16 biome group; biome_names: label -> name (water left out).
        clim: ``(366, h, w)`` float32 NDVI climatology of the training years (NaN off-domain).
        dataset_hash: the dataset's content hash (goes into every result row).
    """

    ds: xr.Dataset
    cfg: DataConfig
    patch_size: int
    weather_vars: tuple[str, ...]
    input_channels: tuple[str, ...]
    days: dict[str, np.ndarray]
    mean: np.ndarray
    std: np.ndarray
    land_mask: np.ndarray
    ndvi_domain: np.ndarray
    lat_weights: np.ndarray
    biome: np.ndarray
    biome_names: dict[int, str]
    clim: np.ndarray
    dataset_hash: str
    doy: np.ndarray
    year: np.ndarray
    month: np.ndarray
    cum_dir: Path
    offsets: dict[str, np.ndarray] = field(repr=False)
    static_x: np.ndarray = field(repr=False)
    reader: _Reader = field(repr=False)

    @property
    def lat(self) -> np.ndarray:
        return self.ds["lat"].values

    @property
    def lon(self) -> np.ndarray:
        return self.ds["lon"].values

    @property
    def n_time(self) -> int:
        return self.doy.size

    def has_split(self, split: str) -> bool:
        """True when ``split`` holds at least one day."""
        return split in self.days and self.days[split].size > 0

    def split_days(self, split: str, unlabeled: bool = False, task: str | Forecast = "ndvi") -> np.ndarray:
        """Day indices of ``split``; with ``unlabeled`` the training split is preceded by the
        ``extra`` days (the order teacher predictions must follow). A forecast task
        (``"forecast"``: every input tomorrow, or a :class:`~ecodistill.data.tasks.Forecast`)
        keeps only days whose targets lie in the same set (no target leaks across splits)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: choose one of {SPLITS}")
        days = self.days[split]
        if unlabeled and split == "train" and self.has_split("extra"):
            days = np.concatenate([self.days["extra"], days])
        if task != "ndvi":
            days = days[np.isin(days + self.forecast_task(task).max_lead, days)]
        return days

    def forecast_task(self, task: str | Forecast) -> Forecast:
        """``task`` as a :class:`~ecodistill.data.tasks.Forecast` (``"forecast"``: every
        input variable tomorrow), its variables checked against :attr:`weather_vars`."""
        if isinstance(task, str):
            if task != "forecast":
                raise ValueError(f"unknown task {task!r}: use 'ndvi', 'forecast' or a Forecast")
            return Forecast.next_day(self.weather_vars)
        missing = [v for v in task.inputs + task.target_names if v not in self.weather_vars]
        if missing:
            raise ValueError(f"the forecast needs {missing}, which are not among the inputs {self.weather_vars}; "
                             "change DataConfig.inputs or the pre-training variant")
        return task

    def cumsum(self, var: str) -> np.ndarray:
        """``(n_time + 1, h, w)`` cumulative sums of ``var - offset`` (memory-mapped, or in
        memory when prepared with ``in_memory=True``)."""
        cache = self.__dict__.setdefault("_cums", {})
        if var not in cache:
            cache[var] = np.load(self.cum_dir / f"{var}.npy", mmap_mode="r")
        return cache[var]

    def ema(self, var: str, tau: float) -> np.ndarray:
        """``(n_time, h, w)`` leaky integral of ``var`` (memory-mapped, or in memory)."""
        cache = self.__dict__.setdefault("_emas", {})
        if (var, tau) not in cache:
            cache[(var, tau)] = np.load(ema_path(self.cum_dir, var, tau), mmap_mode="r")
        return cache[(var, tau)]

    @property
    def n_dynamic(self) -> int:
        """Number of time-varying input channels (today's variables and their history)."""
        return len(self.input_channels) - len(STATIC_CHANNELS) - len(CALENDAR_CHANNELS)

    @property
    def clim_filled(self) -> np.ndarray:
        """``(366, h, w)`` climatology with 0 off the NDVI domain (the batches' ``clim``)."""
        if "_clim_filled" not in self.__dict__:
            self.__dict__["_clim_filled"] = np.nan_to_num(self.clim)
        return self.__dict__["_clim_filled"]

    def weather(self, days: np.ndarray, names: tuple[str, ...] | None = None) -> np.ndarray:
        """``(n, len(names), h, w)`` standardised values of the dynamic variables ``names``
        (default: all of :attr:`weather_vars`) on sorted days: forecast inputs and targets."""
        names = self.weather_vars if names is None else tuple(names)
        out = np.empty((len(days), len(names)) + self.land_mask.shape, np.float32)
        self._weather_into(out, np.asarray(days, dtype=np.int64), names)
        return out

    def _weather_into(self, out: np.ndarray, days: np.ndarray, names: tuple[str, ...] | None = None) -> None:
        for j, v in enumerate(self.weather_vars if names is None else names):
            i = self.weather_vars.index(v)  # today's channel of v holds its statistics
            out[:, j] = (transform(v, self.reader.read(v, days)) - self.mean[i]) / self.std[i]

    def dynamic_inputs(self, days: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``(n, n_dynamic, h, w)`` float32: today's weather, then its trailing means per window,
        standardised (the first :attr:`n_dynamic` channels of :meth:`inputs`)."""
        days = np.asarray(days, dtype=np.int64)
        if out is None:
            out = np.empty((days.size, self.n_dynamic) + self.land_mask.shape, np.float32)
        self._weather_into(out, days)
        k = len(self.weather_vars)
        for raw in history_channels(self, days):
            out[:, k] = (raw - self.mean[k]) / self.std[k]
            k += 1
        return out

    def calendar(self, days: np.ndarray) -> np.ndarray:
        """``(n, 2)`` float32 sine and cosine of the day of year."""
        ang = 2 * np.pi * (self.doy[np.asarray(days, dtype=np.int64)] - 1) / 365.25
        return np.stack([np.sin(ang), np.cos(ang)], axis=1).astype(np.float32)

    def inputs(self, days: np.ndarray) -> np.ndarray:
        """``(n, c_in, h, w)`` float32 standardised inputs of sorted day indices.

        Every part is finite by construction (weather is checked when the cumulative sums
        are built, static maps are filled), so no NaN pass is needed.
        """
        days = np.asarray(days, dtype=np.int64)
        x = np.empty((days.size, len(self.input_channels)) + self.land_mask.shape, np.float32)
        k = self.n_dynamic
        self.dynamic_inputs(days, out=x[:, :k])
        x[:, k:k + len(self.static_x)] = self.static_x
        x[:, k + len(self.static_x):] = self.calendar(days)[:, :, None, None]
        return x

    def target(self, days: np.ndarray, name: str = "ndvi", labelled_only: bool = True) -> np.ndarray:
        """``(n, h, w)`` float32 NDVI: observed (``ndvi``), or the simulator's noise-free
        (``ndvi_true``) or expected observation (``ndvi_bayes``); NaN off the NDVI domain,
        where missing, and -- with ``labelled_only`` -- in the unlabelled extra years."""
        if name not in TARGETS:
            raise ValueError(f"target {name!r} unknown: use one of {TARGETS}")
        if name not in self.ds:
            raise ValueError(f"dataset has no {name!r}; {TARGETS[1:]} exist only in simulated data")
        y = self.reader.read(name, days)
        if labelled_only:
            y[np.isin(days, self.days["extra"])] = np.nan  # extra years never carry labels
        return np.where(self.ndvi_domain, y, np.nan).astype(np.float32)


def _split_days(year: np.ndarray, cfg: DataConfig) -> dict[str, np.ndarray]:
    spans = {"train": cfg.train_years, "val": cfg.val_years, "test": cfg.test_years,
             "extra": cfg.extra_years}
    out = {}
    for name, span in spans.items():
        out[name] = (np.flatnonzero((year >= span[0]) & (year <= span[1])) if span is not None
                     else np.zeros(0, np.int64))
    for name in ("train", "val", "test"):
        if out[name].size == 0:
            raise ValueError(f"split {name!r} ({spans[name][0]}-{spans[name][1]}) is empty: the dataset "
                             f"holds {year.min()}-{year.max()}; change DataConfig.{name}_years or "
                             "rebuild the dataset for these years")
    return out


def _check_patch(nlat: int, nlon: int, patch: int) -> None:
    if patch < 1 or nlat % patch or nlon % patch:
        ok = [p for p in range(1, min(nlat, nlon) + 1) if nlat % p == 0 and nlon % p == 0]
        raise ValueError(f"grid {nlat}x{nlon} is not divisible by patch_size={patch}; patch sizes that "
                         f"work: {ok} (or change DataConfig.nlat/nlon)")


def _static_inputs(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(n_static, h, w)`` standardised static channels (statistics over all cells, NaN -> 0),
    with their means and standard deviations."""
    lat = ds["lat"].values.astype(np.float64)
    maps = [ds[n].values.astype(np.float64) for n in STATIC_CHANNELS[:-1]]
    maps.append(np.broadcast_to(np.sin(np.deg2rad(lat))[:, None], maps[0].shape))
    mean = np.array([np.nanmean(m) for m in maps])
    std = np.array([max(np.nanstd(m), 1e-6) for m in maps])
    out = [(m - mu) / sd for m, mu, sd in zip(maps, mean, std)]
    return np.nan_to_num(np.stack(out)).astype(np.float32), mean, std


def _channel_stats(prep: Prepared, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the dynamic channels over ``days`` (run with identity scaling)."""
    n_dyn = prep.n_dynamic
    s = np.zeros(n_dyn)
    s2 = np.zeros(n_dyn)
    count = 0
    for t0 in range(0, days.size, 64):
        x = prep.dynamic_inputs(days[t0:t0 + 64]).astype(np.float64)
        s += x.sum(axis=(0, 2, 3))
        s2 += (x**2).sum(axis=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = s / count
    std = np.sqrt(np.maximum(s2 / count - mean**2, 0.0))
    return mean, np.maximum(std, 1e-6)


def _climatology(prep: Prepared, days: np.ndarray) -> np.ndarray:
    r"""``(366, h, w)`` smoothed daily NDVI climatology: :math:`c_d = \sum_{|k|\le15} S_{d+k} /
    \sum_{|k|\le15} N_{d+k}` (circular), with S, N the sum and count of valid values by day of
    year; windows without any observation take the cell's mean (else its NDVI minimum)."""
    shape = prep.land_mask.shape
    total = np.zeros((366,) + shape)
    count = np.zeros((366,) + shape)
    for t0 in range(0, days.size, CHUNK):
        d = days[t0:t0 + CHUNK]
        y = prep.target(d).astype(np.float64)
        ok = np.isfinite(y)
        np.add.at(total, prep.doy[d] - 1, np.where(ok, y, 0.0))
        np.add.at(count, prep.doy[d] - 1, ok)
    half = CLIM_WINDOW // 2
    idx = (np.arange(366)[:, None] + np.arange(-half, half + 1)[None, :]) % 366
    s, n = total[idx].sum(1), count[idx].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        clim = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        cell = np.where(count.sum(0) > 0, total.sum(0) / np.maximum(count.sum(0), 1), np.nan)
    # Windows never observed (snow, persistent cloud): the cell's mean, else its annual minimum.
    fill = np.where(np.isfinite(cell), cell, prep.ds["ndvi_min"].values)
    clim = np.where(np.isfinite(clim), clim, fill[None])
    return np.where(prep.ndvi_domain, clim, np.nan).astype(np.float32)


def input_vars(cfg: DataConfig) -> tuple[str, ...]:
    """The dynamic input variables of ``cfg.inputs`` (:data:`ecodistill.data.schema.INPUT_SETS`).

    Raises:
        ValueError: for an unknown input set (the message lists them).
    """
    if cfg.inputs not in INPUT_SETS:
        raise ValueError(f"DataConfig.inputs={cfg.inputs!r} unknown: choose one of {sorted(INPUT_SETS)} "
                         "(anchor: the atmosphere only, as FourCastNet; era5: plus the land state)")
    return INPUT_SETS[cfg.inputs]


def input_channel_names(cfg: DataConfig, weather_vars: tuple[str, ...] | None = None) -> list[str]:
    """Names of the ``c_in`` model input channels of ``cfg``, in order (no data needed): today's
    dynamic variables, their trailing means per history window, the static maps, the calendar."""
    names = input_vars(cfg) if weather_vars is None else tuple(weather_vars)
    history = channel_names(names, cfg.history_windows, cfg.history_stack, cfg.history_ema, cfg.ndvi_latency)
    return list(names) + history + list(STATIC_CHANNELS) + list(CALENDAR_CHANNELS)


def prepare(ds: xr.Dataset, cfg: DataConfig, patch_size: int, weather_vars=None,
            in_memory: bool = False) -> Prepared:
    """Splits, standardisation, masks, weights, climatology and inputs of ``ds``.

    Args:
        ds: a schema dataset (:func:`ecodistill.data.load_dataset` or the real readers).
        cfg: the years and history windows.
        patch_size: the model's patch size; the grid must be divisible by it.
        weather_vars: the dynamic channels to use (default: the input set ``cfg.inputs``).
        in_memory: keep the cumulative sums in memory instead of memory-mapped files in the
            cache (the GPU run: no gigabytes written to disk for one command).

    Raises:
        ValueError: for an empty split, a grid not divisible by ``patch_size`` (the message
            lists the sizes that work), a schema violation or non-finite inputs.
    """
    weather_vars = input_vars(cfg) if weather_vars is None else tuple(weather_vars)
    validate(ds, weather_vars)
    nlat, nlon = ds.sizes["lat"], ds.sizes["lon"]
    _check_patch(nlat, nlon, patch_size)
    time = ds.indexes["time"]
    year = np.asarray(time.year)
    days = _split_days(year, cfg)
    digest = str(ds.attrs.get("dataset_hash", ""))
    if not digest:
        raise ValueError("dataset has no attrs['dataset_hash']: set one that changes with the data "
                         "(load_dataset and readers.make_dataset do); it names the cached sums and stats")
    channels = input_channel_names(cfg, weather_vars)
    domain = ds["ndvi_domain"].values.astype(bool)
    if not domain.any():
        raise ValueError("the NDVI domain is empty: no land cell has NDVI extremes (check the static maps)")
    lw = np.broadcast_to(np.cos(np.deg2rad(ds["lat"].values.astype(np.float64)))[:, None], domain.shape)
    biome = ds["biome"].values.astype(np.int16)
    reader = _Reader(ds)
    # caches follow every value (issue 20): keyed by a hash of the data given, not by its label
    cum = cum_dir(digest if in_memory else f"{digest}-{content_key(ds)}")
    offsets_file = cum / "offsets.npz"
    names = tuple(dict.fromkeys(weather_vars))
    cums: dict[str, np.ndarray] = {}
    if not in_memory and offsets_file.is_file() and all((cum / f"{v}.npy").is_file() for v in names):
        with np.load(offsets_file) as z:
            offsets = {v: z[v] for v in z.files}
    else:
        cums, offsets = build_cumsums(reader, names, len(time), (nlat, nlon), None if in_memory else cum)
    n_dyn = len(channels) - len(STATIC_CHANNELS) - len(CALENDAR_CHANNELS)
    static_x, static_mean, static_std = _static_inputs(ds)
    prep = Prepared(
        ds=ds, cfg=cfg, patch_size=patch_size, weather_vars=tuple(weather_vars), input_channels=tuple(channels),
        days=days, mean=np.zeros(len(channels), np.float32), std=np.ones(len(channels), np.float32),
        land_mask=ds["land_mask"].values.astype(bool), ndvi_domain=domain,
        lat_weights=(lw / lw[domain].mean()).astype(np.float32), biome=biome,
        biome_names={i: n for i, n in enumerate(BIOME_NAMES) if i > 0 and (biome == i).any()},
        clim=np.zeros(0), dataset_hash=digest, doy=np.asarray(time.day_of_year), year=year,
        month=np.asarray(time.month), cum_dir=cum, offsets=offsets, static_x=static_x, reader=reader)
    prep.__dict__["_cums"] = cums
    open_history_state(prep, in_memory)
    key = hashlib.sha256(json.dumps([digest, cfg.train_years, cfg.extra_years, list(cfg.history_windows),
                                     channels], default=list).encode()).hexdigest()[:12]
    stats_file = cum / f"stats-{key}.npz"
    if stats_file.is_file() and not in_memory:
        with np.load(stats_file) as z:
            mean, std, prep.clim = z["mean"], z["std"], z["clim"]
    else:
        stride = max(1, days["train"].size // 2000)  # statistics need not touch every day
        mean, std = _channel_stats(prep, days["train"][::stride])
        prep.clim = _climatology(prep, days["train"])
        cum.mkdir(parents=True, exist_ok=True)
        tmp = cum / f".stats-{key}.{os.getpid()}.npz"
        np.savez(tmp, mean=mean, std=std, clim=prep.clim)
        os.replace(tmp, stats_file)
        atomic_write_json(cum / f"stats-{key}.json", {"channels": channels, "dataset_hash": digest,
                                                      "train_years": cfg.train_years})
    prep.mean[:n_dyn], prep.std[:n_dyn] = mean, std
    # Static channels were scaled over all cells (stored for reference; inputs use static_x).
    prep.mean[n_dyn:n_dyn + len(STATIC_CHANNELS)] = static_mean
    prep.std[n_dyn:n_dyn + len(STATIC_CHANNELS)] = static_std
    check_prepared(prep)  # all-NaN targets, constant regions: refused or dropped before any training
    return prep
