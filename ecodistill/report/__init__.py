"""The chapters' tables, checks and computed sentences, from result files: one module per
chapter concept, every public name re-exported here (``from ecodistill import report``).

- :mod:`~ecodistill.report.frames` (all chapters): reading result rows and the validation
  selection, one row per run, aggregating over seeds, :func:`show`;
- :mod:`~ecodistill.report.text` (all chapters): what is missing and which command makes it,
  provenance, percentages, the size target;
- :mod:`~ecodistill.report.teacher` (chapter 2; the headroom table also chapter 4):
  architecture, teacher skill, biomes, the headroom check, the pre-training verdict;
- :mod:`~ecodistill.report.run` (chapter 3): one distillation run: objective, metrics,
  fidelity, history, error maps, cost;
- :mod:`~ecodistill.report.comparison` (chapter 4): distilled vs scratch: the student table,
  the paired test, the selection on validation years, controls, biomes, error maps;
- :mod:`~ecodistill.report.headline` (chapter 4, quoted by the intro and the conclusions):
  the abstract's numbers and verdicts;
- :mod:`~ecodistill.report.timings` (chapter 5): measured latencies, speed-ups, int8 effects,
  the speed targets, the ARM64 check and Raspberry Pi measurements.

What each reads is in its module docstring: result rows, ``selection.json``, run configs,
stored error maps, timings and the teacher record under ``results/<profile>/``; the architecture
tables build networks on PyTorch's ``meta`` device (no weights, no data). Nothing trains.
Every table builder returns a frame even when there are no results: no rows, the usual
columns, and ``attrs["missing"]`` naming the command that makes them, which :func:`show`
and :mod:`ecodistill.plots` display in the table's or figure's place.
"""
from __future__ import annotations

from .comparison import (
    alpha_sweep,
    biome_table,
    chosen_method,
    controls,
    error_maps,
    loss_ablation,
    lr_trials,
    paired_comparison,
    student_table,
)
from .frames import (
    META,
    SETTING,
    SIZE,
    aggregate,
    climatology_skill,
    empty_table,
    labelled,
    parse_run_id,
    profile_of,
    read_results,
    read_selection,
    readable,
    show,
    students,
    teacher_means,
    wide,
)
from .headline import headline, selection_text
from .run import (
    cost_table,
    fidelity_table,
    model_cards,
    objective_text,
    run_headline,
    run_history,
    run_metrics,
    run_provenance,
    stored_maps,
)
from .teacher import (
    adaptation_verdict,
    architecture_table,
    headroom_check,
    headroom_table,
    input_channel_count,
    teacher_biomes,
    teacher_frame,
    teacher_headline,
    teacher_predictions_ready,
    teacher_provenance,
    teacher_record_text,
    teacher_run_ids,
    teacher_skill,
)
from .text import (
    hardware_label,
    no_headroom_message,
    no_results_message,
    no_teacher_message,
    pct,
    provenance_text,
    seeds_text,
    target_check,
    teacher_command,
)
from .timings import (
    arm64_table,
    grid_timings,
    host_text,
    int8_effect,
    int8_skill,
    int8_texts,
    latest_run,
    no_timings_message,
    pi_timings,
    read_timing_rows,
    reference_speedups,
    speed_targets,
    speedups,
    timing_table,
    trained_skill,
)

__all__ = [
    "META", "SETTING", "SIZE", "adaptation_verdict", "aggregate", "alpha_sweep",
    "architecture_table", "arm64_table", "biome_table", "chosen_method", "climatology_skill",
    "controls", "cost_table", "empty_table", "error_maps", "fidelity_table", "grid_timings",
    "hardware_label", "headline", "headroom_check", "headroom_table", "host_text",
    "input_channel_count", "int8_effect", "int8_skill", "int8_texts", "labelled", "latest_run",
    "loss_ablation", "lr_trials", "model_cards", "no_headroom_message", "no_results_message",
    "no_teacher_message", "no_timings_message", "objective_text", "paired_comparison",
    "parse_run_id", "pct", "pi_timings", "profile_of", "provenance_text", "read_results",
    "read_selection", "read_timing_rows", "readable", "reference_speedups", "run_headline",
    "run_history", "run_metrics", "run_provenance", "seeds_text", "selection_text", "show",
    "speed_targets", "speedups", "stored_maps", "student_table", "students", "target_check",
    "teacher_biomes", "teacher_command", "teacher_frame", "teacher_headline", "teacher_means",
    "teacher_predictions_ready", "teacher_provenance", "teacher_record_text", "teacher_run_ids",
    "teacher_skill", "timing_table", "trained_skill", "wide",
]
