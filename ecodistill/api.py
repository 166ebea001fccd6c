"""The public API in one place: what a user of ecodistill calls, re-exported from where it lives.

Typical use (each name is documented where it is defined; the README shows them at work)::

    from ecodistill.api import get_profile, read_era5, read_ndvi, make_dataset, write_dataset

    weather = read_era5("era5_single_levels_*.nc", "era5_pressure_levels_*.nc")
    ds = make_dataset(weather, read_ndvi("ndvi_*.nc"), nlat=64, nlon=128)
    write_dataset(ds, "my_earth.nc")          # then ECODISTILL_DATA=my_earth.nc for every command

    ws = open_workspace("cpu")                 # the profile's data, prepared once
    teacher = run_teacher_pipeline("cpu")      # pre-train, adapt, cache predictions
    res = train_student(ws, student_config(ws.cfg, "afno_s"), DistillConfig(loss="l1", alpha=0.75), seed=0)

Groups (lowest layer first):

* configuration -- :func:`get_profile`, :class:`RunConfig`, :class:`DataConfig`,
  :class:`StudentConfig`, :class:`DistillConfig`, :class:`TrainConfig`;
* data -- :func:`read_era5`, :func:`read_ndvi`, :func:`read_fourcastnet_h5`,
  :func:`make_dataset`, :func:`write_dataset`, :func:`load_dataset`, :func:`prepare`;
* models and losses -- :func:`load_fourcastnet_backbone`, :func:`build_student`,
  :func:`student_config`, :func:`register_family`, :func:`register_loss`, :func:`masked_mean`;
* training -- :func:`fit`;
* experiments (the distillation entry points) -- :func:`open_workspace`,
  :func:`run_teacher_pipeline`, :func:`train_student`, :func:`run_matrix`, :func:`run_headroom`;
* deployment -- :func:`run_bench`.

Extensions: name your module in ``ECODISTILL_PLUGINS`` and its :func:`register_loss` /
:func:`register_family` decorators are seen by every command, notebook and ``torchrun``
worker (:mod:`ecodistill.plugins`). The command line is ``python -m ecodistill <command>
--help`` (:mod:`ecodistill.cli`). Explained in the README.
"""
from __future__ import annotations

from .config import DataConfig, DistillConfig, RunConfig, StudentConfig, TrainConfig, get_profile
from .data import (
    load_dataset,
    make_dataset,
    prepare,
    read_era5,
    read_fourcastnet_h5,
    read_ndvi,
    write_dataset,
)
from .deploy.bench import run_bench
from .experiments.distill import train_student
from .experiments.headroom import run_headroom
from .experiments.protocol import run_matrix
from .experiments.teacher import run_teacher_pipeline
from .experiments.workspace import open_workspace
from .losses import masked_mean, register_loss
from .models import build_student, load_fourcastnet_backbone, register_family, student_config
from .training.loop import fit

__all__ = [
    "DataConfig", "DistillConfig", "RunConfig", "StudentConfig", "TrainConfig", "build_student", "fit",
    "get_profile", "load_dataset", "load_fourcastnet_backbone", "make_dataset", "masked_mean",
    "open_workspace", "prepare", "read_era5", "read_fourcastnet_h5", "read_ndvi", "register_family",
    "register_loss", "run_bench", "run_headroom", "run_matrix", "run_teacher_pipeline", "student_config",
    "train_student", "write_dataset",
]
