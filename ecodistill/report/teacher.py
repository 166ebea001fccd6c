"""The teacher chapter's tables and verdicts: architecture and cost, test skill of the adapted
and the from-scratch teacher, per-biome skill, the headroom check, and whether pre-training
helps.

Reads the result rows of :func:`ecodistill.report.read_results`, the teacher record
``results/<profile>/teacher/teacher.json`` (passed in as ``record``) and, for
:func:`teacher_predictions_ready`, whether the teacher's prediction manifests exist.
:func:`architecture_table` builds the teacher networks on PyTorch's ``meta`` device from the
profiles' configs to count their cost: no weights, no data, no file. Explained in
book/generated/02_teacher.ipynb; :func:`headroom_table` also serves chapter 4.
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from ..utils import results_dir
from .frames import (
    aggregate,
    aggregate_columns,
    current,
    empty_table,
    labelled,
    own_variant,
    profile_of,
    select_variant,
    teacher_ids,
    wide,
    with_variants,
)
from .text import no_headroom_message, no_teacher_message, provenance_text

TEACHER_METRICS = ("r2", "r2_anom", "rmse", "rmse_latw")
HEADROOM_METRICS = ("r2_anom", "rmse")


def teacher_predictions_ready(profile: str) -> bool:
    """True when ``results/<profile>/teacher/`` holds the teacher record and the predictions
    offline distillation reads: the train, val and test manifests in the folder of the record's
    teacher (``pred_<run_id>/``, :func:`~ecodistill.experiments.teacher_files.predictions_folder`)."""
    from ..experiments.teacher_files import predictions_folder, teacher_record

    run_id = (teacher_record(profile) or {}).get("run_id")
    folder = predictions_folder(profile, run_id) if run_id else None
    return folder is not None and all((folder / f"pred_{split}.manifest.json").is_file()
                                      for split in ("train", "val", "test"))


def teacher_frame(frame: pd.DataFrame, record: dict | None) -> pd.DataFrame:
    """The rows of the current protocol on the teacher record's dataset (``teacher.json``;
    :func:`ecodistill.report.current`): teacher rows limited to the record's runs, so stale
    teacher runs of an older configuration or dataset never mix in, and only the runs of the main
    comparison's data variant (the teacher's: :func:`~ecodistill.report.frames.own_variant`), so
    the baselines of other histories (LightGBM at every history of the ladder) stay out. Empty
    without a record."""
    out = current(frame, record)
    if record and len(out):
        out = select_variant(with_variants(out), own_variant(profile_of(frame), record))
    return out[out["target"] == "ndvi"].reset_index(drop=True) if len(out) else out


#: How each teacher of the record is named in tables and figures (keys of :func:`teacher_ids`).
TEACHER_MODELS = {"adapted": "teacher (adapted)", "scratch": "teacher (scratch, tuned lr)",
                  "scratch, 2x steps": "teacher (scratch, tuned lr, 2x steps)"}


def teacher_models(record: dict | None) -> dict[str, str]:
    """``run_id -> model name`` of the teachers a chapter shows: the adapted teacher, the
    from-scratch teacher at its searched learning rate and at twice the steps, and the
    label-budget teachers (``teacher (adapted, N label years)``); the other learning-rate
    trials of the scratch teacher appear in its search table only.

    A record of the fair teacher choice (``candidates``,
    :mod:`ecodistill.experiments.teacher_choice`) names the best validated candidate of each kind
    (``teacher (adapted)``, ``teacher (scratch, tuned lr)``: both with rate and length searched;
    the chosen one is either) and both kinds at each label budget
    (``teacher (adapted|scratch, N label years)``)."""
    if record and record.get("candidates"):
        from .pretraining import candidates

        best: dict[str, dict] = {}
        for c in candidates(record):
            if c["name"] not in best or float(c.get("val_rmse", np.inf)) < float(best[c["name"]].get("val_rmse", np.inf)):
                best[c["name"]] = c
        out = {c["run_id"]: TEACHER_MODELS["adapted" if kind == "adapted" else "scratch"] for kind, c in best.items()}
        for years, cands in (record.get("budget_candidates") or {}).items():
            plural = "" if str(years) == "1" else "s"
            for c in cands:
                out[c["run_id"]] = f"teacher ({c.get('kind')}, {years} label year{plural})"
        return out
    out = {}
    for label, run_id in teacher_ids(record).items():
        if label in TEACHER_MODELS:
            out.setdefault(run_id, TEACHER_MODELS[label])
        elif label.startswith("adapted, "):
            out[run_id] = f"teacher ({label})"
    return out


def teacher_provenance(profile: str, record: dict | None) -> str:
    """Profile, hardware and seed of the teacher's numbers, or what makes the teacher."""
    return provenance_text(profile, [record["seed"]]) if record else no_teacher_message(profile)


