"""The cost of memory (the Raspberry Pi chapter): what each history setting asks of a small
device, and the tree-ensemble baseline's latency.

* :func:`memory_cost_table` -- ``results/<profile>/history_cost.csv``
  (:mod:`ecodistill.deploy.history_cost`): per history setting and student, the input channels,
  parameters, FLOPs per map, the state a device keeps per pixel between days, that state for a
  map of this profile's grid and -- by arithmetic, never measured -- for FourCastNet's 720 x 1440
  grid, and the one-thread latency of one map.
* :func:`memory_cost_text` -- the recurrent student's O(1) state against a year of windows.
* :func:`lightgbm_timings` -- the LightGBM rows of ``timings.csv`` (runtime ``lightgbm``), one
  per history, with the run's test anomaly R².

Explained in book/generated/05_pi_timings.ipynb ("The cost of memory").
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..utils import results_dir
from .frames import empty_table, labelled, run_variant, wide

#: FourCastNet's grid (0.25°), onto which the state per map is projected by arithmetic.
FOURCASTNET_GRID = (720, 1440)
COST_COLUMNS = ["history", "NDVI input", "student", "input channels", "parameters", "MFLOP per map",
                "state per pixel (bytes)", "state per map (MB)", "state per 720×1440 map (MB, arithmetic)",
                "ms per map (1 thread)"]
LIGHTGBM_COLUMNS = ["history", "parameters", "comparisons per map", "ms per map (1 thread)", "grid", "test anomaly R²"]


def cost_command(profile: str) -> str:
    return f"python -m ecodistill history-cost --profile {profile}"


def read_history_cost(profile: str) -> pd.DataFrame:
    """``results/<profile>/history_cost.csv`` (no rows when absent)."""
    path = results_dir(profile) / "history_cost.csv"
    if not path.is_file():
        return pd.DataFrame(columns=["history", "ndvi_latency", "student", "in_chans", "n_params", "flops_per_map",
                                     "state_bytes_per_pixel", "state_mb_per_map", "median_ms", "p90_ms", "n",
                                     "threads", "cpu"])
    return pd.read_csv(path)


def memory_cost_table(profile: str, rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (history setting, NDVI input, student) of history_cost.csv, for people."""
    rows = read_history_cost(profile) if rows is None else rows
    missing = f"no {profile} cost of memory yet — run {cost_command(profile)}"
    if rows.empty:
        return empty_table(COST_COLUMNS, missing)
    cells = FOURCASTNET_GRID[0] * FOURCASTNET_GRID[1]
    out = pd.DataFrame({
        "history": rows["history"],
        "NDVI input": [f"observed ≥ {int(v)} d before" if v else "none" for v in rows["ndvi_latency"]],
        "student": rows["student"], "input channels": rows["in_chans"].astype(int),
        "parameters": rows["n_params"].astype(int), "MFLOP per map": rows["flops_per_map"] / 1e6,
        "state per pixel (bytes)": rows["state_bytes_per_pixel"].astype(int),
        "state per map (MB)": rows["state_mb_per_map"].astype(float),
        "state per 720×1440 map (MB, arithmetic)": rows["state_bytes_per_pixel"].astype(float) * cells / 1e6,
        "ms per map (1 thread)": rows["median_ms"].astype(float)})
    return labelled(out.reset_index(drop=True), missing)


def memory_cost_text(table: pd.DataFrame) -> str:
    """The recurrent student's state against a year of trailing means, in a sentence (at the
    first student of the table; or the table's message)."""
    if table.empty:
        return table.attrs.get("missing", "no cost of memory yet")
    first = table["student"].iloc[0]
    part = table[(table["student"] == first) & (table["NDVI input"] == "none")].set_index("history")
    if not {"recurrent", "long"} <= set(part.index):
        return "the table holds no recurrent and no year-of-windows row to compare"
    rec, year = part.loc["recurrent"], part.loc["long"]
    ratio = year["state per pixel (bytes)"] / max(rec["state per pixel (bytes)"], 1)
    return (f"a recurrent state keeps {rec['state per pixel (bytes)']:,} bytes per pixel whatever the length of "
            f"the memory it summarises, against {year['state per pixel (bytes)']:,} bytes for a year of daily fields "
            f"behind the trailing means, {ratio:.0f} times less: "
            f"{rec['state per 720×1440 map (MB, arithmetic)']:,.0f} MB against "
            f"{year['state per 720×1440 map (MB, arithmetic)']:,.0f} MB for a 720 × 1440 map (arithmetic, not "
            f"measured); {first} runs one map in {rec['ms per map (1 thread)']:.3g} ms with the recurrent inputs "
            f"and {year['ms per map (1 thread)']:.3g} ms with the year of windows (one thread)")


def lightgbm_timings(profile: str, timings: pd.DataFrame, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The LightGBM rows of ``timings`` (``runtime == "lightgbm"``; the latest per run), each
    with its history (from the run's config) and its test anomaly R² (from ``frame``)."""
    missing = (f"no {profile} LightGBM timings yet — run python -m ecodistill matrix --profile {profile} "
               "--stages trees")
    rows = timings[timings["runtime"] == "lightgbm"] if "runtime" in timings else timings.iloc[0:0]
    if rows.empty:
        return empty_table(LIGHTGBM_COLUMNS, missing)
    rows = rows.drop_duplicates("run_id", keep="last")
    skill = {}
    if frame is not None and len(frame):
        w = wide(frame)
        skill = dict(zip(w["run_id"], w["r2_anom"])) if "r2_anom" in w else {}
    out = pd.DataFrame({
        "history": [run_variant(profile, r).get("history", "–") for r in rows["run_id"]],
        "parameters": rows["n_params"].astype(int).to_numpy(),
        "comparisons per map": rows["flops_per_map"].astype(float).to_numpy(),
        "ms per map (1 thread)": rows["median_ms"].astype(float).to_numpy(), "grid": rows["grid"].to_numpy(),
        "test anomaly R²": [float(skill.get(r, np.nan)) for r in rows["run_id"]]})
    return labelled(out, missing)
