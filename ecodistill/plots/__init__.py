"""Every figure of the book, drawn from result tables or prepared arrays, one module per chapter:

- :mod:`~ecodistill.plots.base`: rcParams (set once, :func:`setup`), the sentence drawn in a
  figure's place while its results are missing, saving, maps, log axes, arm colours;
- :mod:`~ecodistill.plots.data` (chapter 2, data): static maps, weather, the land state, NDVI,
  seasonal cycles;
- :mod:`~ecodistill.plots.teacher` (chapter 2, teacher; curves also chapter 3): training
  curves, skill per biome or class, the headroom check;
- :mod:`~ecodistill.plots.methods` (chapter 4): the methods figure;
- :mod:`~ecodistill.plots.ladder` (chapter 4): the headroom ladder, the nowcast against persistence;
- :mod:`~ecodistill.plots.results` (chapter 4; maps also chapters 2 and 3): scaling curves,
  the alpha sweep, the loss trials, label budgets, biomes, error and difference maps;
- :mod:`~ecodistill.plots.timings` (chapter 5): skill against latency;
- :mod:`~ecodistill.plots.fluxnet` (chapter 6): sites, coverage, skill against size.

Every name is re-exported here, so ``from ecodistill import plots; plots.error_maps(...)``
works. Notebooks caption figures through cell metadata, not titles; figures a page references
with ``{figure}`` are saved under ``book/generated/figures/`` by :func:`savefig`. Every chapter
figure draws the sentence naming the command that makes its results when they are missing
(a table's ``attrs["missing"]``), so notebook cells need no branch.
"""
from __future__ import annotations

from .base import (
    FAMILY_MARKERS,
    FIGURE_DIR,
    INIT_COLORS,
    global_map,
    label_points,
    log_x,
    message_figure,
    missing_text,
    no_data,
    savefig,
    setup,
)
from .data import land_cell, land_state, ndvi_panels, seasonal_cycles, static_panels, weather_sequence
from .fluxnet import coverage_bars, site_map, skill_vs_size
from .ladder import HISTORY_COLORS, ladder_plot, nowcast_plot
from .methods import methods_figure
from .results import (
    BUDGET_STYLE,
    alpha_sweep_plot,
    biome_panels,
    error_maps,
    label_budget_plot,
    loss_trials_plot,
    scaling_curves,
)
from .teacher import biome_skill, group_skill, headroom_plot, loss_curves, teacher_curves
from .timings import pareto

__all__ = [
    "BUDGET_STYLE",
    "FAMILY_MARKERS",
    "FIGURE_DIR",
    "HISTORY_COLORS",
    "INIT_COLORS",
    "alpha_sweep_plot",
    "biome_panels",
    "biome_skill",
    "coverage_bars",
    "error_maps",
    "global_map",
    "group_skill",
    "headroom_plot",
    "label_budget_plot",
    "label_points",
    "ladder_plot",
    "land_cell",
    "land_state",
    "log_x",
    "loss_curves",
    "loss_trials_plot",
    "message_figure",
    "methods_figure",
    "missing_text",
    "ndvi_panels",
    "no_data",
    "nowcast_plot",
    "pareto",
    "savefig",
    "scaling_curves",
    "seasonal_cycles",
    "setup",
    "site_map",
    "skill_vs_size",
    "static_panels",
    "teacher_curves",
    "weather_sequence",
]
