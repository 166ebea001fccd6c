"""Runtime measurement: latency, throughput, memory and size of teacher, students and compressed students.

For every model (teacher, students, pruned students) at one grid this measures, for
PyTorch eager and ONNX Runtime, fp32 and int8 (PyTorch dynamic; ONNX Runtime dynamic and
static QDQ), at each thread count (``torch.set_num_threads`` / ORT ``intra_op_num_threads``):

* latency per call: median and 90th percentile over ``runs`` (>= 20) timed calls after
  ``warmup`` calls, batch 1 (one global map); throughput from larger batches (maps/s =
  ``batch * 1000 / median_ms``; ``median_ms`` is always per *call*);
* peak memory: growth of the process's peak resident set (``VmHWM`` in
  ``/proc/self/status``, reset through ``/proc/self/clear_refs``) during the *first* call
  of a fresh model or session (at the largest thread count), in MB -- it includes the
  runtime's scratch buffers and packed weights, which ``tracemalloc`` cannot see; later
  calls reuse that memory, so it is what a device must have free beyond the weights;
* parameters, FLOPs and bytes per map (:mod:`ecodistill.models.cost`), sizes on disk
  (fp32 / fp16 / int8 checkpoints, ONNX files) and the ONNX-vs-PyTorch max abs difference.

The teacher's runtime is measured with random weights of its architecture: runtime does
not depend on weight values. Students use their checkpoints from
``results/<profile>/students/*.pt`` when present (``weights=trained``), else random
weights of the same architecture (``weights=random``); see ``model_sizes.csv``.

Writes ``results/<profile>/timings.csv`` (the schema of
:func:`ecodistill.store.runs.write_timings`), ``model_sizes.csv`` and ``bench_memory.csv``.
Host, CPU model and library versions go into every timing row.

On a Raspberry Pi (64-bit Raspberry Pi OS, Python >= 3.10), from the project folder::

    pip install torch numpy pandas onnx onnxscript onnxruntime && pip install -e . --no-deps && python -m ecodistill.deploy.bench --profile cpu --threads 1,all --out results/pi

(onnxruntime is optional: without it only PyTorch is timed.) Explained in
book/generated/05_pi_timings.ipynb.
"""
from __future__ import annotations

import argparse
import copy
import io
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..config import get_profile
from ..store.runs import make_run_id, write_timings
from ..utils import atomic_write_text, cpu_model, git_commit, library_versions, results_dir, seed_everything
from . import compress

DEFAULT_IN_CHANS = 40  # fallback when ecodistill.data (needs xarray) is not installed, e.g. on a Pi
RUNTIMES = ("torch", "onnxruntime")


# ----------------------------------------------------------------------------- host

