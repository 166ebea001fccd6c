"""The teacher is chosen fairly: the best validated model of its size.

Two candidates compete at the profile's own history, each tuned like every student arm:

* **adapted** -- the pre-trained forecaster (:func:`~ecodistill.experiments.teacher.pretrain`)
  with a new first layer and head, fine-tuned on NDVI;
* **scratch** -- the same architecture from random weights.

For each, the learning rate is searched until the best multiple is inside the grid
(:func:`ecodistill.training.lr_search.search_lr`) with runs of half the adaptation's epochs
(:data:`SEARCH_EPOCHS`), then the best rate is trained at the full length and at twice it
(the length is searched too). Of the four, the lowest validation RMSE is the teacher the
students learn from (its predictions stored under its run id and adopted); the others stay in
``teacher.json`` (``candidates``) and in the result store, so "does pre-training help?" is read
from the same runs. At the other histories of the ladder the chosen kind is trained at its
chosen rate and length (``histories``). At each label budget (1 and 3 years of labels) both
kinds are trained at their chosen learning rate and the profile's length (1x, like for like
and half the cost of the longest) -- pre-training is its own contrast at every budget -- and
the better by validation is the same-label teacher (``budgets``).

Explained in book/generated/02_teacher.ipynb ("Choosing the teacher").
"""
from __future__ import annotations

from ..models import load_checkpoint, save_checkpoint
from ..store import runs
from ..training.distributed import is_main_process
from ..training.lr_search import search_lr
from .teacher_files import (
    adopt,
    cached_predictions_folder,
    retire_predictions,
    save_teacher_predictions,
    teacher_record,
    teacher_status,
    update_record,
)
from .teacher_training import adapt, predict_splits, pretrain, record_teacher, scratch_teacher
from .workspace import Workspace, hardware_name, open_workspace

KINDS = ("adapted", "scratch")
#: Epochs of a learning-rate trial, as a share of the adaptation's (the search ranks rates).
SEARCH_EPOCHS = 0.5
#: Lengths tried at the best rate, as multiples of the adaptation's epochs.
LENGTHS = (1.0, 2.0)
#: Where each kind's search starts (fine-tuning rates are lower than training from scratch).
CENTRES = {"adapted": 1.0, "scratch": 2.0}


def _train(ws: Workspace, kind: str, seed: int, lr_scale: float, epochs_factor: float,
           label_years: int | None = None, pre=None):
    """One teacher of ``kind``: ``(model, fit result, pre-training result or None)``."""
    if kind == "adapted":
        pretrained, pre_result = pre if pre is not None else pretrain(ws, seed)
        model, result = adapt(ws, pretrained, seed, lr_scale=lr_scale, epochs_factor=epochs_factor,
                              label_years=label_years)
        return model, result, pre_result
    model, result = scratch_teacher(ws, seed, lr_scale=lr_scale, epochs_factor=epochs_factor,
                                    label_years=label_years)
    return model, result, None


def _val_rmse(profile: str, run_id: str) -> float:
    frame = runs.read_runs(profile, run_id=run_id, split="val", region="global", metric="rmse")
    return float(frame["value"].iloc[0])


def _candidate(ws: Workspace, kind: str, seed: int, lr_scale: float, epochs_factor: float,
               label_years: int | None = None, pre=None) -> dict:
    """Train, evaluate and record one candidate; its checkpoint is cached for the choice."""
    model, result, pre_result = _train(ws, kind, seed, lr_scale, epochs_factor, label_years, pre)
    init = "pretrained" if kind == "adapted" else "scratch"
    identity = {"lr_scale": lr_scale, "epochs_factor": epochs_factor, "history": ws.history}
    if label_years:
        identity["label_years"] = label_years
    run_id = record_teacher(ws, model, init, seed, result, pre_result, **identity)
    if is_main_process():
        save_checkpoint(ws.checkpoint_path(f"teacher-{run_id}"), model, ws.run_config(run_id=run_id))
    return {"kind": kind, "lr_scale": lr_scale, "epochs_factor": epochs_factor, "run_id": run_id,
            "val_rmse": _val_rmse(ws.profile, run_id), "history": ws.history,
            "completed": teacher_status(ws.profile, run_id).get("completed", True)}


def search_kind(ws: Workspace, kind: str, seed: int = 0) -> dict:
    """Stage ``adapted`` or ``scratch``: the learning-rate search, then each length of
    :data:`LENGTHS` at the best rate; merged into ``teacher.json`` under ``histories``."""
    pre = pretrain(ws, seed) if kind == "adapted" else None

    def score(m: float) -> float:
        return _train(ws, kind, seed, m, SEARCH_EPOCHS, pre=pre)[1].best_val

    search = search_lr(score, centre=CENTRES[kind], max_widen=2)
    candidates = [_candidate(ws, kind, seed, search.best, factor, pre=pre) for factor in LENGTHS]
    update_record(ws, histories={ws.history: {**_history_entry(ws), f"{kind}_lr": search.as_dict(),
                                              f"{kind}_candidates": candidates}})
    return {"lr": search.as_dict(), "candidates": candidates}


