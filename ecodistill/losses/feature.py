r"""Feature distillation losses: intermediate features of student and live teacher.

Each takes lists of feature maps ``(b, c, h, w)`` (``model(x, return_features=True)``),
paired by :func:`pair_features`, and is registered with a *term*: a small module built
from example features (it owns the trainable FitNets adapters, where there are any) that
the objective adds to an output loss, ``L = L_out(alpha) + w · term``
(:class:`ecodistill.training.objectives.FeatureDistillLoss`). They need the teacher network during
training, so they run where it is (the GPU at the full profile).

Explained in book/generated/03_distill.ipynb.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .masked import masked_mse
from .registry import register_loss

_FEATURE = "L = {a}·D(s, t) + {b}·D(s, y) + {w}·%s(f_s, f_t), D the squared error"

def _resize(f: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Area-average when shrinking on both axes (no aliasing), bilinear otherwise."""
    size = tuple(int(v) for v in size)
    if tuple(f.shape[-2:]) == size:
        return f
    if f.shape[-2] >= size[0] and f.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(f, size)
    return F.interpolate(f, size=size, mode="bilinear", align_corners=False)


def _token_mask(mask: torch.Tensor | None, size: Sequence[int]) -> torch.Tensor | None:
    """A cell of a coarser grid counts when any of its pixels is valid."""
    if mask is None:
        return None
    return F.adaptive_max_pool2d(mask.float(), tuple(size)) > 0


