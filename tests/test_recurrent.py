"""The recurrent student's state: a sequence in one call equals its days one at a time, and
the deployable model on raw daily fields equals the trained network on the dataset's inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ecodistill.config import get_profile, with_history
from ecodistill.data import load_dataset, prepare
from ecodistill.data.history import build_ema, transform
from ecodistill.models import PixelMLP
from ecodistill.models.recurrent import LeakyIntegrator, RecurrentStudent, input_transform

TAUS = (4.0, 16.0, 64.0, 256.0)


def test_a_sequence_in_one_call_equals_its_days_one_at_a_time():
    torch.manual_seed(0)
    mem = LeakyIntegrator(3, TAUS)
    seq = torch.randn(2, 40, 3, 4, 5)
    state = mem.initial_state(seq[:, 0])
    whole = mem(seq, state)
    s = state
    for t in range(seq.shape[1]):
        s = mem.step(seq[:, t], s)
        assert torch.equal(whole[:, t], s)
    # a long enough run forgets its start: only the past of the last 256-day constant matters
    assert whole.shape == (2, 40, 12, 4, 5)


class _Series:
    def __init__(self, x):
        self.x = x

    def read(self, var, days):
        return self.x[days]


def test_the_integrator_runs_the_datasets_recursion():
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 1.0, (500, 3, 4)).astype(np.float32)
    offset = x[:365].astype(np.float64).mean(0)
    stored = build_ema(_Series(x), "t2m", 16.0, 500, (3, 4), offset, None)
    mem = LeakyIntegrator(1, (16.0,))
    state = mem.initial_state(torch.from_numpy(offset[None, None]))
    run = mem(torch.from_numpy(x)[None, :, None], state)[0, :, 0].numpy()
    np.testing.assert_allclose(stored, run, rtol=1e-6, atol=1e-6)


def test_the_input_transform_matches_the_datasets():
    names = ("t2m", "tp")
    raw = torch.rand(2, 2, 3, 3) * 0.01
    out = input_transform(names)(raw)
    assert torch.equal(out[:, 0], raw[:, 0])
    np.testing.assert_allclose(out[:, 1].numpy(), transform("tp", raw[:, 1].numpy()), rtol=1e-6)


@pytest.mark.slow
def test_the_deployed_student_equals_the_trained_network_on_the_datasets_inputs():
    """Run on raw daily fields from the start of the data, the recurrent student's output on a
    training day equals its network applied to that day's prepared inputs."""
    cfg = with_history(get_profile("smoke").data, "recurrent")
    ds = load_dataset(cfg)
    prep = prepare(ds, cfg, patch_size=4)
    names = prep.weather_vars
    torch.manual_seed(0)
    net = PixelMLP(len(prep.input_channels), 1, width=8, depth=2)
    student = RecurrentStudent(net, len(names), cfg.history_ema, torch.from_numpy(prep.mean),
                               torch.from_numpy(prep.std), input_transform(names))
    n = 60
    raw = torch.from_numpy(np.stack([prep.reader.read(v, np.arange(n)) for v in names], axis=1))
    fixed = torch.from_numpy(np.concatenate([np.broadcast_to(prep.static_x, (n, *prep.static_x.shape)),
                                             np.broadcast_to(prep.calendar(np.arange(n))[:, :, None, None],
                                                             (n, 2, *prep.land_mask.shape))], axis=1).copy())
    start = torch.from_numpy(np.stack([prep.offsets[v] for v in names])[None])
    with torch.no_grad():
        seq_out, _ = student(raw[None], fixed[None], student.memory.initial_state(start))
        step_out, state = [], student.memory.initial_state(start)
        for t in range(n):
            y, state = student.step(raw[t:t + 1], fixed[t:t + 1], state)
            step_out.append(y)
        reference = net(torch.from_numpy(prep.inputs(np.arange(n - 3, n))))
    torch.testing.assert_close(seq_out[0, :, 0], torch.cat(step_out)[:, 0])
    torch.testing.assert_close(seq_out[0, -3:], reference, rtol=1e-4, atol=1e-4)
    assert student.state_bytes_per_pixel() == 4 * len(names) * len(cfg.history_ema)
