"""The result store: one tidy CSV per run, its config beside it, atomic writes.

Layout::

    results/<profile>/runs/<run_id>.csv    one row per value
    results/<profile>/runs/<run_id>.json   the run's config
    results/<profile>/timings.csv          runtime measurements (see ecodistill.deploy.bench)

A run is keyed by the hash of its config -- which holds everything the result depends
on: the dataset's content hash, and for students the teacher's run id and the sha256 of
the predictions they learned from -- so re-running the same config overwrites the same
files, and a notebook can ask :func:`has_run` before computing anything.

Rows with NaN values or unknown categories are refused at write time. The CSV is written
first and the JSON last, holding the CSV's sha256 and row count (``"_complete"``): a run
counts as done only when both agree (:func:`run_status`), so an interrupted write, a
truncated or edited CSV is re-run instead of silently losing rows, and :func:`read_runs`
refuses a damaged file by name.

Explained in book/intro.md ("How results flow into the book").
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..utils import atomic_write_json, atomic_write_text, git_commit, results_dir, stable_hash

COMPLETE_KEY = "_complete"  # the completion marker inside <run_id>.json

COLUMNS = [
    "run_id", "dataset_hash", "target", "kind", "init", "method", "family", "n_params",
    "flops_per_map", "alpha", "label_years", "teacher_run_id", "seed", "fold", "split",
    "region", "metric", "value", "git_commit",
]
#: Columns read back as text whatever they look like: a hash of digits only (``902740411463``)
#: or one like ``12e456789012`` must not become a number (or inf).
TEXT_COLUMNS = ["run_id", "dataset_hash", "target", "kind", "init", "method", "family", "teacher_run_id",
                "split", "region", "metric", "git_commit"]
TARGETS = {"ndvi", "gpp", "lai"}
KINDS = {"teacher", "student", "baseline"}
INITS = {"pretrained", "scratch", "distilled"}
SPLITS = {"train", "val", "test"}
METRICS = {"r2", "rmse", "rmse_latw", "r2_anom", "rmse_anom", "fidelity_r2", "bias"}
_REGION = re.compile(r"^(global|biome:[A-Za-z0-9_ .\-/]+|site-group:[A-Za-z0-9_ .\-/]+|month:\d{1,2})$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")

TIMING_COLUMNS = [
    "run_id", "model", "kind", "n_params", "flops_per_map", "bytes_per_map", "grid", "runtime",
    "dtype", "threads", "batch", "device", "cpu", "median_ms", "p90_ms", "n", "versions",
]
TIMING_TEXT = {c: str for c in ("run_id", "model", "kind", "grid", "runtime", "dtype", "device", "cpu", "versions")}


#: a student run's name (:func:`ecodistill.experiments.distill.run_name`) plus its hash
_STUDENT_NAME = re.compile(r"^(?:scratch-(?P<scratch>.+)"
                           r"|kd-[A-Za-z0-9_]+-[A-Za-z0-9_]+-(?P<distilled>.+)_from_teacher)"
                           r"-(?P<tag>[A-Za-z0-9]+)-[0-9a-f]+$")


def parse_run_id(run_id: str) -> tuple[str, str]:
    """``(student, tag)`` of a student run id, e.g. ``scratch-afno_s-final-<hash>`` ->
    ``("afno_s", "final")``; ``("", "")`` for teacher, baseline and headroom runs."""
    match = _STUDENT_NAME.match(str(run_id))
    if not match:
        return "", ""
    return match.group("scratch") or match.group("distilled"), match.group("tag")


def make_run_id(name: str, config: Mapping[str, Any]) -> str:
    """``<name>-<hash10>``: a readable name plus the hash of the run's config."""
    if not _RUN_ID.match(name):
        raise ValueError(f"run name {name!r} may hold only letters, digits, '_', '.', '-'")
    return f"{name}-{stable_hash(config)}"


def runs_dir(profile: str) -> Path:
    """``results/<profile>/runs``."""
    return results_dir(profile) / "runs"


def selection_path(profile: str) -> Path:
    """``results/<profile>/selection.json``: what validation chose in the fair protocol
    (:mod:`ecodistill.experiments.protocol`), and the trials behind it."""
    return results_dir(profile) / "selection.json"


