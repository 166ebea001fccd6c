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
from functools import lru_cache

import pandas as pd

from ..store import runs
from ..utils import results_dir
from .text import UNKNOWN_PROFILE

META = ["kind", "init", "method", "family", "n_params", "flops_per_map", "alpha", "label_years",
        "seed"]
SIZE = ["student", "family", "n_params", "flops_per_map"]
SETTING = ["init", "method", "alpha"]
#: The columns :func:`with_variants` adds: which data a run saw and which use it answers.
VARIANT = ["world", "inputs", "history", "ndvi_latency", "use"]
#: The variant columns that identify a data configuration (``use`` follows from them).
VARIANT_KEYS = ("world", "inputs", "history", "ndvi_latency")


def read_results(profile: str, **where) -> pd.DataFrame:
    """:func:`ecodistill.store.runs.read_runs` with the profile recorded in ``attrs["profile"]``, so
    that an empty table built from it can name the command for that profile."""
    frame = runs.read_runs(profile, **where)
    frame.attrs["profile"] = profile
    return frame


def teacher_ids(record: dict | None) -> dict[str, str]:
    """``label -> run_id`` of every teacher in the teacher record (``teacher.json``): the
    chosen teacher (labelled ``adapted``, as every older record's was), the from-scratch
    teachers (tuned learning rate, twice the steps, every learning-rate trial), the
    label-budget teachers (adapted and from scratch), the teacher of each history and every
    candidate of the choice ({} without a record; the first label of a run is its role)."""
    if not record:
        return {}
    out: dict[str, str | None] = {"adapted": record.get("run_id"), "scratch": record.get("scratch_run_id"),
           "scratch, 2x steps": record.get("scratch_long_run_id")}
    out.update({f"scratch, lr x{lr}": rid for lr, rid in record.get("scratch_trials", {}).items()})
    out.update({f"adapted, {years} label year{'' if str(years) == '1' else 's'}": rid
                for years, rid in record.get("label_budget_run_ids", {}).items()})
    out.update({f"scratch, {years} label year{'' if str(years) == '1' else 's'}": rid
                for years, rid in (record.get("scratch_budget_run_ids") or {}).items()})
    out.update({f"teacher at history {history}": rid for history, rid in (record.get("by_history") or {}).items()})
    out.update({f"candidate: {c.get('kind', c.get('name'))}, lr x{c.get('lr_scale')}, {c.get('epochs_factor', 1)}x epochs": c.get("run_id")
                for c in record.get("candidates") or []})
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


def read_current(profile: str, record: dict | None = None, variant: str | dict | None = "own") -> pd.DataFrame:
    """:func:`read_results` limited to the current protocol (:func:`current`), the teacher
    record read from ``results/<profile>/teacher/teacher.json`` unless given, with the
    :data:`VARIANT` columns (:func:`with_variants`).

    ``variant``: ``"own"`` (the default) keeps only the NDVI runs of the main comparison's data
    variant (:func:`own_variant`: the teacher's world, inputs and history, no NDVI input), so the
    ladder's other histories, the field-device students, the nowcast and the memory runs never
    mix into the main tables; a dict of :data:`VARIANT_KEYS` keeps that variant; None keeps
    every variant (the tables of the ladder and the uses select theirs).
    """
    from ..experiments.teacher import teacher_record

    record = record if record is not None else teacher_record(profile)
    frame = with_variants(current(read_results(profile), record))
    if variant is None:
        return frame
    return select_variant(frame, own_variant(profile, record) if variant == "own" else variant)


def use_name(ndvi_latency: int, method: str = "") -> str:
    """The use a run answers: ``emulation`` (no NDVI observed) or ``nowcast L=<days>`` (NDVI
    observed at least L days before); persistence baselines answer the nowcast at their
    latency, the simulator's ceilings answer both (``ceiling``)."""
    if method.startswith("ceiling"):
        return "ceiling"
    if method.startswith("persistence"):
        days = method.removeprefix("persistence").strip("-").removesuffix("d")
        return f"nowcast L={days or 1}"
    return "emulation" if not ndvi_latency else f"nowcast L={int(ndvi_latency)}"


