"""FLUXNET benchmark: the .cbf reader (on small files written here and on the real files),
the inputs and splits, the batched MLPs and the distillation loss, and one end-to-end run."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ecodistill.fluxnet import benchmark, experiment, models, reader, report
from ecodistill.fluxnet.config import FluxConfig, flux_profile
from ecodistill.store import runs

IGBP = ["ENF", "GRA", "DBF"]


def write_fake(root, n_sites=12, n_months=60, seed=0):
    """A small CARDAMOM-FluxVal-like distribution: .cbf files, validation CSVs, locations.

    GPP and LAI follow temperature plus noise; GPP is split between the .cbf (first half)
    and validation_data (second half); the last site's validation file uses an old name.
    """
    rng = np.random.default_rng(seed)
    (root / "cbf_files").mkdir(parents=True)
    (root / "validation_data").mkdir()
    names = [f"XX-S{i:02d}" for i in range(n_sites - 1)] + ["GL-ZaH"]
    loc = pd.DataFrame({"Flux_name": names, "LC": [IGBP[i % 3] for i in range(n_sites)],
                        "Lat": rng.uniform(-40, 70, n_sites), "lon": rng.uniform(-170, 170, n_sites)})
    loc["flux_site"] = loc["Flux_name"]
    loc.to_csv(root / "location_fluxnet.csv", index=False)
    t = np.arange(n_months)
    for i, site in enumerate(loc.itertuples()):
        temp = 10 + 12 * np.sin(2 * np.pi * (t % 12 - 3) / 12) * np.sign(site.Lat) + rng.normal(0, 1, n_months)
        met = np.column_stack([15.2 + 30.44 * t, temp - 4, temp + 4, 15 + rng.normal(0, 3, n_months),
                               370 + 0.2 * t, (15.2 + 30.44 * t) % 365.25, np.zeros(n_months),
                               rng.uniform(1, 20, n_months), rng.gamma(2, 1.5, n_months)])
        gpp = np.clip(0.4 * temp + i % 3 + rng.normal(0, 0.5, n_months), 0, None)
        lai = np.round(np.clip(0.1 * temp + 1 + rng.normal(0, 0.2, n_months), 0.1, None) * 20) / 20
        obs = np.full((n_months, 11), np.nan)
        half = n_months // 2
        obs[:half, 0] = np.where(rng.random(half) < 0.6, gpp[:half], np.nan)
        obs[:, 1] = np.where((t >= 12) & (rng.random(n_months) < 0.7), lai, np.nan)
        static = np.full(100, -9999.0)
        static[:2] = [1005, np.round(site.Lat * 2) / 2]
        reader.write_cbf(root / "cbf_files" / f"flux_site_{i + 1}.cbf",
                         reader.CBF(static, np.full((4, 50), -9999.0), met, obs))
        months = np.arange(half + 1, n_months + 1)
        keep = rng.random(len(months)) < 0.6
        vname = reader.VALIDATION_ALIASES.get(site.Flux_name, site.Flux_name)
        pd.DataFrame({"ID": months[keep], "Date": [(2001 + (m - 1) // 12) * 100 + (m - 1) % 12 + 1 for m in months[keep]],
                      "GPP": gpp[months[keep] - 1], "NEE": -gpp[months[keep] - 1] / 2, "ET": 1.0}
                     ).to_csv(root / "validation_data" / f"validation_{vname}.csv", index=False)
    return root


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread (and a loaded 2-core CI host makes two slow)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def fake(tmp_path):
    return write_fake(tmp_path / "raw")


def test_cbf_layout_matches_the_bytes(tmp_path):
    """Header 300 doubles, then per step nomet drivers and noobs observations; -9999 = gap."""
    static = np.zeros(100)
    static[:5] = [1005, -33.25, 2, 3, 2]
    body = [[1, 2, 3, 4.5, -9999], [6, 7, 8, -9999, 9.5]]
    raw = np.concatenate([static, np.arange(200.0), np.ravel(body)]).astype("<f8")
    raw.tofile(tmp_path / "a.cbf")
    cbf = reader.read_cbf(tmp_path / "a.cbf")
    assert cbf.lat == -33.25 and cbf.priors.shape == (4, 50) and cbf.priors[1, 0] == 50
    np.testing.assert_array_equal(cbf.met, [[1, 2, 3], [6, 7, 8]])
    np.testing.assert_array_equal(cbf.obs, [[4.5, np.nan], [np.nan, 9.5]])
    reader.write_cbf(tmp_path / "b.cbf", cbf)
    assert (tmp_path / "b.cbf").read_bytes() == raw.tobytes()  # round trip is byte-identical


def test_cbf_trailing_means_and_bad_files(tmp_path):
    cbf = reader.CBF(np.zeros(100), np.zeros((4, 50)), np.ones((3, 2)), np.full((3, 1), np.nan), np.array([5.0, 6.0]))
    back = reader.read_cbf(reader.write_cbf(tmp_path / "m.cbf", cbf))
    np.testing.assert_array_equal(back.met_means, [5, 6])
    data = (tmp_path / "m.cbf").read_bytes()
    (tmp_path / "cut.cbf").write_bytes(data[:-8])
    with pytest.raises(ValueError, match="truncated"):
        reader.read_cbf(tmp_path / "cut.cbf")
    (tmp_path / "tiny.cbf").write_bytes(b"\0" * 80)
    with pytest.raises(ValueError, match="header"):
        reader.read_cbf(tmp_path / "tiny.cbf")
    with pytest.raises(FileNotFoundError):
        reader.read_cbf(tmp_path / "absent.cbf")


def test_missing_data_names_source_and_licence(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        reader.fluxval_dir(tmp_path / "nowhere")
    text = str(err.value)
    for piece in ("CARDAMOM_v2.2", "DATA/CARDAMOM-FLUXVAL_v1.0", "d29f0547", "CC-BY-4.0"):
        assert piece in text


def test_load_fluxval_joins_cbf_and_validation(fake):
    frame = reader.load_fluxval(fake)
    assert len(frame) == 12 * 60 and frame.groupby("site").size().eq(60).all()
    assert set(frame["gpp_source"]) == {"cbf", "validation", ""}
    assert (frame.loc[frame.gpp_source == "cbf", "month_idx"] <= 30).all()
    assert (frame.loc[frame.gpp_source == "validation", "month_idx"] > 30).all()
    assert frame.loc[frame.site == "GL-ZaH", "gpp_source"].eq("validation").any()  # old-name file found
    assert frame["gpp"].isna().eq(frame["gpp_source"] == "").all()
    assert frame.loc[frame.year == 2001, "lai"].isna().all()  # gaps stay NaN
    first = frame[frame.month_idx == 13].iloc[0]
    assert (first.year, first.month) == (2002, 1)


def test_overlapping_gpp_is_refused(fake):
    v = pd.read_csv(fake / "validation_data" / "validation_XX-S00.csv")
    v.loc[0, "ID"], v.loc[0, "Date"] = 1, 200101
    cbf = reader.read_cbf(fake / "cbf_files" / "flux_site_1.cbf")
    cbf.obs[0, 0] = 1.0
    reader.write_cbf(fake / "cbf_files" / "flux_site_1.cbf", cbf)
    v.to_csv(fake / "validation_data" / "validation_XX-S00.csv", index=False)
    with pytest.raises(ValueError, match="both"):
        reader.load_fluxval(fake)


def _real_root():
    try:
        return reader.fluxval_dir()
    except FileNotFoundError:
        return None


@pytest.mark.skipif(_real_root() is None, reason="../shared/data/fluxval (CARDAMOM-FluxVal v1.0) is absent; "
                    "only the synthetic .cbf tests run")
def test_real_files_agree_with_the_tidy_table():
    """The reader of the original files agrees with fluxval_sitemonth.csv.gz wherever both hold a
    value; the tidy table lacks exactly the withheld GPP months of the five renamed sites."""
    root = _real_root()
    frame = reader.load_fluxval(root)
    assert len(frame) == 204 * 192
    check = reader.compare_with_tidy(frame, root.parent / "fluxval_sitemonth.csv.gz").set_index("column")
    assert (check["max_abs_diff"] == 0).all() and (check["n_only_tidy"] == 0).all()
    assert check.loc["gpp", "n_only_raw"] == 80 and check.drop(index="gpp")["n_only_raw"].eq(0).all()
    assert frame["gpp"].notna().sum() == 12772 and frame["lai"].notna().sum() == 13903
    lai = frame.dropna(subset=["lai"])  # the facts LAI_SOURCE rests on
    assert lai["year"].between(2003, 2009).all() and lai["lai"].min() == pytest.approx(0.1)
    assert np.allclose(lai["lai"] * 20, np.round(lai["lai"] * 20))
    assert (frame["burned_area"] == 0).all() and (frame["lat"] - frame["cbf_lat"]).abs().max() <= 0.25


def test_lagged_history_pads_with_the_seasonal_cycle():
    values = np.arange(24.0)[:, None]  # two years, one driver
    months = np.tile(np.arange(1, 13), 2)
    lagged = benchmark._lagged(values, months, 3)
    np.testing.assert_array_equal(lagged[5], [5, 4, 3])
    np.testing.assert_array_equal(lagged[0], [0, 17, 16])  # Dec and Nov means of (11, 23), (10, 22)


def test_table_and_splits(fake):
    frame = reader.load_fluxval(fake)
    table = benchmark.build_table(frame, history=2)
    assert table.X.shape == (len(frame), len(table.names)) and np.isfinite(table.X).all()
    onehot = table.X[:, [i for i, n in enumerate(table.names) if n.startswith("igbp_")]]
    assert np.all(onehot.sum(axis=1) == 1)
    sites = reader.read_sites(fake)
    split = benchmark.make_splits(table, sites, "gpp", 0, 3, 2, 1, seed=0)
    train, val, test = (set(table.site[m]) for m in (split.train, split.val, split.test_all))
    assert train and val and test and not (train & val) and not (train & test) and not (val & test)
    assert split.heldout_years == (2005, 2005)
    assert table.year[split.train | split.val | split.test].max() < 2005
    assert set(table.site[split.heldout_test]) <= test
    bad = frame.copy()
    bad.loc[3, "tmin_C"] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        benchmark.build_table(bad, history=2)


def test_site_static_samples_real_maps():
    pytest.importorskip("ecodistill.data.static")
    values, names = benchmark.site_static(np.array([51.3, -3.0]), np.array([10.4, -60.0]))
    assert values.shape == (2, len(names)) and np.isfinite(values).all()
    assert 0 < values[1, 0] <= 1  # Amazon NDVI maximum


def test_kd_mse_matches_its_formula():
    s = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    t = torch.tensor([1.5, 2.0, 2.0])
    y = torch.tensor([1.0, float("nan"), 4.0])
    alpha, u = torch.tensor([0.25, 0.0]), torch.tensor([1.0, 0.0])
    net0 = (0.25 * 0.25 + 0 + 0.25 * 1 + 0.75 * 1 + 1 * 0) / 3  # rows: labelled, unlabelled, labelled
    net1 = (1 + 16) / 2  # scratch: mean over the labelled rows only
    assert models.kd_mse(s, t, y, alpha, u).item() == pytest.approx(net0 + net1)
    same = torch.tensor([[1.0, 2.0, 3.0]])
    assert models.kd_mse(same, same[0], same[0], torch.tensor([0.5]), torch.tensor([1.0])).item() == 0


def test_batched_networks_are_independent():
    net = models.BatchedMLP(3, 5, 7, 2)
    assert sum(p[0].numel() for p in net.parameters()) == models.mlp_params(5, 7, 2)
    out = net(torch.randn(4, 5))
    assert out.shape == (3, 4)
    out[1].sum().backward()
    for p in net.parameters():
        assert p.grad[1].abs().sum() > 0 and p.grad[0].abs().sum() == 0 and p.grad[2].abs().sum() == 0


def test_fit_batched_learns_and_is_deterministic():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(300, 4, generator=gen)
    y = X @ torch.tensor([1.0, -2.0, 0.5, 0.0])
    y[::3] = float("nan")
    runs_ = []
    for _ in range(2):
        torch.manual_seed(1)
        net = models.BatchedMLP(2, 4, 8, 1)
        fit = models.fit_batched(net, X[:200], y[:200], None, np.zeros(2), np.zeros(2), np.array([0.0, 0.1]),
                                 X[200:][~torch.isnan(y[200:])], y[200:][~torch.isnan(y[200:])],
                                 epochs=30, patience=30, batch_size=32, lr=1e-2, seed=0)
        runs_.append(fit.best_val_mse)
    assert (runs_[0] < 0.2 * float(torch.nanmean(y ** 2))).all()
    np.testing.assert_array_equal(runs_[0], runs_[1])
    with pytest.raises(ValueError, match="teacher"):
        models.fit_batched(net, X, y, None, np.ones(2), np.zeros(2), np.zeros(2), X[:5], X[:5, 0],
                           epochs=1, patience=1, batch_size=8, lr=1e-3, seed=0)


def test_tree_sizes_and_climatology():
    X, y = np.random.default_rng(0).normal(size=(60, 3)), np.arange(60.0)
    assert models.tree_nodes(models.fit_rf(X, y, 3, 2, 0)) > 3
    assert models.tree_nodes(models.fit_gbm(X, y, 4, 0.1, 7, 0)) > 4
    with pytest.raises(TypeError):
        models.tree_nodes(object())
    clim = models.igbp_climatology(np.array(["A", "A", "B", "B"]), np.array([1, 1, 2, 1]),
                                   np.array([1.0, 3.0, 10.0, np.nan]))
    # (class, month) mean; an unseen pair falls back to the month's mean, then to the overall mean
    np.testing.assert_allclose(clim(np.array(["A", "B", "B", "C"]), np.array([1, 2, 1, 3])), [2, 10, 2, 14 / 3])


def test_config_refuses_bad_settings():
    with pytest.raises(ValueError, match="profile"):
        flux_profile("huge")
    with pytest.raises(ValueError, match="equal search budget"):
        FluxConfig(scratch_weight_decays=(0.0,))
    with pytest.raises(ValueError, match="alpha"):
        FluxConfig(alphas=(0.0, 0.5, 1.0, 1.0))
    assert flux_profile("cpu").fold_list == (0, 1, 2, 3, 4) and len(flux_profile("cpu").seeds) >= 3


def test_end_to_end_on_small_files(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("ECODISTILL_CACHE", str(tmp_path / "cache"))
    cfg = FluxConfig(profile="smoke", n_folds=3, folds=(0,), seeds=(0, 1), inner_folds=2, history=2,
                     static_maps=False, heldout_years=1, gbm_iter=5, rf_trees=3, teacher_width=8, teacher_depth=1,
                     teacher_members=2, teacher_epochs=3, student_widths=(4,), epochs=3, patience=3, batch_size=64)
    first = experiment.run_benchmark(cfg, fake, log=lambda *_: None)
    assert first["student_runs_made"] == 4  # 2 targets x 2 seeds
    again = experiment.run_benchmark(cfg, fake, log=lambda *_: None)
    assert again["student_runs_made"] == 0 and again["student_runs_kept"] == 4  # resumes, keeps runs
    rows = report.load_results("smoke")
    assert set(rows["kind"]) == {"baseline", "teacher", "student"}
    assert set(rows.loc[rows.kind == "student", "method"]) == set(report.STUDENT_ARMS)
    assert set(rows.loc[rows.kind == "baseline", "method"]) == {"climatology", "linear", "gbm", "rf", "mlp"}
    test = rows[(rows.split == "test") & (rows.region == "global")]
    assert {"r2", "rmse", "bias", "fidelity_r2"} <= set(test["metric"])
    assert rows.loc[rows.kind == "student", "teacher_run_id"].str.contains("teacher").all()
    assert len(report.paired_table(rows)) == 4 and len(report.model_table(rows))
    assert "2 teacher runs and 4 student runs" in report.provenance("smoke")
    assert runs.read_runs("smoke")["value"].notna().all()


def test_cli_has_the_command():
    from ecodistill import cli

    parser = cli.build_parser()
    args = parser.parse_args(["fluxnet", "--profile", "cpu", "--folds", "0", "--seeds", "0"])
    assert args.profile == "cpu" and args.folds == [0] and callable(args.func)