def teacher_record_text(profile: str, record: dict | None) -> str:
    """Provenance, time and device of the teacher pipeline and the adapted run's id (lines),
    or what makes the teacher."""
    if not record:
        return no_teacher_message(profile)
    seconds = record.get("seconds")
    kind = (record.get("choice") or {}).get("kind", "adapted")
    lines = [teacher_provenance(profile, record),
             f"teacher pipeline: {seconds:.0f} s on {record.get('device', 'an unrecorded device')}" if seconds
             else f"teacher trained on {record.get('device', 'an unrecorded device')}",
             f"{'adapted' if kind == 'adapted' else 'chosen (trained from scratch)'} teacher run: {record['run_id']}"]
    return "\n".join(lines)


def teacher_run_ids(record: dict | None) -> dict[str, str]:
    """``label -> run_id`` of the adapted and the from-scratch teacher ({} without a record)."""
    if not record:
        return {}
    ids = teacher_ids(record)
    return {name: ids[key] for key, name in (("adapted", "adapted teacher"), ("scratch", "teacher from scratch"))
            if key in ids}


def input_channel_count(data_cfg: Any) -> int:
    """Model input channels of a :class:`~ecodistill.config.DataConfig`, without building the
    data: today's weather, its trailing mean over every history window, the static maps and the
    calendar (the channel list of :func:`ecodistill.data.prepare`)."""
    from ..data.prepare import input_channel_names

    return len(input_channel_names(data_cfg))


def architecture_table(profiles: tuple[str, ...] = ("smoke", "full")) -> pd.DataFrame:
    """The teacher's shape and cost per profile and stage, built on the ``meta`` device (no
    memory, no data, seconds even for the ~10^8-parameter ``full`` teacher).

    Stages: ``pre-training`` (today's weather -> tomorrow's) and ``adapted`` (all inputs ->
    NDVI; new first layer and head on the same blocks). Costs from
    :func:`ecodistill.models.model_card` (FLOPs per map include the FFTs, counted
    analytically).

    Columns: ``profile, stage, grid, patch, tokens, embed_dim, depth, afno_blocks, mlp_ratio,
    in_chans, out_chans, n_params, flops_per_map, fft_flops, bytes_per_map, weights_mb``.
    """
    import torch

    from ..config import get_profile
    from ..data.prepare import input_vars
    from ..data.tasks import pretrain_task
    from ..models import afno_from_config, model_card

    rows = []
    for profile in profiles:
        cfg = get_profile(profile)
        t, grid = cfg.teacher, (cfg.data.nlat, cfg.data.nlon)
        task = pretrain_task(cfg.pretrain_task, input_vars(cfg.data), cfg.land_lead)
        stages = {"pre-training": (len(task.inputs), len(task.targets)),
                  "adapted": (input_channel_count(cfg.data), 1)}
        for stage, (c_in, c_out) in stages.items():
            with torch.device("meta"):
                model = afno_from_config(t, c_in, c_out, grid)
            rows.append({"profile": profile, "stage": stage, "grid": f"{grid[0]}x{grid[1]}",
                         "patch": t.patch_size,
                         "tokens": f"{grid[0] // t.patch_size}x{grid[1] // t.patch_size}",
                         "embed_dim": t.embed_dim, "depth": t.depth, "afno_blocks": t.num_blocks,
                         "mlp_ratio": t.mlp_ratio, "in_chans": c_in, "out_chans": c_out,
                         **model_card(model, (c_in, *grid))})
    return pd.DataFrame(rows)


