"""Where a teacher's predictions and record live: under the teacher's run id, switched atomically.

A profile's teacher leaves two things the students read (``results/<profile>/teacher/``):

* its **predictions**, in a folder named by its run id, ``pred_<run_id>/`` (float16 chunks of
  the land cells with a sha256 manifest per split, and ``run.json`` naming the teacher). The
  folder is written as a hidden staging folder and switched in with one rename, so it is
  either whole or absent; label-budget teachers and teachers that were not adopted keep theirs
  in the cache (``.cache/<profile>/teachers/<run_id>/``), as do earlier teachers once replaced;
* its **record**, ``teacher.json`` (run ids, curves, the stop reason), written atomically
  *after* the predictions. It names the students' teacher.

A student reads predictions only through the teacher run id it records
(:func:`load_teacher_predictions` with ``run_id``), so an interrupted save can never pair one
teacher's id with another teacher's predictions: before the switch the old teacher and its
folder stand, after it the new ones.

A teacher that did not complete (stopped by its time budget, :data:`COMPLETED`) never silently
replaces a completed one (:func:`adopt`): it is recorded as ``incomplete_run_id`` and the
completed teacher stays, unless asked for (``accept_incomplete``). Its stop reason is shown
wherever it is used (:func:`teacher_status`, :func:`status_note`).

Explained in book/generated/02_teacher.ipynb ("Predictions for the students").
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from ..store import runs
from ..store.integrity import read_json
from ..training.distributed import is_main_process
from ..training.predictions import load_predictions, save_predictions
from ..utils import atomic_write_json, cache_dir, results_dir

PRED_SPLITS = ("train", "val", "test", "extra")
#: Record keys holding one entry per history or label budget, merged rather than replaced.
MERGED_KEYS = ("histories", "by_history", "label_budget_run_ids", "scratch_budget_run_ids", "budget_candidates")
#: Stop reasons of a teacher that trained as planned (``budget``: its time budget cut it).
COMPLETED = ("done", "early_stop", "max_steps")


def teacher_dir(profile: str) -> Path:
    """``results/<profile>/teacher``: the teacher record and the adopted teacher's predictions."""
    return results_dir(profile) / "teacher"


def predictions_folder(profile: str, run_id: str) -> Path:
    """``results/<profile>/teacher/pred_<run_id>``: the predictions of the profile's teacher."""
    return teacher_dir(profile) / f"pred_{run_id}"


def cached_predictions_folder(profile: str, run_id: str) -> Path:
    """``.cache/<profile>/teachers/<run_id>``: predictions of other teachers (never committed)."""
    return cache_dir() / profile / "teachers" / run_id


def teacher_record(profile: str) -> dict | None:
    """The pipeline's summary (``results/<profile>/teacher/teacher.json``) or None.

    Raises:
        ValueError: when the file is damaged (naming it and the fix).
    """
    path = teacher_dir(profile) / "teacher.json"
    if not path.is_file():
        return None
    return read_json(path, "teacher record", f"restore it (git checkout) or rerun `python -m ecodistill "
                     f"train-teacher --profile {profile}`")


def update_record(ws, **fields) -> dict:
    """Merge ``fields`` into ``teacher.json`` (rank 0, atomic); a record made on another
    dataset is replaced, not merged (stages in separate processes each add their keys)."""
    if not is_main_process():
        return teacher_record(ws.profile) or {}
    folder = teacher_dir(ws.profile)
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = cache_dir() / ws.profile / "teacher.lock"  # stages in two processes: one writer at a time
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = teacher_record(ws.profile) or {}
        if record.get("dataset_hash") != ws.dataset_hash:
            record = {"dataset_hash": ws.dataset_hash}
        for key, value in fields.items():  # nested records (per history) merge one level deep
            if isinstance(value, dict) and isinstance(record.get(key), dict) and key in MERGED_KEYS:
                record[key] = {**record[key], **value}
            else:
                record[key] = value
        atomic_write_json(folder / "teacher.json", record)
    return record


def teacher_status(profile: str, run_id: str | None) -> dict:
    """``stop_reason``, ``steps``, ``planned_steps`` and ``completed`` of a teacher run (from the
    config saved with its rows; adaptation and pre-training must both have completed)."""
    if not run_id:
        return {}
    try:
        trained = runs.read_run_config(profile, run_id).get("trained", {})
    except (FileNotFoundError, ValueError):
        return {"stop_reason": "unknown", "completed": False}
    stages = [trained] + ([trained["pretrain"]] if isinstance(trained.get("pretrain"), dict) else [])
    reasons = [s.get("stop_reason", "done") for s in stages]
    bad = [r for r in reasons if r not in COMPLETED]
    return {"stop_reason": bad[0] if bad else reasons[0], "steps": trained.get("steps"),
            "planned_steps": trained.get("planned_steps"), "completed": not bad}


def status_note(profile: str, run_id: str | None) -> dict:
    """``{"teacher_run_id", "teacher_stop_reason"}`` for messages; a warning when the teacher
    did not complete (it is used, and every user of it should know)."""
    if not run_id:
        return {}
    status = teacher_status(profile, run_id)
    if status and not status.get("completed", True):
        warnings.warn(f"teacher {run_id} did not complete its training (stopped by {status['stop_reason']} after "
                      f"{status.get('steps')} of {status.get('planned_steps')} steps)", stacklevel=2)
    return {"teacher_run_id": run_id, "teacher_stop_reason": status.get("stop_reason", "unknown")}


