"""The chapters' tables, checks and computed sentences, from result files: one module per
chapter concept, every public name re-exported here (``from ecodistill import report``).

- :mod:`~ecodistill.report.frames` (all chapters): reading result rows and the validation
  selection, one row per run, aggregating over seeds, :func:`show`;
- :mod:`~ecodistill.report.realism` (chapter 2, data): the world versions and the realism
  table, judged against its targets, with what each miss biases;
- :mod:`~ecodistill.report.uses` (chapter 2; quoted by chapter 4): input sets, history
  settings, and the references of each use (emulation, nowcast, ceiling);
- :mod:`~ecodistill.report.pretraining` (chapter 2, teacher): the probe of what pre-training
  teaches, the teacher choice among validated candidates, pre-training at each label budget;
- :mod:`~ecodistill.report.memory_cost` (chapter 5): the cost of each history setting on a small
  device, the recurrent state, the LightGBM timings;
- :mod:`~ecodistill.report.text` (all chapters): what is missing and which command makes it,
  provenance, percentages, the size target;
- :mod:`~ecodistill.report.teacher` (chapter 2; the headroom table also chapter 4):
  architecture, teacher skill, biomes, the headroom check, the pre-training verdict;
- :mod:`~ecodistill.report.run` (chapter 3): one distillation run: objective, metrics,
  fidelity, history, error maps, cost;
- :mod:`~ecodistill.report.selection` (chapter 4): what validation chose and how: trials,
  learning-rate searches per family and arm, the alpha sweep, the budget check, the training
  settings per profile;
- :mod:`~ecodistill.report.comparison` (chapter 4): distilled vs scratch: the student table,
  the paired test, the controls and their paired contrasts, biomes, error maps;
- :mod:`~ecodistill.report.summary` (chapter 4, quoted by the abstract): the one summary
  table, number formats, how tables are displayed;
- :mod:`~ecodistill.report.paired` (chapter 4 and the abstract): paired differences, the
  book's sign convention (distilled − scratch) and the seeds x biomes cluster bootstrap;
- :mod:`~ecodistill.report.findings`, :mod:`~ecodistill.report.caveats` and
  :mod:`~ecodistill.report.headline` (chapter 4, pasted into the intro's abstract and the
  conclusions): findings, limitations, verdicts;
- :mod:`~ecodistill.report.claims` (the appendix): every directional statement of the
  abstract, Discussion and Conclusions with the check that it still holds;
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

from ..store.runs import parse_run_id
from . import claim_set, discussion  # noqa: F401  (register the claims of the book's prose)
from .caveats import limitations
from .claims import ClaimError, Results
from .comparison import (
    CONTRASTS,
    biome_table,
    chosen_method,
    contrasts,
    controls,
    error_maps,
    paired_comparison,
    paired_difference,
    student_table,
)
from .findings import (
    MARKDOWN_KEYS,
    MIN_TEACHER_SKILL,
    abstract,
    budget_findings,
    bullets,
    control_findings,
    fluxnet_findings,
    markdown,
    profile_note,
    retained_finding,
    size_findings,
    speed_finding,
    spread_findings,
)
from .frames import (
    META,
    SETTING,
    SIZE,
    VARIANT,
    aggregate,
    climatology_skill,
    current,
    empty_table,
    labelled,
    own_variant,
    profile_of,
    read_current,
    read_results,
    read_selection,
    readable,
    select_variant,
    show,
    students,
    teacher_ids,
    teacher_means,
    use_name,
    wide,
    with_variants,
)
from .headline import headline, selection_text
from .paired import SIGN_CONVENTION, interval_method
from .realism import further_table, realism_summary, realism_table, world_table
from .run import (
    cost_table,
    demo_command,
    fidelity_table,
    find_run,
    model_cards,
    objective_text,
    run_headline,
    run_history,
    run_metrics,
    run_provenance,
    stored_maps,
)
from .selection import (
    alpha_sweep,
    arm_setting,
    budget_check,
    excluded_losses_text,
    loss_trials,
    lr_search_table,
    selected_settings,
    training_table,
    trial_counts,
    tuned_val_rmse,
)
from .summary import FORMATS, Table, fmt, fmt_diff, fmt_dr2, show_table, summary_numbers, summary_table
from .pretraining import pretraining_text, teacher_lr_search
from .teacher import (
    TEACHER_MODELS,
    adaptation_verdict,
    architecture_table,
    headroom_check,
    headroom_shown,
    headroom_table,
    input_channel_count,
    teacher_biomes,
    teacher_frame,
    teacher_headline,
    teacher_models,
    teacher_predictions_ready,
    teacher_provenance,
    teacher_record_text,
    teacher_run_ids,
    teacher_skill,
)
from .text import (
    caption_note,
    commands_table,
    full_profile_status,
    hardware_label,
    no_headroom_message,
    no_results_message,
    no_teacher_message,
    note,
    pct,
    profile_banner,
    profile_banner_text,
    provenance_text,
    seeds_text,
    target_check,
    teacher_command,
)
from .timings import (
    arm64_errors,
    arm64_table,
    current_compressed_skill,
    ensure_timings,
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
from .uses import history_table, input_table, lag_table, reference_table

__all__ = [
    "CONTRASTS",
    "FORMATS",
    "MARKDOWN_KEYS",
    "META",
    "MIN_TEACHER_SKILL",
    "SETTING",
    "SIGN_CONVENTION",
    "SIZE",
    "TEACHER_MODELS",
    "VARIANT",
    "ClaimError",
    "Results",
    "Table",
    "abstract",
    "adaptation_verdict",
    "aggregate",
    "alpha_sweep",
    "architecture_table",
    "arm64_errors",
    "arm64_table",
    "arm_setting",
    "biome_table",
    "budget_check",
    "budget_findings",
    "bullets",
    "caption_note",
    "chosen_method",
    "climatology_skill",
    "commands_table",
    "contrasts",
    "control_findings",
    "controls",
    "cost_table",
    "current",
    "current_compressed_skill",
    "demo_command",
    "empty_table",
    "ensure_timings",
    "error_maps",
    "excluded_losses_text",
    "fidelity_table",
    "find_run",
    "fluxnet_findings",
    "fmt",
    "fmt_diff",
    "fmt_dr2",
    "full_profile_status",
    "further_table",
    "grid_timings",
    "hardware_label",
    "headline",
    "headroom_check",
    "headroom_shown",
    "headroom_table",
    "history_table",
    "host_text",
    "input_channel_count",
    "input_table",
    "int8_effect",
    "int8_skill",
    "int8_texts",
    "interval_method",
    "labelled",
    "lag_table",
    "latest_run",
    "limitations",
    "loss_trials",
    "lr_search_table",
    "markdown",
    "model_cards",
    "no_headroom_message",
    "no_results_message",
    "no_teacher_message",
    "no_timings_message",
    "note",
    "objective_text",
    "own_variant",
    "paired_comparison",
    "paired_difference",
    "parse_run_id",
    "pct",
    "pi_timings",
    "profile_banner",
    "profile_banner_text",
    "profile_note",
    "profile_of",
    "provenance_text",
    "read_current",
    "read_results",
    "read_selection",
    "read_timing_rows",
    "readable",
    "realism_summary",
    "realism_table",
    "reference_speedups",
    "reference_table",
    "retained_finding",
    "run_headline",
    "run_history",
    "run_metrics",
    "run_provenance",
    "teacher_lr_search",
    "pretraining_text",
    "seeds_text",
    "select_variant",
    "selected_settings",
    "selection_text",
    "show",
    "show_table",
    "size_findings",
    "speed_finding",
    "speed_targets",
    "speedups",
    "spread_findings",
    "stored_maps",
    "student_table",
    "students",
    "summary_numbers",
    "summary_table",
    "target_check",
    "teacher_biomes",
    "teacher_command",
    "teacher_frame",
    "teacher_headline",
    "teacher_ids",
    "teacher_means",
    "teacher_models",
    "teacher_predictions_ready",
    "teacher_provenance",
    "teacher_record_text",
    "teacher_run_ids",
    "teacher_skill",
    "timing_table",
    "trained_skill",
    "training_table",
    "trial_counts",
    "tuned_val_rmse",
    "use_name",
    "wide",
    "with_variants",
    "world_table",
]
