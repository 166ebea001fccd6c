"""The one summary table of the book (chapter 4, quoted by the abstract): every student size
with its parameters, FLOPs, scratch and distilled skill, the paired difference with its 95%
interval and p, measured latency and speed-up; and how tables are displayed.

Reads nothing itself: it joins chapter 4's :func:`~ecodistill.report.student_table` and
:func:`~ecodistill.report.paired_comparison` with chapter 5's
:func:`~ecodistill.report.timing_table`. Number formats live here (:data:`FORMATS`), so the
abstract's sentences and the table print the same digits.
"""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from .frames import labelled

#: How each quantity is printed everywhere (tables, abstract, conclusions).
FORMATS = {"r2": "{:.3f}", "rmse": "{:.4f}", "diff": "{:.2f}", "dr2": "{:.3f}", "p": "{:.3f}", "ms": "{:.3g}",
           "speedup": "{:.1f}×", "params": "{:,.0f}", "mflops": "{:.3g}"}
#: Differences of test RMSE are printed in units of 10⁻³ NDVI.
DIFF_SCALE = 1e3
SUMMARY_COLUMNS = ["model", "parameters", "MFLOP per map", "anomaly R² scratch → distilled",
                   "ΔR² anomalies [95% CI]", "ΔRMSE ×10⁻³ [95% CI]", "p", "ms per map", "speed-up"]


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")

#: How code names read in a table header, an index or a cell (anything else: ``_`` → space).
LABELS = {
    "n_params": "parameters", "flops_per_map": "FLOPs per map", "GFLOP_per_map": "GFLOP per map",
    "MB_moved_per_map": "MB moved per map", "MB_per_map": "MB moved per map", "bytes_per_map": "bytes per map",
    "FFT_share": "FFT share of FLOPs", "fft_flops": "FFT FLOPs", "embed_dim": "embedding dimension",
    "afno_blocks": "AFNO blocks", "mlp_ratio": "MLP ratio", "in_chans": "input channels",
    "out_chans": "output channels", "weights_mb": "weights (MB)", "torch_fp32_ms": "PyTorch fp32 ms",
    "ort_fp32_ms": "ONNX Runtime fp32 ms", "best_int8_ms": "best int8 ms", "best_int8": "best int8",
    "projected_pi4_ms": "Pi 4 ms (projected)", "projected_pi5_ms": "Pi 5 ms (projected)",
    "MB_torch-fp32": "MB on disk, fp32", "MB_onnx-int8-static": "MB on disk, int8", "test_r2": "test R²", "test_r2_anom": "test anomaly R²",
    "test_r2_int8": "test R², int8", "int8_r2_loss_pct": "R² loss of int8 (%)", "r2_fp32": "R², fp32",
    "r2": "R²", "r2_anom": "anomaly R²", "rmse": "RMSE", "r2_loss_pct": "R² loss (%)", "median_ms": "median ms",
    "p90_ms": "p90 ms", "int8_speedup": "int8 speed-up", "fp32_ms": "fp32 ms", "n_seeds": "seeds",
    "max_abs_diff_vs_x86": "max |diff| vs x86", "M_insns_per_map": "M instructions per map",
    "dot_insns_per_map": "dot-product instructions per map", "rmse_latw": "RMSE (lat.-weighted)",
    "rmse_anom": "anomaly RMSE", "int8ortdyn": "int8, ONNX Runtime dynamic",
    "int8ortstatic": "int8, ONNX Runtime static", "int8torchdyn": "int8, PyTorch dynamic",
    "pruned50kd": "pruned 50 %, distilled again", "fp16": "fp16 weights",
}


def label(name) -> str:
    """A column, index or code name as a reader sees it (:data:`LABELS`)."""
    return LABELS.get(str(name), str(name).replace("_", " "))


def count(value: float) -> str:
    """A count for people: ``1.99 T``, ``108 M``, ``2.44 M``, ``126 k``, ``2,401`` (3
    significant digits from ten thousand on)."""
    a = abs(value)
    if a >= 1e12:
        return f"{value / 1e12:.3g} T"
    if a >= 1e9:
        return f"{value / 1e9:.3g} G"
    if a >= 1e6:
        return f"{value / 1e6:.3g} M"
    if a >= 1e4:
        return f"{value / 1e3:.3g} k"
    return f"{value:,.0f}"


