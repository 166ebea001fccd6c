r"""Raspberry Pi latency *projection* (never a measurement): a roofline with calibrated efficiency.

For a model with $F$ FLOPs and $B$ bytes moved per map (:mod:`ecodistill.models.cost`),
on a device with peak compute $P$ (FLOP/s, all cores) and measured copy bandwidth $M$
(byte/s), the roofline model (Williams, Waterman & Patterson 2009) bounds the time by

$$ t = \max\left(\frac{F}{P \cdot \eta_c},\; \frac{B}{M \cdot \eta_m}\right), $$

where $\eta_c$ is the share of peak compute the runtime reaches and $\eta_m$ the share of
copy bandwidth. Both are uncertain, so every projection is a range: the *fast* end uses
the best efficiencies and bandwidths below, the *slow* end the worst. With ``threads=1``
the peak is one core's ($P / 4$); the efficiency is assumed not to depend on threads.

Efficiency calibration (:data:`COMPUTE_EFFICIENCY`): MobileNetV2 (width 1.0, 224x224)
costs 300M multiply-adds = 0.60 GFLOP ({cite}`sandler2018mobilenetv2`, Table 4; 2 FLOPs per
multiply-add as in :mod:`ecodistill.models.cost`). On a Raspberry Pi it ran in 72.6 ms in
PyTorch eager fp32 and 10.9 ms with ExecuTorch/XNNPACK fp32 (numbers recorded in the
project's tooling notes, ../shared/TOOLING.md), i.e. 8.3 and 55 GFLOP/s: 5.4 % and 36 %
of the Pi 5 peak. Dividing by the Pi 5 peak (not the Pi 4's) is the conservative choice
-- 55 GFLOP/s would be 57 % of a Pi 4's peak. Cross-check: the PyTorch Pi tutorial's
MobileNetV2 at 30 frames/s on a Pi 4 ({cite}`rice2022realtimepi`, int8, 4 threads) is
18 GFLOP/s, 16-19 % of the Pi 4 fp32 peak, inside the range; so is XNNPACK's own published
Pi 4 number ({cite}`xnnpack_readme`: MobileNetV2 fp32 in 44 ms on 4 threads, 13.6 GFLOP/s,
12-14 % of the Pi 4 peak; :data:`PUBLISHED_PI4_CHECKS`).

int8: a Pi 4's Cortex-A72 lacks the Armv8.2 dot-product instructions (SDOT/UDOT,
{cite}`arm_a64_sdot`), so int8 speed-ups measured on x86 are *not* projected onto it
(:func:`project` returns NaN); the Pi 5's Cortex-A76 has them, but lacking a Pi 5 int8
calibration we project int8 models there with the fp32 efficiency (only their smaller
weights shrink the memory term).

Explained in book/generated/05_pi_timings.ipynb.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

GFLOP = 1e9
GB = 1e9


@dataclass(frozen=True)
class PiSpec:
    """A Raspberry Pi model: cores, fp32 peak and measured copy bandwidth (ranges).

    Attributes:
        name: label used in tables.
        cores: CPU cores (the peak is for all of them).
        peak_gflops: fp32 NEON peak (low, high) in GFLOP/s = cores x clock x 16 FLOP/cycle
            (two 128-bit FMA pipes x 4 lanes x 2 FLOPs), for the clock range.
        copy_gbs: measured memory copy bandwidth (low, high) in GB/s.
        sdot: has the Armv8.2 int8 dot-product instructions.
    """

    name: str
    cores: int
    peak_gflops: tuple[float, float]
    copy_gbs: tuple[float, float]
    sdot: bool


#: Pi 4 (BCM2711, 4x Cortex-A72 at 1.5-1.8 GHz, LPDDR4-3200; {cite}`raspberrypi_processors`):
#: peak 4 x 1.5-1.8 GHz x 16 = 96-115 GFLOP/s; STREAM triad 4.8 and copy ~5.5 GB/s
#: (../shared/LITERATURE.md "Raspberry Pi measurements"); no SDOT.
PI4 = PiSpec("Raspberry Pi 4", 4, (96.0, 115.2), (4.8, 5.5), sdot=False)
#: Pi 5 (BCM2712, 4x Cortex-A76 at 2.4 GHz, LPDDR4X-4267): peak 4 x 2.4 GHz x 16 =
#: 154 GFLOP/s; ~5 GB/s measured copy bandwidth (../shared/TOOLING.md); has SDOT.
PI5 = PiSpec("Raspberry Pi 5", 4, (153.6, 153.6), (5.0, 5.0), sdot=True)
PIS = {"pi4": PI4, "pi5": PI5}

#: MobileNetV2 1.0/224 forward cost ({cite}`sandler2018mobilenetv2`, Table 4): 300M multiply-adds.
MOBILENETV2_FLOPS = 2 * 300e6
#: Measured MobileNetV2 latencies on a Raspberry Pi, 4 threads (../shared/TOOLING.md).
MOBILENETV2_MS = {"pytorch_eager_fp32": 72.6, "xnnpack_fp32": 10.9}
#: Published Pi 4 MobileNetV2 latencies (ms, 4 threads) that the calibrated range must contain:
#: the PyTorch tutorial's 30 frames/s ({cite}`rice2022realtimepi`, int8) and XNNPACK's README
#: ({cite}`xnnpack_readme`, fp32, BCM2711).
PUBLISHED_PI4_CHECKS = {"pytorch_tutorial_int8": 1000 / 30, "xnnpack_readme_fp32": 44.0}
#: Share of the peak a runtime reaches (low: PyTorch eager, high: XNNPACK), see module doc.
COMPUTE_EFFICIENCY = (MOBILENETV2_FLOPS / (MOBILENETV2_MS["pytorch_eager_fp32"] / 1e3) / (PI5.peak_gflops[0] * GFLOP),
                      MOBILENETV2_FLOPS / (MOBILENETV2_MS["xnnpack_fp32"] / 1e3) / (PI5.peak_gflops[0] * GFLOP))
#: Share of the measured copy bandwidth a model's traffic reaches (strided and small
#: accesses reach less than a streaming copy).
MEMORY_EFFICIENCY = (0.5, 1.0)


def project(flops: float, n_bytes: float, pi: str | PiSpec = "pi5", threads: int = 4,
            int8: bool = False) -> tuple[float, float]:
    """Projected latency range ``(fast_ms, slow_ms)`` for one map on a Pi.

    Args:
        flops: FLOPs per map.
        n_bytes: bytes moved per map.
        pi: ``"pi4"``, ``"pi5"`` or a :class:`PiSpec`.
        threads: 1..cores; the peak scales with the cores used.
        int8: an int8 model; returns ``(nan, nan)`` on a device without SDOT.

    Raises:
        ValueError: for an unknown Pi, a bad thread count or non-positive costs.
    """
    spec = PIS.get(pi) if isinstance(pi, str) else pi
    if spec is None:
        raise ValueError(f"unknown Pi {pi!r}: choose one of {sorted(PIS)}")
    if not 1 <= int(threads) <= spec.cores:
        raise ValueError(f"threads={threads} outside 1..{spec.cores} for {spec.name}")
    if not (flops > 0 and n_bytes > 0):
        raise ValueError(f"flops={flops}, bytes={n_bytes}: both must be positive (use ecodistill.models.cost)")
    if int8 and not spec.sdot:
        return float("nan"), float("nan")
    share = int(threads) / spec.cores
    peak = np.array(spec.peak_gflops) * GFLOP * share
    fast = max(flops / (peak[1] * COMPUTE_EFFICIENCY[1]), n_bytes / (spec.copy_gbs[1] * GB * MEMORY_EFFICIENCY[1]))
    slow = max(flops / (peak[0] * COMPUTE_EFFICIENCY[0]), n_bytes / (spec.copy_gbs[0] * GB * MEMORY_EFFICIENCY[0]))
    return 1e3 * fast, 1e3 * slow


def bound(flops: float, n_bytes: float, pi: str = "pi5") -> str:
    """``"compute"`` or ``"memory"``: which roofline term dominates at mid-range efficiency."""
    spec = PIS[pi]
    t_c = flops / (np.mean(spec.peak_gflops) * GFLOP * np.mean(COMPUTE_EFFICIENCY))
    t_m = n_bytes / (np.mean(spec.copy_gbs) * GB * np.mean(MEMORY_EFFICIENCY))
    return "compute" if t_c >= t_m else "memory"


def projection_table(models: pd.DataFrame, threads: tuple[int, ...] = (1, 4)) -> pd.DataFrame:
    """Projected Pi 4 / Pi 5 latency ranges for every row of ``models``.

    Args:
        models: one row per model with ``model``, ``flops_per_map``, ``bytes_per_map`` and
            optionally ``int8`` (bool).
        threads: Pi thread counts to project.

    Returns:
        One row per (model, pi, threads) with ``projected_fast_ms``, ``projected_slow_ms``
        and ``bound``; int8 rows on a Pi 4 hold NaN (not projected, see module doc).
    """
    rows = []
    for _, m in models.iterrows():
        for key, spec in PIS.items():
            for t in threads:
                fast, slow = project(float(m["flops_per_map"]), float(m["bytes_per_map"]), spec, t,
                                     bool(m.get("int8", False)))
                rows.append({"model": m["model"], "pi": spec.name, "threads": t, "projected_fast_ms": fast,
                             "projected_slow_ms": slow,
                             "bound": bound(float(m["flops_per_map"]), float(m["bytes_per_map"]), key)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- chapter tables

def _timings(profile: str) -> pd.DataFrame:
    from .runs import read_timings

    return read_timings(profile)


def ensure_timings(profile: str, runs: int = 20, threads: str = "1", in_chans: int | None = None) -> pd.DataFrame | None:
    """The profile's timings; at ``smoke`` measured now when absent, else None with a message."""
    from . import bench

    t = _timings(profile)
    if len(t):
        return t
    if profile != "smoke":
        print(f"no {profile} results yet — run python -m ecodistill.bench --profile {profile} --threads 1,all")
        return None
    from .config import get_profile

    cfg_names = [s.name for s in get_profile(profile).students]
    kw = {"threads": bench.parse_threads(threads), "runs": runs, "in_chans": in_chans, "log": lambda s: None}
    bench.run_bench(profile, models=["teacher", *cfg_names], **kw)
    bench.run_bench(profile, models=[f"{n}-pruned50" for n in cfg_names], runtimes=("torch",), **kw)
    return _timings(profile)


