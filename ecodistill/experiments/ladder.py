"""The headroom ladder: student size x history, before any distillation.

Where can a teacher have something to give? At each history setting of
:data:`LADDER_HISTORIES` (today only, windows to a year, a leaky-integrator state), the
scratch arm is trained at every size of :func:`ladder_sizes` -- from a ~2k-parameter
per-pixel MLP to a ~0.5M AFNO -- with the protocol's truth loss, each size's learning rate
searched until interior (at the headline history the protocol's own search is reused, so
those runs *are* the comparison's scratch arm), then every seed on the test years. The
teacher's size is the top rung (:mod:`ecodistill.experiments.teacher`). Drawn against the
achievable ceiling, the ladder says at which history a teacher is clearly better than the
best small model, which is where distillation is worth testing.

``python -m ecodistill matrix --stages ladder``. Explained in book/generated/04_results.ipynb
("The headroom ladder").
"""
from __future__ import annotations

from collections.abc import Callable

from ..config import LADDER_HISTORIES, DistillConfig, StudentConfig
from ..training.lr_search import search_lr
from .distill import train_student
from .workspace import Workspace, open_workspace

__all__ = ["LADDER_HISTORIES", "ladder_sizes", "run_ladder", "scratch_rung"]


def ladder_sizes(profile: str) -> list[StudentConfig]:
    """The ladder's student sizes, smallest first: a per-pixel MLP of about 2k parameters and
    two AFNOs (about 0.2M and 0.5M parameters at the cpu profile's inputs)."""
    if profile == "smoke":
        return [StudentConfig("mlp_xs", "mlp", width=8, depth=2), StudentConfig("afno_xs", "afno", width=16, depth=1,
                                                                                num_blocks=2)]
    return [StudentConfig("mlp_xs", "mlp", width=16, depth=2), StudentConfig("afno_s", "afno", width=64, depth=2,
                                                                             num_blocks=4),
            StudentConfig("afno_m", "afno", width=128, depth=2, num_blocks=8)]


def scratch_rung(ws: Workspace, scfg: StudentConfig, loss: str, seeds: tuple[int, ...],
                 lr_scale: float | None = None, centre: float = 1.0,
                 allow: Callable[[StudentConfig, int], bool] | None = None) -> dict:
    """One rung: the scratch arm of ``scfg`` (truth loss ``loss``) with its learning rate
    searched on the validation years (seed 0; skipped when ``lr_scale`` is given), then
    every seed at it on the test years (tag ``final``: at the headline history these are the
    comparison's scratch runs). ``allow(student, n_runs)`` may skip a seed's run (a budget)."""
    dcfg = DistillConfig(mode="scratch", loss=loss)
    search = None
    if lr_scale is None:
        def score(m: float) -> float:
            return train_student(ws, scfg, dcfg, 0, tag="tune", lr_scale=m, splits=("val",)).val_rmse

        search = search_lr(score, centre=centre, max_widen=2)
        lr_scale = search.best
    ids = [train_student(ws, scfg, dcfg, seed, lr_scale=lr_scale).run_id for seed in seeds
           if allow is None or allow(scfg, 1)]
    return {"student": scfg.name, "history": ws.history, "lr_scale": lr_scale,
            "lr_search": search.as_dict() if search else None, "run_ids": ids}


def run_ladder(profile: str, loss: str, lr_by_family: dict[str, float],
               histories: tuple[str, ...] = LADDER_HISTORIES, device: str | None = None,
               allow: Callable[[StudentConfig, int], bool] | None = None) -> list[dict]:
    """Every rung of the ladder (module docstring); returns one record per size and history.

    Args:
        loss: the scratch arm's truth loss (the protocol's selection).
        lr_by_family: the scratch arm's learning-rate multiple per student family, searched
            by the selection at the profile's own history and used there as is; at the other
            histories each size's search starts from it.
    """
    own = open_workspace(profile, device).history
    records = []
    for history in histories:
        ws = open_workspace(profile, device, history=history)
        for scfg in ladder_sizes(profile):
            lr = lr_by_family.get(scfg.family, 1.0)
            records.append(scratch_rung(ws, scfg, loss, ws.cfg.seeds, lr_scale=lr if history == own else None,
                                        centre=lr, allow=allow))
    return records
