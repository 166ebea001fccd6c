"""The chapter-04 tables against hand-computed numbers, on a synthetic results tree.

``make_synthetic_results`` writes, through the real result store, a small tree whose every
number is chosen so the expected tables can be worked out by hand (see the comments).
"""
from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest

from ecodistill import plots, report, runs
from ecodistill.config import get_profile
from ecodistill.utils import atomic_write_json, results_dir

matplotlib.use("Agg")
PROFILE = "cpu"  # headline student afno_s
TEACHER = {"n_params": 2_400_000, "flops_per_map": 1e8}
SIZES = {"afno_s": ("afno", 24_000, 1e6), "mlp_s": ("mlp", 2_000, 5e5)}
# test RMSE per seed 0, 1, 2. afno_s: gap = 0.11 - 0.05 = 0.06 > 2 x 0.01, closed
# (0.11 - 0.08) / 0.06 = 0.5.
# mlp_s: gap = 0.07 - 0.05 = 0.02, not > 2 x seed std 0.01 -> not resolvable; distilled is worse.
RMSE = {("afno_s", "scratch"): [0.10, 0.11, 0.12], ("afno_s", "distilled"): [0.07, 0.08, 0.09],
        ("mlp_s", "scratch"): [0.06, 0.07, 0.08], ("mlp_s", "distilled"): [0.065, 0.075, 0.085]}
R2_ANOM = {"scratch": [0.30, 0.32, 0.34], "distilled": [0.50, 0.52, 0.54]}
R2 = {"scratch": [0.70, 0.72, 0.74], "distilled": [0.85, 0.86, 0.87]}
BIOMES = {"forest": 0.1, "desert": -0.1}  # added to each model's global anomaly R²
SELECTION_ALPHA, SELECTION_LOSS = 0.5, "bounded"


def _write(profile, name, meta, metrics, split="test", months=True, biomes=True, seed=-1):
    """One run: global metrics (+ 12 months offset from the global RMSE, + biomes)."""
    config = {"name": name, "seed": seed, "metrics": metrics,
              **{k: str(v) for k, v in meta.items()}}
    run_id = runs.make_run_id(name, config)
    rows = [(split, "global", m, v) for m, v in metrics.items()]
    if months:
        rows += [(split, f"month:{m}", "rmse", metrics["rmse"] + 0.001 * m) for m in range(1, 13)]
    if biomes and "r2_anom" in metrics:
        rows += [(split, f"biome:{b}", "r2_anom", metrics["r2_anom"] + d)
                 for b, d in BIOMES.items()]
    base = {"run_id": run_id, "dataset_hash": "abc", "target": "ndvi", "seed": seed, **meta}
    runs.write_run(profile, runs.make_rows(base, rows), config)
    return run_id


def _student(profile, student, init, seed, rmse, r2_anom=0.3, r2=0.7, tag="final", method=None,
             alpha=None, label_years=-1, split="test"):
    family, n_params, flops = SIZES[student]
    method = method or ("scratch" if init == "scratch" else f"kd-{SELECTION_LOSS}-offline")
    alpha = (SELECTION_ALPHA if alpha is None else alpha) if init == "distilled" else float("nan")
    name = (f"scratch-{student}-{tag}" if init == "scratch"
            else f"{method}-{student}_from_teacher-{tag}")
    meta = {"kind": "student", "init": init, "method": method, "family": family,
            "n_params": n_params, "flops_per_map": flops, "alpha": alpha,
            "label_years": label_years}
    return _write(profile, name, meta, {"rmse": rmse, "r2": r2, "r2_anom": r2_anom}, split=split,
                  months=split == "test", biomes=split == "test", seed=seed)


