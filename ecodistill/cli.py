"""Command line: ``python -m ecodistill <command> --help``.

Each module that offers a command defines ``register_cli(subparsers)``, adding a
sub-parser whose ``func`` attribute takes the parsed ``argparse.Namespace`` and
returns an exit code. This module only collects them (:data:`COMMAND_MODULES`), so it is
the top of the package's layers (``ecodistill.LAYERS``): it imports every command module.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import book, data, fluxnet
from .deploy import bench, history_cost
from .experiments import bench_train, compressed_skill, distill, gpu, probe, protocol, realism, teacher, trees
from .store import archive

#: The modules that offer a command, in the order ``--help`` lists them.
COMMAND_MODULES = (book, data, realism, teacher, gpu, archive, distill, protocol, trees, fluxnet, bench,
                   history_cost, bench_train, compressed_skill, probe)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="python -m ecodistill",
        description="Knowledge distillation for global ecosystem models (the ecodistill thesis).",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for module in COMMAND_MODULES:
        module.register_cli(sub)
    return parser


#: Errors that carry a message for the user (bad input, missing files): printed without a
#: traceback unless ``ECODISTILL_DEBUG=1``.
USER_ERRORS = (ValueError, FileNotFoundError, ImportError)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the exit code (2 for a user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as err:
        if os.environ.get("ECODISTILL_DEBUG") == "1":
            raise
        print(f"python -m ecodistill {args.command}: error: {err}\n"
              "(set ECODISTILL_DEBUG=1 for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
