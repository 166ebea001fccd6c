"""Splits, statistics from training years only, trailing means, masks, climatology, loaders."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ecodistill.config import DataConfig
from ecodistill.data import load_dataset, make_loader, prepare, split_arrays

CFG = DataConfig(nlat=12, nlon=24, seed=1, train_years=(2001, 2002), val_years=(2003, 2003),
                 test_years=(2004, 2004), extra_years=(2000, 2000), history_windows=(7, 30))


@pytest.fixture(scope="module")
def prep(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECODISTILL_CACHE", str(tmp_path_factory.mktemp("cache")))
        ds = load_dataset(CFG)
        yield prepare(ds, CFG, patch_size=4)


def test_splits_and_channels(prep):
    year = prep.year
    assert set(year[prep.days["train"]]) == {2001, 2002} and set(year[prep.days["extra"]]) == {2000}
    assert set(year[prep.days["test"]]) == {2004}
    n = len(prep.weather_vars)
    assert len(prep.input_channels) == n * 3 + 5 + 2
    assert prep.input_channels[n] == "t2m@7d" and prep.input_channels[-2:] == ("sin_doy", "cos_doy")
    assert prep.biome_names and 0 not in prep.biome_names


def test_statistics_come_from_training_years_only(prep):
    t2m = prep.ds["t2m"].values
    assert prep.mean[0] == pytest.approx(t2m[prep.days["train"]].mean(), rel=1e-5)
    assert prep.std[0] == pytest.approx(t2m[prep.days["train"]].std(), rel=1e-4)
    leaky = prep.ds.copy(deep=True).load()
    leaky["t2m"][prep.days["test"]] += 50.0  # a change outside the training years ...
    leaky.attrs["dataset_hash"] = "leak-check"
    assert float(leaky["t2m"][prep.days["test"]].mean()) > float(t2m[prep.days["test"]].mean()) + 49
    other = prepare(leaky, CFG, patch_size=4)
    np.testing.assert_allclose(other.mean, prep.mean, rtol=1e-6)  # ... leaves the statistics alone
    np.testing.assert_allclose(other.std, prep.std, rtol=1e-6)
    x = prep.inputs(prep.days["train"][::5])
    dyn = len(prep.input_channels) - 7
    np.testing.assert_allclose(x[:, :dyn].mean(axis=(0, 2, 3)), 0, atol=0.05)


def test_trailing_means_and_precipitation_transform(prep):
    t = int(prep.days["val"][40])
    x = prep.inputs(np.array([t]))[0]
    k = prep.input_channels.index("t2m@30d")
    want = prep.ds["t2m"].values[t - 29:t + 1].mean(0)
    np.testing.assert_allclose(x[k] * prep.std[k] + prep.mean[k], want, atol=2e-3)
    k = prep.input_channels.index("tp")
    want = np.log1p(prep.ds["tp"].values[t] * 1000)
    np.testing.assert_allclose(x[k] * prep.std[k] + prep.mean[k], want, atol=1e-4)
    first = prep.inputs(np.array([0]))[0]  # a partial window at the start of the record
    k = prep.input_channels.index("msl@7d")
    np.testing.assert_allclose(first[k] * prep.std[k] + prep.mean[k], prep.ds["msl"].values[0], rtol=1e-6)


def test_masks_weights_and_climatology(prep):
    dom = prep.ndvi_domain
    assert prep.lat_weights[dom].mean() == pytest.approx(1.0, rel=1e-5)
    assert prep.clim.shape == (366,) + dom.shape
    assert np.isfinite(prep.clim[:, dom]).all() and np.isnan(prep.clim[:, ~dom]).all()


@pytest.mark.parametrize("change, match", [
    ({"test_years": (2010, 2010)}, "split 'test'.*empty"),
    ({"val_years": (2030, 2030)}, "split 'val'.*empty"),
])
def test_empty_split_is_an_error(prep, change, match):
    cfg = DataConfig(**{**CFG.__dict__, **change})
    with pytest.raises(ValueError, match=match):
        prepare(prep.ds, cfg, patch_size=4)


def test_patch_size_must_divide_the_grid(prep):
    with pytest.raises(ValueError, match=r"patch sizes that work: \[1, 2, 3, 4, 6, 12\]"):
        prepare(prep.ds, CFG, patch_size=5)


def test_ndvi_batches(prep):
    batch = next(iter(make_loader(prep, "train", batch_size=6, shuffle=True, seed=0)))
    c = len(prep.input_channels)
    assert batch.x.shape == (6, c, 12, 24) and batch.x.dtype == torch.float32
    assert torch.isfinite(batch.x).all() and torch.isfinite(batch.y).all()
    assert batch.mask.dtype == torch.bool and batch.t.dtype == torch.int64
    assert not (batch.mask[:, 0] & ~torch.from_numpy(prep.ndvi_domain)).any()
    assert (batch.y[~batch.mask] == 0).all() and batch.clim.shape == (6, 1, 12, 24)
    t = batch.t.numpy()
    want = prep.ds["ndvi"].values[t]
    np.testing.assert_array_equal(batch.mask[:, 0].numpy(), np.isfinite(want) & prep.ndvi_domain)


def test_loader_order_depends_on_seed_and_epoch(prep):
    def order(seed, epoch=None, workers=0):
        loader = make_loader(prep, "train", batch_size=8, shuffle=True, seed=seed, num_workers=workers)
        if epoch is not None:
            loader.sampler.set_epoch(epoch)
        return torch.cat([b.t for b in loader]).tolist()
    first = order(0)
    assert first == order(0) and first != order(1) and sorted(first) == sorted(prep.days["train"].tolist())
    assert order(0, epoch=3) == order(0, epoch=3) != first
    assert order(0, workers=2)[:16] == first[:16]


def test_forecast_task(prep):
    loader = make_loader(prep, "val", batch_size=4, task="forecast")
    batch = next(iter(loader))
    n = len(prep.weather_vars)
    assert batch.y.shape == (4, n, 12, 24) and batch.mask.all()
    nxt = prep.inputs(batch.t.numpy() + 1)[:, :n]
    np.testing.assert_allclose(batch.y.numpy(), nxt, atol=1e-6)
    days = loader.dataset.days
    assert np.isin(days + 1, prep.days["val"]).all()  # targets never leave the split


def test_unlabeled_teacher_labels_and_label_years(prep):
    n_train, n_extra = prep.days["train"].size, prep.days["extra"].size
    pred = np.random.default_rng(0).uniform(size=(n_extra + n_train, 1, 12, 24)).astype(np.float32)
    loader = make_loader(prep, "train", batch_size=n_extra + 5, teacher_pred=pred, unlabeled=True)
    batch = next(iter(loader))
    assert (batch.t[:n_extra].numpy() == prep.days["extra"]).all()
    assert not batch.mask[:n_extra].any() and batch.mask[n_extra:].any()
    assert (batch.mask_teacher[:, 0] == torch.from_numpy(prep.ndvi_domain)).all()
    np.testing.assert_allclose(batch.teacher_pred.numpy(), pred[:n_extra + 5])
    with pytest.raises(ValueError, match="teacher_pred holds"):
        make_loader(prep, "train", batch_size=4, teacher_pred=pred[:10])
    one = make_loader(prep, "train", batch_size=4, label_years=1, teacher_pred=pred[n_extra:])
    assert set(prep.year[one.dataset.days]) == {2002}
    first = next(iter(one))  # predictions follow their days through the label-year filter
    np.testing.assert_allclose(first.teacher_pred.numpy(), pred[n_extra:][prep.year[prep.days["train"]] == 2002][:4])
    truth = next(iter(make_loader(prep, "train", batch_size=4, target="ndvi_true")))
    assert (truth.mask[:, 0] == torch.from_numpy(prep.ndvi_domain)).all()  # no gaps in the truth


def test_split_arrays_match_the_loader(prep):
    arrays = split_arrays(prep, "test", with_x=True)
    batch = next(iter(make_loader(prep, "test", batch_size=5)))
    np.testing.assert_array_equal(arrays["x"][:5], batch.x.numpy())
    np.testing.assert_array_equal(arrays["mask"][:5], batch.mask.numpy())
    assert arrays["y"].shape == (prep.days["test"].size, 1, 12, 24) and set(arrays["month"]) == set(range(1, 13))
