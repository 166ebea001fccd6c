"""Typed configuration and the three named profiles (``smoke``, ``cpu``, ``full``).

Every experiment is described by a :class:`RunConfig`; its ``asdict`` form is saved
next to every result and inside every checkpoint, and its hash names the run.

Profiles (explained in book/intro.md and the README):

* ``smoke`` -- CI: the whole book on 2 CPU cores, every notebook in at most 90 s.
  Tiny grid and models; its numbers are labelled smoke and never reported as results.
* ``cpu`` -- the labelled fallback when no GPU is available: the whole matrix at reduced
  scale (32x64 grid, a ~2-3M-parameter teacher) in at most 2 h on 2 cores.
* ``full`` -- the thesis scale: 64x128 grid (2.8 deg), patch 4, AFNO dim 1024 x depth 12
  (~105M parameters), 29 training years of daily maps, one GPU with bf16 autocast.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

PROFILES = ("smoke", "cpu", "full")
MODES = ("offline", "online", "self", "scratch")


def added(default: Any) -> Any:
    """A field added after results existed: :func:`to_dict` leaves it out while it holds its
    default, so the configs saved before it (and the run ids hashed from them) stay the same,
    and a saved config without it reads back with the default."""
    return field(default=default, metadata={"added": True})


def _at_least(cfg: Any, **minimum: int) -> None:
    """Refuse integer fields that are not integers or lie below their minimum (None passes:
    the field is optional)."""
    for name, low in minimum.items():
        value = getattr(cfg, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) and not (
                isinstance(value, float) and value.is_integer()):
            raise ValueError(f"{type(cfg).__name__}.{name}={value!r}: must be a whole number >= {low}")
        if value < low:
            raise ValueError(f"{type(cfg).__name__}.{name}={value}: must be at least {low}")


def _in_range(cfg: Any, **ranges: tuple[float, float, bool]) -> None:
    """Refuse float fields that are not finite numbers in ``[low, high]`` (``(low, high, open_low)``:
    with ``open_low`` the low end is excluded, e.g. a learning rate > 0)."""
    for name, (low, high, open_low) in ranges.items():
        value = getattr(cfg, name)
        ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
              and (value > low if open_low else value >= low) and value <= high)
        if not ok:
            bound = f"{'>' if open_low else '>='} {low:g}" + (f" and <= {high:g}" if math.isfinite(high) else "")
            raise ValueError(f"{type(cfg).__name__}.{name}={value!r}: must be a finite number {bound}")


@dataclass(frozen=True)
class DataConfig:
    """The global dataset: grid, years, inputs.

    Years follow the real FourCastNet-to-NDVI setup (train 1982-2010, validation
    2011-12, test 2013) at the full profile; ``extra_years`` have weather but no NDVI
    labels (like ERA5 before the satellite NDVI record) and serve as unlabeled inputs
    for distillation. Test years are never used for training, pre-training or labels.
    """

    source: str = "simulated"  # "simulated" or a path to a prepared real dataset (NetCDF/Zarr)
    nlat: int = 64
    nlon: int = 128
    seed: int = 0
    train_years: tuple[int, int] = (1982, 2010)  # inclusive
    val_years: tuple[int, int] = (2011, 2012)
    test_years: tuple[int, int] = (2013, 2013)
    extra_years: tuple[int, int] | None = (1979, 1981)  # weather only, no NDVI labels
    history_windows: tuple[int, ...] = (7, 30)  # trailing means of past days fed as inputs
    world: str = added("v1")  # simulated-world version (ecodistill.data.world.WORLDS); "v1" the first
    inputs: str = added("v1")  # the dynamic input set (ecodistill.data.schema.INPUT_SETS)
    history_stack: tuple[int, int] = added((0, 1))  # (n, stride): raw fields of days t - k stride, k = 1..n
    history_ema: tuple[float, ...] = added(())  # time constants [d] of per-pixel leaky integrators
    ndvi_latency: int = added(0)  # nowcast: NDVI observed >= this many days before is an input (0: emulation)

    def __post_init__(self) -> None:
        if any(not 1 <= w <= 3660 for w in self.history_windows):
            raise ValueError(f"DataConfig.history_windows={self.history_windows}: each window is 1..3660 days")
        if len(self.history_stack) != 2 or self.history_stack[0] < 0 or self.history_stack[1] < 1:
            raise ValueError(f"DataConfig.history_stack={self.history_stack}: (steps >= 0, stride >= 1)")
        if any(not (tau > 0 and tau < 1e4) for tau in self.history_ema):
            raise ValueError(f"DataConfig.history_ema={self.history_ema}: time constants must be in (0, 1e4) days")
        if self.ndvi_latency < 0:
            raise ValueError(f"DataConfig.ndvi_latency={self.ndvi_latency}: 0 (no NDVI input) or a latency >= 1 day")
        for name in ("train_years", "val_years", "test_years"):
            lo, hi = getattr(self, name)
            if hi < lo:
                raise ValueError(f"DataConfig.{name}={lo, hi}: end year before start year")
        if self.nlat < 4 or self.nlon < 4:
            raise ValueError(f"grid {self.nlat}x{self.nlon} too small: need at least 4x4")
        test = set(range(self.test_years[0], self.test_years[1] + 1))
        for name in ("train_years", "val_years", "extra_years"):
            span = getattr(self, name)
            if span is not None and test & set(range(span[0], span[1] + 1)):
                raise ValueError(f"DataConfig.{name}={span} overlaps the test years {self.test_years}")

    @property
    def all_years(self) -> tuple[int, int]:
        """First and last year the dataset must hold."""
        spans = [self.train_years, self.val_years, self.test_years]
        if self.extra_years is not None:
            spans.append(self.extra_years)
        return min(s[0] for s in spans), max(s[1] for s in spans)


#: Named history settings (:func:`with_history`): how much of the past a model sees. The same
#: setting is given to teacher and students in the main comparison.
HISTORY = {
    "today": {"history_windows": (), "history_stack": (0, 1), "history_ema": ()},  # FourCastNet, n_history 0
    "short": {"history_windows": (7, 30), "history_stack": (0, 1), "history_ema": ()},  # world v1's inputs
    "long": {"history_windows": (7, 30, 90, 180, 365), "history_stack": (0, 1), "history_ema": ()},
    "stack": {"history_windows": (), "history_stack": (4, 1), "history_ema": ()},  # FourCastNet-style n_history 4
    "sequence": {"history_windows": (), "history_stack": (12, 8), "history_ema": ()},  # 96 days, every 8th
    "recurrent": {"history_windows": (), "history_stack": (0, 1), "history_ema": (4.0, 16.0, 64.0, 256.0)},
}


#: The histories of the headroom ladder (:mod:`ecodistill.experiments.ladder`): none, a year of
#: windows, a recurrent state.
LADDER_HISTORIES = ("today", "long", "recurrent")
#: Years with labels of the label-budget comparisons (besides all of them).
LABEL_BUDGETS = (1, 3)


def with_history(data: DataConfig, name: str) -> DataConfig:
    """``data`` with the history setting ``name`` of :data:`HISTORY`.

    Raises:
        ValueError: for an unknown name (listing them).
    """
    if name not in HISTORY:
        raise ValueError(f"unknown history setting {name!r}: choose one of {list(HISTORY)}")
    return replace(data, **HISTORY[name])


def history_name(data: DataConfig) -> str:
    """The :data:`HISTORY` name of ``data``'s history, or ``custom``."""
    now = {k: getattr(data, k) for k in ("history_windows", "history_stack", "history_ema")}
    return next((name for name, setting in HISTORY.items() if setting == now), "custom")


