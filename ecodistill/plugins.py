"""User extensions: modules named in ``ECODISTILL_PLUGINS`` are imported before any lookup.

A researcher adds a loss or a student family in a module of their own, decorated with
:func:`ecodistill.losses.register_loss` or :func:`ecodistill.models.register_family`, and
sets ``ECODISTILL_PLUGINS=mypackage.mylosses`` (comma-separated for several): every
command, notebook kernel and ``torchrun`` worker then knows the new names, with no edit
to the package.

Explained in the README ("Extending ecodistill").
"""
from __future__ import annotations

import importlib
import os

_LOADED: set[str] = set()


def plugin_modules() -> list[str]:
    """The module names in ``ECODISTILL_PLUGINS`` (empty when unset)."""
    return [m.strip() for m in os.environ.get("ECODISTILL_PLUGINS", "").split(",") if m.strip()]


def load_plugins() -> list[str]:
    """Import every plugin module not imported yet; returns the modules imported now.

    Raises:
        ImportError: naming the module and the variable to fix, when one cannot be imported.
    """
    done = []
    for name in plugin_modules():
        if name in _LOADED:
            continue
        _LOADED.add(name)  # before importing: a plugin importing ecodistill must not recurse
        try:
            importlib.import_module(name)
        except ImportError as err:
            _LOADED.discard(name)
            raise ImportError(f"ECODISTILL_PLUGINS names {name!r}, which cannot be imported ({err}); "
                              "fix the module name or put its folder on PYTHONPATH") from err
        done.append(name)
    return done