def make_synthetic_results(profile: str = PROFILE, clim: float | None = None) -> dict:
    """Fill ``results_dir(profile)`` (point ECODISTILL_RESULTS at a temporary folder first)."""
    ids = {}
    teacher = {"kind": "teacher", "init": "pretrained", "method": "afno-pretrained",
               "family": "afno", **TEACHER}
    ids["teacher"] = _write(profile, "teacher-afno_pretrained", teacher,
                            {"rmse": 0.05, "r2": 0.9, "r2_anom": 0.6}, seed=0)
    _write(profile, "teacher-afno_scratch", dict(teacher, init="scratch", method="afno-scratch"),
           {"rmse": 0.09, "r2": 0.8, "r2_anom": 0.4}, seed=0)
    if clim is not None:
        baseline = {"kind": "baseline", "init": "scratch", "method": "climatology",
                    "family": "climatology"}
        _write(profile, "baseline-climatology", baseline,
               {"rmse": 0.2, "r2": 0.5, "r2_anom": clim})
    for (student, init), values in RMSE.items():
        for seed, rmse in enumerate(values):
            ids[(student, init, seed)] = _student(profile, student, init, seed, rmse,
                                                  R2_ANOM[init][seed], R2[init][seed])
    # a distilled setting validation did not choose (one seed): must not enter the comparison
    _student(profile, "afno_s", "distilled", 0, 0.01, method="kd-mse-offline")
    # tuning runs (validation only): alpha sweep with the MSE loss, the loss at alpha 0.5,
    # 4 scratch trials
    trials = []
    for alpha, v in [(0.0, 0.09), (0.5, 0.07), (1.0, 0.08)]:
        rid = _student(profile, "afno_s", "distilled", 0, v, tag="tune", method="kd-mse-offline",
                       alpha=alpha, split="val")
        trials.append({"mode": "offline", "loss": "mse", "alpha": alpha, "lr_scale": 1.0,
                       "val_rmse": v, "run_id": rid})
    rid = _student(profile, "afno_s", "distilled", 0, 0.065, tag="tune", split="val")
    trials.append({"mode": "offline", "loss": "bounded", "alpha": 0.5, "lr_scale": 1.0,
                   "val_rmse": 0.065, "run_id": rid})
    for scale, v in [(0.25, 0.095), (0.63, 0.085), (1.59, 0.1), (4.0, 0.12)]:
        rid = _student(profile, "afno_s", "scratch", 0, v, tag="tune", split="val")
        trials.append({"mode": "scratch", "loss": "mse", "alpha": 0.5, "lr_scale": scale,
                       "val_rmse": v, "run_id": rid})
    selection = {"student": "afno_s", "seed": 0, "alpha": SELECTION_ALPHA, "loss": SELECTION_LOSS,
                 "scratch_lr_scale": 0.63, "n_trials_each": 4, "trials": trials}
    atomic_write_json(results_dir(profile) / "selection.json", selection)
    # controls at afno_s: noise-free scratch 0.09, no extra years 0.085, budgets 1 and 3 years
    for seed in range(3):
        _student(profile, "afno_s", "scratch", seed, 0.09, tag="noisefree")
        _student(profile, "afno_s", "distilled", seed, 0.085, tag="noextra")
        for years, (scratch, distilled) in {1: (0.2, 0.15), 3: (0.15, 0.12)}.items():
            _student(profile, "afno_s", "scratch", seed, scratch + 0.01 * seed,
                     tag=f"budget{years}", label_years=years)
            _student(profile, "afno_s", "distilled", seed, distilled, tag=f"budget{years}",
                     label_years=years)
    # headroom: two scratch AFNO sizes x 2 seeds
    for n_params, values in {10_000: [0.1, 0.2], 100_000: [0.3, 0.5]}.items():
        for seed, v in enumerate(values):
            meta = {"kind": "student", "init": "scratch", "method": "headroom", "family": "afno",
                    "n_params": n_params, "flops_per_map": n_params * 100.0}
            _write(profile, f"headroom-afno_{n_params}", meta, {"rmse": 0.1, "r2_anom": v},
                   months=False, seed=seed)
    maps = results_dir(profile) / "maps"
    maps.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for key in [("afno_s", "scratch", 0), ("afno_s", "distilled", 0), "teacher"]:
        field = rng.uniform(0.02, 0.12, (8, 16)).astype(np.float32)
        field[:2] = np.nan  # "ocean"
        np.savez_compressed(maps / f"{ids[key]}.npz", rmse=field)
    atomic_write_json(results_dir(profile) / "teacher" / "teacher.json",
                      {"device": "cpu", "run_id": ids["teacher"]})
    return ids


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The synthetic tree, built once per module; ECODISTILL_RESULTS points at it meanwhile."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECODISTILL_RESULTS", str(tmp_path_factory.mktemp("results")))
        ids = make_synthetic_results()
        yield runs.read_runs(PROFILE), report.read_selection(PROFILE), ids


