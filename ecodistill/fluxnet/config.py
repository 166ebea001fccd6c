"""The FLUXNET benchmark's settings: one frozen dataclass and its three profiles.

``smoke`` runs inside the chapter in well under a minute on 2 cores (one fold, two seeds,
two small students, few epochs); ``cpu`` is the reported CPU run (every fold, 3 seeds,
three student sizes; measured in the chapter and the README); ``full`` adds seeds (5
instead of 3) and larger tree ensembles in the teacher search (400 trees, 800 boosting
rounds) at the same student sizes and driver history, so that it runs on 2 CPU cores in
about an hour. Longer histories and larger students cost more than they fit on a CPU
(a 384-wide student ~7x the 144-wide one, a 12-month history ~2x per network): pass
``student_widths`` / ``history`` overrides on a GPU. Explained in book/generated/06_fluxnet.ipynb.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

FLUX_PROFILES = ("smoke", "cpu", "full")

_TEACHER_FIELDS = (
    "n_folds", "inner_folds", "split_seed", "history", "site_climate", "static_maps", "heldout_years",
    "teacher_seed",
    "gbm_iter", "gbm_lr", "gbm_leaves", "rf_trees", "rf_min_leaf", "teacher_width", "teacher_depth",
    "teacher_members", "teacher_epochs", "teacher_lr", "batch_size", "patience",
)
_STUDENT_FIELDS = ("student_widths", "student_depth", "alphas", "scratch_weight_decays",
                   "distill_weight_decay", "epochs", "lr")


@dataclass(frozen=True)
class FluxConfig:
    """Settings of the site-level benchmark (see :func:`flux_profile` for the presets).

    Attributes:
        profile: where results go (``results/<profile>/runs``).
        targets: subset of ("gpp", "lai").
        n_folds: outer folds over sites (StratifiedGroupKFold, strata = IGBP class).
        folds: which outer folds to run (None: all).
        seeds: student seeds (each seed changes initialisation and batch order).
        inner_folds: the validation sites are one of this many inner folds of the training sites.
        history: months of drivers fed per site-month (current month plus history - 1 before).
        site_climate: add each site's mean driver climate (2001-2016 means of the five drivers).
        static_maps: add the project's static maps at the site's 1 deg cell (NDVI max/min,
            orography, land fraction; :func:`~ecodistill.fluxnet.benchmark.site_static`).
        heldout_years: the last years with labels of a target, never trained on, reported apart.
        gbm_iter, gbm_lr, gbm_leaves: HistGradientBoostingRegressor settings.
        rf_trees, rf_min_leaf: RandomForestRegressor settings.
        teacher_width, teacher_depth, teacher_members: the MLP teacher (a deep ensemble of members).
        student_widths, student_depth: the student MLPs (hidden width x depth).
        alphas: distillation weights tried on the validation sites.
        scratch_weight_decays: the scratch students' search (as many trials as ``alphas``).
        distill_weight_decay: AdamW weight decay of the distilled students.
        epochs, patience, batch_size, lr: training budget (early stopping on validation sites).
        threads: torch CPU threads (1 is fastest for these small networks on a shared 2-core host).
        device: "cpu", "cuda" or "auto" (cuda when available) for the neural networks.
    """

    profile: str = "smoke"
    targets: tuple[str, ...] = ("gpp", "lai")
    n_folds: int = 5
    folds: tuple[int, ...] | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    inner_folds: int = 5
    split_seed: int = 0
    history: int = 6
    site_climate: bool = True
    static_maps: bool = True
    heldout_years: int = 2
    teacher_seed: int = 0
    gbm_iter: int = 400
    gbm_lr: float = 0.05
    gbm_leaves: int = 31
    rf_trees: int = 200
    rf_min_leaf: int = 3
    teacher_width: int = 256
    teacher_depth: int = 3
    teacher_members: int = 3
    teacher_epochs: int = 150
    teacher_lr: float = 1e-3
    student_widths: tuple[int, ...] = (16, 48, 144)
    student_depth: int = 2
    alphas: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    scratch_weight_decays: tuple[float, ...] = (0.0, 0.01, 0.1, 1.0)
    distill_weight_decay: float = 0.01
    epochs: int = 50
    patience: int = 10
    batch_size: int = 256
    lr: float = 3e-3
    threads: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.profile not in FLUX_PROFILES:
            raise ValueError(f"FluxConfig.profile={self.profile!r}: choose one of {FLUX_PROFILES}")
        bad = set(self.targets) - {"gpp", "lai"}
        if bad or not self.targets:
            raise ValueError(f"FluxConfig.targets={self.targets}: use a non-empty subset of ('gpp', 'lai')")
        if self.n_folds < 2 or self.inner_folds < 2:
            raise ValueError("FluxConfig.n_folds and inner_folds must be >= 2 (sites must be left out)")
        if self.folds is not None and any(not 0 <= f < self.n_folds for f in self.folds):
            raise ValueError(f"FluxConfig.folds={self.folds} outside 0..{self.n_folds - 1}")
        if self.history < 1 or self.heldout_years < 1:
            raise ValueError("FluxConfig.history and heldout_years must be >= 1")
        if len(self.scratch_weight_decays) != len(self.alphas):
            raise ValueError("scratch_weight_decays must hold as many trials as alphas (equal search budget)")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"FluxConfig.device={self.device!r}: choose cpu, cuda or auto")
        if any(not 0.0 < a <= 1.0 for a in self.alphas):
            raise ValueError(f"FluxConfig.alphas={self.alphas}: each must be in (0, 1] (alpha 0 is scratch)")

    @property
    def fold_list(self) -> tuple[int, ...]:
        """The outer folds this config runs."""
        return tuple(range(self.n_folds)) if self.folds is None else self.folds

    def teacher_part(self) -> dict[str, Any]:
        """The settings that decide a fold's teacher and baselines (its run id hashes these)."""
        d = asdict(self)
        return {k: d[k] for k in _TEACHER_FIELDS}

    def student_part(self) -> dict[str, Any]:
        """The settings that decide a fold's students, teacher settings included."""
        d = asdict(self)
        return {**self.teacher_part(), **{k: d[k] for k in _STUDENT_FIELDS}}


def flux_profile(name: str, **overrides: Any) -> FluxConfig:
    """The named :class:`FluxConfig` preset, with fields replaced by ``overrides``.

    Raises:
        ValueError: for an unknown profile name.
    """
    presets = {
        "smoke": {"n_folds": 3, "folds": (0,), "seeds": (0, 1), "history": 3, "gbm_iter": 100, "rf_trees": 20,
                  "teacher_width": 64, "teacher_depth": 2, "teacher_members": 1, "teacher_epochs": 20,
                  "student_widths": (16, 48), "epochs": 10, "patience": 5, "batch_size": 512},
        "cpu": {},
        "full": {"seeds": (0, 1, 2, 3, 4), "rf_trees": 400, "gbm_iter": 800, "device": "auto"},
    }
    if name not in presets:
        raise ValueError(f"unknown FLUXNET profile {name!r}: choose one of {FLUX_PROFILES}")
    return replace(FluxConfig(profile=name, **presets[name]), **overrides)