def teacher_skill(frame: pd.DataFrame, record: dict | None = None,
                  baselines: bool = True) -> pd.DataFrame:
    """Test skill over land of the record's teachers (:func:`teacher_models`: adapted, from
    scratch at its searched learning rate and at twice the steps, label-budget teachers), mean
    ± std over seeds, and the baselines' rows (``kind=baseline``) when ``baselines``.

    Without ``record`` the teachers are named by their ``init`` (``teacher (adapted)`` for
    ``pretrained``, ``teacher (scratch, tuned lr)`` for ``scratch``).

    Columns: ``model, init, method, n_params, flops_per_map, n_seeds, r2_mean, r2_std,
    r2_anom_mean, r2_anom_std, rmse_mean, rmse_std, rmse_latw_mean, rmse_latw_std``.
    """
    keys = ["model", "init", "method", "n_params", "flops_per_map"]
    missing = no_teacher_message(profile_of(frame))
    w = wide(frame)
    teachers = w[w["kind"] == "teacher"]
    if record:
        names = teacher_models(record)
        teachers = teachers[teachers["run_id"].isin(names)]
        teachers = teachers.assign(model=teachers["run_id"].map(names))
    else:
        teachers = teachers.assign(model=teachers["init"].map(
            {"pretrained": TEACHER_MODELS["adapted"], "scratch": TEACHER_MODELS["scratch"]}))
    if teachers.empty:
        return empty_table(aggregate_columns(keys, TEACHER_METRICS), missing)
    rows = [teachers]
    if baselines:
        base = w[w["kind"] == "baseline"]
        rows.append(base.assign(model="baseline: " + base["method"]))
    out = aggregate(pd.concat(rows, ignore_index=True), keys, TEACHER_METRICS)
    order = list(TEACHER_MODELS.values())
    rank = out["model"].map(lambda m: (order.index(m) if m in order else len(order)
                                       + (0 if m.startswith("teacher") else 1), m))
    return labelled(out.loc[rank.sort_values().index].reset_index(drop=True), missing)


def teacher_biomes(frame: pd.DataFrame, metric: str = "r2_anom",
                   record: dict | None = None) -> pd.DataFrame:
    """Test ``metric`` per biome (rows) of the adapted teacher and the tuned from-scratch
    teacher (columns, mean over seeds), for :func:`ecodistill.plots.group_skill`; no rows
    without teacher biome rows."""
    adapted, scratch = TEACHER_MODELS["adapted"], TEACHER_MODELS["scratch"]
    missing = no_teacher_message(profile_of(frame))
    rows = frame[(frame["target"] == "ndvi") & (frame["kind"] == "teacher")
                 & (frame["split"] == "test") & (frame["metric"] == metric)
                 & frame["region"].astype(str).str.startswith("biome:")]
    if record:
        names = {k: v for k, v in teacher_models(record).items() if v in (adapted, scratch)}
        rows = rows[rows["run_id"].isin(names)].assign(model=lambda r: r["run_id"].map(names))
    else:
        rows = rows.assign(model=rows["init"].map({"pretrained": adapted, "scratch": scratch}))
    if rows.empty:
        return empty_table(["biome", adapted, scratch], missing, index="biome")
    rows = rows.assign(biome=rows["region"].str[6:])
    table = rows.pivot_table(index="biome", columns="model", values="value", aggfunc="mean")
    return labelled(table.sort_index(), missing)


