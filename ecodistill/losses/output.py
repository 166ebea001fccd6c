r"""Output distillation losses: the student's map against the teacher's and the truth.

Every output loss has one signature, ``f(student, teacher, y, mask_truth, mask_teacher=None,
alpha=0.5, lat_weights=None, **options)``, mixes a distillation term $D(s, t)$ with a truth
term $D(s, y)$ (the teacher term may use a wider mask: cells or days without labels), and
is registered with its formula (:mod:`ecodistill.losses.registry`). Teacher tensors are
always detached: gradients reach the student only. Shapes: maps ``(b, c, h, w)``, masks
``(b, 1, h, w)`` bool.

Explained in book/generated/03_distill.ipynb.
"""
from __future__ import annotations

import torch

from ..models.students import split_gaussian
from .masked import (
    _fill,
    _lat_like,
    _mask_like,
    _masked_distance,
    masked_huber,
    masked_l1,
    masked_mean,
    masked_mse,
)
from .registry import register_loss

_MIX = "L = {a}·D(s, t) + {b}·D(s, y)"

def output_distillation(student, teacher, y, mask_truth, mask_teacher=None, alpha: float = 0.5, base: str = "mse",
                        lat_weights=None, delta: float = 1.0) -> torch.Tensor:
    r"""Output matching, Hinton et al. 2015 adapted to regression (hinton2015distilling, kim2021comparing).

    $$L = \alpha\,\langle D(s, t)\rangle_{m_t,w} + (1-\alpha)\,\langle D(s, y)\rangle_{m_y,w}$$

    with $D$ the squared, absolute or Huber error (``base``). Kim et al. 2021 show that
    matching outputs with MSE is the limit of Hinton's temperature-scaled KL; for a
    regression output it is the natural choice. ``mask_teacher`` (default ``mask_truth``)
    may include cells or days without labels, which the teacher still labels.
    Shapes: ``student, teacher, y (b, c, h, w)``, masks ``(b, 1, h, w)``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha} outside [0, 1]")
    mask_teacher = mask_truth if mask_teacher is None else mask_teacher
    distill = _masked_distance(student, teacher.detach(), mask_teacher, lat_weights, base, delta)
    truth = _masked_distance(student, y, mask_truth, lat_weights, base, delta)
    return alpha * distill + (1.0 - alpha) * truth


@register_loss("mse", kind="output", formula=_MIX + ", D the squared error", truth=masked_mse,
               distance="squared error")
def mse_distillation(student, teacher, y, mask_truth, mask_teacher=None, alpha=0.5, lat_weights=None):
    """:func:`output_distillation` with the squared error."""
    return output_distillation(student, teacher, y, mask_truth, mask_teacher, alpha, "mse", lat_weights)


@register_loss("l1", kind="output", formula=_MIX + ", D the absolute error", truth=masked_l1,
               distance="absolute error")
def l1_distillation(student, teacher, y, mask_truth, mask_teacher=None, alpha=0.5, lat_weights=None):
    """:func:`output_distillation` with the absolute error."""
    return output_distillation(student, teacher, y, mask_truth, mask_teacher, alpha, "l1", lat_weights)


@register_loss("huber", kind="output", formula=_MIX + ", D the Huber error (delta 1)", truth=masked_huber,
               distance="Huber error (delta 1)")
def huber_distillation(student, teacher, y, mask_truth, mask_teacher=None, alpha=0.5, lat_weights=None,
                       delta=1.0):
    """:func:`output_distillation` with the Huber error."""
    return output_distillation(student, teacher, y, mask_truth, mask_teacher, alpha, "huber", lat_weights, delta)


@register_loss("bounded", kind="output", options=("margin",), bounds={"margin": (0.0, 4.0)}, distance="squared error",
               formula="L = {b}·D(s, y) + {a}·mean of (s - y)² where (s - y)² + {margin} > (t - y)², "
                       "D the squared error")
def teacher_bounded(student, teacher, y, mask_truth, mask_teacher=None, alpha: float = 0.5, lat_weights=None,
                    margin: float = 0.0, base: str = "mse", delta: float = 1.0) -> torch.Tensor:
    r"""Teacher-bounded regression (Chen et al. 2017, chen2017learning).

    The teacher is an upper bound, not a target: a cell is penalised only where the
    student is worse than the teacher by more than the margin $m$,

    $$L_b = \Big\langle \begin{cases}(s-y)^2 & (s-y)^2 + m > (t-y)^2\\ 0 & \text{else}\end{cases}\Big\rangle_{m_y,w},\qquad
      L = (1-\alpha)\,\langle D(s,y)\rangle_{m_y,w} + \alpha\,L_b .$$

    Chen et al. write $L_{\mathrm{reg}} = L_{sL1}(s, y) + \nu L_b$; ours is the same loss
    scaled by $1-\alpha$ with $\nu = \alpha/(1-\alpha)$, so ``alpha`` stays the one knob.
    Needs labels, so only ``mask_truth`` is used (``mask_teacher`` is accepted and ignored).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha} outside [0, 1]")
    m = _mask_like(mask_truth, student)
    yf = _fill(y, m)
    err_s = (student - yf) ** 2
    err_t = (teacher.detach() - yf) ** 2
    bounded = torch.where(err_s + margin > err_t, err_s, torch.zeros_like(err_s))
    truth = _masked_distance(student, y, mask_truth, lat_weights, base, delta)
    return (1.0 - alpha) * truth + alpha * masked_mean(bounded, mask_truth, lat_weights)


