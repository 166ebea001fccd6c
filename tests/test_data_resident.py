"""The device-resident data path gives the streaming loader's batches, bit for bit, in the same
order; fixed-length epochs and rank shards of the batch sampler."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ecodistill.config import DataConfig
from ecodistill.data import DayDataset, EpochBatchSampler, load_dataset, make_loader, prepare
from ecodistill.data.resident import ResidentData, ResidentLoader, resident_bytes

CFG = DataConfig(nlat=12, nlon=24, seed=1, train_years=(2001, 2003), val_years=(2004, 2004),
                 test_years=(2005, 2005), extra_years=(2000, 2000), history_windows=(7, 30))


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECODISTILL_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield prepare(load_dataset(CFG), CFG, patch_size=4)


@pytest.fixture(scope="module")
def resident(prep):
    return ResidentData(prep, "cpu")


def _resident_loader(resident, prep, split, batch_size, shuffle=False, seed=0, steps_per_epoch=None, **options):
    days = DayDataset(prep, split, **options)
    sampler = EpochBatchSampler(len(days), batch_size, shuffle, seed, steps_per_epoch=steps_per_epoch)
    return ResidentLoader(resident, days, sampler, weather_only=options.get("weather_only", False))


def _same_batches(a, b) -> int:
    n = 0
    for x, y in zip(a, b, strict=True):
        fx, fy = x.fields(), y.fields()
        assert fx.keys() == fy.keys()
        for k in fx:
            assert fx[k].dtype == fy[k].dtype, k
            assert torch.equal(fx[k], fy[k]), k
        n += 1
    return n


@pytest.mark.parametrize("split, options", [
    ("val", {}),
    ("train", {"label_years": 2}),
    ("train", {"unlabeled": True, "teacher": True}),
    ("train", {"task": "forecast", "weather_only": True}),
    ("test", {"target": "ndvi_true"}),
])
def test_resident_batches_equal_the_streaming_loader(prep, resident, split, options):
    options = dict(options)
    if options.pop("teacher", False):
        n = prep.split_days(split, unlabeled=True).size
        options["teacher_pred"] = np.random.default_rng(0).uniform(size=(n, 1, 12, 24)).astype(np.float16)
    shuffle = split == "train"
    for epoch in (0, 3):
        stream = make_loader(prep, split, batch_size=16, shuffle=shuffle, seed=5, steps_per_epoch=7 if shuffle
                             else None, **options)
        held = _resident_loader(resident, prep, split, 16, shuffle, 5, 7 if shuffle else None, **options)
        stream.sampler.set_epoch(epoch)
        held.sampler.set_epoch(epoch)
        assert _same_batches(stream, held) == len(stream)


def test_resident_memory_and_dtype(prep, resident):
    assert resident.dynamic.dtype == torch.float32 and resident.dynamic.shape[1] == prep.n_dynamic
    assert resident_bytes(prep, torch.bfloat16) < resident_bytes(prep, torch.float32)
    half = ResidentData(prep, "cpu", dtype=torch.bfloat16)
    days = torch.arange(5)
    torch.testing.assert_close(half.inputs(days), resident.inputs(days), rtol=1e-2, atol=2e-2)


def test_fixed_length_epochs_see_every_sample_equally_often():
    sampler = EpochBatchSampler(10, 4, shuffle=True, seed=0, steps_per_epoch=5)
    seen = []
    for epoch in range(4):  # 4 epochs x 5 steps x 4 = 80 = 8 passes over 10 samples
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == 5 == len(sampler) and all(len(b) == 4 for b in batches)
        seen += [i for b in batches for i in b]
    assert np.bincount(seen).tolist() == [8] * 10
    sampler.set_epoch(2)
    again = list(sampler)
    sampler.set_epoch(2)
    assert list(sampler) == again  # an epoch depends on (seed, epoch) only


def test_rank_shards_make_up_the_global_batch():
    whole = EpochBatchSampler(23, 6, shuffle=True, seed=3, steps_per_epoch=4)
    shards = [EpochBatchSampler(23, 6, shuffle=True, seed=3, steps_per_epoch=4, rank=r, world=2) for r in (0, 1)]
    for b, s0, s1 in zip(whole, *shards, strict=True):
        assert s0 + s1 == b and len(s0) == len(s1) == 3
    with pytest.raises(ValueError, match="divisible"):
        EpochBatchSampler(23, 5, shuffle=True, seed=3, steps_per_epoch=4, rank=0, world=2)


def test_label_years_beyond_the_training_years_are_refused(prep):
    with pytest.raises(ValueError, match="choose 1..3"):
        DayDataset(prep, "train", label_years=4)
