"""Learning-rate search with the optimum inside its grid, and equal trial counts across arms.

Every learning rate the book reports was searched the same way: multipliers of a base rate
``{m/f, m, m*f}`` around a centre ``m``, widened by one more factor ``f`` beyond whichever
edge is best until the best multiplier has tried neighbours on both sides (or ``max_widen``
widenings are spent, which the result says). When two arms of a comparison are tuned,
:func:`equalize` gives the arm with fewer trials more learning rates around its best, so
both arms get the same number of trials.

Explained in book/generated/04_results.ipynb ("The protocol").
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LRSearch:
    """The trials of one search: multiplier -> validation score (lower is better)."""

    scores: dict[float, float] = field(default_factory=dict)
    factor: float = 2.0

    @property
    def best(self) -> float:
        """The multiplier with the lowest score."""
        return min(self.scores, key=self.scores.get)

    @property
    def interior(self) -> bool:
        """True when the best multiplier has tried neighbours on both sides."""
        grid = sorted(self.scores)
        return 0 < grid.index(self.best) < len(grid) - 1

    def try_(self, score: Callable[[float], float], m: float) -> None:
        """Score multiplier ``m`` unless it was tried (multipliers are rounded to 6 digits)."""
        m = float(f"{m:.6g}")
        if m not in self.scores:
            self.scores[m] = float(score(m))

    def as_dict(self) -> dict:
        return {"scores": {str(k): v for k, v in sorted(self.scores.items())}, "best": self.best,
                "interior": self.interior, "n_trials": len(self.scores)}


def search_lr(score: Callable[[float], float], centre: float = 1.0, factor: float = 2.0,
              max_widen: int = 3, tried: dict[float, float] | None = None) -> LRSearch:
    """Search learning-rate multipliers around ``centre`` until the best one is interior.

    Args:
        score: multiplier -> validation score (e.g. RMSE of a run at ``base_lr * m``).
        centre: the first grid is ``{centre/factor, centre, centre*factor}``.
        factor: spacing of the grid.
        max_widen: at most this many extra multipliers beyond an edge.
        tried: scores already known (they count as trials and are not re-run).
    """
    search = LRSearch(dict(tried or {}), factor)
    for m in (centre / factor, centre, centre * factor):
        search.try_(score, m)
    for _ in range(max_widen):
        if search.interior:
            break
        grid = sorted(search.scores)
        edge = grid[0] / factor if search.best == grid[0] else grid[-1] * factor
        search.try_(score, edge)
    return search


def equalize(searches: dict[str, LRSearch], scores: dict[str, Callable[[float], float]],
             extra: dict[str, int] | None = None) -> None:
    """Give every arm as many trials as the arm with the most (``extra`` adds trials an arm
    spent elsewhere, e.g. on choosing its loss). An arm short of trials tries multipliers
    half a grid step (``sqrt(factor)``) around its best, alternating below and above."""
    extra = extra or {}
    target = max(len(s.scores) + extra.get(a, 0) for a, s in searches.items())
    for arm, search in searches.items():
        k = 0
        while len(search.scores) + extra.get(arm, 0) < target:
            step = math.sqrt(search.factor) ** (k // 2 + 1)
            search.try_(scores[arm], search.best / step if k % 2 == 0 else search.best * step)
            k += 1
