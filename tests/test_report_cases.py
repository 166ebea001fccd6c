"""The results chapter's new tables on a results tree whose answers are known: the headroom
ladder (size x history, teacher, LightGBM, ceiling and persistence), the privileged-information
case, the nowcast against persistence, memory at one size, the summary with its use, history
and ceiling columns, the measured goals, the old -> new table, and the Discussion's
alternatives (exactly one of each group holds; a flipped frame flips the glued words; none
holding fails the build at cpu)."""
from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
import report_fakes as fake

from ecodistill import plots
from ecodistill.report import cases, claims, discussion, frames, goals, ladder

matplotlib.use("Agg")
SKILL = {  # history -> size -> anomaly R² of seed 0 (seeds 1, 2 add +0.01, -0.01)
    "today": {"mlp_xs": 0.40, "afno_s": 0.45},
    "long": {"mlp_xs": 0.60, "afno_s": 0.66},
    "recurrent": {"mlp_xs": 0.62, "afno_s": 0.64},
}
SIZES = {"mlp_xs": 2_000, "afno_s": 120_000}


def build(field_gain: float = 0.05, nowcast: float = 0.80, teacher_long: float = 0.80) -> dict:
    """Write the tree; returns the teacher record."""
    t_long = fake.teacher("pretrained", teacher_long, n_params=2_000_000)
    t_today = fake.teacher("pretrained", 0.50, n_params=2_000_000, name="teacher-today", history="today")
    for history, sizes in SKILL.items():
        for size, skill in sizes.items():
            for seed, d in enumerate((0.0, 0.01, -0.01)):
                fake.student("scratch", size, "final", seed, skill + d, t_long, n_params=SIZES[size],
                             family=size.split("_")[0], history=history)
    for history, value in (("today", 0.50), ("long", 0.70)):
        fake.baseline("lightgbm", value, history=history)
    for method, value in (("ceiling-noise-free", 0.90), ("ceiling-bayes", 0.95), ("persistence", 0.75),
                          ("persistence-16d", -0.1), ("climatology", 0.0)):
        fake.baseline(method, value)
    for seed, d in enumerate((0.0, 0.01, -0.01)):
        for arm, gain in (("scratch", 0.0), ("distilled", field_gain)):
            fake.student(arm, "afno_s", "field", seed, 0.50 + d + gain, t_long, n_params=SIZES["afno_s"],
                         history="recurrent", inputs="anchor")
        for latency, value in ((1, nowcast), (16, 0.6)):
            fake.student("scratch", "afno_s", f"nowcast{latency}", seed, value + d, t_long, n_params=SIZES["afno_s"],
                         ndvi_latency=latency)
        for history, value in (("stack", 0.55), ("sequence", 0.58)):
            fake.student("scratch", "afno_s", "final", seed, value + d, t_long, n_params=SIZES["afno_s"],
                         history=history)
    return {"run_id": t_long, "dataset_hash": fake.DATASET, "seed": 0, "by_history": {"today": t_today}}


@pytest.fixture()
def tree(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    frames._config_variant.cache_clear()
    record = build()
    return record, claims.Results(fake.PROFILE, n_boot=200, record=record)


def test_ladder_table_and_verdicts(tree):
    _, r = tree
    table = r["ladder"]
    assert set(table["history"]) == {"today", "long", "recurrent", "stack", "sequence"}
    long = table[table["history"] == "long"].set_index("model")
    assert long.loc["afno_s", "n_seeds"] == 3 and long.loc["afno_s", "r2_anom_mean"] == pytest.approx(0.66)
    assert long.loc["teacher", "r2_anom_mean"] == pytest.approx(0.80) and long.loc["LightGBM", "role"] == "LightGBM"
    assert table.attrs["refs"]["ceiling"] == pytest.approx(0.90) and table.attrs["refs"]["persistence"] == 0.75
    verdicts = r["verdicts"].set_index("history")
    assert verdicts.loc["long", "headroom"] == "yes"  # 0.80 - 0.66 > 2 x 0.01
    assert verdicts.loc["today", "headroom"] == "yes"  # 0.50 - 0.45 > 2 x 0.01
    assert verdicts.loc["recurrent", "headroom"] == "–"  # no teacher at that history
    assert ladder.headroom_histories(r["verdicts"]) == ["today", "long"]
    assert "today, long" in ladder.ladder_text(r["verdicts"])
    shown = ladder.ladder_shown(table)
    assert shown.iloc[0]["anomaly R² (mean ± std)"].startswith("0.400 ± 0.010")
    _, ax = matplotlib.pyplot.subplots()
    plots.ladder_plot(ax, table)
    assert any("ceiling" in t.get_text() for t in ax.get_legend().get_texts())


def test_privileged_case(tree):
    _, r = tree
    table = r["privileged"]
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["inputs"], row["history"], row["n_pairs"]) == ("anchor", "recurrent", 3)
    assert row["d_r2_anom"] == pytest.approx(0.05) and row["verdict"] == "helps"
    assert (row["teacher_inputs"], row["teacher_history"]) == ("era5", "long")
    shown = cases.privileged_shown(table)
    assert shown.iloc[0]["field device sees"] == "anchor, recurrent"