def latest_run(t: pd.DataFrame, grid: str | None = None) -> pd.DataFrame:
    """Rows of the newest bench run (per grid) that timed the teacher: one host, one session."""
    if grid is not None:
        t = t[t["grid"] == grid]
    with_teacher = t[t["kind"] == "teacher"]["run_id"].unique()
    ids = [r for r in t["run_id"].unique() if r in with_teacher] or list(t["run_id"].unique())
    return t[t["run_id"] == ids[-1]]


def speedups(t: pd.DataFrame, threads: int = 1, teacher: str = "teacher") -> pd.DataFrame:
    """Teacher time / model time per (runtime, dtype), batch 1, one run and grid (same host)."""
    t = t[(t["threads"] == threads) & (t["batch"] == 1)]
    ref = t[(t["model"] == teacher) & (t["dtype"] == "fp32")].set_index("runtime")["median_ms"]
    out = t[t["model"] != teacher].copy()
    out["speedup_vs_teacher_fp32"] = out["runtime"].map(ref) / out["median_ms"]
    out["speedup_vs_teacher_torch_fp32"] = ref.get("torch", np.nan) / out["median_ms"]
    return out[["model", "runtime", "dtype", "threads", "median_ms", "speedup_vs_teacher_fp32",
                "speedup_vs_teacher_torch_fp32"]].reset_index(drop=True)