def human(value, floatfmt: str = "{:.4g}") -> str:
    """One table cell for people: counts and large values with k / M / G (:func:`count`),
    tiny values as ``1.4 × 10⁻⁶`` instead of ``1.43e-06``, tuples and lists as ``27, −17``,
    None and NaN as ``–``, other numbers with ``floatfmt``, everything else as text."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return LABELS.get(value, value)
    if isinstance(value, (tuple, list)):
        return ", ".join(human(v, floatfmt) for v in value) or "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return count(float(value)) if abs(value) >= 1e4 else f"{int(value):,}".replace("-", "−")
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "–"
        a = abs(value)
        if a >= 1e4 and (a >= 1e6 or float(value).is_integer()):
            return count(float(value))
        if 0 < a < 1e-3:
            mantissa, exponent = f"{value:.2e}".split("e")
            return f"{float(mantissa):.2g} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}".replace("-", "−", 1)
        text = floatfmt.format(value)
        if "e+" in text:  # 1.49e+04: a thousand or more reads better in full
            text = f"{value:,.0f}"
        return text.replace("-", "−")
    return str(value)


def fmt(kind: str, value: float) -> str:
    """``value`` in the book's format for ``kind`` (:data:`FORMATS`); ``–`` for NaN;
    parameter counts for people (:func:`count`: ``2.44 M``)."""
    if value is None or not np.isfinite(value):
        return "–"
    if kind == "params":
        return count(value)
    text = FORMATS[kind].format(value)
    return text[1:] if text.startswith("-") and not any(c in "123456789" for c in text) else text


def signed(text: str) -> str:
    """A formatted number with a true minus sign (−) and an explicit + on positive values."""
    if text.startswith("-"):
        return "−" + text[1:]
    return text if text in ("–", "") or not any(c in "123456789" for c in text) else "+" + text


def fmt_diff(diff: float, low: float, high: float, sep: str = " ", kind: str = "diff",
             scale: float = DIFF_SCALE) -> str:
    """A signed difference and its interval: ``−2.80 [−5.10, −1.10]`` for a test-RMSE
    difference in 10⁻³ units (``kind="diff"``), ``+0.012 [−0.004, +0.031]`` for an R²
    difference (``kind="dr2"``, ``scale=1``); ``sep`` between the two (a table cell breaks the
    line there)."""
    if not np.isfinite(diff):
        return "–"
    ci = (f"{sep}[{signed(fmt(kind, scale * low))}, {signed(fmt(kind, scale * high))}]"
          if np.isfinite(low) and np.isfinite(high) else "")
    return signed(fmt(kind, scale * diff)) + ci


def fmt_dr2(diff: float, low: float, high: float, sep: str = " ") -> str:
    """An anomaly-R² difference and its interval: ``+0.012 [−0.004, +0.031]``."""
    return fmt_diff(diff, low, high, sep, kind="dr2", scale=1.0)


def _latency(timing: pd.DataFrame | None) -> tuple[dict[str, float], float]:
    """Student -> PyTorch fp32 ms per map (one thread, batch 1), and the teacher's."""
    if timing is None or timing.empty or "torch_fp32_ms" not in timing:
        return {}, float("nan")
    ms = timing.set_index("model")["torch_fp32_ms"].astype(float)
    teacher = timing[timing["kind"] == "teacher"]["torch_fp32_ms"]
    return ms.to_dict(), float(teacher.iloc[0]) if len(teacher) else float("nan")


def summary_numbers(table: pd.DataFrame, pairs: pd.DataFrame,
                    timing: pd.DataFrame | None = None) -> pd.DataFrame:
    """The numbers of :func:`summary_table`, one row per student size (then the teacher), as
    floats: ``student, family, n_params, flops_per_map, r2_scratch, r2_distilled,
    r2_anom_scratch, r2_anom_distilled, diff, ci_low, ci_high, d_r2_anom, d_r2_anom_low,
    d_r2_anom_high, p_value, n_pairs, ms, speedup, verdict`` (``diff`` = distilled − scratch test
    RMSE; ``helps``: its interval lies below zero, ``hurts``: above, ``unresolved``: it holds
    zero)."""
    columns = ["student", "family", "n_params", "flops_per_map", "r2_scratch", "r2_distilled",
               "r2_anom_scratch", "r2_anom_distilled", "diff", "ci_low", "ci_high", "d_r2_anom",
               "d_r2_anom_low", "d_r2_anom_high", "p_value", "n_pairs", "ms", "speedup", "verdict"]
    ms, teacher_ms = _latency(timing)
    rows = []
    for _, p in pairs.iterrows():
        verdict = ("helps" if p["ci_high"] < 0 else "hurts" if p["ci_low"] > 0 else "unresolved")
        student_ms = ms.get(p["student"], np.nan)
        rows.append({**{c: p[c] for c in ("student", "family", "n_params", "flops_per_map", "r2_scratch",
                                          "r2_distilled", "r2_anom_scratch", "r2_anom_distilled", "diff",
                                          "ci_low", "ci_high", "d_r2_anom", "d_r2_anom_low",
                                          "d_r2_anom_high", "p_value", "n_pairs")},
                     "ms": student_ms, "speedup": teacher_ms / student_ms, "verdict": verdict})
    teacher = table[table["student"] == "teacher"] if "student" in table else table.iloc[0:0]
    if len(rows) and len(teacher):
        t = teacher.iloc[0]
        rows.append({"student": "teacher", "family": t["family"], "n_params": t["n_params"],
                     "flops_per_map": t["flops_per_map"], "r2_distilled": t["r2_mean"],
                     "r2_anom_distilled": t["r2_anom_mean"], "ms": teacher_ms, "speedup": 1.0,
                     "verdict": ""})
    return pd.DataFrame(rows, columns=columns)