def headroom_table(frame: pd.DataFrame, record: dict | None = None) -> pd.DataFrame:
    """Test anomaly R² vs size of the scratch AFNO headroom models (the ``-final-`` runs, each
    size at its own searched learning rate) beside the adapted teacher and the tuned scratch
    teacher (at its searched learning rate and at twice the steps).

    Columns: ``model, init, n_params, flops_per_map, lr_scale`` (the size's learning-rate
    multiple of the students' base rate, from its run config; NaN for teachers),
    ``n_seeds, r2_anom_mean, r2_anom_std, rmse_mean, rmse_std``.
    """
    keys = ["model", "init", "n_params", "flops_per_map", "lr_scale"]
    profile = profile_of(frame)
    missing = no_headroom_message(profile)
    w = wide(frame)
    sizes = w[(w["method"] == "headroom") & w["run_id"].astype(str).str.contains("-final-")]
    if sizes.empty:
        return empty_table(aggregate_columns(keys, HEADROOM_METRICS), missing)
    sizes = sizes.assign(model="headroom", lr_scale=sizes["run_id"].map(lambda r: _lr_scale(profile, r)))
    sizes = _at_searched_lr(frame, sizes, profile)
    teachers = w[w["kind"] == "teacher"]
    names = {k: v for k, v in teacher_models(record).items()
             if v in TEACHER_MODELS.values()} if record else {}
    teachers = (teachers[teachers["run_id"].isin(names)].assign(model=lambda r: r["run_id"].map(names))
                if record else teachers.assign(model="teacher (" + teachers["init"] + ")"))
    rows = pd.concat([sizes, teachers.assign(lr_scale=np.nan)], ignore_index=True)
    out = aggregate(rows, keys, HEADROOM_METRICS)
    return labelled(out.sort_values("n_params").reset_index(drop=True), missing)


HEADROOM_SHOWN = ["model", "parameters", "lr multiple", "seeds", "anomaly R² (mean ± std)", "RMSE"]


def headroom_shown(headroom: pd.DataFrame) -> pd.DataFrame:
    """:func:`headroom_table` as a chapter shows it: every model's parameters, learning-rate
    multiple, seeds, test anomaly R² (mean ± std over seeds) and RMSE, in the book's formats."""
    from .summary import fmt

    rows = [{"model": r["model"] if r["model"] != "headroom" else "AFNO from scratch",
             "parameters": fmt("params", r["n_params"]),
             "lr multiple": f"{r['lr_scale']:g} ×" if np.isfinite(r["lr_scale"]) else "–",
             "seeds": int(r["n_seeds"]),
             "anomaly R² (mean ± std)": fmt("r2", r["r2_anom_mean"])
             + (f" ± {fmt('r2', r['r2_anom_std'])}" if np.isfinite(r["r2_anom_std"]) else ""),
             "RMSE": fmt("rmse", r["rmse_mean"])} for _, r in headroom.iterrows()]
    return labelled(pd.DataFrame(rows, columns=HEADROOM_SHOWN), headroom.attrs.get("missing", ""))


def _headroom_size(run_id: str) -> str:
    """``afno_w16d2`` from ``headroom-afno_w16d2-final-<hash>``."""
    m = re.fullmatch(r"headroom-(.+)-(?:tune|final)-[0-9a-f]+", str(run_id))
    return m.group(1) if m else ""


def _at_searched_lr(frame: pd.DataFrame, finals: pd.DataFrame, profile: str) -> pd.DataFrame:
    """The ``-final-`` headroom runs of each size at the learning rate its search chose (its
    ``-tune-`` run of lowest validation RMSE): finals of a superseded search (e.g. before the
    grid was widened) are left out. Finals whose learning rate is unknown are kept."""
    val = wide(frame, "val")
    tunes = val[(val["method"] == "headroom") & val["run_id"].astype(str).str.contains("-tune-")]
    if tunes.empty:
        return finals
    tunes = tunes.assign(size=tunes["run_id"].map(_headroom_size),
                         lr_scale=tunes["run_id"].map(lambda r: _lr_scale(profile, r))).dropna(subset=["rmse"])
    best = tunes.loc[tunes.groupby("size")["rmse"].idxmin()].set_index("size")["lr_scale"]
    chosen = finals["run_id"].map(_headroom_size).map(best).astype(float)
    keep = chosen.isna() | finals["lr_scale"].isna() | np.isclose(finals["lr_scale"], chosen)
    return finals[keep.to_numpy()]


