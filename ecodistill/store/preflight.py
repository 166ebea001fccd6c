"""Before any training: can the results be written? (write permission and free space)

A run that trains for an hour and then finds its results folder read-only, or its disk full,
has lost the hour. :func:`check_writable` is called by the teacher pipeline and every student
run before they train: each folder they will write must be creatable and writable (a probe
file is written and removed) and hold at least the bytes the run will write, with a margin.

Explained in the README ("Command line").
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


class NotWritable(ValueError):
    """A folder a run must write cannot be written, or lacks the space (a user error: the
    command line prints its one line)."""


MARGIN = 1.5  # free space needed: this many times the bytes a run writes
MIN_FREE = 16 * 2**20  # and at least this much (records, sidecars, temporary files)


def check_writable(folders: dict[str, Path], need_bytes: int = 0) -> None:
    """Refuse, before any work, folders that cannot be written or lack the space.

    Args:
        folders: ``what -> folder`` (e.g. ``{"results": ..., "checkpoints": ...}``); created
            when missing.
        need_bytes: the bytes the run will write in all (estimated by the caller).

    Raises:
        NotWritable: a folder that cannot be created or written, or with too little free space
            (naming it, the space free and needed, and the fix).
    """
    need = max(MIN_FREE, int(MARGIN * need_bytes))
    for what, folder in folders.items():
        folder = Path(folder)
        fix = ("make it writable, or point ECODISTILL_RESULTS / ECODISTILL_CACHE at a writable folder "
               "(nothing has been trained yet)")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            raise NotWritable(f"the {what} folder {folder} cannot be written ({type(err).__name__}: "
                                  f"{err.strerror or err}); {fix}") from None
        try:
            free = shutil.disk_usage(folder).free
        except OSError:  # a file system that cannot say: the writes will tell
            continue
        if free < need:
            raise NotWritable(f"the {what} folder {folder} has {free / 2**20:.0f} MiB free, but the run needs "
                          f"about {need / 2**20:.0f} MiB; free some space or point ECODISTILL_RESULTS / "
                          "ECODISTILL_CACHE elsewhere (nothing has been trained yet)")