def _check_row(row: Mapping[str, Any], i: int) -> None:
    """Refuse a row with a NaN value, a missing column or an unknown category."""
    missing = [c for c in COLUMNS if c not in row]
    if missing:
        raise ValueError(f"row {i}: missing column(s) {missing}")
    checks = [("target", TARGETS), ("kind", KINDS), ("init", INITS), ("split", SPLITS),
              ("metric", METRICS)]
    for col, allowed in checks:
        if row[col] not in allowed:
            raise ValueError(f"row {i}: {col}={row[col]!r} unknown; allowed: {sorted(allowed)}")
    if not _REGION.match(str(row["region"])):
        raise ValueError(f"row {i}: region={row['region']!r} is not global, biome:<name>, "
                         "site-group:<name> or month:<m>")
    value = row["value"]
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ValueError(f"row {i}: value={value!r} for metric {row['metric']} is not a finite "
                         "number; fix the evaluation instead of writing it")


def make_rows(meta: Mapping[str, Any], metrics: Iterable[tuple[str, str, str, float]]) -> list[dict]:
    """Expand ``(split, region, metric, value)`` tuples into full rows.

    Args:
        meta: the run-level columns (run_id, dataset_hash, target, kind, init, ...);
            columns not given default to ``""`` (strings) -- ``seed``/``fold`` to -1.
        metrics: iterable of ``(split, region, metric, value)``.
    """
    base = {c: "" for c in COLUMNS}
    base.update({"seed": -1, "fold": -1, "alpha": float("nan"), "label_years": -1,
                 "n_params": 0, "flops_per_map": 0.0, "git_commit": git_commit()})
    base.update(meta)
    rows = []
    for split, region, metric, value in metrics:
        row = dict(base, split=split, region=region, metric=metric, value=float(value))
        rows.append(row)
    return rows


def write_run(profile: str, rows: list[Mapping[str, Any]], config: Mapping[str, Any]) -> Path:
    """Validate and atomically write one run's rows (CSV) and config (JSON).

    All rows must share one ``run_id``. Returns the CSV path.

    Raises:
        ValueError: for an empty row list, mixed run ids or any invalid row.
    """
    if not rows:
        raise ValueError("write_run: no rows to write (an evaluation produced nothing)")
    run_ids = {r.get("run_id") for r in rows}
    if len(run_ids) != 1:
        raise ValueError(f"write_run: rows carry several run ids {sorted(map(str, run_ids))}")
    run_id = run_ids.pop()
    if not run_id or not _RUN_ID.match(str(run_id)):
        raise ValueError(f"write_run: bad run_id {run_id!r}")
    for i, row in enumerate(rows):
        _check_row(row, i)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    out = runs_dir(profile) / f"{run_id}.csv"
    buf = io.StringIO()
    frame.to_csv(buf, index=False, float_format="%.8g")
    text = buf.getvalue()
    config = {k: v for k, v in dict(config).items() if k != COMPLETE_KEY}
    marker = {"csv_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "rows": len(rows)}
    atomic_write_text(out, text)
    atomic_write_json(out.with_suffix(".json"), {**config, COMPLETE_KEY: marker})  # last: marks completion
    return out


def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is damaged ({type(err).__name__}: {err}); restore it (git checkout) or "
                         "delete it and the CSV beside it to re-run the run") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds no run config (a {type(obj).__name__}); restore it or delete it to re-run")
    return obj


def run_status(profile: str, run_id: str) -> str:
    """``complete``, ``missing`` or ``damaged: <why>`` for one run's files.

    A run is complete when its JSON parses and carries the completion marker, and its CSV's
    sha256 and row count match the marker.
    """
    csv_path = runs_dir(profile) / f"{run_id}.csv"
    json_path = csv_path.with_suffix(".json")
    if not csv_path.is_file() and not json_path.is_file():
        return "missing"
    if not csv_path.is_file() or not json_path.is_file():
        return f"damaged: {csv_path.name if not csv_path.is_file() else json_path.name} is missing"
    try:
        marker = _read_json(json_path).get(COMPLETE_KEY)
    except ValueError as err:
        return f"damaged: {err}"
    if not isinstance(marker, dict) or "csv_sha256" not in marker:
        return f"damaged: {json_path.name} has no completion marker (the run was interrupted)"
    data = csv_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != marker["csv_sha256"]:
        return f"damaged: {csv_path.name} differs from the checksum in {json_path.name} (truncated or edited)"
    n_rows = max(0, data.count(b"\n") - 1)
    if n_rows != marker.get("rows"):
        return f"damaged: {csv_path.name} holds {n_rows} rows, {marker.get('rows')} were written"
    return "complete"


