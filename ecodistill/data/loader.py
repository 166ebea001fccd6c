"""PyTorch access to a prepared dataset: day samples streamed from the file, and whole splits.

A sample is one day ``t`` of a split, read lazily (memory maps or HDF5 reads of that day
plus two cumulative-sum reads per trailing window), so no split is ever loaded whole.
Loaders yield :class:`~ecodistill.data.batch.Batch` objects (the batch contract, with
shapes and NaN rules, is in :mod:`ecodistill.data.batch`); :func:`split_arrays` gives whole
splits as NumPy arrays for evaluation and baselines. :mod:`ecodistill.data.resident` holds
a whole dataset on a device instead and yields the same batches in the same order.

Explained in book/generated/02_data.ipynb ("From data to model inputs").
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .batch import Batch
from .prepare import Prepared
from .tasks import Forecast


class DayDataset(Dataset):
    """The days of one split as samples (see the module docstring for the keys).

    Args:
        prep: the prepared dataset.
        split: ``train``, ``val``, ``test`` or ``extra``.
        task: ``ndvi`` (inputs -> NDVI), ``forecast`` (today's dynamic variables ->
            tomorrow's) or a :class:`~ecodistill.data.tasks.Forecast` (pre-training variants).
        teacher_pred: teacher predictions aligned with :meth:`Prepared.split_days` of the
            same ``split``/``unlabeled`` (``(n_days, [1,] h, w)``; all training years, also
            with ``label_years``), or with the whole time axis (``(n_time, [1,] h, w)``).
        unlabeled: add the ``extra`` years before the training days (no truth there) and
            return ``mask_teacher``.
        label_years: keep labels only for the last N training years (None: all); the
            other training years are dropped, or kept unlabelled with ``unlabeled``.
        target: ``ndvi`` (observed) or ``ndvi_true`` (noise-free simulator control).
        weather_only: ``x`` holds the forecast's inputs only (today's fields; pre-training).
    """

    def __init__(self, prep: Prepared, split: str, task: str | Forecast = "ndvi", teacher_pred=None,
                 unlabeled: bool = False, label_years: int | None = None, target: str = "ndvi",
                 weather_only: bool = False) -> None:
        self.prep, self.target, self.unlabeled = prep, target, unlabeled
        self.forecast = None if task == "ndvi" else prep.forecast_task(task)
        self.task = "ndvi" if self.forecast is None else "forecast"
        self.weather_only = weather_only
        days = prep.split_days(split, unlabeled=unlabeled, task=task)
        self.days = days
        teacher = self._align(teacher_pred)  # aligned with the split before any label-year filter
        labelled = ~np.isin(days, prep.days["extra"])
        if label_years is not None and split == "train":
            end = prep.cfg.train_years[1]
            n_years = end - prep.cfg.train_years[0] + 1
            if not 1 <= label_years <= n_years:
                raise ValueError(f"label_years={label_years}: the training years {prep.cfg.train_years} hold "
                                 f"{n_years}; choose 1..{n_years} (or None for all)")
            keep = prep.year[days] > end - label_years
            if unlabeled:
                labelled &= keep
            else:
                days, labelled = days[keep], labelled[keep]
                teacher = teacher[keep] if teacher is not None else None
        if days.size == 0:
            raise ValueError(f"split {split!r} has no days for task={task!r}; check DataConfig years")
        self.days, self.labelled, self.teacher = days, labelled, teacher

    def _align(self, pred):
        if pred is None:
            return None
        pred = np.asarray(pred)
        if pred.ndim == 4 and pred.shape[1] == 1:
            pred = pred[:, 0]
        grid = self.prep.land_mask.shape
        if pred.ndim != 3 or pred.shape[1:] != grid:
            raise ValueError(f"teacher_pred has shape {pred.shape}; need (n_days, 1, {grid[0]}, {grid[1]})")
        if pred.shape[0] == self.days.size:
            return pred
        if pred.shape[0] == self.prep.n_time:
            return pred[self.days]
        raise ValueError(f"teacher_pred holds {pred.shape[0]} days but the split has {self.days.size} "
                         f"(and the dataset {self.prep.n_time}); predict the same split with the same "
                         "unlabeled setting (extra days come first)")

    def __len__(self) -> int:
        return int(self.days.size)

    def batch(self, pos: np.ndarray, with_x: bool = True) -> dict[str, np.ndarray]:
        """NumPy arrays of the samples at positions ``pos`` (batched, any order); without
        ``with_x`` the inputs are not assembled (targets and masks only)."""
        pos = np.asarray(pos, dtype=np.int64)
        days = self.days[pos]
        order = np.argsort(days)
        back = np.argsort(order)
        sd = days[order]
        prep = self.prep
        out = {"t": days}
        if with_x:
            out["x"] = (prep.weather(sd, self.forecast.inputs) if self.weather_only else prep.inputs(sd))[back]
        if self.forecast is not None:
            out["y"] = self.forecast_targets(sd)[back]
            out["mask"] = np.ones((pos.size, 1) + prep.land_mask.shape, bool)
        else:
            y = prep.target(sd, self.target)[back]
            out["mask"] = (np.isfinite(y) & self.labelled[pos][:, None, None])[:, None]
            out["y"] = np.nan_to_num(y)[:, None]
            out["clim"] = prep.clim_filled[prep.doy[days] - 1][:, None]
        if self.teacher is not None:
            out["teacher_pred"] = np.nan_to_num(self.teacher[pos]).astype(np.float32)[:, None]
        if self.unlabeled or self.teacher is not None:
            out["mask_teacher"] = np.broadcast_to(prep.ndvi_domain, (pos.size, 1) + prep.ndvi_domain.shape).copy()
        return out

    def forecast_targets(self, days: np.ndarray) -> np.ndarray:
        """``(n, n_targets, h, w)``: each target variable of the forecast at its lead after
        each of the sorted ``days``."""
        prep, targets = self.prep, self.forecast.targets
        out = np.empty((days.size, len(targets)) + prep.land_mask.shape, np.float32)
        for lead in sorted({lead for _, lead in targets}):
            slots = [j for j, (_, lag) in enumerate(targets) if lag == lead]
            out[:, slots] = prep.weather(days + lead, tuple(targets[j][0] for j in slots))
        return out

    def __getitem__(self, i) -> Batch:
        """One sample (``i`` an int, batch size 1) or a ready batch (``i`` a list of positions,
        as :class:`EpochBatchSampler` yields them: read at once, in sorted day order)."""
        pos = np.asarray([i] if np.isscalar(i) else i, dtype=np.int64)
        return Batch(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.batch(pos).items()})


class EpochBatchSampler(Sampler):
    """Batches of positions ``0 .. n-1`` whose order depends only on ``(seed, epoch)``.

    Without ``steps_per_epoch``, epoch ``e`` is one pass over a permutation drawn from
    ``(seed, e)`` (``arange`` without ``shuffle``), ending in a partial batch unless
    ``drop_last``. With ``steps_per_epoch``, batches are cut from an endless stream of passes
    (pass ``p`` drawn from ``(seed, p)``) and epoch ``e`` is the stream's batches
    ``e * steps_per_epoch`` to ``(e + 1) * steps_per_epoch - 1``: every epoch holds the same
    number of full batches whatever ``n``, so a run on one labelled year takes as many
    optimizer steps as a run on all of them, and every sample is seen equally often.

    Under data parallelism (``world`` ranks) every global batch of ``batch_size`` positions
    is split into ``world`` contiguous shards and rank ``rank`` yields its own: ``world``
    ranks see together exactly the batches one process would.

    :meth:`set_epoch` fixes the epoch (the training loop calls it, so a resumed run replays
    the same order); without it every new iteration moves to the next epoch.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, drop_last: bool = False,
                 steps_per_epoch: int | None = None, rank: int = 0, world: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: must be at least 1")
        if n < 1:
            raise ValueError("EpochBatchSampler: no samples (empty split?)")
        if steps_per_epoch is not None and steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch={steps_per_epoch}: must be at least 1 (or None for one pass)")
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside 0..{world - 1}")
        if world > 1 and steps_per_epoch is not None and batch_size % world:
            raise ValueError(f"batch_size={batch_size} is not divisible by {world} ranks: choose a multiple "
                             f"of {world} (each rank takes batch_size / {world} samples per step)")
        self.n, self.batch_size, self.shuffle, self.seed, self.drop_last = n, batch_size, shuffle, seed, drop_last
        self.steps_per_epoch, self.rank, self.world = steps_per_epoch, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _pass(self, p: int) -> np.ndarray:
        return np.random.default_rng([self.seed, p]).permutation(self.n) if self.shuffle else np.arange(self.n)

    def _global_batches(self, epoch: int) -> list[np.ndarray]:
        size = self.batch_size
        if self.steps_per_epoch is None:
            order = self._pass(epoch)
            stop = self.n - self.n % size if self.drop_last else self.n
            return [order[b0:b0 + size] for b0 in range(0, stop, size)]
        lo = epoch * self.steps_per_epoch * size
        hi = lo + self.steps_per_epoch * size
        stream = np.concatenate([self._pass(p) for p in range(lo // self.n, (hi - 1) // self.n + 1)])
        stream = stream[lo - (lo // self.n) * self.n:][:hi - lo]
        return list(stream.reshape(self.steps_per_epoch, size))

    def __iter__(self):
        batches = self._global_batches(self.epoch)
        self.epoch += 1
        for batch in batches:
            shard = np.array_split(batch, self.world)[self.rank] if self.world > 1 else batch
            if shard.size:
                yield shard.tolist()

    def __len__(self) -> int:
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)


def make_loader(prep: Prepared, split: str, batch_size: int, shuffle: bool = False, seed: int = 0,
                task: str | Forecast = "ndvi", teacher_pred=None, unlabeled: bool = False, num_workers: int = 0,
                label_years: int | None = None, target: str = "ndvi", drop_last: bool = False,
                steps_per_epoch: int | None = None, rank: int = 0, world: int = 1,
                weather_only: bool = False) -> DataLoader:
    """A DataLoader of :class:`~ecodistill.data.batch.Batch` es over the days of ``split``;
    the order depends only on ``seed`` and the epoch (``loader.sampler.set_epoch``), also
    with ``num_workers > 0``.

    See :class:`DayDataset` for the data arguments and :class:`EpochBatchSampler` for
    ``steps_per_epoch`` (fixed-length epochs) and ``rank``/``world`` (data parallelism).
    """
    ds = DayDataset(prep, split, task=task, teacher_pred=teacher_pred, unlabeled=unlabeled,
                    label_years=label_years, target=target, weather_only=weather_only)
    sampler = EpochBatchSampler(len(ds), batch_size, shuffle, int(seed), drop_last, steps_per_epoch, rank, world)
    # batch_size=None: each sampler item is a whole batch, read at once by DayDataset
    return DataLoader(ds, batch_size=None, sampler=sampler, num_workers=num_workers,
                      pin_memory=False, collate_fn=_identity)


def _identity(batch: Batch) -> Batch:
    return batch


def split_arrays(prep: Prepared, split: str, task: str = "ndvi", with_x: bool = False, unlabeled: bool = False,
                 target: str = "ndvi", stride: int = 1, chunk: int = 64) -> dict[str, np.ndarray]:
    """A whole split as NumPy arrays, for evaluation and baselines.

    Args:
        with_x: also return the inputs ``x`` (``(n, c_in, h, w)``; large at full scale).
        stride: take every ``stride``-th day (baselines fitting on a subsample).

    Returns:
        ``y`` (n, 1, h, w) (NaN -> 0), ``mask`` (n, 1, h, w) bool, ``clim`` (n, 1, h, w)
        [ndvi task], ``t`` (n,) day index, ``month`` (n,), ``doy`` (n,) and ``x`` with ``with_x``.
    """
    ds = DayDataset(prep, split, task=task, unlabeled=unlabeled, target=target)
    pos = np.arange(0, len(ds), stride)
    parts: dict[str, list] = {}
    for p0 in range(0, pos.size, chunk):
        for k, v in ds.batch(pos[p0:p0 + chunk], with_x=with_x).items():
            parts.setdefault(k, []).append(v)
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["month"] = prep.month[out["t"]]
    out["doy"] = prep.doy[out["t"]]
    return out