def int8_effect(t: pd.DataFrame, threads: int = 1) -> pd.DataFrame:
    """fp32 time / int8 time per (model, runtime, int8 kind): > 1 means int8 pays off."""
    t = t[(t["threads"] == threads) & (t["batch"] == 1)]
    fp = t[t["dtype"] == "fp32"].set_index(["model", "runtime"])["median_ms"]
    q = t[t["dtype"].str.startswith("int8")].copy()
    q["fp32_ms"] = [fp.get((m, r), np.nan) for m, r in zip(q["model"], q["runtime"])]
    q["int8_speedup"] = q["fp32_ms"] / q["median_ms"]
    return q[["model", "runtime", "dtype", "fp32_ms", "median_ms", "int8_speedup"]].reset_index(drop=True)


def _final_r2(profile: str) -> pd.DataFrame:
    """Test R² (global) of every NDVI student run: ``run_id, student, tag, init, r2``."""
    from .report import wide
    from .runs import read_runs

    w = wide(read_runs(profile, target="ndvi", kind="student"))
    if "r2" not in w:
        return pd.DataFrame(columns=["run_id", "student", "tag", "init", "r2"])
    return w[["run_id", "student", "tag", "init", "r2"]]


def skill(profile: str, models: pd.DataFrame) -> pd.Series:
    """Test R² (global, mean over seeds) of each benchmarked model's trained counterpart.

    A student row (``model`` = a student preset name) gets its reported distilled runs
    (tag ``final``); a pruned row (``<name>-pruned<p>``) gets the pruned + distillation
    fine-tuned run of :mod:`ecodistill.compressed`. NaN where no such run exists yet.
    """
    r = _final_r2(profile)
    out = []
    for _, m in models.iterrows():
        name, _, pruned = str(m["model"]).partition("-pruned")
        tag = f"pruned{pruned}kd" if pruned else "final"
        hit = r[(r["student"] == name) & (r["tag"] == tag) & (r["init"] == "distilled")]
        out.append(float(hit["r2"].mean()) if m["kind"] == "student" and len(hit) else np.nan)
    return pd.Series(out, index=models.index, dtype=float)


