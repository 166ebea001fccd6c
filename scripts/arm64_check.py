"""Host side of scripts/arm64_check.sh: does an exported student run on ARM64, and what does it cost?

1. Builds a profile's students (trained checkpoints when present, else random weights of
   the same architecture), exports each to ONNX on x86 (fp32 with FFTs as matrix
   products, ONNX Runtime dynamic and static int8, and for AFNO models also fp32 with ONNX
   ``DFT`` operators) and runs them on a fixed seeded input with x86 onnxruntime.
2. Runs the same files under ``qemu-aarch64`` (user-mode emulation, aarch64 Python and
   wheels from the Debian arm64 root ``--root``), once per emulated CPU (``cortex-a72`` =
   Raspberry Pi 4, ``cortex-a76`` = Raspberry Pi 5), with a TCG plugin that counts guest
   instructions and int8 dot-product (SDOT/UDOT) instructions. One and three inferences
   are run; their difference over two is the count per map (start-up excluded).
3. Writes ``results/<profile>/arm64_check.json``: max abs differences (aarch64 vs x86
   onnxruntime, aarch64 vs x86 PyTorch) and instruction counts. Emulated wall time is not
   recorded: it says nothing about a Pi.

Usage: ``python scripts/arm64_check.py --profile cpu --root /work/arm64root --plugin PATH``
(normally called by scripts/arm64_check.sh).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ecodistill.config import get_profile
from ecodistill.deploy import bench, compress
from ecodistill.models import AFNO2D
from ecodistill.utils import atomic_write_json, git_commit, library_versions, results_dir, sha256_file

HERE = Path(__file__).resolve().parent


def run_guest(root: Path, plugin: Path, cpu: str, model: Path, inputs: Path, output: Path, repeat: int) -> dict:
    """Run arm64_run.py under qemu-aarch64; returns guest facts and instruction counts."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": "/opt/pyarm", "OMP_NUM_THREADS": "1",
           "QEMU_LD_PREFIX": str(root), "HOME": "/tmp"}
    cmd = ["qemu-aarch64", "-L", str(root), "-cpu", cpu, "-plugin", str(plugin), "-d", "plugin",
           str(root / "usr/bin/python3"), str(HERE / "arm64_run.py"), str(model), str(inputs), str(output),
           "--repeat", str(repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"emulated run failed ({cpu}, {model.name}): {proc.stderr[-2000:]}")
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    m = re.search(r"insncount: insns=(\d+) dot=(\d+)", proc.stderr + proc.stdout)
    if m is None:
        raise RuntimeError(f"the instruction-count plugin printed nothing: {proc.stderr[-500:]}")
    return {**facts, "insns": int(m.group(1)), "dot": int(m.group(2))}


def check_model(name: str, model: torch.nn.Module, in_chans: int, grid, root: Path, plugin: Path,
                cpus, work: Path) -> dict:
    """Export ``model`` (fp32 and int8), run it on x86 and under emulation, compare."""
    torch.manual_seed(0)
    x = torch.randn(1, in_chans, *grid)
    np.save(work / "x.npy", x.numpy())
    with torch.no_grad():
        y_torch = model.eval()(x).numpy()
    # FFTs as matrix products: onnxruntime 1.20 (aarch64) rejects the exporter's inverse DFT
    fp32 = work / f"{name}.onnx"
    info = compress.export_onnx(model, torch.randn(2, in_chans, *grid), fp32, fft="matmul")
    calib = [torch.randn(2, in_chans, *grid, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    files = {"fp32": fp32, "int8-dynamic": compress.quantize_onnx_dynamic(fp32, work / f"{name}.int8d.onnx"),
             "int8-static": compress.quantize_onnx_static(fp32, work / f"{name}.int8s.onnx", calib)}
    if any(isinstance(m, AFNO2D) for m in model.modules()):  # record whether the DFT-operator export runs
        files["fp32-dft-op"] = Path(compress.export_onnx(model, torch.randn(2, in_chans, *grid),
                                                         work / f"{name}.dft.onnx")["path"])
    out = {"model": name, "grid": f"{grid[0]}x{grid[1]}", "n_params": sum(p.numel() for p in model.parameters()),
           "onnx_export_max_abs_diff_x86": info["max_abs_diff"], "variants": {}}
    for variant, path in files.items():
        y_x86 = compress.ort_session(path, 1).run(None, {"x": x.numpy()})[0]
        res = {"sha256": sha256_file(path), "size_bytes": path.stat().st_size, "cpus": {}}
        for cpu in cpus:
            counts = {}
            try:
                for repeat in (1, 3):
                    counts[repeat] = run_guest(root, plugin, cpu, path, work / "x.npy", work / "y.npy", repeat)
            except RuntimeError as err:  # e.g. an operator the aarch64 build lacks: a result too
                lines = [ln for ln in str(err).splitlines() if "Error" in ln or "error" in ln]
                res["cpus"][cpu] = {"error": (lines[-1] if lines else str(err))[-400:]}
                continue
            y_arm = np.load(work / "y.npy")
            res["cpus"][cpu] = {
                "max_abs_diff_vs_x86_onnxruntime": float(np.max(np.abs(y_arm - y_x86))),
                "max_abs_diff_vs_x86_torch_fp32": float(np.max(np.abs(y_arm - y_torch))),
                "insns_per_map": (counts[3]["insns"] - counts[1]["insns"]) / 2,
                "dot_insns_per_map": (counts[3]["dot"] - counts[1]["dot"]) / 2,
                "guest": {k: counts[1][k] for k in ("machine", "python", "onnxruntime", "numpy")}}
        out["variants"][variant] = res
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--root", default="/work/arm64root", help="Debian arm64 root with python3 and /opt/pyarm")
    parser.add_argument("--plugin", required=True, help="the compiled arm64_insncount.c")
    parser.add_argument("--models", default=None, help="student names (default: all of the profile's)")
    parser.add_argument("--in-chans", type=int, default=None, help="default: as ecodistill.data builds them")
    parser.add_argument("--cpus", default="cortex-a72,cortex-a76")
    args = parser.parse_args()
    cfg = get_profile(args.profile)
    args.in_chans = args.in_chans or bench.input_channels(args.profile)
    grid = (cfg.data.nlat, cfg.data.nlon)
    names = args.models.split(",") if args.models else [s.name for s in cfg.students]
    cands = bench.candidates(args.profile, args.in_chans, grid, names, prune=0.0)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for c in cands:
            t0 = time.time()
            results.append({**check_model(c.name, c.model, args.in_chans, grid, Path(args.root), Path(args.plugin),
                                          args.cpus.split(","), Path(tmp)), "weights": c.weights})
            print(f"{c.name}: checked in {time.time() - t0:.0f} s", flush=True)
    qemu = subprocess.run(["qemu-aarch64", "--version"], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    report = {"profile": args.profile, "in_chans": args.in_chans, "git_commit": git_commit(),
              "x86_versions": library_versions(), "qemu": qemu, "models": results,
              "note": ("user-mode emulation (qemu-aarch64, TCG); instruction counts are per map "
                       "(3 runs minus 1 run, over 2), one onnxruntime thread; emulated wall time is "
                       "not Raspberry Pi time and is not recorded")}
    path = atomic_write_json(results_dir(args.profile) / "arm64_check.json", report)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