@dataclass(frozen=True)
class TeacherConfig:
    """An AFNO (FourCastNet-style) network; see :mod:`ecodistill.models`."""

    embed_dim: int = 1024
    depth: int = 12
    patch_size: int = 4
    num_blocks: int = 8  # block-diagonal blocks of the AFNO channel MLP
    mlp_ratio: float = 4.0
    sparsity_threshold: float = 0.01
    hard_thresholding_fraction: float = 1.0
    drop_path_rate: float = 0.0
    tanh_head: bool = False  # tanh on the NDVI head (Janetzky et al. 2024 use one)

    def __post_init__(self) -> None:
        _at_least(self, embed_dim=1, depth=1, patch_size=1, num_blocks=1)
        _in_range(self, mlp_ratio=(0.0, math.inf, True), sparsity_threshold=(0.0, math.inf, False),
                  hard_thresholding_fraction=(0.0, 1.0, True), drop_path_rate=(0.0, 1.0, False))


@dataclass(frozen=True)
class StudentConfig:
    """One student architecture; ``family`` in {afno, unet, cnn, mlp}."""

    name: str = "afno_s"
    family: str = "afno"  # a registered family: ecodistill.models.family_names()
    width: int = 64
    depth: int = 2
    patch_size: int = 4  # afno only
    num_blocks: int = 4  # afno only

    def __post_init__(self) -> None:
        # the family name is checked against the registry where students are built
        # (ecodistill.models.check_student): configs sit below the registries
        _at_least(self, width=1, depth=1, patch_size=1, num_blocks=1)