def adopt(ws, run_id: str, accept_incomplete: bool = False) -> bool:
    """Whether the new teacher ``run_id`` becomes the students' teacher: yes, unless it did not
    complete while the record's teacher (same dataset) did and ``accept_incomplete`` is False."""
    record = teacher_record(ws.profile) or {}
    new = teacher_status(ws.profile, run_id)
    if new.get("completed", True) or accept_incomplete:
        return True
    old = record.get("run_id") if record.get("dataset_hash") == ws.dataset_hash else None
    if not old or old == run_id or not teacher_status(ws.profile, old).get("completed", False):
        return True
    warnings.warn(f"teacher {run_id} stopped by {new['stop_reason']} after {new.get('steps')} of "
                  f"{new.get('planned_steps')} steps; the completed teacher {old} stays the students' teacher. "
                  "Run the same command again to continue training it (it resumes), or pass "
                  "--accept-incomplete to use it as it is", stacklevel=2)
    return False


def save_teacher_predictions(ws, preds: dict[str, np.ndarray], run_id: str, folder: Path | None = None,
                             ) -> dict[str, Path]:
    """Store ``split -> (n_days, 1, h, w)`` predictions as float16 chunks of the land cells in
    ``folder`` (default :func:`predictions_folder`), staged and switched in with one rename."""
    final = Path(folder or predictions_folder(ws.profile, run_id))
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".staging-{final.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    for split, pred in preds.items():
        save_predictions(staging / f"pred_{split}", pred[:, 0][:, ws.land].astype(np.float16))  # (n_days, n_land)
    atomic_write_json(staging / "run.json", {"run_id": run_id, "dataset_hash": ws.dataset_hash,
                                             "splits": sorted(preds)})
    if final.exists():
        old = final.parent / f".old-{final.name}-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, final)
    return {split: final / f"pred_{split}.manifest.json" for split in preds}


def retire_predictions(profile: str, keep: str) -> None:
    """Move every teacher prediction folder of ``results/<profile>/teacher`` except ``keep``'s
    to the cache (results keep one teacher's predictions; the others stay usable here)."""
    for folder in teacher_dir(profile).glob("pred_*"):
        if folder.is_dir() and folder.name != f"pred_{keep}":
            target = cached_predictions_folder(profile, folder.name[len("pred_"):])
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(folder), str(target))


def predictions_dir(ws, run_id: str | None = None) -> Path:
    """The folder of teacher ``run_id``'s predictions (default: the record's teacher): under
    results when it is the profile's teacher, else in the cache."""
    record = teacher_record(ws.profile) or {}
    run_id = run_id or record.get("run_id")
    if not run_id:
        raise FileNotFoundError(f"no {ws.profile} teacher yet: run `python -m ecodistill train-teacher "
                                f"--profile {ws.profile}` first")
    for folder in (predictions_folder(ws.profile, run_id), cached_predictions_folder(ws.profile, run_id)):
        if folder.is_dir():
            return folder
    return predictions_folder(ws.profile, run_id)


def _manifest(ws, split: str, run_id: str | None) -> Path:
    folder = predictions_dir(ws, run_id)
    manifest = folder / f"pred_{split}.manifest.json"
    if manifest.is_file():
        return manifest
    profile = ws.profile
    current = (teacher_record(profile) or {}).get("run_id")
    rid = run_id or current
    if current and rid != current:
        raise FileNotFoundError(f"teacher {rid} left no {split!r} predictions on this machine (not in {folder} nor "
                                f"the cache); the {profile} teacher is now {current}: re-run against it with "
                                f"`--teacher-run-id {current}` (a new run), or restore {folder} from the "
                                "repository's history")
    legacy = teacher_dir(profile) / f"pred_{split}.manifest.json"
    if legacy.is_file():
        raise FileNotFoundError(f"{legacy} is in the old layout, which names no teacher, so it cannot be trusted "
                                f"to be teacher {rid}'s: rerun `python -m ecodistill train-teacher --profile "
                                f"{profile}` (or, if they are its predictions, move {legacy.parent}/pred_*.* into "
                                f"{folder})")
    raise FileNotFoundError(f"no teacher predictions for {split!r} at {manifest}: run `python -m ecodistill "
                            f"train-teacher --profile {profile}` first")


def _check_identity(folder: Path, run_id: str | None) -> None:
    ident = folder / "run.json"
    if run_id and ident.is_file():
        named = read_json(ident, "teacher predictions record", "rerun train-teacher").get("run_id")
        if named != run_id:
            raise ValueError(f"{folder} holds the predictions of teacher {named}, not {run_id}: the folder was "
                             "renamed or copied; rerun `python -m ecodistill train-teacher`")


def load_teacher_predictions(ws, split: str, run_id: str | None = None) -> np.ndarray:
    """``(n_days, 1, h, w)`` float32 predictions of teacher ``run_id`` (default: the record's)
    for ``split`` (0 over the ocean).

    Raises:
        FileNotFoundError: with the command that makes them, when they are missing.
        ValueError: when a chunk's checksum or the manifest is damaged, or the folder names
            another teacher.
    """
    manifest = _manifest(ws, split, run_id)
    _check_identity(manifest.parent, run_id or (teacher_record(ws.profile) or {}).get("run_id"))
    compact = load_predictions(manifest).astype(np.float32)
    full = np.zeros((compact.shape[0], 1, *ws.img_size), np.float32)
    full[:, 0][:, ws.land] = compact
    return full


def predictions_digest(ws, run_id: str | None = None, splits: tuple[str, ...] = ("train", "extra")) -> str:
    """sha256 over the chunk checksums of a teacher's predictions on ``splits``: what a
    distilled student learned from, part of its run id."""
    sums = []
    for split in splits:
        if ws.prep.has_split(split):
            manifest = read_json(_manifest(ws, split, run_id), "prediction manifest", f"rerun `python -m "
                                 f"ecodistill train-teacher --profile {ws.profile}`")
            sums += [c["sha256"] for c in manifest["chunks"]]
    return hashlib.sha256(json.dumps(sums).encode()).hexdigest()
