"""Result frames for the chapters: reading them, reshaping the tidy rows into one row per run,
aggregating over seeds, and showing a table — or, when it is empty, what makes it.

Reads ``results/<profile>/runs/*.csv`` (through :func:`ecodistill.runs.read_runs`) and
``results/<profile>/selection.json``; nothing else. Every chapter builder in
:mod:`ecodistill.report` returns a frame whose ``attrs["missing"]`` says which command makes
its results, so :func:`show` (and the figure helpers of :mod:`ecodistill.plots`) render an
empty result without a branch in the notebook. Used by chapters 2 to 5.
"""
from __future__ import annotations

import json
import re

import pandas as pd

from .. import runs
from ..utils import results_dir
from .text import UNKNOWN_PROFILE

META = ["kind", "init", "method", "family", "n_params", "flops_per_map", "alpha", "label_years",
        "seed"]
SIZE = ["student", "family", "n_params", "flops_per_map"]
SETTING = ["init", "method", "alpha"]
_NAME = re.compile(r"^(?:scratch-(?P<scratch>.+)"
                   r"|kd-[A-Za-z0-9_]+-[A-Za-z0-9_]+-(?P<distilled>.+)_from_teacher)"
                   r"-(?P<tag>[A-Za-z0-9]+)-[0-9a-f]+$")


def read_results(profile: str, **where) -> pd.DataFrame:
    """:func:`ecodistill.runs.read_runs` with the profile recorded in ``attrs["profile"]``, so
    that an empty table built from it can name the command for that profile."""
    frame = runs.read_runs(profile, **where)
    frame.attrs["profile"] = profile
    return frame


def profile_of(frame: pd.DataFrame) -> str:
    """The profile a frame was read for (:func:`read_results`), or ``<profile>``."""
    return str(frame.attrs.get("profile", UNKNOWN_PROFILE))


def read_selection(profile: str) -> dict | None:
    """``results/<profile>/selection.json`` (what validation chose, and its trials) or None."""
    path = results_dir(profile) / "selection.json"
    return json.loads(path.read_text()) if path.is_file() else None


def labelled(table: pd.DataFrame, missing: str) -> pd.DataFrame:
    """``table`` with ``attrs["missing"] = missing``: the sentence shown in its place while it
    is empty (``no <profile> … yet — run <command>``)."""
    table.attrs["missing"] = missing
    return table


def empty_table(columns: list[str], missing: str, index: str | None = None) -> pd.DataFrame:
    """A table with no rows, the given ``columns`` (and ``index`` name) and its message."""
    table = pd.DataFrame(columns=columns)
    if index is not None:
        table = table.set_index(index)
    return labelled(table, missing)


def show(table: pd.DataFrame):
    """What a chapter cell displays: the table itself when it has rows, otherwise the empty
    table styled with ``attrs["missing"]`` as its caption (which command makes the results)."""
    if len(table):
        return table
    return table.style.set_caption(table.attrs.get("missing", "no results yet"))


def parse_run_id(run_id: str) -> tuple[str, str]:
    """``(student, tag)`` of a student run id, e.g. ``scratch-afno_s-final-<hash>`` ->
    ``("afno_s", "final")``; ``("", "")`` for teacher, baseline and headroom runs."""
    match = _NAME.match(str(run_id))
    if not match:
        return "", ""
    return match.group("scratch") or match.group("distilled"), match.group("tag")


def wide(frame: pd.DataFrame, split: str = "test", region: str = "global") -> pd.DataFrame:
    """One row per NDVI run: its metadata, ``student``, ``tag`` and one column per metric."""
    rows = frame[(frame["target"] == "ndvi") & (frame["split"] == split)
                 & (frame["region"] == region)]
    if rows.empty:
        return pd.DataFrame(columns=["run_id", "student", "tag", *META])
    values = rows.pivot_table(index="run_id", columns="metric", values="value", aggfunc="first")
    out = rows.drop_duplicates("run_id").set_index("run_id")[META].join(values).reset_index()
    parsed = out["run_id"].map(parse_run_id)
    out.insert(1, "student", parsed.str[0])
    out.insert(2, "tag", parsed.str[1])
    return out


def students(frame: pd.DataFrame, tag: str, split: str = "test",
             region: str = "global") -> pd.DataFrame:
    """:func:`wide` rows of the student runs with ``tag`` (``final``, ``tune``, …), headroom
    models excluded."""
    w = wide(frame, split, region)
    return w[(w["kind"] == "student") & (w["method"] != "headroom") & (w["tag"] == tag)]


def teacher_means(frame: pd.DataFrame, init: str = "pretrained", split: str = "test",
                  region: str = "global") -> pd.Series | None:
    """Mean over seeds of the teacher's metrics (None when there is no such teacher row)."""
    w = wide(frame, split, region)
    rows = w[(w["kind"] == "teacher") & (w["init"] == init)]
    return None if rows.empty else rows.mean(numeric_only=True)


def climatology_skill(frame: pd.DataFrame) -> tuple[float, str]:
    """``(S_clim, source)``: the climatology baseline's test anomaly R², or 0 by construction."""
    w = wide(frame)
    rows = w[(w["kind"] == "baseline") & (w["method"] == "climatology")]
    if not rows.empty and "r2_anom" in rows and rows["r2_anom"].notna().any():
        return float(rows["r2_anom"].mean()), "climatology baseline row"
    return 0.0, "no climatology row; 0 is the anomaly R² of the climatology by construction"


def aggregate(rows: pd.DataFrame, keys: list[str],
              metrics: tuple[str, ...] = ("rmse", "r2", "r2_anom")) -> pd.DataFrame:
    """Mean and sample std (ddof 1, as :func:`ecodistill.stats.summarise`) over seeds of each
    metric per group, and ``n_seeds`` (runs in the group)."""
    metrics = [m for m in metrics if m in rows]
    groups = rows.groupby(keys, dropna=False)
    out = groups[metrics].agg(["mean", "std"])
    out.columns = [f"{metric}_{stat}" for metric, stat in out.columns]
    out.insert(0, "n_seeds", groups.size())
    return out.reset_index()


def aggregate_columns(keys: list[str], metrics: tuple[str, ...]) -> list[str]:
    """The columns :func:`aggregate` returns (for the empty table of the same shape)."""
    return [*keys, "n_seeds", *(f"{m}_{stat}" for m in metrics for stat in ("mean", "std"))]


def readable(table: pd.DataFrame, metrics: tuple[str, ...] = ("rmse", "r2", "r2_anom")) -> pd.DataFrame:
    """A table of :func:`aggregate` for reading: ``mean ± std`` strings (3 decimals; std over
    seeds, blank for one seed) in place of the ``_mean``/``_std`` pairs."""
    out = table.copy()
    for m in metrics:
        if f"{m}_mean" in out:
            std = out[f"{m}_std"].map(lambda v: "" if pd.isna(v) else f" ± {v:.3f}")
            out[m] = out[f"{m}_mean"].map(lambda v: f"{v:.3f}") + std
            out = out.drop(columns=[f"{m}_mean", f"{m}_std"])
    return out.round(3)


def month_table(frame: pd.DataFrame, run_ids: pd.Series) -> pd.DataFrame:
    """(seeds x months) test RMSE of the given runs, indexed by seed."""
    rows = frame[frame["run_id"].isin(run_ids) & (frame["split"] == "test")
                 & (frame["metric"] == "rmse") & frame["region"].astype(str).str.startswith("month:")]
    return rows.pivot_table(index="seed", columns="region", values="value", aggfunc="first")
