"""Test skill of compressed students: int8, fp16 and pruned with distillation fine-tuning.

:mod:`ecodistill.deploy.bench` measures how fast a compressed model is; this module measures what
the compression costs in skill. Each reported distilled student (seed 0, kept by
:func:`ecodistill.experiments.distill.save_student`) is reloaded, compressed with
:mod:`ecodistill.deploy`, run over the test years through the same workspace as every
other run, and recorded as a run of its own:

* ``int8torchdyn``  -- PyTorch dynamic int8 (``nn.Linear`` weights int8, activations per call);
* ``int8ortdyn``    -- ONNX Runtime dynamic int8;
* ``int8ortstatic`` -- ONNX Runtime static int8 (QDQ), calibrated on real inputs of the
  training years (never the test years);
* ``fp16``          -- weights cast to float16;
* ``pruned<p>kd``   -- structured L1 pruning of ``p`` % of the hidden units, then
  fine-tuning with the student's own distillation objective (prune, then retrain the
  survivors, as in Deep Compression {cite}`han2016deep`, with the teacher as the target).

The run id is ``kd-<loss>-<mode>-<student>_from_teacher-<variant>-<hash>`` (the variant sits
where other runs have their tag, so :mod:`ecodistill.report` keeps these runs out of the
distilled-vs-scratch comparison) and ``method`` is the source's plus ``+<variant>``.
Finished runs are skipped, so the command resumes.

Explained in book/generated/05_pi_timings.ipynb.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..config import PROFILES, DistillConfig
from ..deploy import compress
from ..models import load_checkpoint
from ..store import runs
from ..training.loop import fit
from ..training.objectives import make_objective, truth_loss
from ..utils import results_dir, seed_everything
from .teacher import load_teacher_predictions, teacher_record
from .workspace import Workspace, open_workspace

#: Compression variants in the order they are run; ``pruned`` takes the amount as a suffix.
VARIANTS = ("int8torchdyn", "int8ortdyn", "int8ortstatic", "fp16", "pruned")
#: The bench's (runtime, dtype) of each int8 variant (to pair skill with latency).
BENCH_KIND = {"int8torchdyn": ("torch", "int8-dynamic"),
              "int8ortdyn": ("onnxruntime", "int8-dynamic"),
              "int8ortstatic": ("onnxruntime", "int8-static")}


class OrtModule(nn.Module):
    """An ONNX Runtime session behind the ``nn.Module`` call: ``(b, c, H, W)`` fp32 in and out."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        super().__init__()
        self.session = compress.ort_session(path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs = {self.input_name: x.detach().cpu().numpy().astype(np.float32)}
        out = self.session.run(None, inputs)[0]
        return torch.from_numpy(out)


def calibration_batches(ws: Workspace, n_batches: int = 8, batch_size: int = 8,
                        seed: int = 0) -> list[np.ndarray]:
    """``n_batches`` input batches ``(batch_size, c_in, h, w)`` drawn from the training years."""
    out = []
    for batch in ws.loader("train", shuffle=True, seed=seed, batch_size=batch_size):
        out.append(batch.x.numpy())
        if len(out) == n_batches:
            break
    if not out:
        raise ValueError("calibration_batches: the training split is empty")
    return out


def reported_students(profile: str) -> list[tuple[str, Path]]:
    """``(run_id, checkpoint)`` of every kept distilled student (``results/<profile>/students``)."""
    folder = results_dir(profile) / "students"
    return [(p.stem, p) for p in sorted(folder.glob("*.pt"))] if folder.is_dir() else []


def distil_finetune(ws: Workspace, model: nn.Module, dcfg: DistillConfig, seed: int,
                    epochs: int | None = None, lr_scale: float = 0.3) -> nn.Module:
    """Fine-tune a pruned student with its distillation objective on the cached teacher outputs.

    Objectives that need the live teacher (online, feature losses) fall back to offline
    output matching (MSE) at the same ``alpha``: see :func:`finetune_objective`.
    ``epochs`` defaults to a third of the profile's student budget; the learning rate is
    ``lr_scale`` times the profile's (fine-tuning starts from trained weights).
    """
    from .distill import student_train_cfg, train_loader

    dcfg = finetune_objective(dcfg)
    base = ws.cfg.student_train
    cfg = student_train_cfg(ws, seed, lr_scale, epochs=epochs or max(1, base.epochs // 3),
                            warmup_frac=0.0)
    seed_everything(seed)
    example = ws.example_x() if dcfg.mode == "self" else None
    loss_fn = make_objective(dcfg, model, None, example, seed)
    fit(model, train_loader(ws, dcfg, cfg), ws.val_loader(cfg), loss_fn, cfg,
        lat_weights=ws.lat_weights,
        val_loss_fn=truth_loss("mse"), device=ws.device, progress=False)
    return model.cpu().eval()


def finetune_objective(dcfg: DistillConfig) -> DistillConfig:
    """The student's own objective when it runs on cached teacher outputs, else offline MSE."""
    from .distill import needs_live_teacher

    if dcfg.mode == "offline" and not needs_live_teacher(dcfg):
        return dcfg
    return replace(dcfg, mode="offline", loss="mse")


def variant_names(prune_amount: float = 0.5, only: tuple[str, ...] | None = None) -> list[str]:
    """The variants to run, e.g. ``["int8torchdyn", ..., "pruned50kd"]`` (``only`` filters by
    the names of :data:`VARIANTS`)."""
    chosen = [v for v in VARIANTS if not only or v in only]
    return [f"pruned{round(prune_amount * 100)}kd" if v == "pruned" else v for v in chosen]


def make_variant(variant: str, ws: Workspace, model: nn.Module, dcfg: DistillConfig, seed: int,
                 workdir: Path, prune_amount: float = 0.5) -> tuple[nn.Module, dict]:
    """``(compressed model, info)`` of one variant of a trained student (``model`` is not changed).

    The ONNX export is written once into ``workdir`` and shared by the ONNX variants.

    Raises:
        ValueError: for an unknown variant, or pruning a model with no prunable layer pair.
    """
    model = model.cpu().eval()
    if variant == "int8torchdyn":
        return compress.quantize_dynamic_torch(model), {}
    if variant == "fp16":
        return compress.cast_weights(model, "fp16"), {}
    example = ws.example_x(2)  # for the pruning check and the ONNX export
    if variant.startswith("pruned"):
        pruned, info = compress.prune_structured(
            model, prune_amount, example, finetune_fn=lambda m: distil_finetune(ws, m, dcfg, seed))
        objective = finetune_objective(dcfg)
        return pruned, {**info, "finetune_objective": {"loss": objective.loss,
                                                       "mode": objective.mode,
                                                       "alpha": objective.alpha}}
    onnx = workdir / "fp32.onnx"
    diff = (compress.export_onnx(model, example, onnx)["max_abs_diff"] if not onnx.is_file()
            else float("nan"))
    if variant == "int8ortdyn":
        path = compress.quantize_onnx_dynamic(onnx, workdir / "int8d.onnx")
        return OrtModule(path), {"onnx_max_abs_diff": diff}
    if variant == "int8ortstatic":
        path = compress.quantize_onnx_static(onnx, workdir / "int8s.onnx", calibration_batches(ws))
        return OrtModule(path), {"calibration": "8 batches of 8 training-year days"}
    raise ValueError(f"unknown compression variant {variant!r}: choose one of {VARIANTS}")


def _source_meta(profile: str, run_id: str) -> dict:
    """The source run's metadata row (kind, method, family, params, FLOPs, alpha, seed ...)."""
    frame = runs.read_runs(profile, run_id=run_id, split="test", region="global", metric="r2")
    if frame.empty:
        raise FileNotFoundError(f"student checkpoint {run_id} has no test result in "
                                f"results/{profile}/runs: "
                                "rerun `python -m ecodistill matrix` for this profile")
    return frame.iloc[0].to_dict()


def evaluate_compressed(profile: str, device: str = "cpu", prune_amount: float = 0.5,
                        only: tuple[str, ...] | None = None,
                        log: Callable[[str], object] = print) -> list[str]:
    """Compress every reported distilled student and record its test skill; returns run ids.

    Args:
        profile: whose ``results/<profile>/students`` to compress.
        device: where the pruned students are fine-tuned (inference of compressed models is CPU).
        prune_amount: share of hidden units removed by the pruning variant.
        only: restrict to these variants (names as in :data:`VARIANTS`, ``pruned`` for pruning).
        log: receives one line per skipped or recorded variant.

    Raises:
        ValueError: for ``prune_amount`` outside (0, 1).
    """
    if not 0.0 < prune_amount < 1.0:
        raise ValueError(f"prune_amount={prune_amount} outside (0, 1): e.g. 0.5 removes half "
                         "the hidden units")
    ws = open_workspace(profile, device)
    teacher_ready = (teacher_record(profile) or {}).get("dataset_hash") == ws.dataset_hash
    teacher_test = load_teacher_predictions(ws, "test") if teacher_ready else None
    ids = []
    for src_id, path in reported_students(profile):
        model, meta = load_checkpoint(path)
        config = meta["run"]
        if config.get("dataset_hash") != ws.dataset_hash:
            log(f"skip {src_id}: made on dataset {config.get('dataset_hash')}, "
                f"not {ws.dataset_hash}")
            continue
        src = _source_meta(profile, src_id)
        dcfg = DistillConfig(**config["distill"])
        name = src_id.rsplit("-", 2)[0]  # drop "-final-<hash>"
        with tempfile.TemporaryDirectory() as tmp:
            for variant in variant_names(prune_amount, only):
                amount = prune_amount if variant.startswith("pruned") else None
                run_config = {**config, "role": "compressed", "source_run_id": src_id,
                              "variant": variant, "prune_amount": amount}
                run_id = runs.make_run_id(f"{name}-{variant}", run_config)
                if runs.has_run(profile, run_id):
                    continue
                try:
                    compressed, info = make_variant(variant, ws, model, dcfg, int(src["seed"]),
                                                    Path(tmp), prune_amount)
                except ValueError as err:  # e.g. nothing to prune in this architecture
                    log(f"  {src_id} {variant}: skipped ({err})")
                    continue
                ids.append(_record(ws, run_id, name, variant, compressed, src, run_config, info,
                                   teacher_test))
                log(f"  {src_id} {variant}: recorded {run_id}")
    return ids


def _record(ws: Workspace, run_id: str, name: str, variant: str, model: nn.Module, src: dict,
            config: dict, info: dict, teacher_test: np.ndarray | None) -> str:
    """Predict the test years with a compressed model and write its run."""
    # int8 and ONNX Runtime models run on the CPU only
    y_hat = ws.predict(model, "test", device="cpu")
    rows = ws.evaluate(y_hat, "test", teacher_pred=teacher_test, monthly=False)
    pruned = variant.startswith("pruned")
    n_params, flops = (ws.model_cost(model) if pruned
                       else (int(src["n_params"]), float(src["flops_per_map"])))
    meta = {"run_id": run_id, "kind": "student", "init": "distilled",
            "method": f"{src['method']}+{variant}", "family": src["family"],
            "n_params": n_params, "flops_per_map": flops, "alpha": src["alpha"],
            "label_years": src["label_years"], "teacher_run_id": src.get("teacher_run_id", ""),
            "seed": int(src["seed"])}
    return ws.record(f"{name}-{variant}", meta, rows, {**config, "compression": info})


def compressed_skill(profile: str) -> pd.DataFrame:
    """One row per compressed run: source run, variant, test R² of both and the relative loss.

    Columns: ``source_run_id, student, variant, r2_fp32, r2, r2_loss_pct`` where
    ``r2_loss_pct = 100 (R²_fp32 - R²_variant) / R²_fp32`` on the test years. Without
    compressed runs, no rows and the command in ``attrs["missing"]``.
    """

    r2 = runs.read_runs(profile, target="ndvi", split="test", region="global", metric="r2")
    by_id = r2.drop_duplicates("run_id").set_index("run_id")["value"]
    rows = []
    for run_id in by_id.index:
        student, tag = runs.parse_run_id(run_id)
        if not any(tag.startswith(v) for v in VARIANTS):
            continue
        config = runs.read_run_config(profile, run_id)
        base = by_id.get(config.get("source_run_id"), np.nan)
        rows.append({"source_run_id": config.get("source_run_id"), "student": student,
                     "variant": tag, "r2_fp32": base, "r2": by_id[run_id],
                     "r2_loss_pct": 100 * (base - by_id[run_id]) / base})
    columns = ["source_run_id", "student", "variant", "r2_fp32", "r2", "r2_loss_pct"]
    table = pd.DataFrame(rows, columns=columns).sort_values(["student", "variant"])
    table = table.reset_index(drop=True)
    table.attrs["missing"] = (f"no compressed-student runs for {profile} yet — run python -m "
                              f"ecodistill compressed-skill --profile {profile}")
    return table


# --------------------------------------------------------------------------- CLI
def _cmd(args: argparse.Namespace) -> int:
    only = tuple(args.only) if args.only else None
    ids = evaluate_compressed(args.profile, args.device, args.prune, only)
    table = compressed_skill(args.profile)
    print(json.dumps({"new_runs": len(ids)}))
    print(table.round(4).to_string(index=False) if len(table) else "no compressed runs")
    return 0


def register_cli(subparsers) -> None:
    """Add ``compressed-skill``."""
    p = subparsers.add_parser("compressed-skill",
                              help="test skill of int8 / fp16 / pruned+distilled students",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="smoke", choices=PROFILES)
    p.add_argument("--device", default="cpu",
                   help="where pruned students are fine-tuned (cpu or cuda)")
    p.add_argument("--prune", type=float, default=0.5, help="share of hidden units removed (0..1)")
    p.add_argument("--only", nargs="+", choices=VARIANTS, help="run only these variants")
    p.set_defaults(func=_cmd)