def has_run(profile: str, run_id: str) -> bool:
    """True when the run's CSV and JSON are both there and agree (see :func:`run_status`); a
    damaged run counts as not done, so the caller runs it again."""
    return run_status(profile, run_id) == "complete"


def read_run_config(profile: str, run_id: str) -> dict:
    """The config saved with a run (``results/<profile>/runs/<run_id>.json``, without its marker).

    Raises:
        FileNotFoundError: when the run has no config file.
        ValueError: when the file is damaged (naming it and the fix).
    """
    path = runs_dir(profile) / f"{run_id}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no config for run {run_id!r} in {runs_dir(profile)}")
    return {k: v for k, v in _read_json(path).items() if k != COMPLETE_KEY}


def _read_csv(profile: str, path: Path) -> pd.DataFrame:
    status = run_status(profile, path.stem)
    if status != "complete":
        raise ValueError(f"{path}: {status.removeprefix('damaged: ')}; restore it (git checkout) or delete "
                         f"{path.name} and {path.with_suffix('.json').name} and re-run the command that made it")
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={c: str for c in TEXT_COLUMNS})
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not a result file of this version (columns {missing} missing); re-run it")
    return frame


def read_runs(profile: str, **where: Any) -> pd.DataFrame:
    """All rows of a profile as one DataFrame, filtered by ``column=value`` pairs.

    A value may be a list/tuple/set (membership). Returns an empty frame with the
    standard columns when nothing is there.
    """
    wanted = where.get("run_id")
    if wanted is not None:  # only the named runs' files (a store holds hundreds of runs)
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        files = [f for f in (runs_dir(profile) / f"{n}.csv" for n in names) if f.is_file()]
    else:
        files = sorted(runs_dir(profile).glob("*.csv"))
    if not files:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.concat([_read_csv(profile, f) for f in files], ignore_index=True)
    for col, want in where.items():
        if col not in frame.columns:
            raise KeyError(f"read_runs: no column {col!r}; columns are {COLUMNS}")
        if isinstance(want, (list, tuple, set)):
            frame = frame[frame[col].isin(list(want))]
        else:
            frame = frame[frame[col] == want]
    return frame.reset_index(drop=True)


def write_timings(profile: str, rows: list[Mapping[str, Any]]) -> Path:
    """Merge timing rows into ``results/<profile>/timings.csv`` (atomic; replaces rows with
    the same ``run_id, model, runtime, dtype, threads, batch, grid``)."""
    if not rows:
        raise ValueError("write_timings: no rows")
    new = pd.DataFrame(rows)
    missing = [c for c in TIMING_COLUMNS if c not in new.columns]
    if missing:
        raise ValueError(f"write_timings: missing column(s) {missing}")
    bad = new[["median_ms", "p90_ms"]].isna().any(axis=1) | (new["median_ms"] <= 0)
    if bad.any():
        raise ValueError(f"write_timings: non-positive or NaN latency in rows {list(new.index[bad])}")
    for col in TIMING_TEXT:  # as they are read back, so equal keys match
        new[col] = new[col].astype(str)
    path = results_dir(profile) / "timings.csv"
    key = ["run_id", "model", "runtime", "dtype", "threads", "batch", "grid"]
    if path.is_file():
        old = pd.read_csv(path, dtype=TIMING_TEXT)
        merged = pd.concat([old, new[TIMING_COLUMNS]], ignore_index=True)
        merged = merged.drop_duplicates(subset=key, keep="last")
    else:
        merged = new[TIMING_COLUMNS]
    buf = io.StringIO()
    merged.to_csv(buf, index=False, float_format="%.6g")
    return atomic_write_text(path, buf.getvalue())


def read_timings(profile: str) -> pd.DataFrame:
    """``results/<profile>/timings.csv`` (empty frame with the columns when absent)."""
    path = results_dir(profile) / "timings.csv"
    return pd.read_csv(path, dtype=TIMING_TEXT) if path.is_file() else pd.DataFrame(columns=TIMING_COLUMNS)
