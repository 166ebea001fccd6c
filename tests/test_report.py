"""The chapter-04 tables, the summary table and the findings against hand-computed numbers, on
a synthetic results tree of the fair protocol.

``make_synthetic_results`` writes, through the real result store, a small tree whose every
number is chosen so the expected tables can be worked out by hand (see the comments): final
runs of two sizes, the validation selection with both arms' loss trials and learning-rate
searches, the alpha sweep, the budget check, the controls (teacher-free twin, no extra years,
noise-free targets, label budgets with both kinds of teacher) and headroom runs.
"""
from __future__ import annotations

import json
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest

from ecodistill import plots, report
from ecodistill.config import get_profile
from ecodistill.store import runs
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
ALPHA, LOSS, SCRATCH_LOSS = 0.5, "bounded", "huber"
# the teacher-free twin: 0.10 every seed (distilled 0.08 on average -> the teacher adds 0.02)
TWIN, NOEXTRA, NOISEFREE = 0.10, 0.085, 0.09
LONG = {"scratch": 0.075, "distilled": 0.078}  # at twice the epochs scratch overtakes
# label budgets: scratch (+0.01 per seed), distilled from the all-label teacher, from the
# same-label teacher
BUDGETS = {1: (0.20, 0.15, 0.17), 3: (0.15, 0.12, 0.13)}


def _write(profile, name, meta, metrics, split="test", months=True, biomes=True, seed=-1,
           dataset="abc", train=None):
    """One run: global metrics (+ 12 months offset from the global RMSE, + biomes: each biome's
    RMSE equals the global one, so a biome-block bootstrap of a difference that is the same in
    every seed is that difference; the anomaly R² is offset per biome)."""
    config = {"name": name, "seed": seed, "metrics": metrics,
              **{k: str(v) for k, v in meta.items()}, **({"train": train} if train else {})}
    run_id = runs.make_run_id(name, config)
    rows = [(split, "global", m, v) for m, v in metrics.items()]
    if months:
        rows += [(split, f"month:{m}", "rmse", metrics["rmse"] + 0.001 * m) for m in range(1, 13)]
    if biomes and "r2_anom" in metrics:
        rows += [(split, f"biome:{b}", "r2_anom", metrics["r2_anom"] + d)
                 for b, d in BIOMES.items()]
        rows += [(split, "global", "rmse_anom", metrics["rmse"])]
        rows += [(split, f"biome:{b}", m, metrics["rmse"]) for b in BIOMES for m in ("rmse", "rmse_anom")]
    base = {"run_id": run_id, "dataset_hash": dataset, "target": "ndvi", "seed": seed, **meta}
    runs.write_run(profile, runs.make_rows(base, rows), config)
    return run_id


def _student(profile, student, init, seed, rmse, r2_anom=0.3, r2=0.7, tag="final", method=None,
             alpha=None, label_years=-1, split="test", teacher="T", dataset="abc"):
    family, n_params, flops = SIZES[student]
    method = method or ("scratch" if init == "scratch" else f"kd-{LOSS}-offline")
    alpha = (ALPHA if alpha is None else alpha) if init == "distilled" else float("nan")
    name = (f"scratch-{student}-{tag}" if init == "scratch"
            else f"{method}-{student}_from_teacher-{tag}")
    meta = {"kind": "student", "init": init, "method": method, "family": family,
            "n_params": n_params, "flops_per_map": flops, "alpha": alpha,
            "label_years": label_years, "teacher_run_id": teacher}
    return _write(profile, name, meta, {"rmse": rmse, "r2": r2, "r2_anom": r2_anom}, split=split,
                  months=split == "test", biomes=split == "test", seed=seed, dataset=dataset)


def _selection() -> dict:
    """The validation selection: distilled 5 trials (alpha 0.5 and 1 with MSE, bounded at 0.5,
    learning rates x2 and x4), scratch 5 trials (MSE and Huber, learning rates x0.25, x0.5 and
    x0.707): equal counts."""
    trials = [("distilled", "alpha", "mse", 0.5, 1.0, 0.07), ("distilled", "alpha", "mse", 1.0, 1.0, 0.08),
              ("distilled", "loss", LOSS, 0.5, 1.0, 0.065), ("distilled", "lr", LOSS, 0.5, 2.0, 0.06),
              ("distilled", "lr", LOSS, 0.5, 4.0, 0.063), ("scratch", "loss", "mse", 0.0, 1.0, 0.088),
              ("scratch", "loss", SCRATCH_LOSS, 0.0, 1.0, 0.085),
              ("scratch", "lr", SCRATCH_LOSS, 0.0, 0.5, 0.08),
              ("scratch", "lr", SCRATCH_LOSS, 0.0, 0.25, 0.09),
              ("scratch", "lr", SCRATCH_LOSS, 0.0, 0.707107, 0.082)]
    keys = ("arm", "stage", "loss", "alpha", "lr_scale", "val_rmse")
    log = [{"student": "afno_s", "mode": "scratch" if t[0] == "scratch" else "offline", "run_id": f"r{i}",
            **dict(zip(keys, t))} for i, t in enumerate(trials)]
    searches = {"afno": {"distilled": {"scores": {"1.0": 0.065, "2.0": 0.06, "4.0": 0.063}, "best": 2.0,
                                       "interior": True, "n_trials": 3},
                         "scratch": {"scores": {"0.25": 0.09, "0.5": 0.08, "0.707107": 0.082, "1.0": 0.085},
                                     "best": 0.5, "interior": True, "n_trials": 4}},
                "mlp": {"distilled": {"scores": {"2.0": 0.07, "4.0": 0.06, "8.0": 0.05}, "best": 8.0,
                                      "interior": False, "n_trials": 3},
                        "scratch": {"scores": {"2.0": 0.07, "4.0": 0.05, "8.0": 0.06}, "best": 4.0,
                                    "interior": True, "n_trials": 3}}}
    return {"student": "afno_s", "seed": 0, "alpha": ALPHA, "loss": LOSS, "scratch_loss": SCRATCH_LOSS,
            "kd_lr_scale": 2.0, "scratch_lr_scale": 0.5,
            "lr_by_family": {f: {a: s["best"] for a, s in arms.items()} for f, arms in searches.items()},
            "lr_searches": searches, "n_trials_each": {"distilled": 5, "scratch": 5},
            "ablation_only": [], "trials": log}


