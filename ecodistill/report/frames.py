"""Result frames for the chapters: reading them, reshaping the tidy rows into one row per run,
aggregating over seeds, and showing a table — or, when it is empty, what makes it.

Reads ``results/<profile>/runs/*.csv`` (through :func:`ecodistill.store.runs.read_runs`) and
``results/<profile>/selection.json``; nothing else. Every chapter builder in
:mod:`ecodistill.report` returns a frame whose ``attrs["missing"]`` says which command makes
its results, so :func:`show` (and the figure helpers of :mod:`ecodistill.plots`) render an
empty result without a branch in the notebook. Used by chapters 2 to 5.
"""
from __future__ import annotations

import json

import pandas as pd

from ..store import runs
from ..utils import results_dir
from .text import UNKNOWN_PROFILE

META = ["kind", "init", "method", "family", "n_params", "flops_per_map", "alpha", "label_years",
        "seed"]
SIZE = ["student", "family", "n_params", "flops_per_map"]
SETTING = ["init", "method", "alpha"]
def read_results(profile: str, **where) -> pd.DataFrame:
    """:func:`ecodistill.store.runs.read_runs` with the profile recorded in ``attrs["profile"]``, so
    that an empty table built from it can name the command for that profile."""
    frame = runs.read_runs(profile, **where)
    frame.attrs["profile"] = profile
    return frame


def teacher_ids(record: dict | None) -> dict[str, str]:
    """``label -> run_id`` of every teacher in the teacher record (``teacher.json``): the
    adapted teacher, the from-scratch teachers (tuned learning rate, twice the steps, every
    learning-rate trial) and the label-budget teachers ({} without a record)."""
    if not record:
        return {}
    out: dict[str, str | None] = {"adapted": record.get("run_id"), "scratch": record.get("scratch_run_id"),
           "scratch, 2x steps": record.get("scratch_long_run_id")}
    out.update({f"scratch, lr x{lr}": rid for lr, rid in record.get("scratch_trials", {}).items()})
    out.update({f"adapted, {years} label year{'' if str(years) == '1' else 's'}": rid
                for years, rid in record.get("label_budget_run_ids", {}).items()})
    return {label: rid for label, rid in out.items() if rid}


def current(frame: pd.DataFrame, record: dict | None) -> pd.DataFrame:
    """The NDVI rows of the current protocol: the teacher record's dataset, teachers of the
    record only, students that learned from (or, scratch, were scored against) one of its
    teachers, and headroom runs of the tuned form (``headroom-<size>-tune|final-<hash>``).

    Runs of an older protocol or dataset that still sit in ``results/<profile>/runs`` (they
    are removed later) never mix in. Rows of other targets (FLUXNET) pass unchanged. Empty
    NDVI rows without a record. Keeps ``attrs`` (the profile).
    """
    ndvi = frame["target"] == "ndvi"
    if not record:
        out = frame[~ndvi]
    else:
        ids = set(teacher_ids(record).values())
        rows = frame[ndvi & (frame["dataset_hash"].astype(str) == str(record.get("dataset_hash")))]
        run_id = rows["run_id"].astype(str)
        keep = ((rows["kind"] == "baseline")
                | ((rows["kind"] == "teacher") & run_id.isin(ids))
                | ((rows["method"] == "headroom") & run_id.str.contains(r"-(?:tune|final)-[0-9a-f]+$"))
                | ((rows["kind"] == "student") & (rows["method"] != "headroom")
                   & rows["teacher_run_id"].astype(str).isin(ids)))
        kept = rows[keep]
        roles = {}
        for label, rid in reversed(list(teacher_ids(record).items())):  # first label wins
            roles[rid] = label
        kept = kept.assign(teacher_role=kept["run_id"].map(roles).where(kept["kind"] == "teacher", ""))
        out = pd.concat([kept, frame[~ndvi]])
    out = out.reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    return out


def read_current(profile: str, record: dict | None = None) -> pd.DataFrame:
    """:func:`read_results` limited to the current protocol (:func:`current`), the teacher
    record read from ``results/<profile>/teacher/teacher.json`` unless given."""
    from ..experiments.teacher import teacher_record

    return current(read_results(profile), record if record is not None else teacher_record(profile))


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


