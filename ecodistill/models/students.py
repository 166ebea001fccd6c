"""Student networks (small AFNO, U-Net, plain CNN, per-pixel MLP), their registry and the factory.

Each family is registered once, on its class, with :func:`register_family`; the factory
(:func:`build_student`), checkpoint reloading (``MODEL_CLASSES``) and config validation read
the registry, so a new family is one decorated class in any module (a plugin module named
in ``ECODISTILL_PLUGINS`` works too, see :mod:`ecodistill.plugins`).

Every model maps ``x (b, c_in, H, W)`` to ``y (b, c_out, H, W)`` and, with
``return_features=True``, also returns a list of intermediate feature maps, each
``(b, c, h, w)``, for hint / attention / relational distillation
(:mod:`ecodistill.losses`). The families differ in how cost scales: a per-pixel MLP
has very few parameters but runs at every pixel, so its FLOPs per map can rival a
much larger patch-based AFNO (see :mod:`ecodistill.models.cost`).
Explained in book/generated/03_distill.ipynb.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ecodistill.config import RunConfig, StudentConfig, TeacherConfig

from .afno import AFNONet, afno_from_config

__all__ = [
    "FAMILIES", "MODEL_CLASSES", "ConvNet", "PixelMLP", "UNet", "build_model", "build_student",
    "check_student", "family_names", "student_config", "register_family", "split_gaussian",
]

#: family name -> builder ``(cfg: StudentConfig, in_chans, out_chans, img_size, tanh_head) -> nn.Module``
FAMILIES: dict[str, Callable[..., nn.Module]] = {}
#: class name -> class, for :func:`ecodistill.models.load_checkpoint` (models keep ``arch``,
#: their constructor's keyword arguments)
MODEL_CLASSES: dict[str, type[nn.Module]] = {"AFNONet": AFNONet}


def _width_depth(cls: type[nn.Module]) -> Callable[..., nn.Module]:
    def build(cfg, in_chans: int, out_chans: int, img_size, tanh_head: bool = False) -> nn.Module:
        return cls(in_chans, out_chans, width=cfg.width, depth=cfg.depth, tanh_head=tanh_head)
    return build


def register_family(name: str, build: Callable[..., nn.Module] | None = None):
    """Class decorator registering a student family.

    Args:
        name: the ``StudentConfig.family`` value.
        build: ``(cfg, in_chans, out_chans, img_size, tanh_head) -> model``; default
            ``cls(in_chans, out_chans, width=cfg.width, depth=cfg.depth, tanh_head=...)``.

    The class must map ``(b, c_in, H, W)`` to ``(b, c_out, H, W)``, accept
    ``return_features=True`` (returning ``(y, features)``) and keep its constructor's keyword
    arguments in ``self.arch`` (so checkpoints can rebuild it).

    Raises:
        ValueError: when the name or the class name is already registered to another class.
    """
    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        if name in FAMILIES or MODEL_CLASSES.get(cls.__name__, cls) is not cls:
            raise ValueError(f"register_family: {name!r} or class {cls.__name__} is already registered")
        FAMILIES[name] = build or _width_depth(cls)
        MODEL_CLASSES[cls.__name__] = cls
        return cls
    return decorate


def family_names() -> tuple[str, ...]:
    """Registered student families (plugins included)."""
    from ..plugins import load_plugins

    load_plugins()
    return tuple(FAMILIES)


def _conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    # BatchNorm folds into the convolution at export time, so it costs nothing on a Pi
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(_conv_bn_relu(cin, cout), _conv_bn_relu(cout, cout))


def _positive(**values: int) -> None:
    bad = {k: v for k, v in values.items() if int(v) < 1}
    if bad:
        raise ValueError(f"{bad}: must be >= 1")


class _Head(nn.Module):
    """Final 1x1 convolution, optionally followed by tanh."""

    def __init__(self, cin: int, cout: int, tanh: bool) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cin, cout, 1)
        self.tanh = tanh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        return torch.tanh(y) if self.tanh else y


def _check_channels(model: nn.Module, x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != model.in_chans:
        raise ValueError(f"{type(model).__name__} expects input (b, {model.in_chans}, H, W), got "
                         f"{tuple(x.shape)}: pass the input channels the model was built for")


@register_family("unet")
class UNet(nn.Module):
    """Compact U-Net: ``depth`` 2x down-samplings, widths ``width * 2**level``, skip connections.

    Grids whose sides are not multiples of ``2**depth`` are zero-padded at the bottom/right
    and the output (and every feature map) is cropped back, so any grid works.
    Features: encoder outputs (levels 0..depth, the last is the bottleneck), then decoder
    outputs (levels depth-1..0).
    """

    def __init__(self, in_chans: int, out_chans: int, width: int = 16, depth: int = 3,
                 tanh_head: bool = False) -> None:
        super().__init__()
        _positive(in_chans=in_chans, out_chans=out_chans, width=width, depth=depth)
        self.in_chans, self.out_chans, self.depth = in_chans, out_chans, depth
        self.arch = {"in_chans": in_chans, "out_chans": out_chans, "width": width, "depth": depth, "tanh_head": tanh_head}
        ch = [width * 2**level for level in range(depth + 1)]
        self.enc = nn.ModuleList([_double_conv(in_chans, ch[0])] +
                                 [_double_conv(ch[i - 1], ch[i]) for i in range(1, depth + 1)])
        self.up = nn.ModuleList(nn.ConvTranspose2d(ch[i], ch[i - 1], 2, stride=2) for i in range(depth, 0, -1))
        self.dec = nn.ModuleList(_double_conv(2 * ch[i - 1], ch[i - 1]) for i in range(depth, 0, -1))
        self.head = _Head(ch[0], out_chans, tanh_head)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        _check_channels(self, x)
        H, W = x.shape[-2:]
        m = 2**self.depth
        ph, pw = (-H) % m, (-W) % m
        z = F.pad(x, (0, pw, 0, ph)) if ph or pw else x
        skips, feats = [], []
        for level, block in enumerate(self.enc):
            if level:
                z = F.max_pool2d(z, 2)
            z = block(z)
            skips.append(z)
            feats.append(self._crop(z, H, W, level))
        for j, (up, block) in enumerate(zip(self.up, self.dec)):
            level = self.depth - 1 - j
            z = block(torch.cat([up(z), skips[level]], dim=1))
            feats.append(self._crop(z, H, W, level))
        y = self.head(z)[..., :H, :W]
        return (y, feats) if return_features else y

    @staticmethod
    def _crop(z: torch.Tensor, H: int, W: int, level: int) -> torch.Tensor:
        f = 2**level
        return z[..., : -(-H // f), : -(-W // f)]


class _LayerStack(nn.Module):
    """``depth`` layers of ``width`` channels then a 1x1 head; features: every layer's output.

    ``make_layer(cin, cout)`` builds one layer; subclasses differ only in it.
    """

    def __init__(self, in_chans: int, out_chans: int, width: int, depth: int, tanh_head: bool,
                 make_layer) -> None:
        super().__init__()
        _positive(in_chans=in_chans, out_chans=out_chans, width=width, depth=depth)
        self.in_chans, self.out_chans = in_chans, out_chans
        self.arch = {"in_chans": in_chans, "out_chans": out_chans, "width": width, "depth": depth, "tanh_head": tanh_head}
        self.layers = nn.ModuleList(make_layer(in_chans if i == 0 else width, width) for i in range(depth))
        self.head = _Head(width, out_chans, tanh_head)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        _check_channels(self, x)
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        y = self.head(x)
        return (y, feats) if return_features else y


@register_family("cnn")
class ConvNet(_LayerStack):
    """Plain stack of ``depth`` 3x3 conv + BN + ReLU layers of ``width`` channels, then a 1x1 head.

    Its receptive field is ``2 * depth + 1`` pixels: a local model, the opposite of AFNO's
    global token mixing. Features: the output of every layer.
    """

    def __init__(self, in_chans: int, out_chans: int, width: int = 32, depth: int = 3,
                 tanh_head: bool = False) -> None:
        super().__init__(in_chans, out_chans, width, depth, tanh_head, _conv_bn_relu)


def _pixel_layer(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1), nn.ReLU())


@register_family("mlp")
class PixelMLP(_LayerStack):
    """Per-pixel MLP (1x1 convolutions): ``depth`` hidden layers of ``width`` with ReLU.

    Sees only its own pixel's inputs (no spatial context); cheap in parameters, but every
    one of them is used at every pixel. Features: every hidden layer's output.
    """

    def __init__(self, in_chans: int, out_chans: int, width: int = 64, depth: int = 2,
                 tanh_head: bool = False) -> None:
        super().__init__(in_chans, out_chans, width, depth, tanh_head, _pixel_layer)


def _afno_student(cfg, in_chans: int, out_chans: int, img_size, tanh_head: bool = False) -> nn.Module:
    return AFNONet(in_chans, out_chans, tuple(img_size), embed_dim=cfg.width, depth=cfg.depth,
                   patch_size=cfg.patch_size, num_blocks=cfg.num_blocks, tanh_head=tanh_head)


FAMILIES["afno"] = _afno_student  # the teacher's architecture, small: registered without the decorator
FAMILIES.update({k: FAMILIES.pop(k) for k in ("unet", "cnn", "mlp")})  # keep afno first


def check_student(cfg: StudentConfig) -> StudentConfig:
    """``cfg`` when its family is registered (plugins loaded first).

    Raises:
        ValueError: naming the family, the registered ones and how to add one.
    """
    if cfg.family not in family_names():  # family_names loads plugins
        raise ValueError(f"unknown student family {cfg.family!r} (student {cfg.name!r}): choose one of "
                         f"{family_names()} (or register one with ecodistill.models.register_family)")
    return cfg


def student_config(run: RunConfig, name: str) -> StudentConfig:
    """The student preset ``name`` of the profile ``run``, or a registered family of that name
    at its default width and depth.

    Raises:
        ValueError: listing the profile's presets and the registered families, for any other name.
    """
    if name in {s.name for s in run.students} or name in family_names():
        return run.student(name)
    raise ValueError(f"no student {name!r} in profile {run.profile!r}: choose a preset "
                     f"{[s.name for s in run.students]} or a family {family_names()}")


def build_student(cfg, in_chans: int, out_chans: int, img_size: tuple[int, int],
                  tanh_head: bool = False) -> nn.Module:
    """A student from a :class:`ecodistill.config.StudentConfig` through the family registry.

    ``family``: ``afno`` (an :class:`AFNONet` with ``embed_dim=width``, ``depth``,
    ``patch_size``, ``num_blocks``), ``unet``, ``cnn``, ``mlp`` (``width``, ``depth``), or
    any family registered with :func:`register_family`.

    Raises:
        ValueError: for an unknown family (the message lists the known ones) or a bad size.
    """
    check_student(cfg)
    return FAMILIES[cfg.family](cfg, in_chans, out_chans, tuple(img_size), tanh_head=tanh_head)


def build_model(spec, in_chans: int, out_chans: int, img_size: tuple[int, int], tanh_head: bool | None = None,
                gaussian: bool = False) -> nn.Module:
    """Teacher or student from its config: ``TeacherConfig`` -> :class:`AFNONet`, ``StudentConfig`` -> family.

    Args:
        spec: a ``TeacherConfig`` or a ``StudentConfig``.
        in_chans, out_chans, img_size: data shape (the data module decides the channel count).
        tanh_head: squash outputs with tanh (default: the teacher config's value; False for students).
        gaussian: predict a mean and a log-variance per output channel (``2 * out_chans``
            channels; see :func:`split_gaussian`). Incompatible with ``tanh_head``.
    """
    if isinstance(spec, TeacherConfig):
        tanh = spec.tanh_head if tanh_head is None else tanh_head
    elif isinstance(spec, StudentConfig):
        tanh = bool(tanh_head)
    else:
        raise TypeError(f"build_model needs a TeacherConfig or StudentConfig, got {type(spec).__name__}")
    if gaussian and tanh:
        raise ValueError("gaussian=True with tanh_head=True would squash the log-variance into [-1, 1]: "
                         "set tanh_head=False for a Gaussian head")
    n_out = 2 * out_chans if gaussian else out_chans
    if isinstance(spec, TeacherConfig):
        return afno_from_config(spec, in_chans, n_out, img_size, tanh_head=tanh)
    return build_student(spec, in_chans, n_out, img_size, tanh_head=tanh)


def split_gaussian(y: torch.Tensor, log: bool = False, min_logvar: float = -10.0, max_logvar: float = 10.0):
    """Split a Gaussian head's output ``(b, 2k, H, W)`` into mean and variance, each ``(b, k, H, W)``.

    The first ``k`` channels are means, the last ``k`` log-variances, clamped to
    ``[min_logvar, max_logvar]`` so that ``exp`` never overflows or reaches zero.

    Returns:
        ``(mean, var)``, or ``(mean, logvar)`` with ``log=True``.
    """
    if y.ndim != 4 or y.shape[1] % 2:
        raise ValueError(f"a Gaussian output needs an even channel count (b, 2k, H, W), got {tuple(y.shape)}: "
                         "build the model with gaussian=True")
    k = y.shape[1] // 2
    mean, logvar = y[:, :k], y[:, k:].clamp(min_logvar, max_logvar)
    return (mean, logvar) if log else (mean, logvar.exp())