def make_synthetic_results(profile: str = PROFILE, clim: float | None = None) -> dict:
    """Fill ``results_dir(profile)`` (point ECODISTILL_RESULTS at a temporary folder first)."""
    ids = {}
    teacher = {"kind": "teacher", "init": "pretrained", "method": "afno-pretrained",
               "family": "afno", "label_years": -1, **TEACHER}
    ids["teacher"] = t = _write(profile, "teacher-afno_pretrained", teacher,
                                {"rmse": 0.05, "r2": 0.9, "r2_anom": 0.6}, seed=0)
    ids["scratch_teacher"] = _write(profile, "teacher-afno_scratch",
                                    dict(teacher, init="scratch", method="afno-scratch"),
                                    {"rmse": 0.09, "r2": 0.8, "r2_anom": 0.4}, seed=0)
    budget_teachers = {str(y): _write(profile, f"teacher-afno_pretrained-y{y}", dict(teacher, label_years=y),
                                      {"rmse": 0.06 + 0.01 * y, "r2": 0.85, "r2_anom": 0.5}, seed=0)
                       for y in BUDGETS}
    if clim is not None:
        baseline = {"kind": "baseline", "init": "scratch", "method": "climatology",
                    "family": "climatology"}
        _write(profile, "baseline-climatology", baseline,
               {"rmse": 0.2, "r2": 0.5, "r2_anom": clim})
    for (student, init), values in RMSE.items():
        for seed, rmse in enumerate(values):
            ids[(student, init, seed)] = _student(profile, student, init, seed, rmse,
                                                  R2_ANOM[init][seed], R2[init][seed], teacher=t)
    # a distilled setting validation did not choose (one seed): must not enter the comparison
    _student(profile, "afno_s", "distilled", 0, 0.01, method="kd-mse-offline", teacher=t)
    # stale runs: an older teacher, an older dataset; current() must drop both
    ids["stale"] = _student(profile, "afno_s", "scratch", 0, 0.5, teacher="teacher-old-0")
    _student(profile, "afno_s", "scratch", 1, 0.5, teacher=t, dataset="old")
    # the alpha sweep at the tuned loss and lr (validation, seed 0) and the budget check
    for alpha, v in [(0.0, 0.07), (0.5, 0.06), (1.0, 0.075)]:
        _student(profile, "afno_s", "distilled", 0, v, tag="sweep", alpha=alpha, split="val", teacher=t)
    _student(profile, "afno_s", "scratch", 0, 0.078, tag="budget2x", split="val", teacher=t)
    _student(profile, "afno_s", "distilled", 0, 0.0594, tag="budget2x", split="val", teacher=t)
    _student(profile, "afno_s", "scratch", 0, 0.0741, tag="budget4x", split="val", teacher=t)
    atomic_write_json(results_dir(profile) / "selection.json", _selection())
    for seed in range(3):
        _student(profile, "afno_s", "scratch", seed, NOISEFREE, tag="noisefree", teacher=t)
        _student(profile, "afno_s", "distilled", seed, NOEXTRA, tag="noextra", teacher=t)
        _student(profile, "afno_s", "distilled", seed, TWIN, tag="alpha0", alpha=0.0, teacher=t)
        for init, rmse in LONG.items():  # both arms at twice the epochs (runs of seeds 0-2 only)
            _student(profile, "afno_s", init, seed, rmse, tag="long2x", teacher=t)
        for years, (scratch, distilled, same) in BUDGETS.items():
            _student(profile, "afno_s", "scratch", seed, scratch + 0.01 * seed,
                     tag=f"budget{years}", label_years=years, teacher=t)
            _student(profile, "afno_s", "distilled", seed, distilled, tag=f"budget{years}",
                     label_years=years, teacher=t)
            _student(profile, "afno_s", "distilled", seed, same, tag=f"budget{years}teacher{years}",
                     label_years=years, teacher=budget_teachers[str(years)])
    # headroom: two scratch AFNO sizes x 2 seeds (tuned form), and one of the old form (dropped)
    for n_params, values in {10_000: [0.1, 0.2], 100_000: [0.3, 0.5]}.items():
        for seed, v in enumerate(values):
            meta = {"kind": "student", "init": "scratch", "method": "headroom", "family": "afno",
                    "n_params": n_params, "flops_per_map": n_params * 100.0}
            _write(profile, f"headroom-afno_{n_params}-final", meta, {"rmse": 0.1, "r2_anom": v},
                   months=False, seed=seed)
    # the 10k size's search: x16 beat x8, so a final left from x8 (before the grid was widened) drops out
    meta = {"kind": "student", "init": "scratch", "method": "headroom", "family": "afno",
            "n_params": 10_000, "flops_per_map": 1e6}
    base_lr = get_profile(profile).student_train.lr
    for scale, val in [(8, 0.05), (16, 0.04)]:
        _write(profile, "headroom-afno_10000-tune", meta, {"rmse": val}, split="val", months=False,
               biomes=False, seed=0, train={"lr": scale * base_lr})
    _write(profile, "headroom-afno_10000-final", meta, {"rmse": 0.1, "r2_anom": -5.0}, months=False,
           seed=0, train={"lr": 8 * base_lr})
    _write(profile, "headroom-afno_5", {"kind": "student", "init": "scratch", "method": "headroom",
                                        "family": "afno", "n_params": 5, "flops_per_map": 5.0},
           {"rmse": 0.1, "r2_anom": -3.0}, months=False, seed=0)
    maps = results_dir(profile) / "maps"
    maps.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for key in [("afno_s", "scratch", 0), ("afno_s", "distilled", 0), "teacher"]:
        field = rng.uniform(0.02, 0.12, (8, 16)).astype(np.float32)
        field[:2] = np.nan  # "ocean"
        np.savez_compressed(maps / f"{ids[key]}.npz", rmse=field)
    atomic_write_json(results_dir(profile) / "teacher" / "teacher.json",
                      {"device": "cpu", "run_id": t, "scratch_run_id": ids["scratch_teacher"],
                       "dataset_hash": "abc", "seed": 0, "label_budget_run_ids": budget_teachers})
    return ids


