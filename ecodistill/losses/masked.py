r"""Masked, latitude-weighted reductions and the truth losses built on them.

A masked, weighted mean over cells $i$ with mask $m_i$ and weight $w_i$ is

$$\langle \ell \rangle_{m,w} = \frac{\sum_i m_i w_i \ell_i}{\sum_i m_i w_i},$$

so weights need no particular scale (they are usually $\cos\varphi$ scaled to mean 1 over
land). Masked cells may hold NaN (NDVI gaps): they are replaced before any arithmetic, so
neither the value nor the gradient sees them. An empty mask gives 0, not NaN.

Explained in book/generated/03_distill.ipynb.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _mask_like(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if mask.ndim != 4 or mask.shape[0] != x.shape[0] or mask.shape[-2:] != x.shape[-2:] or mask.shape[1] not in (1, x.shape[1]):
        raise ValueError(f"mask {tuple(mask.shape)} does not fit tensor {tuple(x.shape)}: pass a (b, 1, h, w) "
                         "boolean land/valid mask on the same grid")
    return mask.to(device=x.device, dtype=torch.bool).expand_as(x)


def _lat_like(lat_weights: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    if lat_weights is None:
        return None
    w = lat_weights.reshape(1, 1, *lat_weights.shape[-2:]) if lat_weights.ndim in (2, 4) else None
    if w is None or w.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"lat_weights {tuple(lat_weights.shape)} do not fit {tuple(x.shape)}: give (h, w) or (1, 1, h, w)")
    return w.to(device=x.device, dtype=x.dtype)


def _fill(t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero the masked-out cells (they may hold NaN) before any arithmetic touches them."""
    return torch.where(mask, t, torch.zeros((), dtype=t.dtype, device=t.device))


def masked_mean(values: torch.Tensor, mask: torch.Tensor, lat_weights: torch.Tensor | None = None) -> torch.Tensor:
    r"""$\langle \ell \rangle_{m,w}$ of ``values`` ``(b, c, h, w)`` over ``mask``; 0 for an empty mask."""
    m = _mask_like(mask, values)
    wt = m.to(values.dtype)
    lat = _lat_like(lat_weights, values)
    if lat is not None:
        wt = wt * lat
    return (_fill(values, m) * wt).sum() / wt.sum().clamp_min(torch.finfo(values.dtype).tiny)


def _elementwise(base: str, delta: float = 1.0):
    if base == "mse":
        return lambda p, t: (p - t) ** 2
    if base == "l1":
        return lambda p, t: (p - t).abs()
    if base == "huber":
        return lambda p, t: F.huber_loss(p, t, reduction="none", delta=delta)
    raise ValueError(f"unknown base distance {base!r}: choose 'mse', 'l1' or 'huber'")


def _masked_distance(pred, target, mask, lat_weights, base="mse", delta=1.0) -> torch.Tensor:
    m = _mask_like(mask, pred)
    return masked_mean(_elementwise(base, delta)(pred, _fill(target, m)), mask, lat_weights)


def masked_mse(pred, target, mask, lat_weights=None) -> torch.Tensor:
    r"""$\langle (\hat y - y)^2 \rangle_{m,w}$. Shapes: ``pred, target (b, c, h, w)``."""
    return _masked_distance(pred, target, mask, lat_weights, "mse")


def masked_l1(pred, target, mask, lat_weights=None) -> torch.Tensor:
    r"""$\langle |\hat y - y| \rangle_{m,w}$."""
    return _masked_distance(pred, target, mask, lat_weights, "l1")


def masked_huber(pred, target, mask, lat_weights=None, delta: float = 1.0) -> torch.Tensor:
    r"""$\langle H_\delta(\hat y - y) \rangle_{m,w}$, $H_\delta(r) = r^2/2$ for $|r|\le\delta$, else $\delta(|r| - \delta/2)$."""
    return _masked_distance(pred, target, mask, lat_weights, "huber", delta)