def wide(frame: pd.DataFrame, split: str = "test", region: str = "global") -> pd.DataFrame:
    """One row per NDVI run: its metadata, ``student``, ``tag`` and one column per metric."""
    rows = frame[(frame["target"] == "ndvi") & (frame["split"] == split)
                 & (frame["region"] == region)]
    if rows.empty:
        return pd.DataFrame(columns=["run_id", "student", "tag", *META])
    values = rows.pivot_table(index="run_id", columns="metric", values="value", aggfunc="first")
    meta = META + [c for c in ("teacher_role",) if c in rows]
    out = rows.drop_duplicates("run_id").set_index("run_id")[meta].join(values).reset_index()
    parsed = out["run_id"].map(runs.parse_run_id)
    out.insert(1, "student", parsed.str[0])
    out.insert(2, "tag", parsed.str[1])
    return out


def students(frame: pd.DataFrame, tag: str, split: str = "test",
             region: str = "global") -> pd.DataFrame:
    """:func:`wide` rows of the student runs with ``tag`` (``final``, ``tune``, …), headroom
    models excluded."""
    w = wide(frame, split, region)
    return w[(w["kind"] == "student") & (w["method"] != "headroom") & (w["tag"] == tag)]


def teacher_rows(w: pd.DataFrame, init: str = "pretrained") -> pd.DataFrame:
    """The :func:`wide` rows of the adapted (``pretrained``) or the tuned from-scratch
    (``scratch``) teacher: by the teacher record's role where :func:`current` marked it (so
    label-budget teachers and the other learning-rate trials stay out), else by ``init``."""
    rows = w[(w["kind"] == "teacher") & (w["init"] == init)]
    if "teacher_role" in rows and rows["teacher_role"].astype(str).str.len().gt(0).any():
        rows = rows[rows["teacher_role"] == {"pretrained": "adapted", "scratch": "scratch"}[init]]
    return rows


def teacher_means(frame: pd.DataFrame, init: str = "pretrained", split: str = "test",
                  region: str = "global") -> pd.Series | None:
    """Mean over seeds of the teacher's metrics (None when there is no such teacher row)."""
    rows = teacher_rows(wide(frame, split, region), init)
    return None if rows.empty else rows.mean(numeric_only=True)


def teacher_role_skill(frame: pd.DataFrame, roles: tuple[str, ...], metric: str = "r2_anom") -> dict[str, float]:
    """Test ``metric`` (mean over seeds) of the teachers with these record labels
    (:func:`teacher_ids`, e.g. ``"scratch, 2x steps"``), from rows :func:`current` marked;
    NaN for a label without rows."""
    w = wide(frame)
    if "teacher_role" not in w or metric not in w:
        return dict.fromkeys(roles, float("nan"))
    return {role: float(w.loc[(w["kind"] == "teacher") & (w["teacher_role"] == role), metric].mean())
            for role in roles}


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


def block_table(frame: pd.DataFrame, run_ids, metric: str = "rmse", prefix: str = "biome:") -> pd.DataFrame:
    """(seeds x spatial blocks) test ``metric`` of the given runs, indexed by seed; the blocks
    are the ``region`` rows starting with ``prefix`` (the biomes of the land-cover map)."""
    rows = frame[frame["run_id"].isin(run_ids) & (frame["split"] == "test") & (frame["target"] == "ndvi")
                 & (frame["metric"] == metric) & frame["region"].astype(str).str.startswith(prefix)]
    return rows.pivot_table(index="seed", columns="region", values="value", aggfunc="first")


def biome_weights(frame: pd.DataFrame) -> pd.Series | None:
    """Each biome's share of the evaluated land cells (``region -> weight``), recovered from
    every test run's global and per-biome MSE (:func:`ecodistill.stats.block_weights`); None
    when the biomes of these rows do not partition the land they are scored on."""
    from .. import stats

    rows = frame[(frame["split"] == "test") & (frame["target"] == "ndvi") & (frame["metric"] == "rmse")]
    parts = rows[rows["region"].astype(str).str.startswith("biome:")].pivot_table(
        index="run_id", columns="region", values="value", aggfunc="first").dropna()
    if parts.empty:
        return None
    totals = rows[rows["region"] == "global"].drop_duplicates("run_id").set_index("run_id")["value"]
    parts = parts[parts.index.isin(totals.index)]
    w = stats.block_weights(totals.loc[parts.index].to_numpy() ** 2, parts.to_numpy() ** 2)
    return None if w is None else pd.Series(w / w.sum(), index=parts.columns)
