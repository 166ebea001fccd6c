"""Chapter 5's tables: measured latencies, speed-ups, int8 effects, the skill of the timed
models, the speed targets, the ARM64 check and measurements on a Raspberry Pi.

Reads ``results/<profile>/timings.csv`` (:func:`read_timing_rows`; the rows are passed to the
other builders), ``results/<profile>/model_sizes.csv``, the student runs and the compressed
students' runs (:func:`ecodistill.experiments.compressed_skill.compressed_skill`),
``results/<profile>/arm64_check.json`` and ``results/pi/timings.csv``. The Pi projections
come from :mod:`ecodistill.deploy.pi`. Without timings each table has no rows and names the command
in ``attrs["missing"]``. Explained in book/generated/05_pi_timings.ipynb.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..config import get_profile
from ..deploy import bench
from ..deploy.pi import project
from ..store import runs
from ..utils import results_dir
from .frames import read_current, wide
from .summary import label
from .teacher import input_channel_count


def no_timings_message(profile: str) -> str:
    """What chapter 5 shows before ``results/<profile>/timings.csv`` exists."""
    return (f"no {profile} timings yet — run python -m ecodistill.deploy.bench --profile {profile} "
            "--threads 1,all")


def read_timing_rows(profile: str) -> pd.DataFrame:
    """``results/<profile>/timings.csv`` (no rows when absent), with the command that makes it
    in ``attrs["missing"]``."""
    table = runs.read_timings(profile)
    table.attrs["missing"] = no_timings_message(profile)
    return table


def ensure_timings(profile: str, runs: int = 20, threads: str = "1",
                   in_chans: int | None = None) -> pd.DataFrame:
    """The profile's timings; at ``smoke`` measured now when absent (:mod:`ecodistill.deploy.bench`),
    elsewhere read only (no rows, and the command in ``attrs["missing"]``, when absent)."""
    t = read_timing_rows(profile)
    bench_rows = t[t["runtime"] != "lightgbm"] if "runtime" in t else t  # LightGBM times itself when fitted
    if len(bench_rows) or profile != "smoke":
        return t
    cfg_names = [s.name for s in get_profile(profile).students]
    kw = {"threads": bench.parse_threads(threads), "runs": runs, "in_chans": in_chans,
          "log": lambda s: None}
    bench.run_bench(profile, models=["teacher", *cfg_names], **kw)
    bench.run_bench(profile, models=[f"{n}-pruned50" for n in cfg_names], runtimes=("torch",), **kw)
    return read_timing_rows(profile)


def latest_run(t: pd.DataFrame, grid: str | None = None) -> pd.DataFrame:
    """Rows of the newest bench run (per grid) that timed the teacher: one host, one session
    (no rows when there are none; LightGBM's own timing rows are never a bench run)."""
    if grid is not None:
        t = t[t["grid"] == grid]
    if "runtime" in t:  # LightGBM rows are timed when each tree model is fitted, not by a bench run
        t = t[t["runtime"] != "lightgbm"]
    with_teacher = t[t["kind"] == "teacher"]["run_id"].unique()
    ids = [r for r in t["run_id"].unique() if r in with_teacher] or list(t["run_id"].unique())
    return t[t["run_id"] == ids[-1]] if ids else t


def host_text(profile: str, grid: str, t: pd.DataFrame) -> str:
    """Where and how one bench run was measured (host, load, threads, calls, versions), or
    what makes the timings."""
    if t.empty:
        return t.attrs.get("missing", no_timings_message(profile))
    try:
        host = json.loads(t["versions"].iloc[0])
    except json.JSONDecodeError:  # a Python repr (rows written by the tree baseline)
        import ast

        host = ast.literal_eval(t["versions"].iloc[0])
    threads = sorted(int(v) for v in t["threads"].unique())
    calls = sorted(int(v) for v in t["n"].unique())
    return (f"profile {profile}, grid {grid}, run {t['run_id'].iloc[0]}: {host['cpu']} "
            f"({host['machine']}, {host['cores']} cores, 1-min load {host.get('loadavg_1min')}), "
            f"threads measured {threads}, timed calls per row {calls}, torch {host['torch']}, "
            f"onnxruntime {host.get('onnxruntime', 'absent')}; random weights and inputs seeded "
            "with 0")


def speedups(t: pd.DataFrame, threads: int = 1, teacher: str = "teacher") -> pd.DataFrame:
    """Teacher time / model time per (runtime, dtype), batch 1, one run and grid (same host)."""
    t = t[(t["threads"] == threads) & (t["batch"] == 1)]
    ref = t[(t["model"] == teacher) & (t["dtype"] == "fp32")].set_index("runtime")["median_ms"]
    out = t[t["model"] != teacher].copy()
    out["speedup_vs_teacher_fp32"] = out["runtime"].map(ref) / out["median_ms"].astype(float)
    out["speedup_vs_teacher_torch_fp32"] = ref.get("torch", np.nan) / out["median_ms"].astype(float)
    return out[["model", "runtime", "dtype", "threads", "median_ms", "speedup_vs_teacher_fp32",
                "speedup_vs_teacher_torch_fp32"]].reset_index(drop=True)


def grid_timings(t_all: pd.DataFrame, grid: str = "720x1440") -> pd.DataFrame:
    """The timing rows of the newest bench run on ``grid`` (:func:`latest_run`; chapter 5's
    real-grid section): older runs timed the architectures of an older configuration."""
    columns = ["run_id", "model", "kind", "n_params", "flops_per_map", "runtime", "dtype",
               "threads", "median_ms", "p90_ms", "n"]
    out = latest_run(t_all, grid)[columns].reset_index(drop=True)
    out.attrs["missing"] = (f"no {grid} timings at this profile yet — the command is in the appendix "
                            "(commands that make the results)")
    return out


def reference_speedups(t_all: pd.DataFrame, grid: str = "720x1440") -> pd.DataFrame:
    """:func:`speedups` on ``grid`` within the run that timed the reference model
    (``fourcastnet`` when present, else ``teacher``), at its lowest thread count; no rows
    without a reference."""
    rows = t_all[t_all["grid"] == grid]
    ref = "fourcastnet" if "fourcastnet" in set(rows["model"]) else "teacher"
    timed = rows[rows["model"] == ref]
    if timed.empty:
        out = speedups(rows.iloc[0:0])
        out.attrs["missing"] = "no speed-ups: no run timed fourcastnet or the teacher on this grid"
        return out
    same = rows[rows["run_id"] == timed["run_id"].iloc[-1]]  # ratios within one run
    out = speedups(same, int(same["threads"].min()), teacher=ref)
    out = out.rename(columns={"speedup_vs_teacher_fp32": f"speed-up vs {ref} fp32 (same runtime)",
                              "speedup_vs_teacher_torch_fp32": f"speed-up vs {ref} PyTorch fp32"})
    if set(out["runtime"]) <= {"torch"}:  # one runtime: the two ratios are the same numbers
        out = out.drop(columns=f"speed-up vs {ref} fp32 (same runtime)")
    return out


def int8_effect(t: pd.DataFrame, threads: int = 1) -> pd.DataFrame:
    """fp32 time / int8 time per (model, runtime, int8 kind): > 1 means int8 pays off."""
    t = t[(t["threads"] == threads) & (t["batch"] == 1)]
    fp = t[t["dtype"] == "fp32"].set_index(["model", "runtime"])["median_ms"]
    q = t[t["dtype"].astype(str).str.startswith("int8")].copy()
    q["fp32_ms"] = [fp.get((m, r), np.nan) for m, r in zip(q["model"], q["runtime"])]
    q["int8_speedup"] = q["fp32_ms"].astype(float) / q["median_ms"].astype(float)
    columns = ["model", "runtime", "dtype", "fp32_ms", "median_ms", "int8_speedup"]
    return q[columns].reset_index(drop=True)


def int8_texts(eff: pd.DataFrame) -> tuple[str, str]:
    """``(best, slower)`` from :func:`int8_effect`: the best int8 speed-up with the model and
    runtime that reach it (``"n/a"`` without int8 timings), and a count of where int8 is
    slower than fp32, per runtime and int8 kind (the table lists every case)."""
    if eff.empty:
        return "n/a", "no model (no int8 timings)"
    top = eff.loc[eff["int8_speedup"].idxmax()]
    best = f"{top['int8_speedup']:.2f}× ({top['model']}, {top['runtime']} {top['dtype']})"
    slow = eff[eff["int8_speedup"] < 1]
    if slow.empty:
        return best, "no model"
    parts = [f"{runtime} {dtype} for {len(g[g['int8_speedup'] < 1])} of {len(g)} models"
             for (runtime, dtype), g in eff.groupby(["runtime", "dtype"])
             if (g["int8_speedup"] < 1).any()]
    return best, (f"{len(slow)} of the {len(eff)} model, runtime and int8-kind combinations timed here: "
                  + "; ".join(parts))


def _final_r2(profile: str) -> pd.DataFrame:
    """Test R² and anomaly R² (global) of every NDVI run of the current protocol
    (:func:`read_current`): ``run_id, student, tag, init, kind, teacher_role, r2, r2_anom``."""
    w = wide(read_current(profile))
    columns = ["run_id", "student", "tag", "init", "kind", "teacher_role", "r2", "r2_anom"]
    if "r2" not in w:
        return pd.DataFrame(columns=columns)
    return w.assign(teacher_role=w.get("teacher_role", ""), r2_anom=w.get("r2_anom", np.nan))[columns]


def trained_skill(profile: str, models: pd.DataFrame, metric: str = "r2") -> pd.Series:
    """Test ``metric`` (``r2`` or ``r2_anom``; global, mean over seeds) of each benchmarked
    model's trained counterpart.

    A student row (``model`` = a student preset name) gets its reported distilled runs
    (tag ``final``); a pruned row (``<name>-pruned<p>``) gets the pruned + distillation
    fine-tuned run of :mod:`ecodistill.experiments.compressed_skill`; the teacher row the adapted
    teacher's run. NaN where no such run exists yet.
    """
    r = _final_r2(profile)
    teacher = r[(r["kind"] == "teacher") & (r["teacher_role"] == "adapted")]
    out = []
    for _, m in models.iterrows():
        name, _, pruned = str(m["model"]).partition("-pruned")
        tag = f"pruned{pruned}kd" if pruned else "final"
        hit = r[(r["student"] == name) & (r["tag"] == tag) & (r["init"] == "distilled")]
        if m["kind"] == "teacher":
            hit = teacher
        out.append(float(hit[metric].mean()) if m["kind"] in ("student", "teacher") and len(hit) else np.nan)
    return pd.Series(out, index=models.index, dtype=float)


def int8_skill(profile: str, models: pd.DataFrame) -> pd.DataFrame:
    """Per benchmarked model: test R² of its best-timed int8 variant and the relative R² loss.

    Pairs the bench's ``best_int8`` (runtime, dtype) with the matching compressed run
    (:data:`ecodistill.experiments.compressed_skill.BENCH_KIND`) of the same student, seed 0; the loss is
    ``100 (R²_fp32 - R²_int8) / R²_fp32`` against the run it was made from.
    Columns ``test_r2_int8, int8_r2_loss_pct`` (NaN where missing).
    """
    from ..experiments.compressed_skill import BENCH_KIND

    table = current_compressed_skill(profile)
    kind_to_variant = {f"{rt} {dt}": v for v, (rt, dt) in BENCH_KIND.items()}
    rows = []
    for _, m in models.iterrows():
        variant = kind_to_variant.get(str(m.get("best_int8", "")))
        hit = table[(table["student"] == m["model"]) & (table["variant"] == variant)]
        hit = hit if variant else table[:0]
        rows.append({"test_r2_int8": float(hit["r2"].mean()) if len(hit) else np.nan,
                     "int8_r2_loss_pct": float(hit["r2_loss_pct"].mean()) if len(hit) else np.nan})
    return pd.DataFrame(rows, index=models.index)


TIMING_TABLE_COLUMNS = ["model", "kind", "family", "n_params", "GFLOP_per_map", "MB_moved_per_map",
                   "torch_fp32_ms", "ort_fp32_ms", "best_int8_ms", "best_int8", "projected_pi4_ms",
                   "projected_pi5_ms", "test_r2", "test_r2_anom", "test_r2_int8", "int8_r2_loss_pct"]


def timing_table(profile: str, t: pd.DataFrame, threads: int = 1) -> pd.DataFrame:
    """One row per model: size, cost, measured latency (PyTorch / ONNX Runtime, fp32 / best int8),
    projected Pi 4 and Pi 5 ranges (fp32, 4 threads) and test R² where available (no rows,
    and the command in ``attrs["missing"]``, without timings)."""
    from ..config import get_profile

    one = t[(t["threads"] == threads) & (t["batch"] == 1)]
    if one.empty:
        out = pd.DataFrame(columns=TIMING_TABLE_COLUMNS)
        out.attrs["missing"] = t.attrs.get("missing", no_timings_message(profile))
        return out
    family = {s.name: s.family for s in get_profile(profile).students}
    rows = []
    for model, g in one.groupby("model", sort=False):
        latency = g.set_index(["runtime", "dtype"])["median_ms"]
        int8 = g[g["dtype"].str.startswith("int8")].sort_values("median_ms").head(1)
        flops, moved = g["flops_per_map"].iloc[0], g["bytes_per_map"].iloc[0]
        row = {"model": model, "kind": g["kind"].iloc[0],
               "family": family.get(model.split("-pruned")[0], "afno"),
               "n_params": int(g["n_params"].iloc[0]), "GFLOP_per_map": flops / 1e9,
               "MB_moved_per_map": moved / 1e6,
               "torch_fp32_ms": latency.get(("torch", "fp32"), np.nan),
               "ort_fp32_ms": latency.get(("onnxruntime", "fp32"), np.nan),
               "best_int8_ms": float(int8["median_ms"].iloc[0]) if len(int8) else np.nan,
               "best_int8": (f"{int8['runtime'].iloc[0]} {int8['dtype'].iloc[0]}" if len(int8)
                             else "")}
        for key in ("pi4", "pi5"):
            fast, slow = project(flops, moved, key, threads=4)
            row[f"projected_{key}_ms"] = f"{fast:.3g}–{slow:.3g}"
        rows.append(row)
    table = pd.DataFrame(rows)
    sizes_path = results_dir(profile) / "model_sizes.csv"
    if sizes_path.is_file():
        sizes = pd.read_csv(sizes_path)
        this_run = sizes["run_id"] == t["run_id"].iloc[0]
        sizes = sizes[this_run] if this_run.any() else sizes
        megabytes = sizes.pivot_table(index="model", columns="format", values="size_bytes",
                                      aggfunc="last") / 1e6
        for column in ("torch-fp32", "onnx-int8-static"):
            if column in megabytes:
                table[f"MB_{column}"] = table["model"].map(megabytes[column])
        weights = sizes.drop_duplicates("model").set_index("model")["weights"]
        table["weights"] = table["model"].map(weights)
    table["test_r2"] = trained_skill(profile, table)
    table["test_r2_anom"] = trained_skill(profile, table, "r2_anom")
    table = table.join(int8_skill(profile, table))
    table.attrs["missing"] = no_timings_message(profile)
    return table


def current_compressed_skill(profile: str) -> pd.DataFrame:
    """:func:`ecodistill.experiments.compressed_skill.compressed_skill` limited to compressed versions of
    the current protocol's students (their ``source_run_id`` is a current run,
    :func:`read_current`): compressed runs of older students never mix in."""
    from ..experiments.compressed_skill import compressed_skill

    table = compressed_skill(profile)
    if table.empty or "source_run_id" not in table:
        return table
    current = set(read_current(profile)["run_id"])
    out = table[table["source_run_id"].isin(current)].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out


def _int8_skill_target(profile: str, name: str, eff: pd.DataFrame) -> dict:
    """The target "int8 >= 1.5x with <= 1 % loss of test R²" for student ``name``: the fastest
    int8 variant whose compressed run loses at most 1 % of the fp32 run's test R²."""
    from ..experiments.compressed_skill import BENCH_KIND

    skill_rows = current_compressed_skill(profile)
    skill_rows = skill_rows[skill_rows["student"] == name]
    row = {"target": "int8 ≥ 1.5× faster with ≤ 1 % loss of test R²", "model": name}
    if skill_rows.empty:
        return {**row, "value": "no int8 skill result yet",
                "met": "not yet available (run python -m ecodistill compressed-skill "
                       f"--profile {profile})"}
    loss = skill_rows.groupby("variant")["r2_loss_pct"].mean()  # over the kept students of this size
    cands = []
    for variant, (rt, dt) in BENCH_KIND.items():
        sp = eff[(eff["runtime"] == rt) & (eff["dtype"] == dt)]["int8_speedup"]
        if variant in loss.index and len(sp):
            cands.append((variant, float(sp.iloc[0]), float(loss[variant])))
    if not cands:
        return {**row, "value": "no int8 variant both timed and evaluated",
                "met": "not yet available"}
    ok = [c for c in cands if c[2] <= 1.0]
    v, sp, lo = max(ok or cands, key=lambda c: c[1])
    return {**row, "model": f"{name} ({label(v)})", "value": f"{sp:.2f}×, R² loss {lo:.2f} %",
            "met": "met" if ok and sp >= 1.5 else "not met"}


def speed_targets(profile: str, table: pd.DataFrame, t: pd.DataFrame,
                  threads: int = 1) -> pd.DataFrame:
    """The issue's targets, judged from the data: met / not met / not yet measurable.

    1. The best distilled student (highest test R²; the fastest student while no skill
       exists) is >= 50x faster than the teacher per map, PyTorch eager fp32, ``threads``.
    2. int8 gives >= 1.5x over fp32 (best int8 variant, same runtime), for that student and
       for the best of all students; and, jointly, >= 1.5x with <= 1 % loss of test R² (from
       the compressed runs of :mod:`ecodistill.experiments.compressed_skill`).

    Without timed students and teacher, the first target's row says what makes the timings.
    Columns: ``target, model, value, met``.
    """
    speed_target = "≥ 50× faster than the teacher (1 thread, PyTorch fp32)"
    students = table[(table["kind"] == "student")
                     & ~table["model"].astype(str).str.contains("-pruned")]
    teacher = table[table["kind"] == "teacher"]
    rows = []
    if len(students) and len(teacher):
        has_skill = students["test_r2"].notna().any()
        best = students.loc[students["test_r2"].idxmax() if has_skill
                            else students["torch_fp32_ms"].idxmin()]
        ratio = float(teacher["torch_fp32_ms"].iloc[0] / best["torch_fp32_ms"])
        rows.append({"target": speed_target,
                     "model": best["model"] + ("" if has_skill
                                               else " (fastest; skill not yet available)"),
                     "value": f"{ratio:.1f}×", "met": ("met" if ratio >= 50 else "not met")
                     + ("" if has_skill else " (speed only: no skill result yet)")})
    else:
        missing = table.attrs.get("missing", no_timings_message(profile))
        rows.append({"target": speed_target, "model": "", "value": "n/a",
                     "met": f"not yet measurable: {missing}"})
    eff = int8_effect(t, threads)
    eff = eff[eff["model"].isin(students["model"])]  # int8 on top of the distilled students
    if len(eff) and len(students) and len(teacher):
        name = best["model"]
        for target, sub in ((f"int8 ≥ 1.5× faster than fp32 ({name})", eff[eff["model"] == name]),
                            ("int8 ≥ 1.5× faster than fp32 (best of all students)", eff)):
            if len(sub):
                b = sub.loc[sub["int8_speedup"].idxmax()]
                rows.append({"target": target,
                             "model": f"{b['model']} ({b['runtime']} {b['dtype']})",
                             "value": f"{b['int8_speedup']:.2f}×",
                             "met": "met" if b["int8_speedup"] >= 1.5 else "not met"})
        rows.append(_int8_skill_target(profile, name, eff[eff["model"] == name]))
    out = pd.DataFrame(rows, columns=["target", "model", "value", "met"])
    out.attrs["missing"] = table.attrs.get("missing", no_timings_message(profile))
    return out


ARM64_COLUMNS = ["model", "weights", "variant", "cpu", "runs", "error", "max_abs_diff_vs_x86",
                 "max_abs_diff_vs_torch", "M_insns_per_map", "dot_insns_per_map",
                 "guest_onnxruntime"]


def arm64_table(profile: str) -> pd.DataFrame:
    """``results/<profile>/arm64_check.json`` as one row per (model, variant, emulated CPU);
    ``attrs["note"]`` holds the emulator and its caveat, ``attrs["missing"]`` the command."""
    path = results_dir(profile) / "arm64_check.json"
    missing = f"no ARM64 check for {profile} yet — run bash scripts/arm64_check.sh {profile}"
    if not path.is_file():
        out = pd.DataFrame(columns=ARM64_COLUMNS)
        out.attrs.update(missing=missing, note=f"ARM64 emulation: not run for {profile} yet")
        return out
    check = json.loads(path.read_text())
    rows = []
    for m in check["models"]:
        for variant, v in m["variants"].items():
            for cpu, r in v["cpus"].items():
                rows.append({"model": m["model"], "weights": m.get("weights", ""),
                             "variant": variant, "cpu": cpu, "runs": "error" not in r,
                             "error": r.get("error", ""),
                             "max_abs_diff_vs_x86": r.get("max_abs_diff_vs_x86_onnxruntime",
                                                          np.nan),
                             "max_abs_diff_vs_torch": r.get("max_abs_diff_vs_x86_torch_fp32",
                                                            np.nan),
                             "M_insns_per_map": r.get("insns_per_map", np.nan) / 1e6,
                             "dot_insns_per_map": r.get("dot_insns_per_map", np.nan),
                             "guest_onnxruntime": r.get("guest", {}).get("onnxruntime", "")})
    out = pd.DataFrame(rows, columns=ARM64_COLUMNS)
    out.attrs.update(missing=missing, note=f"{check['qemu']}; {check['note']}" + arm64_staleness(profile, check))
    return out


def arm64_staleness(profile: str, check: dict) -> str:
    """A clause saying that the ARM64 check ran on other students or input channels than the
    profile has now (``""`` when it matches): the check is a separate, manual script."""
    cfg = get_profile(profile)
    students = {s.name for s in cfg.students}
    checked = {m["model"] for m in check["models"]}
    channels = input_channel_count(cfg.data)
    if checked <= students and check.get("in_chans") in (None, channels):
        return ""
    return (f"; this check ran on an earlier configuration's students ({', '.join(sorted(checked))}, "
            f"{check.get('in_chans')} input channels) and not yet on this profile's "
            f"({', '.join(sorted(students))}, {channels} channels): rerun bash scripts/arm64_check.sh {profile}")


def short_error(message: str) -> str:
    """The readable core of an onnxruntime error message: no exception class, temporary
    path, node name or source location (``Could not find an implementation for
    ConvInteger(10)``)."""
    import re

    text = str(message).strip()
    text = re.sub(r"^.*?\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"Load model from \S+ failed:", "", text)
    text = re.sub(r"^.*\) const ", "", text)  # a C++ source location before the message
    text = re.sub(r" node with name '[^']*'", "", text)
    text = re.sub(r"Node \(\w+\) ", "", text)
    return text.strip(" .") or "unknown error"


def arm64_errors(arm: pd.DataFrame) -> pd.DataFrame:
    """Why the ARM64 variants that do not run fail: one row per distinct error (:func:`short_error`)
    with the variants and models it stops and the emulated CPUs it was seen on. Columns:
    ``variant, models, cpus, error``; no rows when every variant runs."""
    failed = arm[~arm["runs"].astype(bool)] if len(arm) else arm
    if failed.empty:
        return pd.DataFrame(columns=["variant", "models", "cpus", "error"])
    failed = failed.assign(reason=failed["error"].map(short_error))
    out = failed.groupby(["variant", "reason"], sort=True).agg(
        models=("model", lambda m: ", ".join(sorted(set(m)))), cpus=("cpu", lambda c: ", ".join(sorted(set(c)))))
    return out.reset_index().rename(columns={"reason": "error"})[["variant", "models", "cpus", "error"]]


def pi_timings() -> pd.DataFrame:
    """Measurements taken on a Raspberry Pi (``results/pi/timings.csv``), with the CPU."""
    columns = ["cpu", "model", "grid", "runtime", "dtype", "threads", "median_ms", "p90_ms", "n"]
    out = runs.read_timings("pi")[columns]
    out.attrs["missing"] = ("No Raspberry Pi was attached to the machines that built this book, so no "
                            "latency was measured on a Pi (results/pi/ is empty): every Pi latency in this "
                            "chapter is the projection above, never a measurement.")
    return out
