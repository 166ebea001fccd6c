"""What is kept can be trusted: run ids follow everything a result depends on (the teacher
and its predictions, a budget cut), damaged result files are redone or refused by name, and
impossible budgets are refused before any work."""
from __future__ import annotations

import pytest

from ecodistill.cli import main
from ecodistill.config import DistillConfig
from ecodistill.store import runs


def _rows(run_id: str, n: int = 4) -> list[dict]:
    meta = {"run_id": run_id, "dataset_hash": "abc", "target": "ndvi", "kind": "student", "init": "scratch"}
    return runs.make_rows(meta, [("test", "global", "rmse", 0.1 * (i + 1)) for i in range(n)])


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("ECODISTILL_RESULTS", str(tmp_path))
    return tmp_path / "smoke" / "runs"


def test_a_complete_run_counts_and_a_damaged_one_is_redone(store):
    runs.write_run("smoke", _rows("r-1", 40), {"a": 1})
    assert runs.has_run("smoke", "r-1") and runs.read_run_config("smoke", "r-1") == {"a": 1}
    csv = store / "r-1.csv"
    data = csv.read_bytes()
    csv.write_bytes(data[: len(data) // 2])  # truncated: rows silently lost before
    assert not runs.has_run("smoke", "r-1")
    assert "differs from the checksum" in runs.run_status("smoke", "r-1")
    with pytest.raises(ValueError, match=r"r-1\.csv.*re-run"):
        runs.read_runs("smoke")
    csv.write_bytes(b"")
    assert not runs.has_run("smoke", "r-1")
    runs.write_run("smoke", _rows("r-1", 40), {"a": 1})  # a rerun repairs it
    assert runs.has_run("smoke", "r-1") and len(runs.read_runs("smoke")) == 40


def test_interrupted_and_malformed_records(store):
    runs.write_run("smoke", _rows("r-2"), {"b": 2})
    (store / "r-2.json").write_text('{"b": 2}')  # no completion marker: the write was cut
    assert "no completion marker" in runs.run_status("smoke", "r-2") and not runs.has_run("smoke", "r-2")
    (store / "r-2.json").write_text('{"b": ')
    assert not runs.has_run("smoke", "r-2")
    with pytest.raises(ValueError, match=r"r-2\.json is damaged"):
        runs.read_run_config("smoke", "r-2")
    (store / "r-2.json").unlink()
    assert runs.run_status("smoke", "r-2").startswith("damaged") and not runs.has_run("smoke", "r-2")


@pytest.mark.parametrize("argv, match", [
    (["train-teacher", "--profile", "smoke", "--budget-s", "0"], "budget"),
    (["train-teacher", "--profile", "smoke", "--budget-s", "-5"], "budget"),
    (["train-teacher", "--profile", "smoke", "--label-budgets", "9"], "label budgets"),
    (["gpu-run", "--profile", "smoke", "--device", "cpu", "--budget-s", "0"], "budget"),
    (["distill", "--profile", "smoke", "--mode", "scratch", "--label-years", "99"], "label_years=99"),
    (["distill", "--profile", "smoke", "--loss", "no-such-loss"], "unknown loss"),
])
def test_impossible_settings_exit_non_zero_with_one_line(argv, match, capsys, store):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 2  # the message, then the debug hint


@pytest.mark.slow
def test_student_run_ids_follow_the_teacher_and_its_training(store, tmp_path, monkeypatch):
    from ecodistill.experiments.distill import train_student
    from ecodistill.experiments.gpu import cap_steps
    from ecodistill.experiments.teacher import run_teacher_pipeline
    from ecodistill.experiments.workspace import open_workspace

    ws = open_workspace("smoke", "cpu")
    saved = ws.cfg
    try:
        cap_steps(ws, 2)
        scfg = ws.cfg.student(ws.cfg.headline_student)
        dcfg = DistillConfig(loss="mse", alpha=0.5)
        first = run_teacher_pipeline("smoke", "cpu", with_scratch=False)
        student = train_student(ws, scfg, dcfg, 0, tag="trust", splits=("val",))
        monkeypatch.setenv("ECODISTILL_CACHE", str(tmp_path / "fresh"))  # no finished state to resume
        with pytest.warns(UserWarning, match="stopped by budget.*stays the students' teacher"):
            kept = run_teacher_pipeline("smoke", "cpu", budget_s=1e-9, with_scratch=False, stages=("main",))
        assert kept.run_id == first.run_id  # an incomplete teacher never silently replaces a completed one
        assert train_student(ws, scfg, dcfg, 0, tag="trust", splits=("val",)).run_id == student.run_id
        cut = run_teacher_pipeline("smoke", "cpu", budget_s=1e-9, with_scratch=False, stages=("main",),
                                   accept_incomplete=True)
        assert cut.run_id != first.run_id  # a budget-cut teacher is another run
        with pytest.warns(UserWarning, match="did not complete its training"):
            again = train_student(ws, scfg, dcfg, 0, tag="trust", splits=("val",))
        assert again.run_id != student.run_id and again.history  # new teacher: trained again
        config = runs.read_run_config("smoke", again.run_id)
        assert config["teacher"]["run_id"] == cut.run_id and len(config["teacher"]["predictions_sha256"]) == 64
    finally:
        ws.cfg = saved


@pytest.mark.parametrize("digest", ["902740411463", "12e456789012", "000000000042", "1e5", "nan"])
def test_the_store_keeps_hashes_and_ids_as_text(store, digest):
    """Issue 20, item 6: a hash of digits only came back as an int, ``12e456789012`` as inf."""
    meta = {"run_id": "r-7", "dataset_hash": digest, "target": "ndvi", "kind": "student", "init": "distilled",
            "teacher_run_id": "1234567", "git_commit": "0042137"}
    runs.write_run("smoke", runs.make_rows(meta, [("test", "global", "rmse", 0.1)]), {"a": 1})
    frame = runs.read_runs("smoke", dataset_hash=digest)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row.dataset_hash, row.teacher_run_id, row.git_commit) == (digest, "1234567", "0042137")
    assert all(isinstance(row[c], str) for c in ("dataset_hash", "teacher_run_id", "git_commit", "run_id"))
    timing = {c: "x" for c in runs.TIMING_COLUMNS}
    timing.update(run_id="000123", median_ms=1.0, p90_ms=2.0, n=3, threads=1, batch=1, n_params=1,
                  flops_per_map=1.0, bytes_per_map=1.0, versions="2e10")
    runs.write_timings("smoke", [timing])
    back = runs.read_timings("smoke").iloc[0]
    assert (back.run_id, back.versions) == ("000123", "2e10")