def summary_table(table: pd.DataFrame, pairs: pd.DataFrame,
                  timing: pd.DataFrame | None = None) -> pd.DataFrame:
    """The book's summary over every student size: formatted strings, columns
    :data:`SUMMARY_COLUMNS`, teacher last (its skill alone; speed-up 1). ΔR² anomalies and
    ΔRMSE are distilled − scratch (the book's sign convention: a positive ΔR², a negative
    ΔRMSE mean distillation helps) with their 95% intervals (two-way cluster bootstrap over
    seeds and biomes); p the two-sided Wilcoxon signed-rank p over seeds; latency PyTorch
    fp32, one thread, batch 1, measured on the bench host. No rows (and ``pairs``'s message)
    without paired results."""
    numbers = summary_numbers(table, pairs, timing)
    rows = []
    for _, r in numbers.iterrows():
        teacher = r["student"] == "teacher"
        pair = (lambda a, b, alone=teacher: fmt("r2", b) if alone else f"{fmt('r2', a)} → {fmt('r2', b)}")
        rows.append({"model": r["student"], "parameters": fmt("params", r["n_params"]),
                     "MFLOP per map": fmt("mflops", r["flops_per_map"] / 1e6),
                     "anomaly R² scratch → distilled": pair(r["r2_anom_scratch"], r["r2_anom_distilled"]),
                     "ΔR² anomalies [95% CI]": "" if teacher else fmt_dr2(r["d_r2_anom"], r["d_r2_anom_low"],
                                                                          r["d_r2_anom_high"], "\n"),
                     "ΔRMSE ×10⁻³ [95% CI]": "" if teacher else fmt_diff(r["diff"], r["ci_low"], r["ci_high"],
                                                                         "\n"),
                     "p": "" if teacher else fmt("p", r["p_value"]),
                     "ms per map": fmt("ms", r["ms"]), "speed-up": fmt("speedup", r["speedup"])})
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return labelled(out, pairs.attrs.get("missing", "no results yet"))


#: Cells longer than this (characters) may wrap in a column; shorter columns stay on one line.
WRAP_CHARS = 24
#: Tables with this many columns or more are set smaller (CSS class ``ed-wide``).
WIDE = 8


class Table:
    """A table as the book shows it: HTML with the book's CSS classes (``ed-table``, and
    ``ed-main`` for the main tables the layout test checks at 1,280 px), no index, an
    optional caption; its plain-text form names it, so executed chapters stay comparable."""

    def __init__(self, frame: pd.DataFrame, caption: str = "", main: bool = False,
                 floatfmt: str = "{:.4g}") -> None:
        self.frame, self.caption, self.main, self.floatfmt = frame, caption, main, floatfmt

    def _cell(self, value) -> str:
        return "<br>".join(html.escape(part) for part in human(value, self.floatfmt).split("\n"))

    def _repr_html_(self) -> str:
        classes = "ed-table" + (" ed-main" if self.main else "") + (" ed-wide" if len(self.frame.columns) >= WIDE else "")
        if self.frame.empty:
            message = self.frame.attrs.get("missing", "no results yet")
            return f'<p class="ed-missing"><em>{html.escape(message)}</em></p>'
        cells = [[self._cell(v) for v in row] for row in self.frame.itertuples(index=False)]
        # long text wraps; numbers and short labels stay on one line
        wrap = [max(len(row[j]) for row in cells) > WRAP_CHARS for j in range(len(self.frame.columns))]
        head = "".join(f"<th>{html.escape(label(c))}</th>" for c in self.frame.columns)
        body = "".join("<tr>" + "".join(f'<td class="wrap">{v}</td>' if w else f"<td>{v}</td>"
                                        for v, w in zip(row, wrap)) + "</tr>" for row in cells)
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return (f'<table class="{classes}">{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")

    def __repr__(self) -> str:
        if self.frame.empty:
            return self.frame.attrs.get("missing", "no results yet")
        return self.frame.to_string(index=False)


def show_table(frame: pd.DataFrame, caption: str = "", main: bool = False, index: bool = False,
               floatfmt: str = "{:.4g}") -> Table:
    """What a chapter cell displays for ``frame``: a :class:`Table` (its ``index`` kept as a
    first column when ``index``); with no rows, the message naming the command that makes it."""
    shown = frame.reset_index() if index else frame
    shown.attrs = dict(frame.attrs)
    return Table(shown, caption, main, floatfmt)