def gaussian_nll(mean, logvar, y, mask, lat_weights=None, full: bool = False) -> torch.Tensor:
    r"""Gaussian negative log-likelihood $\langle \tfrac12[\log\sigma^2 + (y-\mu)^2/\sigma^2] \rangle_{m,w}$
    (plus $\tfrac12\log 2\pi$ with ``full=True``). Shapes ``(b, k, h, w)``."""
    m = _mask_like(mask, mean)
    nll = 0.5 * (logvar + (_fill(y, m) - mean) ** 2 * torch.exp(-logvar))
    if full:
        nll = nll + 0.5 * torch.log(torch.tensor(2 * torch.pi, dtype=mean.dtype))
    return masked_mean(nll, mask, lat_weights)


def gaussian_distillation(student_mean, student_logvar, teacher_mean, teacher_logvar, mask,
                          lat_weights=None) -> torch.Tensor:
    r"""Match a Gaussian teacher's predictive distribution (hinton2015distilling: match the
    teacher's output distribution, here a Gaussian instead of a softmax).

    Closed-form $\mathrm{KL}(\mathcal N_t \,\|\, \mathcal N_s)$ per cell:

    $$\tfrac12\Big[\log\frac{\sigma_s^2}{\sigma_t^2} + \frac{\sigma_t^2 + (\mu_t-\mu_s)^2}{\sigma_s^2} - 1\Big],$$

    averaged with $\langle\cdot\rangle_{m,w}$. Zero iff the two Gaussians agree.
    """
    mt, lt = teacher_mean.detach(), teacher_logvar.detach()
    kl = 0.5 * (student_logvar - lt + (torch.exp(lt) + (mt - student_mean) ** 2) * torch.exp(-student_logvar) - 1.0)
    return masked_mean(kl, mask, lat_weights)


@register_loss("gaussian", kind="output", formula="L = {a}·KL(N_t ‖ N_s) + {b}·NLL(y; N_s)")
def gaussian_output_distillation(student, teacher, y, mask_truth, mask_teacher=None, alpha: float = 0.5,
                                 lat_weights=None) -> torch.Tensor:
    r"""$L = \alpha\,\mathrm{KL}(\mathcal N_t\|\mathcal N_s) + (1-\alpha)\,\mathrm{NLL}(y; \mathcal N_s)$ for Gaussian
    heads ``(b, 2k, h, w)`` (means, then log-variances; see ``split_gaussian``)."""
    mu_s, lv_s = split_gaussian(student, log=True)
    mu_t, lv_t = split_gaussian(teacher, log=True)
    mask_teacher = mask_truth if mask_teacher is None else mask_teacher
    kl = gaussian_distillation(mu_s, lv_s, mu_t, lv_t, mask_teacher, lat_weights)
    return alpha * kl + (1.0 - alpha) * gaussian_nll(mu_s, lv_s, y, mask_truth, lat_weights)


def spectral_loss(pred, target, mask, lat_weights=None, eps: float = 1e-6) -> torch.Tensor:
    r"""L1 distance between log amplitude spectra of two maps.

    $$L = \operatorname{mean}_{k}\big|\log(|\mathcal F[\tilde s]_k| + \epsilon) - \log(|\mathcal F[\tilde t]_k| + \epsilon)\big|$$

    with $\mathcal F$ the 2-D real FFT (orthonormal) over ``(h, w)`` and $\tilde s$ the
    map with masked cells set to 0 (and multiplied by ``lat_weights`` when given). The zero
    fill puts the coastline into both spectra alike, so it cancels where the two maps
    agree. Penalises a student that smooths away small scales, which MSE barely
    notices. Related: frequency-domain distillation for spatiotemporal forecasting
    (li2025frequency); this exact form is our choice.
    """
    m = _mask_like(mask, pred)
    s, t = _fill(pred, m), _fill(target, m)
    lat = _lat_like(lat_weights, pred)
    if lat is not None:
        s, t = s * lat, t * lat
    amp_s = torch.fft.rfft2(s, norm="ortho").abs()
    amp_t = torch.fft.rfft2(t, norm="ortho").abs()
    return (torch.log(amp_s + eps) - torch.log(amp_t + eps)).abs().mean()


@register_loss("spectral", kind="output", distance="squared error",
               formula=_MIX + " + {a}·spectral(s, t), D the squared error")
def spectral_distillation(student, teacher, y, mask_truth, mask_teacher=None, alpha: float = 0.5, lat_weights=None,
                          spectral_weight: float = 1.0) -> torch.Tensor:
    r"""MSE output distillation plus a spectral term on the teacher:
    $L = L_{\mathrm{mse}}(\alpha) + \alpha\,\lambda\,L_{\mathrm{spec}}(s, t)$, $\lambda$ = ``spectral_weight``."""
    mask_teacher = mask_truth if mask_teacher is None else mask_teacher
    out = output_distillation(student, teacher, y, mask_truth, mask_teacher, alpha, "mse", lat_weights)
    return out + alpha * spectral_weight * spectral_loss(student, teacher.detach(), mask_teacher, lat_weights)