@dataclass(frozen=True)
class TrainConfig:
    """One training loop's settings (AdamW + cosine schedule, early stopping)."""

    epochs: int = 10
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_frac: float = 0.05
    grad_clip: float = 1.0
    patience: int = 3  # epochs without validation improvement before stopping
    max_steps: int | None = None  # cap on optimizer steps (time budgets, smoke runs)
    steps_per_epoch: int | None = None  # subsample an epoch (None: the whole split)
    bf16: bool = True  # autocast on CUDA only; the CPU path stays fp32 and deterministic
    seed: int = 0

    def __post_init__(self) -> None:
        # every numeric field is checked here, where it is declared: a zero, NaN or inf from the
        # command line is refused before any work, never replaced by a default
        _at_least(self, epochs=1, batch_size=1, max_steps=1, steps_per_epoch=1, patience=0)
        _in_range(self, lr=(0.0, 10.0, True), weight_decay=(0.0, math.inf, False),
                  grad_clip=(0.0, math.inf, False))
        if not (isinstance(self.warmup_frac, (int, float)) and 0 <= self.warmup_frac < 1):
            raise ValueError(f"TrainConfig.warmup_frac={self.warmup_frac!r}: must be a finite number >= 0 and < 1")


@dataclass(frozen=True)
class DistillConfig:
    """How a student learns from the teacher (see :mod:`ecodistill.losses`).

    ``loss = alpha * distill + (1 - alpha) * truth`` for output losses.
    """

    loss: str = "mse"  # a registered loss: ecodistill.losses.loss_names() (scratch: its truth term)
    alpha: float = 0.5
    mode: str = "offline"  # offline | online | self | scratch
    extra_unlabeled: bool = True  # teacher labels extra years / NDVI gaps
    label_years: int | None = None  # keep only the last N training years with labels (None: all)
    margin: float = 0.0  # teacher-bounded regression margin (Chen et al. 2017)
    feature_weight: float = 1.0  # weight of hint / attention / relational terms

    def __post_init__(self) -> None:
        # the loss name is checked against the registry where objectives are built
        # (ecodistill.training.objectives.check_objective): configs sit below the registries
        # (each loss's own options are checked again by its LossSpec, with the loss's bounds)
        _in_range(self, alpha=(0.0, 1.0, False), margin=(0.0, math.inf, False),
                  feature_weight=(0.0, math.inf, False))
        if self.mode not in MODES:
            raise ValueError(f"DistillConfig.mode={self.mode!r} unknown: choose one of {MODES}")
        _at_least(self, label_years=1)


@dataclass(frozen=True)
class RunConfig:
    """Everything a profile fixes: data, teacher, training budgets, the student matrix."""

    profile: str = "smoke"
    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    pretrain: TrainConfig = field(default_factory=TrainConfig)
    adapt: TrainConfig = field(default_factory=TrainConfig)
    student_train: TrainConfig = field(default_factory=TrainConfig)
    students: tuple[StudentConfig, ...] = ()
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # every student size, both arms and every control
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    losses: tuple[str, ...] = ("mse", "l1", "huber", "bounded", "spectral", "relational")
    device: str = "cpu"
    headline_student: str = "afno_s"  # the size selection runs on, and the controls
    num_threads: int | None = None  # torch CPU threads (None: torch's default)
    pretrain_task: str = added("next_day")  # what pre-training forecasts: next_day | atmosphere | land
    land_lead: int = added(10)  # days ahead the "land" pre-training forecasts the land state

    def student(self, name: str) -> StudentConfig:
        """The student preset called ``name``; any other name is read as a student family
        (e.g. one of your own, :func:`ecodistill.models.register_family`) at the default
        width and depth. Use :func:`ecodistill.models.student_config` to have the name checked
        against the presets and the family registry at once."""
        for s in self.students:
            if s.name == name:
                return s
        return StudentConfig(name=name, family=name)


def _smoke() -> RunConfig:
    data = DataConfig(nlat=24, nlon=48, train_years=(1990, 1992), val_years=(1993, 1993),
                      test_years=(1994, 1994), extra_years=(1989, 1989), world="v2", inputs="era5")
    quick = TrainConfig(epochs=2, batch_size=16, lr=2e-3, patience=2, steps_per_epoch=20)
    return RunConfig(
        profile="smoke", data=data,
        teacher=TeacherConfig(embed_dim=64, depth=2, patch_size=4, num_blocks=4),
        pretrain=quick, adapt=quick, student_train=quick,
        students=(StudentConfig("afno_xs", "afno", width=16, depth=1, num_blocks=2),
                  StudentConfig("unet_xs", "unet", width=8, depth=2),
                  StudentConfig("mlp_xs", "mlp", width=16, depth=2)),
        seeds=(0, 1, 2), alphas=(0.0, 0.5, 1.0),
        losses=("mse", "l1", "bounded"), headline_student="afno_xs",  # l1: the scratch arm searches two
        num_threads=1,  # tiny models: one thread is faster than two (no synchronisation)
    )