def _lr_scale(profile: str, run_id: str) -> float:
    """A run's learning rate as a multiple of the profile's student base rate (NaN if unknown)."""
    from ..config import get_profile
    from ..store import runs

    try:
        lr = runs.read_run_config(profile, run_id)["train"]["lr"]
        return float(lr) / get_profile(profile).student_train.lr
    except (FileNotFoundError, KeyError, ValueError, TypeError):
        return float("nan")


def headroom_check(headroom: pd.DataFrame, max_params: float = 1e6,
                   factor: float = 2.0) -> dict[str, Any]:
    """The headroom requirement, computed from :func:`headroom_table`.

    1. *rising*: the scratch models' mean test anomaly R² rises at every step up in size;
    2. *beats*: the adapted teacher's anomaly R² exceeds the best scratch model of at most
       ``max_params`` parameters by more than ``factor`` x the seed spread (the larger of the
       two models' standard deviations over seeds; undefined with one seed per model).

    Returns:
        ``rising, beats, passes`` (bool, or None when they cannot be judged), ``n_sizes``,
        ``teacher_r2_anom, best_small_r2_anom, best_small_params, margin, spread`` (floats,
        NaN when absent) and ``verdict`` (a sentence built from these numbers; without
        headroom runs, the table's message naming the command).
    """
    nan = float("nan")
    out: dict[str, Any] = {"rising": None, "beats": None, "passes": None, "n_sizes": 0,
                           "teacher_r2_anom": nan, "best_small_r2_anom": nan,
                           "best_small_params": nan, "margin": nan, "spread": nan,
                           "verdict": "no headroom runs yet"}
    if headroom is None or headroom.empty:
        out["verdict"] = getattr(headroom, "attrs", {}).get("missing", out["verdict"])
        return out
    sizes = headroom[headroom["model"] == "headroom"].sort_values("n_params")
    teacher = headroom[headroom["model"].isin(["teacher (adapted)", "teacher (pretrained)"])]
    steps = np.diff(sizes["r2_anom_mean"].to_numpy(float))
    out["n_sizes"] = len(sizes)
    out["rising"] = bool((steps > 0).all()) if len(sizes) > 1 else None
    small = sizes[sizes["n_params"] <= max_params]
    if out["rising"] is None:
        rising_text = "with a single size, whether skill rises with size cannot be judged"
    else:
        rising_text = (f"anomaly R² {'rises' if out['rising'] else 'does not rise'} with size "
                       f"({int((steps > 0).sum())} of {len(steps)} steps up)")
    if teacher.empty or small.empty:
        out["verdict"] = (f"not judged: {rising_text}, but no adapted teacher or no scratch model "
                          f"of ≤{max_params:,.0f} parameters")
        return out
    top, best = teacher.iloc[0], small.loc[small["r2_anom_mean"].idxmax()]
    spreads = [v for v in (top["r2_anom_std"], best["r2_anom_std"]) if pd.notna(v)]
    margin = float(top["r2_anom_mean"] - best["r2_anom_mean"])
    out.update(teacher_r2_anom=float(top["r2_anom_mean"]),
               best_small_r2_anom=float(best["r2_anom_mean"]),
               best_small_params=float(best["n_params"]), margin=margin,
               spread=max(spreads) if spreads else nan)
    beat_text = (f"the adapted teacher's test anomaly R² ({top['r2_anom_mean']:.3f}) is "
                 f"{abs(margin):.3f} {'above' if margin > 0 else 'below'} the best scratch model "
                 f"of ≤{max_params:,.0f} parameters ({best['r2_anom_mean']:.3f} at "
                 f"{int(best['n_params']):,} parameters)")
    if not spreads:
        out["verdict"] = (f"not judged: {rising_text}; {beat_text}, but with one seed per model "
                          "the seed spread is unknown (run more seeds)")
        return out
    out["beats"] = bool(margin > factor * out["spread"])
    out["passes"] = None if out["rising"] is None else bool(out["beats"] and out["rising"])
    word = {True: "passes", False: "fails", None: "not judged"}[out["passes"]]
    out["verdict"] = (f"{word}: {rising_text}; {beat_text}, "
                      f"{'more' if out['beats'] else 'not more'} than {factor:g} x the seed spread "
                      f"({out['spread']:.3f})")
    return out


