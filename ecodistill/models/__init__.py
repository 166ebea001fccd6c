"""Models: the AFNO teacher, the students, checkpoints and cost accounting.

* :mod:`.afno` -- :class:`AFNONet` (FourCastNet-style), :func:`afno_from_config`,
  :func:`adapt_to_new_task`;
* :mod:`.students` -- :class:`UNet`, :class:`ConvNet`, :class:`PixelMLP`, :func:`build_student`,
  :func:`build_model`, :func:`split_gaussian`;
* :mod:`.checkpoints` -- :func:`load_fourcastnet_backbone`, :func:`save_checkpoint`, :func:`load_checkpoint`;
* :mod:`.cost` -- :func:`count_params`, :func:`flops_per_map`, :func:`bytes_per_map`, :func:`model_card`.

Explained in book/generated/02_teacher.ipynb and book/generated/03_distill.ipynb.
"""
from .afno import (
    AFNO2D,
    AFNOBlock,
    AFNONet,
    adapt_to_new_task,
    afno_from_config,
    count_afno_params,
    resize_pos_embed,
)
from .checkpoints import load_checkpoint, load_fourcastnet_backbone, save_checkpoint
from .cost import bytes_per_map, count_params, flops_per_map, model_card
from .students import (
    FAMILIES,
    MODEL_CLASSES,
    ConvNet,
    PixelMLP,
    UNet,
    build_model,
    build_student,
    check_student,
    family_names,
    register_family,
    split_gaussian,
    student_config,
)

__all__ = [
    "AFNO2D", "FAMILIES", "MODEL_CLASSES", "AFNOBlock", "AFNONet", "ConvNet", "PixelMLP", "UNet",
    "adapt_to_new_task", "afno_from_config", "build_model", "build_student", "bytes_per_map", "check_student",
    "count_afno_params", "count_params", "family_names", "flops_per_map", "load_checkpoint", "load_fourcastnet_backbone",
    "model_card", "register_family", "resize_pos_embed", "save_checkpoint", "split_gaussian", "student_config",
]
