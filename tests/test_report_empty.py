"""Before any result exists, every chapter table builder of :mod:`ecodistill.report` returns a
table with no rows whose ``attrs["missing"]`` names the command that makes the results,
:func:`ecodistill.report.show` renders it as an empty table captioned with that command, and
every figure helper of :mod:`ecodistill.plots` draws the command instead of a plot. This is
what lets the chapters' cells run without an ``else`` branch."""
from __future__ import annotations

import matplotlib
import pandas as pd
import pytest

from ecodistill import plots, report
from ecodistill.config import get_profile
from ecodistill.experiments.compressed_skill import compressed_skill

matplotlib.use("Agg")
PROFILE = "cpu"
MATRIX = f"python -m ecodistill matrix --profile {PROFILE}"
TEACHER = f"python -m ecodistill train-teacher --profile {PROFILE}"
HEADROOM = f"{MATRIX} --stages headroom"
BENCH = f"python -m ecodistill.deploy.bench --profile {PROFILE}"

#: name -> (builder of the empty results frame, the command its message must name)
BUILDERS = {
    "student_table": (report.student_table, MATRIX),
    "paired_comparison": (report.paired_comparison, MATRIX),
    "alpha_sweep": (report.alpha_sweep, MATRIX),
    "loss_trials": (lambda frame: report.loss_trials(report.read_selection(PROFILE), PROFILE), MATRIX),
    "lr_search_table": (lambda frame: report.lr_search_table(report.read_selection(PROFILE), PROFILE),
                        MATRIX),
    "trial_counts": (lambda frame: report.trial_counts(None, PROFILE), MATRIX),
    "budget_check": (lambda frame: report.budget_check(frame, None, 6), MATRIX),
    "controls": (report.controls, MATRIX),
    "contrasts": (report.contrasts, MATRIX),
    "summary_table": (lambda frame: report.summary_table(report.student_table(frame),
                                                         report.paired_comparison(frame)), MATRIX),
    "teacher_lr_search": (lambda frame: report.teacher_lr_search(None, PROFILE), TEACHER),
    "biome_table": (lambda frame: report.biome_table(frame, "afno_s"), MATRIX),
    "headroom_table": (report.headroom_table, HEADROOM),
    "teacher_skill": (report.teacher_skill, TEACHER),
    "teacher_biomes": (report.teacher_biomes, TEACHER),
    "teacher_frame": (lambda frame: report.teacher_skill(report.teacher_frame(frame, None)),
                      TEACHER),
    "run_metrics": (lambda frame: report.run_metrics(frame, {}), TEACHER),
    "fidelity_table": (lambda frame: report.fidelity_table(frame, {}), TEACHER),
    "read_timing_rows": (lambda frame: report.read_timing_rows(PROFILE), BENCH),
    "timing_table": (lambda frame: report.timing_table(PROFILE, _timings()), BENCH),
    "speedups": (lambda frame: report.speedups(_timings()), BENCH),
    "int8_effect": (lambda frame: report.int8_effect(_timings()), BENCH),
    "grid_timings": (lambda frame: report.grid_timings(_timings()), "720x1440"),
    "reference_speedups": (lambda frame: report.reference_speedups(_timings()), "fourcastnet"),
    "arm64_table": (lambda frame: report.arm64_table(PROFILE), "scripts/arm64_check.sh cpu"),
    "pi_timings": (lambda frame: report.pi_timings(), "No Raspberry Pi was attached"),
    "current_compressed_skill": (lambda frame: report.current_compressed_skill(PROFILE),
                                 f"python -m ecodistill compressed-skill --profile {PROFILE}"),
    "compressed_skill": (lambda frame: compressed_skill(PROFILE),
                         f"python -m ecodistill compressed-skill --profile {PROFILE}"),
}


def _timings() -> pd.DataFrame:
    return report.latest_run(report.read_timing_rows(PROFILE), "32x64")


@pytest.fixture()
def frame(tmp_path, monkeypatch):
    """The result rows of an empty results tree, read as the chapters read them."""
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    return report.read_results(PROFILE)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_builder_renders_an_empty_table_naming_the_command(frame, name):
    build, command = BUILDERS[name]
    table = build(frame)
    assert isinstance(table, pd.DataFrame) and table.empty
    assert len(table.columns), f"{name}: an empty table still has its columns"
    assert command in table.attrs["missing"]
    html = report.show(table).to_html()
    assert f"<caption>{table.attrs['missing']}</caption>" in html
    shown = report.show_table(table, main=True)
    assert table.attrs["missing"].replace("—", "") in shown._repr_html_().replace("—", "")
    assert repr(shown) == table.attrs["missing"]