def test_nothing_there_yet(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    frame = runs.read_runs("cpu")
    for fn in (report.student_table, report.paired_comparison, report.alpha_sweep,
               report.loss_ablation, report.controls, report.headroom_table):
        assert fn(frame).empty, fn.__name__
    assert report.biome_table(frame, "afno_s").empty
    assert report.error_maps("cpu", frame, "afno_s") == {}
    head = report.headline(frame, get_profile("cpu"))
    assert np.isnan(head["gap_closed"]) and np.isnan(head["compression_params"])
    assert head["verdict_sizes"] == report.no_results_message("cpu")
    assert "python -m ecodistill matrix --profile cpu" in head["verdict_sizes"]
    assert report.read_selection("cpu") is None


def test_parse_run_id():
    assert report.parse_run_id("scratch-afno_s-final-0123456789") == ("afno_s", "final")
    run_id = "kd-bounded-offline-mlp_s_from_teacher-budget3-abcdef0123"
    assert report.parse_run_id(run_id) == ("mlp_s", "budget3")
    assert report.parse_run_id("teacher-afno_pretrained-0123456789") == ("", "")


def test_student_table_numbers(tree):
    frame, _, _ = tree
    t = report.student_table(frame)
    scratch = t[(t.student == "afno_s") & (t.init == "scratch")].iloc[0]
    distilled = t[(t.student == "afno_s") & (t.method == "kd-bounded-offline")].iloc[0]
    assert scratch.n_seeds == 3
    assert scratch.rmse_mean == pytest.approx(0.11) and scratch.rmse_std == pytest.approx(0.01)
    assert distilled.r2_anom_mean == pytest.approx(0.52)
    assert distilled.r2_mean == pytest.approx(0.86)
    assert distilled.retained_skill == pytest.approx(0.52 / 0.6)  # no climatology row: S_clim = 0
    assert t.attrs["notes"][0].startswith("S_clim = 0 (no climatology row")
    assert distilled.r2_ratio == pytest.approx(0.86 / 0.9)
    assert distilled.params_ratio == pytest.approx(100)
    assert distilled.flops_ratio == pytest.approx(100)
    mlp = t[(t.student == "mlp_s") & (t.init == "scratch")].iloc[0]
    assert mlp.params_ratio == pytest.approx(1200) and mlp.flops_ratio == pytest.approx(200)
    teacher = t[t.student == "teacher"].iloc[0]
    assert teacher.rmse_mean == pytest.approx(0.05) and teacher.retained_skill == pytest.approx(1.0)
    assert (t.student == "teacher (scratch)").sum() == 1
    assert t[(t.student == "afno_s") & (t.method == "kd-mse-offline")].n_seeds.iloc[0] == 1
    shown = report.readable(t)
    scratch_rmse = shown.loc[(t.student == "afno_s") & (t.init == "scratch"), "rmse"].iloc[0]
    assert scratch_rmse == "0.110 ± 0.010"
    assert shown.loc[t.student == "teacher", "rmse"].iloc[0] == "0.050"  # one seed: no spread


def test_retained_skill_uses_climatology_row(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    make_synthetic_results(clim=0.1)
    t = report.student_table(runs.read_runs(PROFILE))
    distilled = t[(t.student == "afno_s") & (t.method == "kd-bounded-offline")].iloc[0]
    assert distilled.retained_skill == pytest.approx((0.52 - 0.1) / (0.6 - 0.1))
    assert "climatology baseline row" in t.attrs["notes"][0]


def test_chosen_method(tree):
    frame, selection, _ = tree
    assert report.chosen_method(frame, selection) == ("kd-bounded-offline", 0.5)
    # without a selection: the most frequent final setting
    assert report.chosen_method(frame) == ("kd-bounded-offline", 0.5)
    assert report.chosen_method(frame, {"loss": "mse", "alpha": 0.5}) == ("kd-mse-offline", 0.5)


def test_paired_comparison(tree):
    frame, selection, _ = tree
    p = report.paired_comparison(frame, selection).set_index("student")
    a, m = p.loc["afno_s"], p.loc["mlp_s"]
    assert a.n_pairs == 3 and a.wins == 3 and a["diff"] == pytest.approx(0.03)
    assert a.p_value == pytest.approx(0.25)  # exact two-sided Wilcoxon, 3 of 3 positive: 2 / 2**3
    assert a.gap_closed == pytest.approx(0.5) and a.gap_reason == ""
    # every month differs by the same 0.03 in every seed, so any resample gives 0.03
    assert a.ci_low == pytest.approx(0.03) and a.ci_high == pytest.approx(0.03)
    assert m["diff"] == pytest.approx(-0.005) and m.wins == 0 and m.ci_high < 0
    assert np.isnan(m.gap_closed) and "not resolvable" in m.gap_reason
    assert a.rmse_teacher == pytest.approx(0.05)


def test_alpha_sweep_and_loss_ablation(tree):
    frame, selection, _ = tree
    sweep = report.alpha_sweep(frame, selection)
    distilled = sweep[sweep.init == "distilled"].set_index("alpha").val_rmse
    assert distilled.to_dict() == pytest.approx({0.0: 0.09, 0.5: 0.07, 1.0: 0.08})
    scratch = sweep[sweep.init == "scratch"].set_index("lr_scale").val_rmse
    assert scratch.min() == pytest.approx(0.085) and scratch.idxmin() == pytest.approx(0.63)
    ablation = report.loss_ablation(frame, selection).set_index("method")
    assert ablation.loc["kd-bounded-offline", "val_rmse"] == pytest.approx(0.065)
    assert ablation.loc["kd-mse-offline", "val_rmse"] == pytest.approx(0.07)
    assert ablation.loc["scratch (best lr)", "val_rmse"] == pytest.approx(0.085)
    assert ablation.chosen.to_dict() == {"kd-bounded-offline": True, "kd-mse-offline": False,
                                         "scratch (best lr)": False}
    # without a selection, alpha comes from the sweep
    assert report.loss_ablation(frame).loc[0, "method"] == "kd-bounded-offline"


def test_controls(tree):
    frame, selection, _ = tree
    c = report.controls(frame, selection).set_index(["control", "condition"]).rmse_mean
    assert c[("noise", "scratch, noise-free targets")] == pytest.approx(0.09)
    assert c[("noise", "scratch")] == pytest.approx(0.11)
    assert c[("noise", "distilled")] == pytest.approx(0.08)
    assert c[("extra", "distilled, no extra years")] == pytest.approx(0.085)
    assert c[("extra", "distilled, with extra years")] == pytest.approx(0.08)
    assert c[("budget", "scratch, 1 label years")] == pytest.approx(0.21)  # 0.20, 0.21, 0.22
    assert c[("budget", "distilled, 3 label years")] == pytest.approx(0.12)
    assert c[("budget", "scratch, all label years")] == pytest.approx(0.11)


def test_biome_and_headroom(tree):
    frame, selection, _ = tree
    b = report.biome_table(frame, "afno_s", selection).set_index(["biome", "model"])
    assert b.loc[("forest", "distilled"), "r2_anom_mean"] == pytest.approx(0.62)
    assert b.loc[("desert", "scratch"), "r2_anom_mean"] == pytest.approx(0.22)
    assert b.loc[("forest", "teacher"), "r2_anom_mean"] == pytest.approx(0.7)
    assert b.loc[("forest", "distilled"), "n"] == 3  # the unchosen kd-mse run stays out
    h = report.headroom_table(frame)
    hr = h[h.model == "headroom"].set_index("n_params")
    assert hr.loc[100_000, "r2_anom_mean"] == pytest.approx(0.4) and hr.loc[10_000, "n_seeds"] == 2
    assert set(h.model) == {"headroom", "teacher (pretrained)", "teacher (scratch)"}


def test_headline(tree):
    frame, selection, _ = tree
    head = report.headline(frame, get_profile(PROFILE), selection,
                           hardware=report.hardware_label(PROFILE))
    assert head["compression_params"] == pytest.approx(100) and head["student_params"] == 24_000
    assert head["retained_skill"] == pytest.approx(0.52 / 0.6)
    assert head["gap_closed"] == pytest.approx(0.5)
    assert head["rmse_diff"] == pytest.approx(0.03) and head["n_seeds"] == 3
    assert head["verdict_sizes"].startswith(
        "distilled students have a lower mean test RMSE than scratch at 1 of 2")
    assert "closes 50% of" in head["gap_closed_text"] and "87%" in head["retained_text"]
    assert head["provenance"] == "profile cpu, hardware: cpu, 3 seeds (0, 1, 2)"
    assert head["profile"] == "cpu"
    assert "alpha = 0.5 with the bounded loss" in head["selection_text"]
    # afno_s (1% of params and FLOPs) keeps 87%, mlp_s keeps 87% too: neither reaches 90%
    assert head["target_text"].startswith("0 of 2")
    assert all(isinstance(v, (float, str)) for v in head.values())  # plain types glue cleanly
    json.dumps(head)


def test_plots_draw_the_tables(tree):
    frame, selection, _ = tree
    t = report.student_table(frame)
    fig = plots.scaling_curves(t, method="kd-bounded-offline")
    ax = fig.axes[0]
    assert len(ax.containers) == 4  # 2 families x {scratch, distilled}
    assert any(np.allclose(line.get_ydata(), 0.6) for line in ax.get_lines())  # the teacher line
    fig, axes = matplotlib.pyplot.subplots(2, 3)
    plots.alpha_sweep_plot(axes[0, 0], report.alpha_sweep(frame, selection))
    plots.loss_ablation_plot(axes[0, 1], report.loss_ablation(frame, selection))
    plots.label_budget_plot(axes[0, 2], report.controls(frame, selection), all_years=16)
    plots.headroom_plot(axes[1, 0], report.headroom_table(frame))
    plots.biome_panels(axes[1, 1], report.biome_table(frame, "afno_s", selection))
    assert len(axes[1, 1].patches) == 6  # 2 biomes x {teacher, scratch, distilled}
    assert axes[0, 0].get_lines()[0].get_ydata().tolist() == pytest.approx([0.09, 0.07, 0.08])
    assert len(axes[0, 1].patches) == 3 and len(axes[0, 2].containers) == 2
    maps = report.error_maps(PROFILE, frame, "afno_s", 0, selection)
    assert list(maps) == ["teacher", "scratch (afno_s)", "distilled (afno_s)"]
    fig = plots.error_maps(maps)
    assert len(fig.axes) == 4  # three maps and a colour bar
    matplotlib.pyplot.close("all")


def test_lr_trials_of_both_arms():
    """The learning-rate table holds the chosen distilled setting's LR trials and every scratch
    trial, and marks what validation picked; a selection without stages gives an empty table."""
    keys = ("stage", "mode", "loss", "alpha", "lr_scale", "val_rmse")
    t = [dict(zip(keys, values)) for values in [
        ("alpha", "offline", "mse", 0.5, 1.0, 0.07),
        ("loss", "offline", "l1", 0.5, 1.0, 0.06),
        ("lr-grid", "scratch", "mse", 0.5, 1.0, 0.08),
        ("lr-grid", "scratch", "mse", 0.5, 4.0, 0.07),
        ("lr-refine", "offline", "l1", 0.5, 2.0, 0.05),
        ("lr-refine", "scratch", "mse", 0.5, 8.0, 0.065)]]
    sel = {"alpha": 0.5, "loss": "l1", "kd_lr_scale": 2.0, "scratch_lr_scale": 8.0, "trials": t}
    out = report.lr_trials(sel)
    assert list(out["arm"]) == ["distilled", "distilled", "scratch", "scratch", "scratch"]
    assert list(out.loc[out["chosen"], "lr_scale"]) == [2.0, 8.0]
    assert report.lr_trials({"trials": [{k: v for k, v in t[0].items() if k != "stage"}]}).empty


def test_empty_tables_have_the_columns_of_full_ones(tree, tmp_path, monkeypatch):
    """A chapter selects the same columns whether or not results exist, so each builder's
    empty table has exactly the columns, in the same order, of its table with results."""
    frame, selection, _ = tree
    builders = {
        "student_table": lambda f, s: report.student_table(f),
        "paired_comparison": report.paired_comparison,
        "alpha_sweep": report.alpha_sweep,
        "loss_ablation": report.loss_ablation,
        "controls": report.controls,
        "biome_table": lambda f, s: report.biome_table(f, "afno_s", s),
        "headroom_table": lambda f, s: report.headroom_table(f),
    }
    full = {name: list(build(frame, selection).columns) for name, build in builders.items()}
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    nothing = report.read_results(PROFILE)
    for name, build in builders.items():
        assert list(build(nothing, None).columns) == full[name], name
    empty_trials = report.lr_trials(None, PROFILE)
    assert list(empty_trials.columns) == list(report.lr_trials(selection).columns)