def _history_entry(ws: Workspace) -> dict:
    return dict(((teacher_record(ws.profile) or {}).get("histories") or {}).get(ws.history, {}))


def choose(ws: Workspace, seed: int = 0, accept_incomplete: bool = False) -> dict:
    """Stage ``choose``: the lowest validation RMSE of the candidates at this history; its
    predictions are stored under its run id, and at the profile's own history it becomes the
    students' teacher (``run_id``)."""
    entry = _history_entry(ws)
    candidates = [c for kind in KINDS for c in entry.get(f"{kind}_candidates", [])]
    if not candidates:
        raise FileNotFoundError(f"no teacher candidates at history {ws.history!r} of {ws.profile}: run "
                                f"`python -m ecodistill train-teacher --profile {ws.profile} --stages adapted "
                                "scratch` first")
    best = min(candidates, key=lambda c: c["val_rmse"])
    run_id = best["run_id"]
    own = ws.history == open_workspace(ws.profile, ws.device).history
    if is_main_process():
        model, _ = load_checkpoint(ws.checkpoint_path(f"teacher-{run_id}"))
        preds = predict_splits(ws, model)
        adopted = own and adopt(ws, run_id, accept_incomplete)
        folder = None if adopted else cached_predictions_folder(ws.profile, run_id)
        save_teacher_predictions(ws, preds, run_id, folder)
    else:
        adopted = own
    choice = {"kind": best["kind"], "run_id": run_id, "lr_scale": best["lr_scale"],
              "epochs_factor": best["epochs_factor"], "val_rmse": best["val_rmse"]}
    fields = {"histories": {ws.history: {**entry, "choice": choice}}, "by_history": {ws.history: run_id}}
    if adopted:
        status = teacher_status(ws.profile, run_id)
        fields.update(run_id=run_id, seed=seed, device=ws.device, host=hardware_name(ws.device),
                      candidates=candidates, choice=choice, stop_reason=status.get("stop_reason"),
                      completed=status.get("completed"), incomplete_run_id=None)
    update_record(ws, **fields)
    if adopted and is_main_process():
        retire_predictions(ws.profile, keep=run_id)
    return choice


def other_histories(profile: str, histories: tuple[str, ...], device: str | None = None, seed: int = 0) -> dict:
    """Stage ``histories``: the chosen kind at its chosen rate and length at each other history
    (the top rung of the headroom ladder); each is that history's teacher."""
    ws = open_workspace(profile, device)
    choice = (teacher_record(profile) or {}).get("choice")
    if not choice:
        raise FileNotFoundError(f"no chosen {profile} teacher yet: run `python -m ecodistill train-teacher "
                                f"--profile {profile} --stages choose` first")
    out = {}
    for history in histories:
        variant = open_workspace(profile, device, history=history)
        if variant.history == ws.history:
            continue
        cand = _candidate(variant, choice["kind"], seed, choice["lr_scale"], choice["epochs_factor"])
        update_record(variant, histories={history: {f"{choice['kind']}_candidates": [cand],
                                                    "choice": {**choice, **cand}}},
                      by_history={history: cand["run_id"]})
        out[history] = cand["run_id"]
    return out


def label_budget_teachers(profile: str, budgets: tuple[int, ...], device: str | None = None, seed: int = 0) -> dict:
    """Stage ``budgets``: at each label budget both kinds at their own chosen learning rate and
    the profile's length (the pre-training contrast); the better by validation is the
    same-label teacher, its predictions cached for the students."""
    ws = open_workspace(profile, device)
    entry = _history_entry(ws)
    settings = {}
    for kind in KINDS:
        cands = entry.get(f"{kind}_candidates", [])
        if cands:
            best = min(cands, key=lambda c: c["val_rmse"])
            settings[kind] = (best["lr_scale"], 1.0)
    if not settings:
        raise FileNotFoundError(f"no {profile} teacher candidates yet: run `python -m ecodistill train-teacher "
                                f"--profile {profile} --stages adapted scratch` first")
    pre = pretrain(ws, seed) if "adapted" in settings else None
    chosen, contrast = {}, {}
    for years in budgets:
        cands = [_candidate(ws, kind, seed, lr, factor, label_years=years, pre=pre if kind == "adapted" else None)
                 for kind, (lr, factor) in settings.items()]
        best = min(cands, key=lambda c: c["val_rmse"])
        if is_main_process():
            model, _ = load_checkpoint(ws.checkpoint_path(f"teacher-{best['run_id']}"))
            save_teacher_predictions(ws, predict_splits(ws, model), best["run_id"],
                                     cached_predictions_folder(profile, best["run_id"]))
        chosen[str(years)], contrast[str(years)] = best["run_id"], cands
        update_record(ws, label_budget_run_ids={str(years): best["run_id"]},
                      budget_candidates={str(years): cands},
                      scratch_budget_run_ids={str(years): c["run_id"] for c in cands if c["kind"] == "scratch"})
    return {"label_budget_run_ids": chosen, "budget_candidates": contrast}
