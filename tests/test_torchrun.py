"""``torchrun --nproc_per_node 2 -m ecodistill train-teacher --profile smoke --device cpu`` (gloo):
the README's multi-GPU command, on two CPU ranks, matches the one-process run."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _run(cmd: list[str], results, cache) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(ECODISTILL_RESULTS=str(results), ECODISTILL_CACHE=str(cache), OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def _teacher_metrics(results) -> dict:
    record = json.loads((results / "smoke" / "teacher" / "teacher.json").read_text())
    import pandas as pd

    rows = pd.read_csv(results / "smoke" / "runs" / f"{record['run_id']}.csv")
    rows = rows[(rows.region == "global")]
    return {(s, m): v for s, m, v in zip(rows.split, rows.metric, rows.value)}


@pytest.mark.slow
def test_two_cpu_ranks_match_one_process(tmp_path):
    teacher = [sys.executable, "-m", "ecodistill", "train-teacher", "--profile", "smoke", "--device", "cpu",
               "--stages", "main"]
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):  # the dataset first, so the two ranks do not both build it
        _run([sys.executable, "-m", "ecodistill", "data", "build", "--profile", "smoke"], folder / "results",
             folder / "cache")
    _run(teacher, one / "results", one / "cache")
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
          *teacher[2:]], two / "results", two / "cache")
    a, b = _teacher_metrics(one / "results"), _teacher_metrics(two / "results")
    assert a.keys() == b.keys() and ("test", "r2") in a
    for key in a:  # shards average their masked means: equal up to the cell counts per shard
        assert b[key] == pytest.approx(a[key], rel=0.05, abs=0.01), key
    runs = sorted(p.name for p in (two / "results" / "smoke" / "runs").glob("*.csv"))
    assert len(runs) == 1  # rank 0 alone evaluated and wrote
