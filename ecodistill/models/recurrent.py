r"""A student with a recurrent per-pixel state: the edge model that remembers.

On a field device a model cannot keep a year of daily maps to compute 365-day means; it can
keep, per pixel, a few numbers updated once a day. :class:`LeakyIntegrator` is such a state:
a bank of leaky integrators (exponential moving averages) of each input variable,

.. math:: s_{t,j} = a_j\, s_{t-1,j} + (1 - a_j)\, x_t, \qquad a_j = e^{-1/\tau_j},

with fixed time constants :math:`\tau_j` (4, 16, 64, 256 days: days to a year). Its memory
is :math:`O(1)` per pixel -- ``n_vars x n_taus`` numbers -- whatever the horizon. What the
model *learns* is how to combine the states: the first layer of the per-pixel network mixes
them linearly, i.e. it learns a linear filter of the past in the basis of the integrators (a
fixed-pole linear state-space layer, as in the HiPPO/S4 line of work), then the network maps
it non-linearly to NDVI -- the role the LSTM's cell state plays in Kraft et al. (2019).

For training, the same recursion is run once over the dataset (:mod:`ecodistill.data.history`,
channels ``v@ema<tau>d``), so a training batch needs no sequence; :class:`RecurrentStudent` is
the deployable form, which updates the state from the raw daily fields and runs the trained
per-pixel network on ``[today's fields, states, static maps, calendar]``: processing a whole
sequence in one call gives the same outputs as processing its days one at a time (tested).

Explained in book/generated/03_distill.ipynb ("Students with memory").
"""
from __future__ import annotations

import math

import torch
from torch import nn


def input_transform(names: tuple[str, ...]):
    """The dataset's input transform on tensors ``(..., n_vars, h, w)`` whose variables are
    ``names``: log(1 + mm) for precipitation (:func:`ecodistill.data.history.transform`)."""
    idx = [i for i, v in enumerate(names) if v == "tp"]

    def apply(x: torch.Tensor) -> torch.Tensor:
        if not idx:
            return x
        x = x.clone()
        x[..., idx, :, :] = torch.log1p(torch.clamp(x[..., idx, :, :], min=0) * 1000.0)
        return x

    return apply


class LeakyIntegrator(nn.Module):
    """Per-pixel leaky integrators of ``n_vars`` fields with time constants ``taus`` (days).

    Shapes: a day's fields ``x`` are ``(b, n_vars, h, w)``; the state is
    ``(b, n_taus * n_vars, h, w)``, time constant major (the channel order of
    :func:`ecodistill.data.history.channel_names`).
    """

    def __init__(self, n_vars: int, taus: tuple[float, ...]) -> None:
        super().__init__()
        if n_vars < 1 or not taus or any(t <= 0 for t in taus):
            raise ValueError(f"LeakyIntegrator needs n_vars >= 1 and positive time constants, got {n_vars}, {taus}")
        self.n_vars, self.taus = n_vars, tuple(float(t) for t in taus)
        decay = torch.tensor([math.exp(-1.0 / t) for t in self.taus], dtype=torch.float64)
        self.register_buffer("decay", decay.repeat_interleave(n_vars).view(1, -1, 1, 1), persistent=False)

    def initial_state(self, start: torch.Tensor) -> torch.Tensor:
        """``(b, n_taus * n_vars, h, w)``: every integrator at ``start`` ``(b, n_vars, h, w)``."""
        return start.repeat(1, len(self.taus), 1, 1).to(torch.float64)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """One day: ``s = a s + (1 - a) x`` (computed in float64, like the dataset's pass)."""
        a = self.decay
        return a * state + (1 - a) * x.to(torch.float64).repeat(1, len(self.taus), 1, 1)

    def forward(self, seq: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """States after each day of ``seq`` ``(b, T, n_vars, h, w)`` from ``state``:
        ``(b, T, n_taus * n_vars, h, w)``."""
        out = []
        for t in range(seq.shape[1]):
            state = self.step(seq[:, t], state)
            out.append(state)
        return torch.stack(out, dim=1)


class RecurrentStudent(nn.Module):
    """A trained per-pixel network on leaky-integrator inputs, with the state kept on the device.

    Args:
        net: the trained network, ``(b, c_in, h, w) -> (b, 1, h, w)``, whose inputs are
            ``[today (n_vars), states (n_taus * n_vars), static, calendar]``, standardised.
        taus: the time constants the network was trained with.
        mean, std: ``(n_vars + n_taus * n_vars,)`` standardisation of today's and the state
            channels (the dataset's, from :class:`~ecodistill.data.prepare.Prepared`).
        transform: the input transform of the dataset (:func:`input_transform`), applied to
            today's fields and to the states, after integrating the raw fields; identity when None.
    """

    def __init__(self, net: nn.Module, n_vars: int, taus: tuple[float, ...], mean: torch.Tensor,
                 std: torch.Tensor, transform=None) -> None:
        super().__init__()
        self.net, self.memory = net, LeakyIntegrator(n_vars, taus)
        k = n_vars * (1 + len(taus))
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float64)[:k].view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float64)[:k].view(1, -1, 1, 1))
        self.transform = transform or (lambda raw: raw)

    def step(self, raw: torch.Tensor, fixed: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One day: ``raw`` fields ``(b, n_vars, h, w)`` (units of the dataset), ``fixed``
        static and calendar channels ``(b, c_fixed, h, w)``; returns ``(ndvi (b, 1, h, w), state)``.

        The integrators run on the raw fields; the transform (e.g. log precipitation) is
        applied to today's fields and to the states afterwards, as the dataset's pass does.
        """
        state = self.memory.step(raw, state)
        today = self.transform(raw)
        grouped = state.view(raw.shape[0], len(self.memory.taus), *raw.shape[1:])
        states = self.transform(grouped).flatten(1, 2)
        x = ((torch.cat([today.to(torch.float64), states], dim=1) - self.mean) / self.std).to(torch.float32)
        return self.net(torch.cat([x, fixed], dim=1)), state

    def forward(self, seq: torch.Tensor, fixed: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole sequence ``(b, T, n_vars, h, w)`` with ``fixed`` ``(b, T, c_fixed, h, w)``:
        ``(ndvi (b, T, 1, h, w), last state)``."""
        out = []
        for t in range(seq.shape[1]):
            y, state = self.step(seq[:, t], fixed[:, t], state)
            out.append(y)
        return torch.stack(out, dim=1), state

    def state_bytes_per_pixel(self, dtype: torch.dtype = torch.float32) -> int:
        """Memory the state needs per pixel in ``dtype`` (float64 here reproduces the dataset's
        pass bit for bit; float32 is enough on a device)."""
        return torch.empty((), dtype=dtype).element_size() * self.memory.n_vars * len(self.memory.taus)