def test_readable_views_of_empty_tables_keep_the_message(frame):
    """The chapters show :func:`report.readable` views with selected columns: both work on an
    empty table and keep its message."""
    cols = ["student", "family", "init", "method", "alpha", "n_params", "flops_per_map",
            "n_seeds", "rmse", "r2", "r2_anom", "retained_skill", "r2_ratio", "params_ratio",
            "flops_ratio"]
    shown = report.readable(report.student_table(frame))[cols]
    assert MATRIX in report.show(shown).to_html()
    skill = report.readable(report.teacher_skill(frame), ("r2", "r2_anom", "rmse", "rmse_latw"))
    assert TEACHER in report.show(skill.set_index("model")).to_html()


def test_text_and_numbers_without_results(frame):
    """Verdicts and headline numbers fall back to the message; nothing raises."""
    assert report.headroom_check(report.headroom_table(frame))["verdict"].endswith("--stages headroom")
    assert report.adaptation_verdict(report.teacher_skill(frame)).endswith(TEACHER)
    assert report.teacher_provenance(PROFILE, None).endswith(TEACHER)
    assert report.teacher_record_text(PROFILE, None).endswith(TEACHER)
    assert report.teacher_run_ids(None) == {}
    assert report.run_provenance(PROFILE, 0, {}, "cpu").endswith(TEACHER)
    assert report.host_text(PROFILE, "32x64", _timings()).startswith(f"no {PROFILE} timings yet")
    head = report.headline(frame, get_profile(PROFILE))
    assert head["verdict_sizes"].endswith(MATRIX) and "No student results" in head["abstract"]
    assert head["findings_sizes"] == f"- not yet run at the {PROFILE} profile (run python -m ecodistill matrix --profile {PROFILE})"
    assert head["findings_controls"] == head["findings_sizes"] and "Limitations" not in head["limitations"]
    goals = report.speed_targets(PROFILE, report.timing_table(PROFILE, _timings()), _timings())
    assert goals["value"].iloc[0] == "n/a" and BENCH in goals["met"].iloc[0]
    assert report.int8_texts(report.int8_effect(_timings())) == ("n/a", "no model (no int8 timings)")


def _drawn_text(fig) -> str:
    return " ".join(t.get_text().replace("\n", " ") for ax in fig.axes for t in ax.texts)


def test_figures_draw_the_message(frame):
    table = report.student_table(frame)
    figures = [plots.scaling_curves(table, method="kd-mse-offline"),
               plots.error_maps({}, missing=MATRIX),
               plots.teacher_curves({"pretrain": [], "adapt": []}, missing=TEACHER),
               plots.biome_skill({"test R²": report.teacher_biomes(frame, "r2")})]
    for fig, command in zip(figures, [MATRIX, MATRIX, TEACHER, TEACHER]):
        assert command in _drawn_text(fig)
    empty_axes = {
        MATRIX: [(plots.alpha_sweep_plot, report.alpha_sweep(frame)),
                 (plots.loss_trials_plot, report.loss_trials(None, PROFILE)),
                 (plots.biome_panels, report.biome_table(frame, "afno_s"))],
        HEADROOM: [(plots.headroom_plot, report.headroom_table(frame))],
        BENCH: [(plots.pareto, report.timing_table(PROFILE, _timings()))],
    }
    for command, calls in empty_axes.items():
        for draw, data in calls:
            fig, ax = matplotlib.pyplot.subplots()
            draw(ax, data)
            assert command in _drawn_text(fig), draw.__name__
            assert fig.get_figheight() == 1.0  # a message, not an empty plot area
    fig, ax = matplotlib.pyplot.subplots()
    plots.label_budget_plot(ax, report.controls(frame), all_years=16)
    assert MATRIX in _drawn_text(fig)
    fig, ax = matplotlib.pyplot.subplots()
    plots.loss_curves(ax, {"distilled": [], "scratch": []}, missing=TEACHER)
    assert TEACHER in _drawn_text(fig)
    matplotlib.pyplot.close("all")
