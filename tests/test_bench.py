"""Tests for ecodistill.deploy.bench (timing, memory, result files, CLI) and ecodistill.deploy.pi (projection)."""
import math

import numpy as np
import pandas as pd
import pytest

from ecodistill import report
from ecodistill.deploy import bench, pi
from ecodistill.store.runs import TIMING_COLUMNS, read_timings


def test_time_call_counts_and_orders():
    calls = []
    res = bench.time_call(lambda: calls.append(1), runs=20, warmup=3)
    assert res["n"] == 20 and len(calls) == 23
    assert 0 <= res["median_ms"] <= res["p90_ms"]
    slow = bench.time_call(lambda: sum(range(200_000)), runs=50, warmup=0, max_seconds=0.0, min_runs=3)
    assert slow["n"] == 3
    with pytest.raises(ValueError, match="at least one"):
        bench.time_call(lambda: None, runs=0)


def test_peak_rss_sees_a_large_allocation():
    mb, method = bench.peak_rss_mb(lambda: np.ones(40 * 2**20 // 8).sum())
    assert method in ("VmHWM-reset", "ru_maxrss")
    assert mb >= 30


def test_parsers_and_host():
    assert bench.parse_grid("720x1440") == (720, 1440)
    with pytest.raises(ValueError, match="720x1440"):
        bench.parse_grid("720-1440")
    assert bench.parse_threads("1,1,2") == [1, 2]
    assert bench.parse_threads("all")[0] >= 1
    with pytest.raises(ValueError, match=">= 1"):
        bench.parse_threads("0")
    assert bench.cpu_model()
    assert {"torch", "cpu", "machine"} <= set(bench.host_info())


def test_run_bench_writes_schema_rows(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    rows = bench.run_bench("smoke", grid=(8, 16), threads=[1], models=["mlp_xs", "mlp_xs-pruned50"],
                           runs=20, warmup=1, in_chans=5, log=lambda s: None)
    got = read_timings("smoke")
    assert list(got.columns) == TIMING_COLUMNS and len(got) == len(rows)
    assert set(got["model"]) == {"mlp_xs", "mlp_xs-pruned50"}
    assert {"torch", "onnxruntime"} == set(got["runtime"])
    assert {"fp32", "int8-dynamic", "int8-static"} == set(got["dtype"])
    assert (got["n"] == 20).all() and (got["grid"] == "8x16").all()
    pruned = got[got.model == "mlp_xs-pruned50"]["n_params"].iloc[0]
    assert pruned < got[got.model == "mlp_xs"]["n_params"].iloc[0]
    sizes = pd.read_csv(tmp_path / "smoke" / "model_sizes.csv")
    onnx = sizes[(sizes.model == "mlp_xs") & (sizes.format == "onnx-fp32")]
    assert float(onnx["onnx_max_abs_diff"].iloc[0]) < 1e-4
    assert (sizes["weights"] == "random").any() and (tmp_path / "smoke" / "bench_memory.csv").is_file()
    with pytest.raises(ValueError, match="no model matches"):
        bench.run_bench("smoke", grid=(8, 16), models=["nope"], runs=20, log=lambda s: None)


def test_cli_registers_bench():
    from ecodistill.cli import build_parser

    args = build_parser().parse_args(["bench", "--profile", "cpu", "--grid", "720x1440", "--threads", "1,all"])
    assert args.func is bench.run_from_args and args.grid == "720x1440"


def test_pi_projection_reproduces_its_calibration():
    """MobileNetV2's cost projected on a Pi 5 gives back the two measured latencies."""
    fast, slow = pi.project(pi.MOBILENETV2_FLOPS, 1e3, "pi5", threads=4)
    assert fast == pytest.approx(pi.MOBILENETV2_MS["xnnpack_fp32"], rel=1e-6)
    assert slow == pytest.approx(pi.MOBILENETV2_MS["pytorch_eager_fp32"], rel=1e-6)
    one = pi.project(pi.MOBILENETV2_FLOPS, 1e3, "pi5", threads=1)
    assert one[0] == pytest.approx(4 * fast)


def test_pi_projection_range_contains_published_pi4_mobilenetv2():
    """The calibrated range must contain independent published Pi 4 timings (not used to fit it)."""
    for name, ms in pi.PUBLISHED_PI4_CHECKS.items():
        fast, slow = pi.project(pi.MOBILENETV2_FLOPS, 1e3, "pi4", threads=4)
        assert fast <= ms <= slow, (name, ms, fast, slow)


def test_pi_projection_memory_bound_int8_and_errors():
    fast, slow = pi.project(1e3, 5e9, "pi4", threads=4)  # 5 GB per map: bandwidth decides
    assert slow == pytest.approx(1e3 * 5e9 / (pi.PI4.copy_gbs[0] * 1e9 * pi.MEMORY_EFFICIENCY[0]))
    assert fast == pytest.approx(1e3 * 5e9 / (pi.PI4.copy_gbs[1] * 1e9))
    assert pi.bound(1e3, 5e9, "pi4") == "memory" and pi.bound(1e12, 1e3, "pi4") == "compute"
    assert all(math.isnan(v) for v in pi.project(1e9, 1e6, "pi4", int8=True))
    assert not math.isnan(pi.project(1e9, 1e6, "pi5", int8=True)[0])
    with pytest.raises(ValueError, match="unknown Pi"):
        pi.project(1e9, 1e6, "pi3")
    with pytest.raises(ValueError, match="threads"):
        pi.project(1e9, 1e6, "pi4", threads=8)
    table = pi.projection_table(pd.DataFrame({"model": ["a"], "flops_per_map": [1e9], "bytes_per_map": [1e6]}))
    assert len(table) == 4 and (table.projected_fast_ms < table.projected_slow_ms).all()


def _student_run(profile, run_id, r2, n_params, method="kd-mse-offline", config=None):
    from ecodistill.store import runs

    meta = {"run_id": run_id, "target": "ndvi", "kind": "student", "init": "distilled", "method": method,
            "family": "afno", "n_params": n_params, "seed": 0, "dataset_hash": "d0", "teacher_run_id": "t0"}
    runs.write_run(profile, runs.make_rows(meta, [("test", "global", "r2", r2)]), config or {})


def test_chapter_table_and_targets_pair_latency_with_trained_and_int8_skill(tmp_path, monkeypatch):
    """Skill comes from the student's own final runs; the int8 target needs the matching
    compressed run and is judged on speed-up and relative R² loss together."""
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    from ecodistill.utils import atomic_write_json

    atomic_write_json(tmp_path / "smoke" / "teacher" / "teacher.json", {"run_id": "t0", "dataset_hash": "d0"})
    src = "kd-mse-offline-afno_xs_from_teacher-final-0123456789"
    _student_run("smoke", src, 0.80, 1000)
    _student_run("smoke", "kd-mse-offline-afno_xs_from_teacher-final-1111111111", 0.70, 1000)  # seed 1
    _student_run("smoke", "kd-mse-offline-afno_xs_from_teacher-noextra-2222222222", 0.10, 1000)  # a control
    _student_run("smoke", "kd-mse-offline-afno_xs_from_teacher-int8ortstatic-3333333333", 0.796, 1000,
                 "kd-mse-offline+int8ortstatic", {"source_run_id": src})
    _student_run("smoke", "kd-mse-offline-afno_xs_from_teacher-pruned50kd-4444444444", 0.75, 600,
                 "kd-mse-offline+pruned50kd", {"source_run_id": src})
    base = {"run_id": "r", "kind": "student", "n_params": 1000, "flops_per_map": 1e6, "bytes_per_map": 1e5,
            "grid": "24x48", "threads": 1, "batch": 1, "device": "cpu", "cpu": "x", "p90_ms": 1, "n": 20,
            "versions": "{}"}
    t = pd.DataFrame([
        {**base, "model": "teacher", "kind": "teacher", "runtime": "torch", "dtype": "fp32", "median_ms": 600.0},
        {**base, "model": "afno_xs", "runtime": "torch", "dtype": "fp32", "median_ms": 10.0},
        {**base, "model": "afno_xs", "runtime": "onnxruntime", "dtype": "fp32", "median_ms": 8.0},
        {**base, "model": "afno_xs", "runtime": "onnxruntime", "dtype": "int8-static", "median_ms": 4.0},
        {**base, "model": "afno_xs-pruned50", "n_params": 600, "runtime": "torch", "dtype": "fp32",
         "median_ms": 7.0},
    ])
    table = report.timing_table("smoke", t).set_index("model")
    assert table.loc["afno_xs", "test_r2"] == pytest.approx(0.75)  # mean of the two final seeds only
    assert table.loc["afno_xs-pruned50", "test_r2"] == pytest.approx(0.75)
    assert math.isnan(table.loc["teacher", "test_r2"])
    assert table.loc["afno_xs", "int8_r2_loss_pct"] == pytest.approx(0.5)
    goals = report.speed_targets("smoke", table.reset_index(), t).set_index("target")
    assert goals.loc["≥ 50× faster than the teacher (1 thread, PyTorch fp32)", "value"] == "60.0×"
    joint = goals.loc["int8 ≥ 1.5× faster with ≤ 1 % loss of test R²"]
    assert joint["met"] == "met" and joint["value"] == "2.00×, R² loss 0.50 %"
    _student_run("smoke", "kd-mse-offline-afno_xs_from_teacher-int8ortstatic-3333333333", 0.70, 1000,
                 "kd-mse-offline+int8ortstatic", {"source_run_id": src})  # now int8 costs 12.5 % of R²
    goals = report.speed_targets("smoke", report.timing_table("smoke", t), t).set_index("target")
    assert goals.loc["int8 ≥ 1.5× faster with ≤ 1 % loss of test R²", "met"] == "not met"