def _cpu() -> RunConfig:
    # world v2 with the land state as ERA5 gives it and a year of history (the ladder tries others)
    data = DataConfig(nlat=32, nlon=64, train_years=(1995, 2010), val_years=(2011, 2012),
                      test_years=(2013, 2013), extra_years=(1992, 1994), world="v2", inputs="era5",
                      **HISTORY["long"])
    return RunConfig(
        profile="cpu", data=data,
        teacher=TeacherConfig(embed_dim=256, depth=4, patch_size=4, num_blocks=8),
        # patience 0: no early stopping, so every run of a comparison takes exactly its budget
        pretrain=TrainConfig(epochs=3, batch_size=32, lr=1e-3, steps_per_epoch=150, patience=0),
        # 4 epochs: the teacher's length is searched (1x and 2x), its learning rate at 2 epochs
        adapt=TrainConfig(epochs=4, batch_size=32, lr=5e-4, steps_per_epoch=150, patience=0),
        student_train=TrainConfig(epochs=6, batch_size=32, lr=2e-3, steps_per_epoch=100, patience=0),
        # teacher 2.7M parameters; students ~1/5 to ~1/1000 of it (the ladder's sizes and a U-Net)
        students=(StudentConfig("afno_m", "afno", width=128, depth=2, num_blocks=8),
                  StudentConfig("afno_s", "afno", width=64, depth=2, num_blocks=4),
                  StudentConfig("unet_s", "unet", width=8, depth=3),
                  StudentConfig("mlp_xs", "mlp", width=16, depth=2)),
        headline_student="afno_s",
        losses=("mse", "l1", "huber", "bounded", "spectral", "relational"),
        pretrain_task="land",
    )


def _full() -> RunConfig:
    return RunConfig(
        profile="full", data=DataConfig(world="v2", inputs="era5"),
        teacher=TeacherConfig(embed_dim=1024, depth=12, patch_size=4, num_blocks=8),
        pretrain=TrainConfig(epochs=10, batch_size=64, lr=5e-4, patience=0),
        adapt=TrainConfig(epochs=10, batch_size=64, lr=2e-4, patience=0),
        student_train=TrainConfig(epochs=30, batch_size=64, lr=2e-3, patience=0),
        # ~1/10, ~1/100 and ~1/1000 of the teacher's 108M parameters (measured by model_card):
        # afno_l 9.5M (8.6% of the FLOPs), afno_m 0.97M (0.8%), afno_xs 0.11M (0.08%),
        # unet_m 0.92M (1.1%), mlp_s 10k parameters but 0.15% of the FLOPs.
        students=(StudentConfig("afno_l", "afno", width=512, depth=4, num_blocks=8),
                  StudentConfig("afno_m", "afno", width=176, depth=3, num_blocks=8),
                  StudentConfig("afno_xs", "afno", width=48, depth=3, num_blocks=4),
                  StudentConfig("unet_m", "unet", width=22, depth=3),
                  StudentConfig("mlp_s", "mlp", width=64, depth=3)),
        headline_student="afno_m",
        # one GPU command of 9.5 minutes (see ecodistill.experiments.gpu): 3 seeds, and the selection
        # searches output losses that read cached predictions (live-teacher modes run after)
        seeds=(0, 1, 2), alphas=(0.0, 0.5, 1.0), losses=("mse", "l1", "huber"),
        device="cuda",
    )


_BUILDERS = {"smoke": _smoke, "cpu": _cpu, "full": _full}


def get_profile(name: str, **overrides: Any) -> RunConfig:
    """The named profile's :class:`RunConfig`, with top-level fields replaced by ``overrides``.

    Raises:
        ValueError: for an unknown profile name (the message lists the known ones).
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown profile {name!r}: choose one of {PROFILES}")
    cfg = _BUILDERS[name]()
    return replace(cfg, **overrides) if overrides else cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config dataclass, like :func:`dataclasses.asdict`
    but without the :func:`added` fields that hold their default."""
    if not is_dataclass(cfg):
        raise TypeError(f"expected a config dataclass, got {type(cfg).__name__}")
    return {f.name: _plain(getattr(cfg, f.name)) for f in fields(cfg)
            if not (f.metadata.get("added") and getattr(cfg, f.name) == f.default)}


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return to_dict(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from :func:`to_dict` output (inverse up to tuple/list).

    Raises:
        ValueError: for keys the dataclass does not know (a config from another version).
    """
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        sub = _NESTED.get((cls.__name__, name))
        if sub is not None and isinstance(value, dict):
            value = from_dict(sub, value)
        elif sub is not None and isinstance(value, (list, tuple)):
            value = tuple(from_dict(sub, v) for v in value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


_NESTED = {
    ("RunConfig", "data"): DataConfig,
    ("RunConfig", "teacher"): TeacherConfig,
    ("RunConfig", "pretrain"): TrainConfig,
    ("RunConfig", "adapt"): TrainConfig,
    ("RunConfig", "student_train"): TrainConfig,
    ("RunConfig", "students"): StudentConfig,
}
