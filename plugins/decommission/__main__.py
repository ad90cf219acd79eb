"""Command line of the decommission package: ``python -m decommission <command> ...``.

Each command is one ``add_<command>(subparsers)`` function that declares its arguments and
sets ``handler`` (a function of the parsed arguments returning the exit code); add a command
by writing such a function and listing it in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_validate(subparsers: argparse._SubParsersAction) -> None:
    """``validate PATH [--json]``: exit 0 for a valid package, 1 for an invalid one."""
    parser = subparsers.add_parser(
        "validate",
        help="validate an E-ARK package (folder or .tar): schemas, CSIP/SIP requirements, fixity",
        description="Validate a package folder or tar offline. Exit status 0: valid; 1: invalid.",
    )
    parser.add_argument("path", type=Path, help="the package's root folder or its .tar")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace) -> int:
    from decommission.validate import validate_package

    report = validate_package(args.path)
    print(report.to_json() if args.json else report.to_text())
    return 0 if report.ok else 1


COMMANDS = (add_validate,)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m decommission", description=__doc__.split("\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="command")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