TIMING = pd.DataFrame({"model": ["teacher", "afno_s", "mlp_s"], "kind": ["teacher", "student", "student"],
                       "torch_fp32_ms": [100.0, 10.0, 1.0]})


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The synthetic tree, built once per module; ECODISTILL_RESULTS points at it meanwhile.
    Yields the current rows (:func:`report.read_current`), the selection and the run ids."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ECODISTILL_RESULTS", str(tmp_path_factory.mktemp("results")))
        ids = make_synthetic_results()
        yield report.read_current(PROFILE), report.read_selection(PROFILE), ids


def test_nothing_there_yet(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    frame = report.read_current("cpu")
    for fn in (report.student_table, report.paired_comparison, report.alpha_sweep,
               report.controls, report.contrasts, report.headroom_table):
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
    run_id = "kd-bounded-offline-mlp_s_from_teacher-budget3teacher3-abcdef0123"
    assert report.parse_run_id(run_id) == ("mlp_s", "budget3teacher3")
    assert report.parse_run_id("teacher-afno_pretrained-0123456789") == ("", "")


def test_headroom_sizes_are_read_at_their_searched_learning_rate(tree):
    frame, _, _ = tree
    table = report.headroom_table(frame)
    small = table[table["model"] == "headroom"].set_index("n_params")
    assert small.loc[10_000, "n_seeds"] == 2 and small.loc[10_000, "r2_anom_mean"] == pytest.approx(0.15)
    assert len(small) == 2  # the x8 final of the superseded search is not a third row
    shown = report.headroom_shown(table)
    assert shown.iloc[0].tolist()[:2] == ["AFNO from scratch", "10 k"]  # counts for people
    assert shown.iloc[0]["anomaly R² (mean ± std)"] == "0.150 ± 0.071"


def test_current_drops_stale_runs(tree):
    frame, _, ids = tree
    assert ids["stale"] not in set(frame["run_id"])  # learned from another teacher
    assert (frame["dataset_hash"] == "abc").all()  # the old dataset's run is gone
    assert not frame["run_id"].str.startswith("headroom-afno_5-").any()  # old headroom form
    roles = frame[frame["kind"] == "teacher"].drop_duplicates("run_id").set_index("run_id")["teacher_role"]
    assert roles[ids["teacher"]] == "adapted" and roles[ids["scratch_teacher"]] == "scratch"
    assert set(roles) == {"adapted", "scratch", "adapted, 1 label year", "adapted, 3 label years"}
    assert report.current(frame, None).query("target == 'ndvi'").empty


def test_student_table_numbers(tree):
    frame, _, _ = tree
    t = report.student_table(frame)
    scratch = t[(t.student == "afno_s") & (t.init == "scratch")].iloc[0]
    distilled = t[(t.student == "afno_s") & (t.method == "kd-bounded-offline")].iloc[0]
    assert scratch.n_seeds == 3
    assert scratch.rmse_mean == pytest.approx(0.11) and scratch.rmse_std == pytest.approx(0.01)
    assert distilled.r2_anom_mean == pytest.approx(0.52)
    assert distilled.retained_skill == pytest.approx(0.52 / 0.6)  # no climatology row: S_clim = 0
    assert t.attrs["notes"][0].startswith("S_clim = 0 (no climatology row")
    assert distilled.r2_ratio == pytest.approx(0.86 / 0.9)
    assert distilled.params_ratio == pytest.approx(100) and distilled.flops_ratio == pytest.approx(100)
    mlp = t[(t.student == "mlp_s") & (t.init == "scratch")].iloc[0]
    assert mlp.params_ratio == pytest.approx(1200) and mlp.flops_ratio == pytest.approx(200)
    teacher = t[t.student == "teacher"].iloc[0]  # the adapted teacher only, not the budget ones
    assert teacher.rmse_mean == pytest.approx(0.05) and teacher.n_seeds == 1
    assert (t.student == "teacher (scratch)").sum() == 1
    assert report.readable(t).loc[(t.student == "afno_s") & (t.init == "scratch"), "rmse"].iloc[0] == \
        "0.110 ± 0.010"


def test_retained_skill_uses_climatology_row(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    make_synthetic_results(clim=0.1)
    t = report.student_table(report.read_current(PROFILE))
    distilled = t[(t.student == "afno_s") & (t.method == "kd-bounded-offline")].iloc[0]
    assert distilled.retained_skill == pytest.approx((0.52 - 0.1) / (0.6 - 0.1))
    assert "climatology baseline row" in t.attrs["notes"][0]
    # a teacher barely above climatology: retained skill is not printed as a finding
    assert "not reported" in report.retained_finding(t, "afno_s", s_clim=0.58)
    assert "keeps 0.840" in report.retained_finding(t, "afno_s", s_clim=0.1)


def test_paired_comparison(tree):
    frame, selection, _ = tree
    assert report.chosen_method(frame, selection) == ("kd-bounded-offline", 0.5)
    p = report.paired_comparison(frame, selection).set_index("student")
    a, m = p.loc["afno_s"], p.loc["mlp_s"]
    # the sign convention: distilled − scratch, negative where distillation lowers the error
    assert a.n_pairs == 3 and a.wins == 3 and a["diff"] == pytest.approx(-0.03)
    assert a.p_value == pytest.approx(0.25)  # exact two-sided Wilcoxon, 3 of 3 one way: 2 / 2**3
    assert a.gap_closed == pytest.approx(0.5) and a.gap_reason == ""
    # every biome differs by the same 0.03 in every seed, so any resample of seeds x biomes gives it
    assert a.ci_low == pytest.approx(-0.03) and a.ci_high == pytest.approx(-0.03)
    assert a.n_blocks == 2 and a.d_r2_anom == pytest.approx(0.20) and a.d_r2_anom_low > 0
    assert a.r2_anom_scratch == pytest.approx(0.32) and a.r2_anom_distilled == pytest.approx(0.52)
    assert a.std_scratch == pytest.approx(0.01) and a.std_distilled == pytest.approx(0.01)
    assert m["diff"] == pytest.approx(0.005) and m.wins == 0 and m.ci_low > 0
    assert np.isnan(m.gap_closed) and "not resolvable" in m.gap_reason
    assert a.rmse_teacher == pytest.approx(0.05)


def test_selection_tables(tree):
    frame, selection, _ = tree
    sweep = report.alpha_sweep(frame, selection)
    distilled = sweep[sweep.init == "distilled"].set_index("alpha")
    assert distilled.val_rmse.to_dict() == pytest.approx({0.0: 0.07, 0.5: 0.06, 1.0: 0.075})
    assert (distilled.lr_scale == 2.0).all()  # the distilled arm's tuned learning rate
    scratch = sweep[sweep.init == "scratch"].iloc[0]  # like with like: scratch at its own tuned lr
    assert (scratch.method, scratch.lr_scale, scratch.val_rmse) == ("scratch (huber)", 0.5, 0.08)
    counts = report.trial_counts(selection).set_index("arm")
    assert counts.loc["distilled"].tolist() == [2, 1, 2, 5] and counts.loc["scratch"].tolist() == [0, 2, 3, 5]
    searches = report.lr_search_table(selection).set_index(["family", "arm"])
    assert searches.loc[("afno", "scratch"), "lr_multipliers"] == "0.25, 0.5, 0.707, 1"
    assert searches.loc[("afno", "scratch"), "best_val_rmse"] == pytest.approx(0.08)
    assert searches.loc[("afno", "distilled"), "setting"] == "bounded, alpha 0.5"
    assert not searches.loc[("mlp", "distilled"), "interior"]
    losses = report.loss_trials(selection)
    assert losses[losses.chosen][["arm", "loss"]].values.tolist() == [["distilled", "bounded"],
                                                                      ["scratch", "huber"]]
    assert losses[losses.arm == "scratch"].alpha.isna().all()
    budget = report.budget_check(frame, selection, epochs=6)
    assert budget[["arm", "epochs"]].values.tolist() == [["scratch", 6], ["scratch", 12], ["scratch", 24],
                                                        ["distilled", 6], ["distilled", 12]]
    assert budget["change_pct"].tolist() == pytest.approx([np.nan, -2.5, -5.0, np.nan, -1.0], nan_ok=True)
    text = report.caveats.plateau_text(budget)  # the last doubling of each arm
    assert "scratch -5.0 % (12 → 24 epochs); distilled -1.0 % (6 → 12 epochs)" in text
    assert "not plateaued" in text
    assert "huber loss" in report.selection_text(selection)
    assert "afno 2 / 0.5" in report.selection_text(selection)


def test_controls_and_contrasts(tree):
    frame, selection, _ = tree
    c = report.controls(frame, selection).set_index("condition")
    assert c.loc["the distilled arm's settings with alpha 0 and no extra years", "rmse_mean"] == \
        pytest.approx(TWIN)
    assert c.loc["scratch on noise-free, gap-free targets", "rmse_mean"] == pytest.approx(NOISEFREE)
    assert c.loc["1 label year: scratch", "rmse_mean"] == pytest.approx(0.21)  # 0.20, 0.21, 0.22
    assert c.loc["3 label years: distilled, same-label teacher", "rmse_mean"] == pytest.approx(0.13)
    assert c.loc["all label years: scratch", "rmse_mean"] == pytest.approx(0.11)
    assert c.loc["distilled at twice the epochs", "rmse_mean"] == pytest.approx(LONG["distilled"])
    lines = report.findings.control_findings(report.contrasts(frame, selection), "afno_s")
    budgets = report.caveats.limitations("cpu", get_profile("cpu"), None, 2e6,
                                          contrasts=report.contrasts(frame, selection))
    assert any("With both arms trained for twice the epochs over 3 seeds, distillation raises" in line
               for line in budgets)
    assert any(line.startswith("At `afno_s`, with both arms trained for twice the epochs, distillation raises")
               for line in lines)
    k = report.contrasts(frame, selection).set_index("contrast")
    expected = {"distilled vs scratch": 0.03, "distilled vs teacher-free twin": TWIN - 0.08,
                "teacher-free twin vs scratch": 0.11 - TWIN, "extra years": NOEXTRA - 0.08,
                "distilled vs noise-free scratch": NOISEFREE - 0.08,
                "1 label year: all-label teacher": 0.21 - 0.15, "1 label year: same-label teacher": 0.21 - 0.17,
                "3 label years: all-label teacher": 0.16 - 0.12, "3 label years: same-label teacher": 0.16 - 0.13,
                "distilled vs scratch, twice the epochs": LONG["scratch"] - LONG["distilled"],
                "scratch: twice the epochs": 0.11 - LONG["scratch"],
                "distilled: twice the epochs": 0.08 - LONG["distilled"]}
    # arm − base: the negative of each base − arm above
    assert k["diff"].to_dict() == pytest.approx({name: -v for name, v in expected.items()})
    twin = k.loc["distilled vs teacher-free twin"]  # per-seed differences −0.03, −0.02, −0.01
    assert (twin.ci_low, twin.ci_high) == pytest.approx((-0.03, -0.01))
    assert k.loc["1 label year: all-label teacher", "label_years"] == 1
    assert k["question"].str.endswith("?").all()
    assert not k["identical"].any()
    runs = report.wide(frame)
    scratch = runs[(runs["student"] == "afno_s") & (runs["init"] == "scratch") & (runs["tag"] == "final")]
    same = report.comparison.paired_difference(frame, scratch, scratch)
    assert same["identical"] and same["diff"] == 0 and same["n_pairs"] == len(scratch)


def test_summary_table_and_findings(tree):
    frame, selection, _ = tree
    table, pairs = report.student_table(frame), report.paired_comparison(frame, selection)
    numbers = report.summary_numbers(table, pairs, TIMING).set_index("student")
    assert numbers.loc["afno_s", "verdict"] == "helps" and numbers.loc["mlp_s", "verdict"] == "hurts"
    assert numbers.loc["mlp_s", "speedup"] == pytest.approx(100)
    s = report.summary_table(table, pairs, TIMING).set_index("model")
    assert s.loc["afno_s", "ΔRMSE ×10⁻³ [95% CI]"] == "−30.00\n[−30.00, −30.00]"
    assert s.loc["afno_s", "anomaly R² scratch → distilled"] == "0.320 → 0.520"
    assert s.loc["afno_s", "ΔR² anomalies [95% CI]"].startswith("+0.200\n[+")
    assert s.loc["afno_s", "speed-up"] == "10.0×" and s.loc["teacher", "speed-up"] == "1.0×"
    assert s.loc["teacher", "anomaly R² scratch → distilled"] == "0.600"
    assert ["model", *s.columns] == report.summary.SUMMARY_COLUMNS
    html = report.show_table(s.reset_index(), main=True)._repr_html_()
    assert html.startswith('<table class="ed-table ed-main ed-wide">') and "−30.00<br>[−30.00, −30.00]" in html
    sizes = report.size_findings(report.summary_numbers(table, pairs, TIMING))
    assert "lowers the test RMSE: ΔRMSE = −30.00 [−30.00, −30.00] ×10⁻³, an interval below zero" in sizes[0]
    assert "raises the test RMSE: ΔRMSE = +5.00 [+5.00, +5.00] ×10⁻³, an interval above zero" in sizes[1]


def test_headline_and_abstract(tree):
    frame, selection, _ = tree
    cfg = get_profile(PROFILE)
    head = report.headline(frame, cfg, selection, hardware=report.hardware_label(PROFILE),
                           timing=TIMING, record=json.loads((results_dir(PROFILE) / "teacher" /
                                                             "teacher.json").read_text()))
    assert head["compression_params"] == pytest.approx(100) and head["student_params"] == 24_000
    assert head["gap_closed"] == pytest.approx(0.5) and "closes 50% of" in head["gap_closed_text"]
    assert head["rmse_diff"] == pytest.approx(-0.03) and head["n_seeds"] == 3
    assert head["verdict_sizes"].startswith("distilled students have a lower mean test RMSE than "
                                            "scratch at 1 of 2 student sizes")
    assert "keeps 0.867" in head["retained_text"]
    assert head["provenance"] == "profile cpu; hardware: cpu; 3 seeds (0, 1, 2)"
    abstract = head["abstract"]
    assert abstract.startswith("This build shows the reduced-scale `cpu` profile")
    assert "at 1 of 2 student sizes, raises it at 1" in abstract
    assert "the teacher-free twin" not in abstract and "teacher-free twin" in abstract
    assert "With both arms trained for twice the epochs over 3 seeds, distillation raises" in abstract
    assert "`" not in head["retained_text"] + head["gap_closed_text"]  # glued as plain text
    # every decimal number of the abstract is printed in the summary or the contrasts table
    shown = report.contrasts(frame, selection)
    tables = report.summary_table(report.student_table(frame), report.paired_comparison(frame, selection),
                                  TIMING).to_string() + " ".join(
        report.fmt_diff(d, lo, hi) for d, lo, hi in zip(shown["diff"], shown["ci_low"], shown["ci_high"]))
    tables += " ".join(report.fmt_dr2(d, lo, hi) for d, lo, hi in
                       zip(shown["d_r2_anom"], shown["d_r2_anom_low"], shown["d_r2_anom_high"]))
    for number in re.findall(r"[−+]?\d+\.\d+", abstract):
        assert number in tables, number
    assert "**One teacher seed.**" in head["limitations"] and "one test year (2013)" in head["limitations"]
    assert all(isinstance(v, (float, str)) for v in head.values())  # plain types glue cleanly
    json.dumps(head)
    smoke = report.abstract("smoke", get_profile("smoke"), report.summary_numbers(
        report.student_table(frame), report.paired_comparison(frame, selection), TIMING), shown, 1e5, 3)
    assert smoke.startswith(report.findings.SMOKE_NOTE)


def test_plots_draw_the_tables(tree):
    frame, selection, _ = tree
    t = report.student_table(frame)
    fig = plots.scaling_curves(t, method="kd-bounded-offline")
    ax = fig.axes[0]
    assert len(ax.containers) == 4  # 2 families x {scratch, distilled}
    assert any(np.allclose(line.get_ydata(), 0.6) for line in ax.get_lines())  # the teacher line
    fig, axes = matplotlib.pyplot.subplots(2, 3)
    plots.alpha_sweep_plot(axes[0, 0], report.alpha_sweep(frame, selection), selected=0.5)
    plots.loss_trials_plot(axes[0, 1], report.loss_trials(selection))
    plots.label_budget_plot(axes[0, 2], report.controls(frame, selection), all_years=16)
    plots.headroom_plot(axes[1, 0], report.headroom_table(frame))
    plots.biome_panels(axes[1, 1], report.biome_table(frame, "afno_s", selection))
    assert len(axes[1, 1].patches) == 6  # 2 biomes x {teacher, scratch, distilled}
    assert axes[0, 0].get_lines()[0].get_ydata().tolist() == pytest.approx([0.07, 0.06, 0.075])
    assert len(axes[0, 2].containers) == 3  # scratch, all-label teacher, same-label teacher
    assert axes[0, 1].get_xlim()[0] > 0.05  # a dot plot: no axis forced to zero, no bars
    maps = report.error_maps(PROFILE, frame, "afno_s", 0, selection)
    assert list(maps) == ["teacher", "scratch (afno_s)", "distilled (afno_s)"]
    fig = plots.error_maps(maps, difference=("distilled (afno_s)", "scratch (afno_s)"))
    titles = [a.get_title() for a in fig.axes]
    assert "distilled (afno_s) − scratch (afno_s)" in titles
    fig = plots.methods_figure()
    assert "distilled arm" in " ".join(t.get_text() for t in fig.axes[0].texts)
    matplotlib.pyplot.close("all")


def test_empty_tables_have_the_columns_of_full_ones(tree, tmp_path, monkeypatch):
    """A chapter selects the same columns whether or not results exist, so each builder's
    empty table has exactly the columns, in the same order, of its table with results."""
    frame, selection, _ = tree
    builders = {
        "student_table": lambda f, s: report.student_table(f),
        "paired_comparison": report.paired_comparison,
        "alpha_sweep": report.alpha_sweep,
        "controls": report.controls,
        "contrasts": report.contrasts,
        "biome_table": lambda f, s: report.biome_table(f, "afno_s", s),
        "headroom_table": lambda f, s: report.headroom_table(f),
        "budget_check": lambda f, s: report.budget_check(f, s, 6),
        "trial_counts": lambda f, s: report.trial_counts(s),
        "loss_trials": lambda f, s: report.loss_trials(s),
        "lr_search_table": lambda f, s: report.lr_search_table(s),
    }
    full = {name: list(build(frame, selection).columns) for name, build in builders.items()}
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    nothing = report.read_current(PROFILE)
    for name, build in builders.items():
        assert list(build(nothing, None).columns) == full[name], name


def test_teacher_finding_says_whether_there_is_skill_to_distil():
    numbers = pd.DataFrame({"student": ["afno_s", "mlp_s", "teacher"],
                            "r2_anom_scratch": [0.60, 0.66, np.nan],
                            "r2_anom_distilled": [0.62, 0.63, 0.64]})
    text = report.findings.teacher_finding(numbers)
    assert "0.640" in text and "at 1 of 2 sizes" in text and "`mlp_s`" in text and "no skill" in text
    below = report.findings.teacher_finding(numbers.assign(r2_anom_scratch=[0.5, 0.6, np.nan]))
    assert "every tuned scratch student stays below it" in below and "skill to distil" in below
    assert report.findings.teacher_finding(numbers[numbers["student"] == "teacher"]) == ""


def test_limitations_state_whether_training_had_plateaued():
    budget = pd.DataFrame({"arm": ["scratch", "scratch", "distilled", "distilled"], "epochs": [6, 12, 6, 12],
                           "change_pct": [np.nan, -10.75, np.nan, -3.98]})
    text = report.caveats.plateau_text(budget)
    assert "scratch -10.8 % (6 → 12 epochs); distilled -4.0 % (6 → 12 epochs)" in text and "not plateaued" in text
    assert "had plateaued" in report.caveats.plateau_text(budget.assign(change_pct=[np.nan, -1.0, np.nan, 0.5]))
    assert report.caveats.plateau_text(budget.iloc[0:0]) == ""
    lines = report.caveats.limitations("cpu", get_profile("cpu"), None, 2e6, budget=budget)
    assert any("**Training budgets.**" in line and "not plateaued" in line for line in lines)


def test_limitations_say_when_the_sweep_prefers_another_alpha():
    sweep = pd.DataFrame({"init": ["distilled"] * 3 + ["scratch"], "alpha": [0.25, 0.75, 1.0, np.nan],
                          "val_rmse": [0.0328, 0.0334, 0.0339, 0.0320]})
    text = report.caveats.sweep_text(sweep, 0.75)
    assert "prefers alpha = 0.25" in text and "1.8 % lower than the chosen alpha = 0.75" in text
    assert report.caveats.sweep_text(sweep, 0.25) == ""  # the choice is still the best
    lines = report.caveats.limitations("cpu", get_profile("cpu"), None, 2e6, sweep=sweep, chosen_alpha=0.75)
    assert lines[-2].startswith("**Coordinate-wise selection.**") and lines[-1].startswith("**Raspberry Pi")


def test_a_stronger_scratch_teacher_is_named(tree):
    frame, _, _ = tree
    skill = report.frames.teacher_role_skill(frame, ("scratch", "scratch, 2x steps"))
    assert skill["scratch"] == pytest.approx(0.4) and np.isnan(skill["scratch, 2x steps"])
    numbers = pd.DataFrame({"student": ["afno_s", "teacher"], "r2_anom_scratch": [0.64, np.nan],
                            "r2_anom_distilled": [0.63, 0.635]})
    text = report.findings.stronger_teacher_text(numbers, {"scratch": 0.637, "scratch, 2x steps": 0.70})
    assert "trained from scratch at twice the steps reaches 0.700" in text and "(best 0.640)" in text
    assert report.findings.stronger_teacher_text(numbers, {"scratch": 0.637}) == ""  # below a student
    assert report.findings.stronger_teacher_text(numbers, skill) == ""


def test_limitations_say_how_each_teacher_was_tuned():
    record = {"scratch_lr": {"best": 16.0, "interior": True, "scores": dict.fromkeys(["1", "2", "4", "8", "16", "32"], 1.0)},
              "scratch_long_run_id": "teacher-afno_scratch-0123456789"}
    text = report.caveats.teacher_tuning_text(get_profile("cpu"), record)
    assert "(6 rates, best x16 of the adaptation rate, inside the grid) and it was also trained" in text
    adapt = get_profile("cpu").adapt
    assert (f"at the profile's rate ({adapt.lr:g}) for {adapt.epochs} epochs of {adapt.steps_per_epoch} steps, "
            "without a search") in text
    assert report.caveats.teacher_tuning_text(get_profile("cpu"), {}) == ""
    chosen = report.caveats.teacher_tuning_text(get_profile("cpu"), {"candidates": [{"kind": "adapted"}, {"kind": "scratch"}]})
    assert chosen.startswith("**Teacher tuning.** The teacher is the best validated of 2 candidates (adapted, scratch)")
    assert "edge of its grid" not in chosen
    searches = {"long": {"scratch_lr": {"best": 16.0, "interior": False, "scores": dict.fromkeys("12345", 1.0)},
                         "adapted_lr": {"best": 1.0, "interior": True, "scores": dict.fromkeys("123", 1.0)}}}
    edge = report.caveats.teacher_tuning_text(get_profile("cpu"), {"candidates": [{"kind": "adapted"}],
                                                                    "histories": searches})
    assert "edge of its grid for the scratch teacher's at history long (best x16, 5 rates tried)" in edge
    assert "adapted teacher's" not in edge
    lines = report.caveats.limitations("cpu", get_profile("cpu"), record, 2e6)
    assert sum(line.startswith("**Teacher tuning.**") for line in lines) == 1


def test_identical_contrast_sides_are_named_not_scored():
    contrasts = pd.DataFrame({"contrast": ["teacher-free twin vs scratch"], "diff": [0.0], "ci_low": [0.0],
                              "ci_high": [0.0], "p_value": [np.nan], "n_pairs": [5], "identical": [True]})
    (line,) = report.findings.control_findings(contrasts, "afno_s")
    assert "identical runs" in line and "×10⁻³" not in line
    # a difference that merely rounds to zero is still scored
    (line,) = report.findings.control_findings(contrasts.assign(identical=False), "afno_s")
    assert "identical runs" not in line and "×10⁻³" in line


def test_limitations_state_how_many_seeds_and_the_wilcoxon_floor(tree):
    """Honest about seeds: 3 pairs are fewer than the design's 10, and p cannot go below 0.25."""
    frame, selection, _ = tree
    lines = report.caveats.limitations("cpu", get_profile("cpu"), None, 2e6,
                                       contrasts=report.contrasts(frame, selection, n_boot=100))
    seeds = next(line for line in lines if line.startswith("**Seeds.**"))
    assert "pairs 3 student seeds, fewer than the 10" in seeds and "cannot give p below 0.2500" in seeds
    assert report.caveats.seeds_text_for(None) == ""


def test_conclusion_counts_read_as_words_or_not_at_all():
    from ecodistill.report.headline import count_texts

    texts = count_texts({"n_sizes": 4.0, "n_hurts": 1.0, "n_scratch_match": 2.0})
    assert texts == {"hurts_count_text": " (1 of 4 sizes raise it)",
                     "scratch_match_text": " (at 2 of the 4 sizes the tuned scratch student reaches it)"}
    none = count_texts({"n_sizes": 0.0, "n_hurts": np.nan, "n_scratch_match": np.nan})
    assert none == {"hurts_count_text": "", "scratch_match_text": ""}  # never "nan of 0 sizes"


def test_teacher_lr_search_reads_both_candidates_of_the_chosen_history():
    from ecodistill.report.pretraining import teacher_lr_search

    search = lambda best, interior, keys: {"best": best, "interior": interior,  # noqa: E731
                                           "scores": {k: 1.0 / float(k) for k in keys}}
    record = {"run_id": "teacher-afno_pretrained-a", "candidates": [{"run_id": "teacher-afno_pretrained-a",
                                                                       "history": "long"}],
              "histories": {"today": {"scratch_lr": search(2.0, True, ["1", "2", "4"])},
                            "long": {"adapted_lr": search(8.0, False, ["2", "4", "8"]),
                                     "scratch_lr": search(16.0, False, ["4", "8", "16"])}}}
    table = teacher_lr_search(record, "cpu")
    assert len(table) == 6 and set(table["teacher"]) == {"pre-trained, adapted", "from scratch"}
    chosen = table[table["chosen"] == "yes"].set_index("teacher")["learning rate (× base)"].to_dict()
    assert chosen == {"pre-trained, adapted": 8.0, "from scratch": 16.0}
    assert sorted(table.attrs["edge"]) == ["adapted", "scratch"]
    legacy = teacher_lr_search({"scratch_lr": search(4.0, True, ["2", "4", "8"])}, "cpu")
    assert set(legacy["teacher"]) == {"from scratch"} and legacy.attrs["edge"] == []
    assert teacher_lr_search(None, "cpu").empty


def test_the_real_grid_table_shows_only_the_newest_bench_run():
    from ecodistill.report.timings import grid_timings

    def rows(run_id, models):
        return [{"run_id": run_id, "model": m, "kind": "teacher" if m == "teacher" else "student",
                 "n_params": 1, "flops_per_map": 1.0, "runtime": "torch", "dtype": "fp32", "threads": 1,
                 "median_ms": 1.0, "p90_ms": 1.0, "n": 20, "grid": grid} for m in models]

    grid = "720x1440"
    t = pd.DataFrame(rows("bench-old", ["teacher", "mlp_s"]) + rows("bench-new", ["teacher", "mlp_xs"])
                     + [{**rows("bench-other", ["teacher"])[0], "grid": "32x64"}])
    table = grid_timings(t, grid)
    assert set(table["run_id"]) == {"bench-new"} and set(table["model"]) == {"teacher", "mlp_xs"}


def test_an_arm64_check_of_other_students_says_so():
    from ecodistill.data.prepare import input_channel_names
    from ecodistill.report.timings import arm64_staleness

    cfg = get_profile("cpu")
    now = {"in_chans": len(input_channel_names(cfg.data)), "models": [{"model": s.name} for s in cfg.students]}
    assert arm64_staleness("cpu", now) == ""
    old = {"in_chans": 40, "models": [{"model": "mlp_s"}]}
    text = arm64_staleness("cpu", old)
    assert "earlier configuration's students (mlp_s, 40 input channels)" in text
    assert "bash scripts/arm64_check.sh cpu" in text


def test_interval_method_before_any_pair_names_the_design():
    text = report.interval_method(pd.DataFrame())
    assert text.startswith("95% percentile interval of a two-way cluster bootstrap") and "none computed yet" in text
