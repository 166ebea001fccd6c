"""The pre-training task: forecasting the state of the Earth from today's fields.

The teacher is pre-trained as FourCastNet is, by forecasting, before it is adapted to NDVI.
A :class:`Forecast` names what it sees (today's variables) and what it predicts (each
variable at its own lead). Three variants (``RunConfig.pretrain_task``):

* ``next_day`` -- every dynamic input tomorrow (world v1's pre-training);
* ``atmosphere`` -- the atmospheric variables only, in and out, one day ahead: the
  FourCastNet-faithful variant, which never has to represent the land state;
* ``land`` -- today's atmosphere and land state; the atmosphere one day ahead and the land
  state (soil water of the four layers, snow) ``land_lead`` days ahead, so the features
  must carry what drives vegetation for weeks.

Explained in book/generated/02_teacher.ipynb ("Pre-training").
"""
from __future__ import annotations

from dataclasses import dataclass

from .schema import ATMOSPHERE_VARS, LAND_VARS

PRETRAIN_VARIANTS = ("next_day", "atmosphere", "land")


@dataclass(frozen=True)
class Forecast:
    """Today's ``inputs`` -> each ``(variable, lead in days)`` of ``targets``."""

    inputs: tuple[str, ...]
    targets: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        if not self.inputs or not self.targets:
            raise ValueError(f"a forecast needs inputs and targets, got {self.inputs} -> {self.targets}")
        if any(lead < 1 for _, lead in self.targets):
            raise ValueError(f"forecast leads must be >= 1 day, got {self.targets}")

    @property
    def max_lead(self) -> int:
        """The longest lead (days whose target lies beyond a split's end are left out)."""
        return max(lead for _, lead in self.targets)

    @property
    def target_names(self) -> tuple[str, ...]:
        return tuple(v for v, _ in self.targets)

    @classmethod
    def next_day(cls, names: tuple[str, ...]) -> Forecast:
        """Every variable of ``names`` tomorrow from today."""
        return cls(tuple(names), tuple((v, 1) for v in names))


def pretrain_task(variant: str, input_vars: tuple[str, ...], land_lead: int = 10) -> Forecast:
    """The :class:`Forecast` of a pre-training variant over the dataset's ``input_vars``.

    Raises:
        ValueError: for an unknown variant, or one whose variables the inputs lack.
    """
    if variant not in PRETRAIN_VARIANTS:
        raise ValueError(f"RunConfig.pretrain_task={variant!r} unknown: choose one of {PRETRAIN_VARIANTS}")
    if variant == "next_day":
        return Forecast.next_day(input_vars)
    atmosphere = tuple(v for v in input_vars if v in ATMOSPHERE_VARS)
    if variant == "atmosphere":
        return Forecast.next_day(atmosphere)
    land = tuple(v for v in input_vars if v in LAND_VARS)
    if not land:
        raise ValueError(f"pre-training variant 'land' forecasts the land state, but the inputs {input_vars} "
                         "hold none of it: use DataConfig.inputs='era5' (or pretrain_task='atmosphere')")
    return Forecast(atmosphere + land, tuple((v, 1) for v in atmosphere) + tuple((v, land_lead) for v in land))