def int8_skill(profile: str, models: pd.DataFrame) -> pd.DataFrame:
    """Per benchmarked model: test R² of its best-timed int8 variant and the relative R² loss.

    Pairs the bench's ``best_int8`` (runtime, dtype) with the matching compressed run
    (:data:`ecodistill.compressed.BENCH_KIND`) of the same student, seed 0; the loss is
    ``100 (R²_fp32 - R²_int8) / R²_fp32`` against the run it was made from.
    Columns ``test_r2_int8, int8_r2_loss_pct`` (NaN where missing).
    """
    from .compressed import BENCH_KIND, compressed_skill

    table = compressed_skill(profile)
    kind_to_variant = {f"{rt} {dt}": v for v, (rt, dt) in BENCH_KIND.items()}
    rows = []
    for _, m in models.iterrows():
        variant = kind_to_variant.get(str(m.get("best_int8", "")))
        hit = table[(table["student"] == m["model"]) & (table["variant"] == variant)] if variant else table[:0]
        rows.append({"test_r2_int8": float(hit["r2"].mean()) if len(hit) else np.nan,
                     "int8_r2_loss_pct": float(hit["r2_loss_pct"].mean()) if len(hit) else np.nan})
    return pd.DataFrame(rows, index=models.index)


def chapter_table(profile: str, t: pd.DataFrame, threads: int = 1) -> pd.DataFrame:
    """One row per model: size, cost, measured latency (PyTorch / ONNX Runtime, fp32 / best int8),
    projected Pi 4 and Pi 5 ranges (fp32, 4 threads) and test R² where available."""
    from .config import get_profile
    from .utils import results_dir

    fam = {s.name: s.family for s in get_profile(profile).students}
    one = t[(t["threads"] == threads) & (t["batch"] == 1)]
    rows = []
    for model, g in one.groupby("model", sort=False):
        lat = g.set_index(["runtime", "dtype"])["median_ms"]
        int8 = g[g["dtype"].str.startswith("int8")].sort_values("median_ms").head(1)
        base = model.split("-pruned")[0]
        row = {"model": model, "kind": g["kind"].iloc[0], "family": fam.get(base, "afno"),
               "n_params": int(g["n_params"].iloc[0]), "GFLOP_per_map": g["flops_per_map"].iloc[0] / 1e9,
               "MB_moved_per_map": g["bytes_per_map"].iloc[0] / 1e6,
               "torch_fp32_ms": lat.get(("torch", "fp32"), np.nan),
               "ort_fp32_ms": lat.get(("onnxruntime", "fp32"), np.nan),
               "best_int8_ms": float(int8["median_ms"].iloc[0]) if len(int8) else np.nan,
               "best_int8": f"{int8['runtime'].iloc[0]} {int8['dtype'].iloc[0]}" if len(int8) else ""}
        for key in ("pi4", "pi5"):
            lo, hi = project(g["flops_per_map"].iloc[0], g["bytes_per_map"].iloc[0], key, threads=4)
            row[f"projected_{key}_ms"] = f"{lo:.3g}–{hi:.3g}"
        rows.append(row)
    table = pd.DataFrame(rows)
    sizes_path = results_dir(profile) / "model_sizes.csv"
    if sizes_path.is_file():
        s = pd.read_csv(sizes_path)
        s = s[s["run_id"] == t["run_id"].iloc[0]] if (s["run_id"] == t["run_id"].iloc[0]).any() else s
        piv = s.pivot_table(index="model", columns="format", values="size_bytes", aggfunc="last") / 1e6
        for col in ("torch-fp32", "onnx-int8-static"):
            if col in piv:
                table[f"MB_{col}"] = table["model"].map(piv[col])
        w = s.drop_duplicates("model").set_index("model")["weights"]
        table["weights"] = table["model"].map(w)
    table["test_r2"] = skill(profile, table)
    return table.join(int8_skill(profile, table))