def test_nowcast_and_memory(tree):
    _, r = tree
    now = r["nowcast"].set_index("latency")
    assert now.loc[1, "beats"] == "yes" and now.loc[1, "persistence"] == pytest.approx(0.75)
    assert now.loc[16, "beats"] == "yes" and now.loc[16, "persistence"] == pytest.approx(-0.1)
    memory = r["memory"].set_index("history")
    assert list(memory.index) == ["today", "long", "recurrent", "stack", "sequence"]
    shown = cases.memory_shown(r["memory"], fake.PROFILE).set_index("history")
    assert shown.loc["today", "state per pixel (bytes)"] == 0


def test_summary_with_cases(tree):
    _, r = tree
    summary = pd.DataFrame({"model": ["afno_s"], "parameters": ["120 k"], "anomaly R² scratch → distilled": ["x"]})
    out = cases.summary_with_cases(summary, r["own"], r["ladder"].attrs["refs"], r["privileged"], r["nowcast"])
    assert list(out.columns[:3]) == ["model", "use", "history"] and (out["ceiling"] == "0.900").all()
    assert set(out["use"]) == {"emulation", "nowcast\nL=1", "nowcast\nL=16"}
    assert "field device" in out["model"].iloc[1]


def test_goals_on_known_results(tree):
    _, r = tree
    table = goals.goal_table(r).set_index("goal")
    assert table.loc["nowcast", "status"] == "met"
    assert table.loc["headroom", "status"] == "met" and "history long" in table.loc["headroom", "text"]
    assert table.loc["lightgbm", "status"] == "met"  # the teacher, 0.80 (one run), against LightGBM's 0.70
    assert "(teacher)" in table.loc["lightgbm", "text"]
    sentences = goals.goal_sentences(goals.goal_table(r))
    assert len(sentences) == 5 and sentences[0].startswith("In the nowcast use")
    old_new = goals.old_new_table(None, r)
    assert (old_new["old world"] == "not measured").all() and old_new.loc[0, "new world"].startswith("met")


def test_discussion_alternatives_follow_the_results(tmp_path, monkeypatch):
    """Each group glues the alternative that holds; flipping the results flips the words."""
    for gain, nowcast, expected in ((0.05, 0.80, ("privileged-helps", "nowcast-beats")),
                                    (0.0, 0.70, ("privileged-no-help", "nowcast-does-not-beat"))):
        monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path / f"g{gain}"))
        frames._config_variant.cache_clear()
        record = build(field_gain=gain, nowcast=nowcast)
        r = claims.Results(fake.PROFILE, n_boot=200, record=record)
        for group, key in zip(("disc_privileged", "disc_nowcast"), expected):
            assert claims.chosen(r, group).key == key
            assert discussion.discussion_texts(r)[group] == claims.REGISTRY[key].quote
        table = claims.evaluate(r, [c.key for c in claims.group_claims("disc_nowcast")])
        assert sorted(table["status"]) == ["alternative not chosen", "holds"]
        assert claims.chosen(r, "disc_ladder").key == "ladder-headroom"
        assert claims.chosen(r, "disc_memory").key == "memory-over-size"  # +0.21 by history, +0.06 by size


def test_no_alternative_holding_fails_the_build_naming_the_group(tree, monkeypatch):
    _, r = tree
    broken = claims.Claim(**{**claims.REGISTRY["nowcast-does-not-beat"].__dict__, "check": lambda r: False})
    monkeypatch.setitem(claims.REGISTRY, "nowcast-does-not-beat", broken)
    fixed = claims.Claim(**{**claims.REGISTRY["nowcast-beats"].__dict__, "check": lambda r: False})
    monkeypatch.setitem(claims.REGISTRY, "nowcast-beats", fixed)
    with pytest.raises(claims.ClaimError, match="disc_nowcast"):
        claims.chosen(r, "disc_nowcast")
    with pytest.raises(claims.ClaimError, match="nowcast-beats"):
        claims.verify(r, ["nowcast-beats", "nowcast-does-not-beat"])
    smoke = claims.Results("smoke", nowcast=r["nowcast"])
    assert "no alternative of disc_nowcast holds" in claims.chosen_text(smoke, "disc_nowcast")


