"""Command line: ``python -m ecodistill <command> --help``.

Each module that offers a command defines ``register_cli(subparsers)``, adding a
sub-parser whose ``func`` attribute takes the parsed ``argparse.Namespace`` and
returns an exit code. This module only collects them, so the command set grows
with the package without a central switch statement.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMAND_MODULES = (
    "ecodistill.book",
    "ecodistill.data",
    "ecodistill.teacher",
    "ecodistill.gpu",
    "ecodistill.archive",
    "ecodistill.distill",
    "ecodistill.protocol",
    "ecodistill.fluxnet",
    "ecodistill.bench",
    "ecodistill.bench_train",
    "ecodistill.compressed_skill",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="python -m ecodistill",
        description="Knowledge distillation for global ecosystem models (the ecodistill thesis).",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # the module itself is not part of this version
                continue
            raise
        register = getattr(module, "register_cli", None)
        if register is not None:
            register(sub)
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