def host_info() -> dict:
    """Host facts stored with every timing row."""
    return {"host": platform.node(), "machine": platform.machine(), "cpu": cpu_model(),
            "cores": os.cpu_count(), "system": platform.platform(),
            "loadavg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            **library_versions()}


def input_channels(profile: str) -> int:
    """The profile's input channel count as :mod:`ecodistill.data` builds it (weather, trailing
    means, static maps, calendar); :data:`DEFAULT_IN_CHANS` where that module is unavailable."""
    try:
        from ..data.prepare import input_channel_names
    except ImportError:
        return DEFAULT_IN_CHANS
    return len(input_channel_names(get_profile(profile).data))


def parse_grid(text: str) -> tuple[int, int]:
    """``"720x1440"`` -> ``(720, 1440)``."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise ValueError(f"grid {text!r}: write it as <nlat>x<nlon>, e.g. 720x1440") from err
    return h, w


def parse_threads(text: str) -> list[int]:
    """``"1,all"`` -> ``[1, os.cpu_count()]`` (duplicates removed, order kept)."""
    out = []
    for part in str(text).split(","):
        n = os.cpu_count() or 1 if part.strip() == "all" else int(part)
        if n < 1:
            raise ValueError(f"threads {text!r}: each entry must be >= 1 or 'all'")
        if n not in out:
            out.append(n)
    return out


# ----------------------------------------------------------------------------- timing

def time_call(fn: Callable[[], object], runs: int = 20, warmup: int = 3,
              max_seconds: float | None = None, min_runs: int = 3) -> dict:
    """Median and p90 wall time (ms) of ``fn()`` over ``runs`` calls after ``warmup`` calls.

    With ``max_seconds``, timing stops early once that much time is spent and ``min_runs``
    calls are done (for the teacher at 720x1440); ``n`` in the result says how many ran.
    """
    if runs < 1:
        raise ValueError(f"runs={runs}: need at least one timed call (the project reports >= 20)")
    start = time.perf_counter()
    for _ in range(warmup):
        fn()
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
    times, start = [], time.perf_counter()
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if max_seconds is not None and len(times) >= min_runs and time.perf_counter() - start > max_seconds:
            break
    return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)), "n": len(times)}


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _pin_mmap_threshold() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc: the measurement is coarser, method says so
        pass


def peak_rss_mb(fn: Callable[[], object]) -> tuple[float, str]:
    """Growth of the peak resident set during one ``fn()`` call (MB) and the method used.

    Linux: reset the peak (``echo 5 > /proc/self/clear_refs``), call, read ``VmHWM`` minus
    the resident set before; glibc's mmap threshold is pinned at 64 KiB first so that large
    buffers freed by earlier calls are returned to the system instead of being reused
    unseen. Elsewhere: ``ru_maxrss`` growth, which misses peaks below an earlier maximum.
    """
    _pin_mmap_threshold()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kb("VmRSS")
        fn()
        return (_status_kb("VmHWM") - before) / 1024, "VmHWM-reset"
    except (OSError, KeyError):
        import resource

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fn()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, "ru_maxrss"


# ----------------------------------------------------------------------------- models

@dataclass
class Candidate:
    """One model to time. ``weights``: trained | random | pruned (of trained or random)."""

    name: str
    kind: str
    family: str
    model: nn.Module
    weights: str
    in_chans: int | None = None  # its own input channels (the FourCastNet shape has 20)


def _student_checkpoint(profile: str, name: str) -> Path | None:
    """A student checkpoint: ``results/<profile>/students/*<name>*.pt``, else the cache's."""
    from ..utils import cache_dir

    for folder in (results_dir(profile) / "students", cache_dir() / profile / "checkpoints"):
        hits = sorted(folder.glob(f"*{name}*.pt")) if folder.is_dir() else []
        hits = [h for h in hits if "-state" not in h.name]  # resumable training states are not models
        if hits:
            return hits[0]
    return None


def candidates(profile: str, in_chans: int, grid: tuple[int, int], names: Sequence[str] | None = None,
               prune: float = 0.5) -> list[Candidate]:
    """Teacher, students and pruned students of ``profile`` at ``grid``.

    ``names`` filters by name; ``"fourcastnet"`` adds the public FourCastNet shape (dim 768,
    depth 12, patch 8, 20 channels; Pathak et al. 2022), only meaningful at 720x1440.
    """
    from ..models import AFNONet, afno_from_config, build_student, load_checkpoint

    cfg = get_profile(profile)
    want = set(names) if names else None
    out = []
    if want is None or "teacher" in want:
        out.append(Candidate("teacher", "teacher", "afno", afno_from_config(cfg.teacher, in_chans, 1, grid), "random"))
    if want and "fourcastnet" in want:
        out.append(Candidate("fourcastnet", "teacher", "afno",
                             AFNONet(20, 1, grid, embed_dim=768, depth=12, patch_size=8, num_blocks=8), "random",
                             in_chans=20))
    for s in cfg.students:
        pruned_name = f"{s.name}-pruned{round(prune * 100)}"
        if want is not None and s.name not in want and pruned_name not in want:
            continue
        model, weights = build_student(s, in_chans, 1, grid), "random"
        ckpt = _student_checkpoint(profile, s.name)
        if ckpt is not None:
            loaded, meta = load_checkpoint(ckpt)
            if tuple(meta["arch"].get("img_size", grid)) == tuple(grid) and meta["arch"]["in_chans"] == in_chans:
                model, weights = loaded, "trained"
        model.eval()
        if want is None or s.name in want:
            out.append(Candidate(s.name, "student", s.family, model, weights))
        if prune and (want is None or pruned_name in want):
            example = torch.randn(2, in_chans, *grid)
            pruned, _ = compress.prune_structured(model, prune, example)
            out.append(Candidate(pruned_name, "student", s.family, pruned, f"pruned-{weights}"))
    if not out:
        raise ValueError(f"no model matches {sorted(want or [])} in profile {profile!r}: use teacher, "
                         f"fourcastnet or {[s.name for s in cfg.students]}")
    return out


def _costs(model: nn.Module, in_shape: tuple[int, ...]) -> dict:
    from ..models.cost import bytes_per_map, count_params, flops_per_map

    meta = copy.deepcopy(model).to("meta")  # counted without allocating activations
    return {"n_params": count_params(model), "flops_per_map": flops_per_map(meta, in_shape),
            "bytes_per_map": bytes_per_map(meta, in_shape)}


# ----------------------------------------------------------------------------- one model

def _torch_fn(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def call():
        with torch.inference_mode():
            return model(x)
    return call


def _ort_fn(sess, x: torch.Tensor) -> Callable[[], object]:
    feed = {sess.get_inputs()[0].name: x.numpy()}
    return lambda: sess.run(None, feed)


def _variants(cand: Candidate, example: torch.Tensor, runtimes: Sequence[str], dtypes: Sequence[str],
              workdir: Path, calib: list[torch.Tensor], sizes: list[dict],
              onnx_fft: str = "dft") -> list[tuple[str, str, object]]:
    """(runtime, dtype, model-or-onnx-path) to time; appends size rows to ``sizes``."""
    def size(fmt, n_bytes, **extra):
        sizes.append({"model": cand.name, "format": fmt, "size_bytes": int(n_bytes), **extra})

    out = [("torch", "fp32", cand.model)]
    size("torch-fp32", compress.state_dict_bytes(cand.model))
    size("torch-fp16", compress.state_dict_bytes(copy.deepcopy(cand.model).half()))
    if "int8" in dtypes:
        q = compress.quantize_dynamic_torch(cand.model)
        out.append(("torch", "int8-dynamic", q))
        size("torch-int8-dynamic", compress.state_dict_bytes(q))
    for dt in ("bf16", "fp16"):
        if dt in dtypes:
            out.append(("torch", dt, compress.cast_weights(cand.model, dt)))
    if "onnxruntime" in runtimes:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return [v for v in out if v[0] == "torch"]
        fp32 = workdir / f"{cand.name}.onnx"
        info = compress.export_onnx(cand.model, example, fp32, fft=onnx_fft)
        size("onnx-fp32", info["size_bytes"], onnx_max_abs_diff=info["max_abs_diff"])
        out.append(("onnxruntime", "fp32", fp32))
        if "int8" in dtypes:
            dyn = compress.quantize_onnx_dynamic(fp32, workdir / f"{cand.name}.int8d.onnx")
            sta = compress.quantize_onnx_static(fp32, workdir / f"{cand.name}.int8s.onnx", calib)
            size("onnx-int8-dynamic", compress.file_bytes(dyn))
            size("onnx-int8-static", compress.file_bytes(sta), calibration="synthetic N(0,1) batches")
            out += [("onnxruntime", "int8-dynamic", dyn), ("onnxruntime", "int8-static", sta)]
    return out


def bench_model(cand: Candidate, grid: tuple[int, int], in_chans: int, threads: Sequence[int],
                runtimes: Sequence[str], dtypes: Sequence[str], batches: Sequence[int], runs: int,
                warmup: int, workdir: Path, max_seconds: float | None = None, onnx_fft: str = "dft",
                min_runs: int = 3) -> tuple[list[dict], list[dict], list[dict]]:
    """Time one model in every (runtime, dtype, threads, batch); returns timing, size, memory rows.

    Batches > 1 (throughput) run at the largest thread count only.
    """
    in_chans = cand.in_chans or in_chans
    x1 = torch.randn(1, in_chans, *grid)
    calib = [torch.randn(2, in_chans, *grid) for _ in range(4)]
    sizes: list[dict] = []
    timings, memory = [], []
    costs = _costs(cand.model, (in_chans, *grid))
    for runtime, dtype, obj in _variants(cand, torch.randn(2, in_chans, *grid), runtimes, dtypes, workdir,
                                         calib, sizes, onnx_fft):
        for t in threads:
            torch.set_num_threads(t)
            try:  # a runtime may lack a kernel (e.g. ConvInteger in some ARM builds): skip, say so
                sess = compress.ort_session(obj, t) if runtime == "onnxruntime" else None
                first = _ort_fn(sess, x1) if sess is not None else _torch_fn(obj, x1)
                mb, method = peak_rss_mb(first)  # the first call: activations and packed weights appear
            except Exception as err:  # noqa: BLE001 -- onnxruntime raises its own exception types
                print(f"skipped {cand.name} {runtime} {dtype}: {str(err).splitlines()[0][:200]}")
                break
            if t == max(threads):
                memory.append({"model": cand.name, "runtime": runtime, "dtype": dtype, "threads": t,
                               "batch": 1, "peak_rss_growth_mb": mb, "method": method})
            for b in (batches if t == max(threads) else [1]):
                x = x1 if b == 1 else torch.randn(b, in_chans, *grid)
                fn = _ort_fn(sess, x) if sess is not None else _torch_fn(obj, x)
                res = time_call(fn, runs=runs, warmup=warmup, max_seconds=max_seconds, min_runs=min_runs)
                timings.append({"model": cand.name, "kind": cand.kind, **costs, "runtime": runtime,
                                "dtype": dtype, "threads": t, "batch": b, **res})
    for row in sizes:
        row.update(kind=cand.kind, family=cand.family, weights=cand.weights, **costs)
    return timings, sizes, memory


# ----------------------------------------------------------------------------- whole run

def _merge_csv(path: Path, new: pd.DataFrame, key: list[str]) -> Path:
    if path.is_file():
        new = pd.concat([pd.read_csv(path), new], ignore_index=True).drop_duplicates(subset=key, keep="last")
    buf = io.StringIO()
    new.to_csv(buf, index=False, float_format="%.6g")
    return atomic_write_text(path, buf.getvalue())


def run_bench(profile: str, grid: tuple[int, int] | None = None, threads: Sequence[int] = (1,),
              runtimes: Sequence[str] = RUNTIMES, dtypes: Sequence[str] = ("fp32", "int8"),
              batches: Sequence[int] = (1,), models: Sequence[str] | None = None, runs: int = 20,
              warmup: int = 3, in_chans: int | None = None, prune: float = 0.5,
              out_profile: str | None = None, seed: int = 0, max_seconds: float | None = None,
              onnx_fft: str | None = None, min_runs: int = 3, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Benchmark a profile's models and write the result files; returns the timing rows.

    Args:
        profile: whose architectures (``smoke|cpu|full``); ``grid`` defaults to its data grid.
        out_profile: results folder name (default ``profile``; ``pi`` for a Raspberry Pi run).
        Others: see the module docstring and ``python -m ecodistill.deploy.bench --help``.
    """
    if runs < 20:
        log(f"note: runs={runs} < 20 timed calls; the project's reported timings use >= 20")
    bad = set(runtimes) - set(RUNTIMES)
    if bad:
        raise ValueError(f"unknown runtime(s) {sorted(bad)}: choose from {RUNTIMES}")
    seed_everything(seed)
    cfg = get_profile(profile)
    in_chans = in_chans or input_channels(profile)
    # onnxruntime 1.20 on aarch64 rejects the exporter's inverse DFT: matmul FFTs there
    onnx_fft = onnx_fft or ("matmul" if platform.machine().lower() in ("aarch64", "arm64") else "dft")
    grid = tuple(grid or (cfg.data.nlat, cfg.data.nlon))
    host = host_info()
    stable = {k: v for k, v in host.items() if k != "loadavg_1min"}  # one run id per host and day
    config = {"profile": profile, "grid": list(grid), "host": stable, "git": git_commit(),
              "day": time.strftime("%Y-%m-%d"), "in_chans": in_chans}
    run_id = make_run_id(f"bench-{profile}", config)
    out_profile = out_profile or profile
    rows, sizes, memory = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for cand in candidates(profile, in_chans, grid, models, prune):
            t0 = time.perf_counter()
            r, s, m = bench_model(cand, grid, in_chans, threads, runtimes, dtypes, batches, runs, warmup, Path(tmp),
                                  max_seconds, onnx_fft, min_runs)
            rows += r
            sizes += s
            memory += m
            log(f"{cand.name}: {len(r)} timings in {time.perf_counter() - t0:.1f} s")
    common = {"run_id": run_id, "grid": f"{grid[0]}x{grid[1]}"}
    rows = [{**common, **r, "device": f"{host['machine']} cpu", "cpu": host["cpu"],
             "versions": json.dumps(host, sort_keys=True)} for r in rows]
    write_timings(out_profile, rows)
    folder = results_dir(out_profile)
    _merge_csv(folder / "model_sizes.csv", pd.DataFrame([{**common, **s} for s in sizes]),
               ["run_id", "grid", "model", "format"])
    _merge_csv(folder / "bench_memory.csv", pd.DataFrame([{**common, **m} for m in memory]),
               ["run_id", "grid", "model", "runtime", "dtype", "threads", "batch"])
    return pd.DataFrame(rows)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The benchmark's command-line options (shared by both entry points)."""
    p.add_argument("--profile", default="smoke", choices=("smoke", "cpu", "full"), help="whose architectures")
    p.add_argument("--grid", default=None, help="nlatxnlon, e.g. 720x1440 (default: the profile's grid)")
    p.add_argument("--threads", default="1,all", help="comma list of thread counts; 'all' = every core")
    p.add_argument("--runtimes", default="torch,onnxruntime", help="torch and/or onnxruntime")
    p.add_argument("--dtypes", default="fp32,int8", help="fp32 (always), int8, bf16, fp16")
    p.add_argument("--batches", default="1", help="batch sizes for throughput, e.g. 1,4,16")
    p.add_argument("--models", default=None, help="names to time (default all): teacher, fourcastnet, students")
    p.add_argument("--runs", type=int, default=20, help="timed calls per measurement (>= 20 reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop a measurement after this long (n is recorded) -- heavy models only")
    p.add_argument("--min-runs", type=int, default=3, help="timed calls before --max-seconds may stop")
    p.add_argument("--in-chans", type=int, default=None, help="input channels (default: as ecodistill.data builds them)")
    p.add_argument("--prune", type=float, default=0.5, help="share of hidden units pruned (0: none)")
    p.add_argument("--onnx-fft", default=None, choices=("dft", "matmul"),
                   help="FFTs in ONNX as DFT operators or matrix products (default: matmul on ARM)")
    p.add_argument("--out", default=None, help="results folder, e.g. results/pi (default results/<profile>)")


def run_from_args(args: argparse.Namespace) -> int:
    """Run :func:`run_bench` from parsed arguments; returns 0."""
    out_profile = None
    if args.out:
        out = Path(args.out).resolve()
        os.environ["ECODISTILL_RESULTS"] = str(out.parent)
        out_profile = out.name
    run_bench(args.profile, parse_grid(args.grid) if args.grid else None, parse_threads(args.threads),
              [r for r in args.runtimes.split(",") if r], [d for d in args.dtypes.split(",") if d],
              [int(b) for b in args.batches.split(",")], args.models.split(",") if args.models else None,
              args.runs, args.warmup, args.in_chans, args.prune, out_profile, max_seconds=args.max_seconds,
              onnx_fft=args.onnx_fft, min_runs=args.min_runs)
    return 0


def register_cli(subparsers) -> None:
    """Add ``python -m ecodistill bench``."""
    p = subparsers.add_parser("bench", help="time teacher, students and compressed students")
    add_arguments(p)
    p.set_defaults(func=run_from_args)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ecodistill.deploy.bench``."""
    parser = argparse.ArgumentParser(prog="python -m ecodistill.deploy.bench", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