def data_variant(data: dict | None) -> dict:
    """The :data:`VARIANT_KEYS` of a saved data config (:func:`ecodistill.config.to_dict`
    output, where an absent "added" field holds its default); {} when ``data`` is None."""
    from ..config import DataConfig, from_dict, history_name

    if data is None:
        return {}
    cfg = from_dict(DataConfig, data)
    return {"world": cfg.world, "inputs": cfg.inputs, "history": history_name(cfg),
            "ndvi_latency": int(cfg.ndvi_latency)}


@lru_cache(maxsize=8192)
def _config_variant(path: str) -> tuple:
    cfg = json.loads(open(path).read())  # noqa: SIM115 (a cached read of one small file)
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else (cfg.get("profile") or {}).get("data")
    return tuple(data_variant(data).items())


def run_variant(profile: str, run_id: str) -> dict:
    """The :data:`VARIANT_KEYS` of one run, read from its saved config
    (``results/<profile>/runs/<run_id>.json``: ``data`` for baselines, ``profile.data`` for
    networks); cached per file. {} when the run has no config."""
    path = runs.runs_dir(profile) / f"{run_id}.json"
    return dict(_config_variant(str(path))) if path.is_file() else {}


def own_variant(profile: str, record: dict | None = None) -> dict:
    """The :data:`VARIANT_KEYS` of the main comparison: those of the teacher of ``record`` (the
    teacher record: its chosen teacher was trained at the profile's data when it ran), else of
    the profile's own data config. Teacher and students of the main comparison see the same.
    {} (no filter) when the teacher's config records no data (runs written before it did)."""
    from ..config import get_profile, to_dict

    if record and record.get("run_id"):
        return run_variant(profile, record["run_id"])
    return data_variant(to_dict(get_profile(profile).data))


def with_variants(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the :data:`VARIANT` columns, read from each NDVI run's config (columns a
    test already set are kept; rows of other targets and runs without a config get empty
    values). Keeps ``attrs``."""
    if set(VARIANT) <= set(frame.columns):
        return frame
    profile = profile_of(frame)
    ids = frame.loc[frame["target"] == "ndvi", "run_id"].astype(str).unique() if len(frame) else []
    known = {rid: run_variant(profile, rid) for rid in ids} if profile != UNKNOWN_PROFILE else {}
    out = frame.copy()
    run_id = out["run_id"].astype(str)
    for key in VARIANT_KEYS:
        if key not in out:
            out[key] = run_id.map(lambda r, k=key: known.get(r, {}).get(k, "")).where(out["target"] == "ndvi", "")
    if "use" not in out:
        out["use"] = [use_name(lat if lat != "" else 0, str(m)) if t == "ndvi" else ""
                      for lat, m, t in zip(out["ndvi_latency"], out["method"], out["target"])]
    out.attrs = dict(frame.attrs)
    return out


def select_variant(frame: pd.DataFrame, variant: dict) -> pd.DataFrame:
    """The rows of ``frame`` (:func:`with_variants`) whose NDVI runs have the data ``variant``
    (a dict of some :data:`VARIANT_KEYS`); rows of other targets pass. Keeps ``attrs``."""
    frame = with_variants(frame)
    keep = frame["target"] != "ndvi"
    match = frame["target"] == "ndvi"
    for key, value in variant.items():
        match &= frame[key].astype(str) == str(value)
    out = frame[keep | match].reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    return out


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
    """One row per NDVI run: its metadata (with the :data:`VARIANT` columns where the frame has
    them), ``student``, ``tag`` and one column per metric."""
    rows = frame[(frame["target"] == "ndvi") & (frame["split"] == split)
                 & (frame["region"] == region)]
    if rows.empty:
        return pd.DataFrame(columns=["run_id", "student", "tag", *META])
    values = rows.pivot_table(index="run_id", columns="metric", values="value", aggfunc="first")
    meta = META + [c for c in ("teacher_role", *VARIANT) if c in rows]
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
    label-budget teachers and the other learning-rate trials stay out), else by ``init``.
    With roles, ``pretrained`` means the record's chosen teacher (role ``adapted``) whatever its
    ``init``: the teacher is the best validated model of its size, pre-trained or not."""
    teachers = w[w["kind"] == "teacher"]
    if "teacher_role" in teachers and teachers["teacher_role"].astype(str).str.len().gt(0).any():
        return teachers[teachers["teacher_role"] == {"pretrained": "adapted", "scratch": "scratch"}[init]]
    return teachers[teachers["init"] == init]


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
