"""ecodistill: knowledge distillation for global ecosystem models.

A ~100M-parameter FourCastNet-style teacher adapted to NDVI is distilled into small
students; see the book (``python -m ecodistill book``) for the whole story, and
:mod:`ecodistill.api` for the public names in one place (``from ecodistill.api import
read_era5, train_student, register_loss``).

The package is layered; a module imports only from its own layer or lower ones, and no
import cycle exists (``tests/test_layers.py`` reads every import and checks both).
:data:`LAYERS` lists them, lowest first; the README ("Where things are") says what lives in
each. This file itself imports nothing, so any module may read ``__version__``.
"""
__version__ = "0.1.0"

#: ``(name, modules)`` per layer, lowest first; a module belongs to the first entry whose
#: module it is or lies under.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("ecodistill.config", "ecodistill.utils", "ecodistill.stats", "ecodistill.plugins")),
    ("store", ("ecodistill.store",)),
    ("science parts", ("ecodistill.data", "ecodistill.models", "ecodistill.losses", "ecodistill.evaluate")),
    ("training", ("ecodistill.training",)),
    ("deployment", ("ecodistill.deploy",)),
    ("experiments", ("ecodistill.experiments", "ecodistill.fluxnet")),
    ("writing", ("ecodistill.report", "ecodistill.plots", "ecodistill.book")),
    ("entry points", ("ecodistill.api", "ecodistill.cli", "ecodistill.__main__")),
)
