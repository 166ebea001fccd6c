"""``python -m ecodistill bench-train`` runs at smoke on a CPU and reports both loops' throughput."""
from __future__ import annotations

import math

from ecodistill.cli import main
from ecodistill.experiments.bench_train import bench_train


def test_bench_train_reports_project_and_synthetic_throughput(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    rows = bench_train("smoke", "cpu", models=("teacher", "mlp_xs"), steps=3, warmup=1)
    assert [r["model"] for r in rows] == ["teacher", "mlp_xs"]
    for row in rows:
        assert row["project_samples_s"] > 0 and row["synthetic_samples_s"] > 0
        assert math.isclose(row["ratio"], row["project_samples_s"] / row["synthetic_samples_s"], rel_tol=1e-2)
    assert main(["bench-train", "--profile", "smoke", "--models", "afno_xs", "--steps", "2", "--warmup", "1"]) == 0
    assert "afno_xs" in capsys.readouterr().out