class HintAdapter(nn.Module):
    """FitNets regressor (romero2015fitnets): student features -> teacher features.

    Resizes ``(b, c_s, h_s, w_s)`` to the teacher's grid (area average or bilinear), then a
    1x1 convolution maps ``c_s -> c_t`` channels. Trained with the student.
    """

    def __init__(self, student_channels: int, teacher_channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(student_channels, teacher_channels, 1)

    def forward(self, f: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        return self.proj(_resize(f, size))


def pair_features(student_feats: Sequence[torch.Tensor], teacher_feats: Sequence[torch.Tensor], n_pairs: int = 1):
    """Pick ``n_pairs`` evenly spaced layers of each model (1: the middle layers, as FitNets).

    Returns:
        ``(student_list, teacher_list)`` of equal length.
    """
    if not student_feats or not teacher_feats:
        raise ValueError("empty feature list: call the models with return_features=True")
    n_pairs = max(1, min(n_pairs, len(student_feats), len(teacher_feats)))

    def pick(feats):
        return [feats[round((k + 1) / (n_pairs + 1) * (len(feats) - 1))] for k in range(n_pairs)]

    return pick(student_feats), pick(teacher_feats)


def make_hint_adapters(student_feats: Sequence[torch.Tensor], teacher_feats: Sequence[torch.Tensor]) -> nn.ModuleList:
    """One :class:`HintAdapter` per (student, teacher) pair, sized from example features."""
    if len(student_feats) != len(teacher_feats):
        raise ValueError(f"{len(student_feats)} student vs {len(teacher_feats)} teacher features: pair them first")
    return nn.ModuleList(HintAdapter(s.shape[1], t.shape[1]) for s, t in zip(student_feats, teacher_feats))


def hint_loss(student_feats, teacher_feats, adapters: nn.ModuleList, mask=None) -> torch.Tensor:
    r"""FitNets hint loss (romero2015fitnets), averaged over the feature pairs $j$:

    $$L = \frac1J\sum_j \big\langle \| r_j(F^s_j) - F^t_j \|_2^2 / c_t \big\rangle_{m}$$

    $r_j$ the adapter; the mask is max-pooled to the teacher's grid. Shapes ``(b, c, h, w)``.
    """
    if not (len(student_feats) == len(teacher_feats) == len(adapters)):
        raise ValueError("hint_loss needs as many adapters as (student, teacher) feature pairs")
    total = 0.0
    for s, t, adapter in zip(student_feats, teacher_feats, adapters):
        t = t.detach()
        m = _token_mask(mask, t.shape[-2:])
        pred = adapter(s, t.shape[-2:])
        total = total + (masked_mse(pred, t, m) if m is not None else F.mse_loss(pred, t))
    return total / len(adapters)


def _attention(f: torch.Tensor, size: Sequence[int], p: float) -> torch.Tensor:
    a = _resize(f.abs().pow(p).mean(dim=1, keepdim=True), size)
    return F.normalize(a.flatten(1), dim=1)


def attention_transfer(student_feats, teacher_feats, p: float = 2.0) -> torch.Tensor:
    r"""Attention transfer (Zagoruyko & Komodakis 2017, zagoruyko2017paying).

    Spatial attention $Q = \operatorname{mean}_c |F_c|^p$, resized to the teacher's grid and
    normalised, compared pair by pair:

    $$L = \frac1J\sum_j \Big\| \frac{Q^s_j}{\|Q^s_j\|_2} - \frac{Q^t_j}{\|Q^t_j\|_2} \Big\|_2$$

    averaged over the batch (the paper's $\beta/2$ is left to the caller's weight).
    """
    if len(student_feats) != len(teacher_feats) or not student_feats:
        raise ValueError("attention_transfer needs equally many (>0) student and teacher features: use pair_features")
    total = 0.0
    for s, t in zip(student_feats, teacher_feats):
        size = t.shape[-2:]
        total = total + (_attention(s, size, p) - _attention(t.detach(), size, p)).norm(dim=1).mean()
    return total / len(student_feats)


def sample_pixels(mask: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` distinct valid cells ``(n, 3)`` as (sample, row, col), drawn with ``generator``
    (fewer when fewer are valid)."""
    idx = mask[:, 0].nonzero() if mask.ndim == 4 else mask.nonzero()
    if len(idx) < 2:
        raise ValueError(f"only {len(idx)} valid cells: relational losses need at least 2 (check the mask)")
    order = torch.randperm(len(idx), generator=generator, device="cpu")[:n]
    return idx[order.to(idx.device)]


def gather_features(feat: torch.Tensor, positions: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """Embeddings ``(n, c)`` of ``feat (b, c, h, w)`` at ``positions`` given on a ``grid (H, W)``."""
    b, r, c = positions.unbind(1)
    rows = torch.div(r * feat.shape[-2], grid[0], rounding_mode="floor")
    cols = torch.div(c * feat.shape[-1], grid[1], rounding_mode="floor")
    return feat[b, :, rows, cols]


def _pdist(x: torch.Tensor) -> torch.Tensor:
    d = (x[:, None, :] - x[None, :, :]).pow(2).sum(-1).clamp_min(1e-12).sqrt()
    return d * (1 - torch.eye(len(x), dtype=x.dtype, device=x.device))


def relational_distance(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    r"""RKD distance loss (Park et al. 2019, park2019relational) on embeddings ``(n, d_s)``, ``(n, d_t)``.

    $\psi_D(x_i, x_j) = \|x_i - x_j\|_2 / \mu$ with $\mu$ the mean pairwise distance;
    $L = \operatorname{mean}_{i\ne j} \ell_\delta(\psi_D^s, \psi_D^t)$, $\ell_\delta$ Huber with $\delta=1$.
    """
    n = len(student_emb)
    off = ~torch.eye(n, dtype=torch.bool, device=student_emb.device)
    with torch.no_grad():
        dt = _pdist(teacher_emb.detach())
        dt = dt / dt[off].mean().clamp_min(1e-12)
    ds = _pdist(student_emb)
    ds = ds / ds[off].mean().clamp_min(1e-12)
    return F.smooth_l1_loss(ds[off], dt[off])


def _angles(x: torch.Tensor) -> torch.Tensor:
    e = F.normalize(x[None, :, :] - x[:, None, :], dim=2)  # e[j, i] = unit vector from x_j to x_i
    return torch.bmm(e, e.transpose(1, 2))


def relational_angle(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> torch.Tensor:
    r"""RKD angle loss (park2019relational): $\psi_A(x_i, x_j, x_k) = \langle e_{ij}, e_{kj}\rangle$,
    $e_{ij} = (x_i - x_j)/\|x_i - x_j\|$; $L = \operatorname{mean}_{ijk} \ell_\delta(\psi_A^s, \psi_A^t)$."""
    with torch.no_grad():
        at = _angles(teacher_emb.detach())
    return F.smooth_l1_loss(_angles(student_emb), at)


def relational_loss(student_feats, teacher_feats, mask, n: int = 64, seed: int = 0, w_distance: float = 1.0,
                    w_angle: float = 2.0) -> torch.Tensor:
    r"""RKD on ``n`` land cells (park2019relational): $L = \lambda_D L_D + \lambda_A L_A$, the paper's
    $\lambda_D = 1$, $\lambda_A = 2$; cells drawn with ``torch.Generator().manual_seed(seed)``, the
    same cells for student and teacher, averaged over feature pairs."""
    if len(student_feats) != len(teacher_feats) or not student_feats:
        raise ValueError("relational_loss needs equally many (>0) student and teacher features: use pair_features")
    pos = sample_pixels(mask, n, torch.Generator().manual_seed(seed))
    grid = mask.shape[-2:]
    total = 0.0
    for s, t in zip(student_feats, teacher_feats):
        es, et = gather_features(s, pos, grid), gather_features(t.detach(), pos, grid)
        total = total + w_distance * relational_distance(es, et) + w_angle * relational_angle(es, et)
    return total / len(student_feats)


# --------------------------------------------------------------------------- terms for the objectives
class HintTerm(nn.Module):
    """The FitNets term with its trainable adapters, sized from example features."""

    def __init__(self, student_feats, teacher_feats, seed: int = 0) -> None:
        super().__init__()
        s, t = pair_features(student_feats, teacher_feats)
        self.adapters = make_hint_adapters(s, t)

    def forward(self, student_feats, teacher_feats, mask, step: int = 0) -> torch.Tensor:
        s, t = pair_features(student_feats, teacher_feats)
        return hint_loss(s, t, self.adapters, mask)


class AttentionTerm(nn.Module):
    """The attention-transfer term (no parameters)."""

    def __init__(self, student_feats=None, teacher_feats=None, seed: int = 0) -> None:
        super().__init__()

    def forward(self, student_feats, teacher_feats, mask, step: int = 0) -> torch.Tensor:
        return attention_transfer(*pair_features(student_feats, teacher_feats))


class RelationalTerm(nn.Module):
    """The relational term; its land cells are drawn anew every step from ``seed + step``."""

    def __init__(self, student_feats=None, teacher_feats=None, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed

    def forward(self, student_feats, teacher_feats, mask, step: int = 0) -> torch.Tensor:
        s, t = pair_features(student_feats, teacher_feats)
        return relational_loss(s, t, mask, seed=self.seed + step)


register_loss("hint", kind="feature", live_teacher=True, term=HintTerm, formula=_FEATURE % "hint")(hint_loss)
register_loss("attention", kind="feature", live_teacher=True, term=AttentionTerm,
              formula=_FEATURE % "attention")(attention_transfer)
register_loss("relational", kind="feature", live_teacher=True, term=RelationalTerm,
              formula=_FEATURE % "relational")(relational_loss)