def _int8_skill_target(profile: str, name: str, eff: pd.DataFrame) -> dict:
    """The target "int8 >= 1.5x with <= 1 % loss of test R²" for student ``name``: the fastest
    int8 variant whose compressed run loses at most 1 % of the fp32 run's test R²."""
    from .compressed import BENCH_KIND, compressed_skill

    skill_rows = compressed_skill(profile)
    skill_rows = skill_rows[skill_rows["student"] == name]
    row = {"target": "int8 >= 1.5x faster with <= 1 % loss of test R²", "model": name}
    if skill_rows.empty:
        return {**row, "value": "no int8 skill result yet",
                "met": f"not yet available (run python -m ecodistill compressed-skill --profile {profile})"}
    loss = skill_rows.set_index("variant")["r2_loss_pct"]
    cands = []
    for variant, (rt, dt) in BENCH_KIND.items():
        sp = eff[(eff["runtime"] == rt) & (eff["dtype"] == dt)]["int8_speedup"]
        if variant in loss.index and len(sp):
            cands.append((variant, float(sp.iloc[0]), float(loss[variant])))
    if not cands:
        return {**row, "value": "no int8 variant both timed and evaluated", "met": "not yet available"}
    ok = [c for c in cands if c[2] <= 1.0]
    v, sp, lo = max(ok or cands, key=lambda c: c[1])
    return {**row, "model": f"{name} ({v})", "value": f"{sp:.2f}x, R² loss {lo:.2f} %",
            "met": "met" if ok and sp >= 1.5 else "not met"}


def targets(profile: str, table: pd.DataFrame, t: pd.DataFrame, threads: int = 1) -> pd.DataFrame:
    """The issue's targets, judged from the data: met / not met / not yet measurable.

    1. The best distilled student (highest test R²; the fastest student while no skill
       exists) is >= 50x faster than the teacher per map, PyTorch eager fp32, ``threads``.
    2. int8 gives >= 1.5x over fp32 (best int8 variant, same runtime), for that student and
       for the best of all students; and, jointly, >= 1.5x with <= 1 % loss of test R² (from
       the compressed runs of :mod:`ecodistill.compressed`).
    """

    students = table[(table["kind"] == "student") & ~table["model"].str.contains("-pruned")]
    teacher = table[table["kind"] == "teacher"]
    rows = []
    if len(students) and len(teacher):
        has_skill = students["test_r2"].notna().any()
        best = students.loc[students["test_r2"].idxmax()] if has_skill else students.loc[students["torch_fp32_ms"].idxmin()]
        ratio = float(teacher["torch_fp32_ms"].iloc[0] / best["torch_fp32_ms"])
        rows.append({"target": ">= 50x faster than the teacher (1 thread, PyTorch fp32)",
                     "model": best["model"] + ("" if has_skill else " (fastest; skill not yet available)"),
                     "value": f"{ratio:.1f}x", "met": ("met" if ratio >= 50 else "not met")
                     + ("" if has_skill else " (speed only: no skill result yet)")})
    eff = int8_effect(t, threads)
    eff = eff[eff["model"].isin(students["model"])]  # int8 on top of the distilled students
    if len(eff) and len(rows):
        name = best["model"]
        for label, sub in ((f"int8 >= 1.5x faster than fp32 ({name})", eff[eff["model"] == name]),
                           ("int8 >= 1.5x faster than fp32 (best of all students)", eff)):
            if len(sub):
                b = sub.loc[sub["int8_speedup"].idxmax()]
                rows.append({"target": label, "model": f"{b['model']} ({b['runtime']} {b['dtype']})",
                             "value": f"{b['int8_speedup']:.2f}x",
                             "met": "met" if b["int8_speedup"] >= 1.5 else "not met"})
        rows.append(_int8_skill_target(profile, name, eff[eff["model"] == name]))
    return pd.DataFrame(rows)


def arm64_table(profile: str) -> pd.DataFrame | None:
    """``results/<profile>/arm64_check.json`` as one row per (model, variant, emulated CPU)."""
    import json

    from .utils import results_dir

    path = results_dir(profile) / "arm64_check.json"
    if not path.is_file():
        print(f"no ARM64 check for {profile} yet — run bash scripts/arm64_check.sh {profile}")
        return None
    rep = json.loads(path.read_text())
    rows = []
    for m in rep["models"]:
        for variant, v in m["variants"].items():
            for cpu, r in v["cpus"].items():
                rows.append({"model": m["model"], "weights": m.get("weights", ""), "variant": variant, "cpu": cpu,
                             "runs": "error" not in r, "error": r.get("error", ""),
                             "max_abs_diff_vs_x86": r.get("max_abs_diff_vs_x86_onnxruntime", np.nan),
                             "max_abs_diff_vs_torch": r.get("max_abs_diff_vs_x86_torch_fp32", np.nan),
                             "M_insns_per_map": r.get("insns_per_map", np.nan) / 1e6,
                             "dot_insns_per_map": r.get("dot_insns_per_map", np.nan),
                             "guest_onnxruntime": r.get("guest", {}).get("onnxruntime", "")})
    print(f"{rep['qemu']}; {rep['note']}")
    return pd.DataFrame(rows)
