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

Chapter 5's tables of measured timings are in :mod:`ecodistill.report.timings`, whose
:func:`~ecodistill.report.timings.ensure_timings` measures the smoke profile's when they are missing.

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
COMPUTE_EFFICIENCY = tuple(MOBILENETV2_FLOPS / (MOBILENETV2_MS[runtime] / 1e3)
                           / (PI5.peak_gflops[0] * GFLOP)
                           for runtime in ("pytorch_eager_fp32", "xnnpack_fp32"))
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
        raise ValueError(f"flops={flops}, bytes={n_bytes}: both must be positive "
                         "(use ecodistill.models.cost)")
    if int8 and not spec.sdot:
        return float("nan"), float("nan")
    share = int(threads) / spec.cores
    peak = np.array(spec.peak_gflops) * GFLOP * share
    fast = max(flops / (peak[1] * COMPUTE_EFFICIENCY[1]),
               n_bytes / (spec.copy_gbs[1] * GB * MEMORY_EFFICIENCY[1]))
    slow = max(flops / (peak[0] * COMPUTE_EFFICIENCY[0]),
               n_bytes / (spec.copy_gbs[0] * GB * MEMORY_EFFICIENCY[0]))
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
    if models.empty:  # keeps the input's attrs (e.g. the message saying what makes it)
        out = pd.DataFrame(columns=["model", "pi", "threads", "projected_fast_ms",
                                    "projected_slow_ms", "bound"])
        out.attrs.update(models.attrs)
        return out
    for _, m in models.iterrows():
        for key, spec in PIS.items():
            for t in threads:
                fast, slow = project(float(m["flops_per_map"]), float(m["bytes_per_map"]), spec, t,
                                     bool(m.get("int8", False)))
                rows.append({"model": m["model"], "pi": spec.name, "threads": t,
                             "projected_fast_ms": fast, "projected_slow_ms": slow,
                             "bound": bound(float(m["flops_per_map"]), float(m["bytes_per_map"]),
                                            key)})
    return pd.DataFrame(rows)