def adaptation_verdict(skill: pd.DataFrame) -> str:
    """A sentence, computed from :func:`teacher_skill`, on whether pre-training helps: the
    adapted teacher's test anomaly R² and RMSE against the same network trained from scratch at
    its searched learning rate, and at twice the steps (is the scratch teacher still
    improving?), judged against twice the seed spread when both have several seeds. Without
    teacher rows, the table's message naming the command."""
    if skill.empty and "missing" in skill.attrs:
        return skill.attrs["missing"]
    t = skill.set_index("model") if len(skill) else pd.DataFrame()
    adapted_name = TEACHER_MODELS["adapted"]
    scratches = [m for m in (TEACHER_MODELS["scratch"], TEACHER_MODELS["scratch, 2x steps"]) if m in t.index]
    if adapted_name not in t.index or not scratches:
        return ("the adapted and the from-scratch teacher are not both in the results, so "
                "pre-training is not judged")
    adapted = t.loc[adapted_name]
    best = max(scratches, key=lambda m: t.loc[m, "r2_anom_mean"])
    scratch = t.loc[best]
    diff = float(adapted["r2_anom_mean"] - scratch["r2_anom_mean"])
    which = "at twice the steps" if best == TEACHER_MODELS["scratch, 2x steps"] else "at its searched learning rate"
    text = (f"the adapted teacher's test anomaly R² is {abs(diff):.3f} "
            f"{'above' if diff > 0 else 'below'} that of the best from-scratch teacher ({which}: "
            f"{adapted['r2_anom_mean']:.3f} vs {scratch['r2_anom_mean']:.3f}; RMSE "
            f"{adapted['rmse_mean']:.4f} vs {scratch['rmse_mean']:.4f})")
    if len(scratches) == 2:
        one, two = (t.loc[m, "r2_anom_mean"] for m in scratches)
        text += (f"; doubling the scratch teacher's steps {'raised' if two > one else 'did not raise'} its "
                 f"anomaly R² ({one:.3f} to {two:.3f})")
    spreads = [v for v in (adapted["r2_anom_std"], scratch["r2_anom_std"]) if pd.notna(v)]
    if len(spreads) < 2:
        return text + "; one seed each, so the difference is not tested against seed variation"
    resolved = abs(diff) > 2 * max(spreads)
    return text + (f"; the difference is {'more' if resolved else 'not more'} than twice the seed "
                   f"spread ({max(spreads):.3f})")


def teacher_headline(skill: pd.DataFrame) -> dict[str, float | str]:
    """The teacher chapter's quoted numbers from :func:`teacher_skill` (NaN when absent):
    ``teacher_test_{r2, r2_anom, rmse, rmse_latw}`` of the adapted teacher,
    ``scratch_teacher_test_{r2_anom, rmse}`` and ``adaptation_text``."""
    t = skill.set_index("model") if len(skill) else pd.DataFrame()

    def pick(model: str, column: str) -> float:
        return float(t.loc[model, column]) if model in t.index else float("nan")

    out: dict[str, float | str] = {f"teacher_test_{m}": pick(TEACHER_MODELS["adapted"], f"{m}_mean")
                                   for m in TEACHER_METRICS}
    out.update(scratch_teacher_test_r2_anom=pick(TEACHER_MODELS["scratch"], "r2_anom_mean"),
               scratch_teacher_test_rmse=pick(TEACHER_MODELS["scratch"], "rmse_mean"),
               scratch_long_teacher_test_r2_anom=pick(TEACHER_MODELS["scratch, 2x steps"], "r2_anom_mean"),
               adaptation_text=adaptation_verdict(skill))
    return out