def test_alternatives_without_results_are_not_checkable(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    frames._config_variant.cache_clear()
    r = claims.Results(fake.PROFILE, n_boot=50)
    assert claims.chosen(r, "disc_privileged") is None
    assert claims.chosen_text(r, "disc_privileged", "run the matrix") == "run the matrix"
    table = claims.evaluate(r, [c.key for c in claims.group_claims("disc_ladder")])
    assert table["status"].str.startswith("not checkable").all()
    for table in (r["ladder"], r["privileged"], r["nowcast"], r["memory"]):
        assert table.empty and "python -m ecodistill matrix --profile cpu" in table.attrs["missing"]
    assert ladder.ladder_verdicts(r["ladder"]).empty


def test_every_discussion_group_partitions_its_outcomes(tree):
    """On known results every group has exactly one alternative holding."""
    _, r = tree
    for group in discussion.DISCUSSION_GROUPS:
        members = claims.group_claims(group)
        assert len(members) >= 2, group
        if any(not r.has(n) for m in members for n in m.needs):
            continue
        assert sum(bool(m.check(r)) for m in members) == 1, group


def test_gains_need_today_and_two_sizes():
    table = pd.DataFrame({"history": ["long", "long"], "role": "scratch", "n_params": [1, 2],
                          "r2_anom_mean": [0.1, 0.2]})
    assert discussion.gains(table, "long") is None
    today = pd.concat([table, table.assign(history="today", r2_anom_mean=[0.0, 0.05])])
    memory, size = discussion.gains(today, "long")
    assert memory == pytest.approx(0.15) and size == pytest.approx(0.1)
    assert np.isfinite(memory)


def test_old_world_is_read_from_its_snapshot(tree):
    """The first world's record and selection, kept before a newer world overwrites them, give
    that world's results by its dataset hash (here the tree is 'v1' by the realism hashes)."""
    from ecodistill.utils import atomic_write_json, results_dir

    record, _ = tree
    folder = results_dir(fake.PROFILE)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"source": ["v1", "v2"], "dataset_hash": [fake.DATASET, "newer"], "statistic": "s",
                  "variable": "x", "value": 1.0, "n": 1}).to_csv(folder / "data" / "realism.csv", index=False)
    assert goals.world_results(fake.PROFILE, "v1") is None  # no teacher record, no snapshot
    atomic_write_json(folder / "teacher" / "teacher.json", record)
    assert goals.snapshot_world(fake.PROFILE, "v1") and not goals.snapshot_world(fake.PROFILE, "v2")
    assert (goals.world_dir(fake.PROFILE, "v1") / "teacher.json").is_file()
    (folder / "teacher" / "teacher.json").unlink()  # the newer world's protocol replaced it
    old = goals.world_results(fake.PROFILE, "v1", n_boot=50)
    assert old["record"]["run_id"] == record["run_id"] and len(old["ladder"])


def test_study_status_names_the_stages_with_and_without_results():
    probe = pd.DataFrame({"variant": ["land"], "r2_test": [0.9]})
    partial = claims.Results("cpu", record={"run_id": "t"}, probe=probe, realism=pd.DataFrame(),
                             ladder=pd.DataFrame(), numbers=pd.DataFrame(), contrasts=pd.DataFrame(),
                             privileged=pd.DataFrame(), nowcast=pd.DataFrame(), memory=pd.DataFrame(),
                             old={})
    text = discussion.study_status(partial)
    assert "results for the teacher choice and the probe of pre-training, and not yet for the realism check" in text
    assert text.count(" and ") >= 2 and "Old world" not in text
    frames_ = {name: probe for _, name in discussion.STUDY_STAGES if name != "record"}
    complete = claims.Results("cpu", record={"run_id": "t"}, old={"v1": True}, **frames_)
    assert discussion.study_status(complete).startswith("Every stage of the study has results at the cpu profile.")
    assert "Old world, new world" in discussion.study_status(complete)


def test_lightgbm_goal_before_the_main_comparison_quotes_lightgbm(tree):
    record, _ = tree
    before = claims.Results(fake.PROFILE, n_boot=200, record=record, table=pd.DataFrame(columns=["r2_anom_mean"]))
    goal = goals.lightgbm_goal(before)
    assert goal["status"] == "not measured"
    assert goal["text"].startswith("LightGBM reaches 0.700") and "no model of the main comparison" in goal["text"]
