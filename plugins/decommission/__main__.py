"""Command line of the decommission package: ``python -m decommission <command> ...``.

Each command is one ``add_<command>(subparsers)`` function that declares its arguments and
sets ``handler`` (a function of the parsed arguments returning the exit code); add a command
by writing such a function and listing it in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import contextlib
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
    from decommission.validate.validator import validate_package

    report = validate_package(args.path)
    print(report.to_json() if args.json else report.to_text())
    return 0 if report.ok else 1


def add_pools(subparsers: argparse._SubParsersAction) -> None:
    """``pools [PLAN]``: print the plan's source pools as JSON for ``airflow pools import``."""
    parser = subparsers.add_parser(
        "pools",
        help="print one pool per legacy source (slots = its max_connections) as `airflow pools import` JSON",
    )
    parser.add_argument("plan", type=Path, nargs="?", help="the plan file (default: DECOMMISSION_PLAN)")
    parser.set_defaults(handler=_pools)


def _pools(args: argparse.Namespace) -> int:
    import json

    from decommission.plan.programme import load_plan, pools
    from decommission.settings import plan_path

    plan = load_plan(args.plan or plan_path())
    # the valid systems' pools still go out (the others keep running), but a broken entry is no success
    print(json.dumps(pools(plan), indent=2, ensure_ascii=False))
    for problem in plan.problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if plan.problems else 0


def add_ledger(subparsers: argparse._SubParsersAction) -> None:
    """``ledger verify [--conn-id ID | --sqlite PATH] [--against-archive]``: exit 1 and name the first bad entry."""
    parser = subparsers.add_parser("ledger", help="check the evidence ledger's hash chain")
    parser.add_argument("action", choices=["verify"])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--conn-id", help="Airflow connection of the programme database (default: programme_ledger)")
    where.add_argument("--sqlite", type=Path, help="a ledger in a SQLite file")
    parser.add_argument(
        "--against-archive",
        action="store_true",
        help="also check the chain against every ledger anchor the archive holds (cut, forged or rewritten chains)",
    )
    parser.add_argument("--archive-conn-id", help="Airflow connection of the archive (default: r7_archive)")
    parser.set_defaults(handler=_ledger)


def _ledger(args: argparse.Namespace) -> int:
    from decommission.ledger import Ledger
    from decommission.settings import LEDGER_CONN_ID

    if args.sqlite is not None:
        problem = _not_a_ledger(args.sqlite)
        if problem:  # Ledger.sqlite would create an empty ledger there, and call it intact
            print(f"error: {problem}", file=sys.stderr)
            return 1
    ledger = Ledger.sqlite(args.sqlite) if args.sqlite else Ledger.from_conn_id(args.conn_id or LEDGER_CONN_ID)
    broken = ledger.verify()
    if broken is not None:
        print(f"ledger entry {broken.seq} ({broken.kind}, system {broken.system_id}, run {broken.run_id}) was changed")
        return 1
    entries = ledger.entries()
    if not args.against_archive:
        print(f"ledger intact: {len(entries)} entries")
        return 0
    from decommission.deliver.transport import transport_for
    from decommission.evidence.anchors import check_against_anchors
    from decommission.settings import ARCHIVE_CONN_ID

    anchors = transport_for(args.archive_conn_id or ARCHIVE_CONN_ID).anchors()
    problems = check_against_anchors(entries, anchors)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"ledger intact: {len(entries)} entries, matching all {len(anchors)} anchors the archive holds")
    return 0


def add_scaffold(subparsers: argparse._SubParsersAction) -> None:
    """``scaffold --conn-id ID [--schema S ...] --out FILE``: a draft mapping spec and an inventory of the source."""
    parser = subparsers.add_parser(
        "scaffold",
        help="read a legacy database's live catalogue and write a draft mapping spec and an inventory",
        description=(
            "Read the catalogue of the source behind an Airflow connection (names, types, keys, row counts; "
            "never a value) and write a draft mapping spec to review: every table and column, an entity and "
            "fields guessed where the names make them likely, the rest preserved. Exit 1 when the source, a "
            "schema or the output is not usable."
        ),
    )
    parser.add_argument("--conn-id", required=True, help="the Airflow connection of the legacy database")
    parser.add_argument(
        "--schema",
        action="append",
        default=[],
        help="a schema to read (PostgreSQL; repeat for several, the first is the source's own; default: public)",
    )
    parser.add_argument("--out", type=Path, required=True, help="the draft's file, e.g. include/mappings/ris.yaml")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--system", help="the system id (default: the connection id without legacy_)")
    parser.add_argument("--patient-table", help="[SCHEMA.]TABLE holding the patients, when the guess is wrong")
    parser.add_argument("--timezone", default="Europe/Stockholm", help="the source's wall-clock time zone")
    parser.add_argument("--summary", type=Path, help="write the inventory to this file instead of stdout")
    parser.add_argument("--format", choices=["text", "json"], default="text", help="the inventory's format")
    parser.add_argument("--language", choices=["sv", "en"], default="sv", help="the text inventory's language")
    parser.set_defaults(handler=_scaffold)


def _scaffold(args: argparse.Namespace) -> int:
    from decommission.scaffold.inventory import summary, to_json, to_text
    from decommission.scaffold.survey import check_output, survey, write_draft

    check_output(args.out, force=args.force)  # before the database is read
    if args.summary is not None and args.summary.resolve() == args.out.resolve():
        print("error: --summary and --out name the same file", file=sys.stderr)
        return 1
    scaffold = survey(
        args.conn_id, args.schema, system=args.system, patient_table=args.patient_table, timezone=args.timezone
    )
    inventory = summary(scaffold.draft)
    text = to_json(inventory) if args.format == "json" else to_text(inventory, args.language)
    if args.summary is not None:
        from decommission.files import write_atomic

        write_atomic(args.summary, text)
    else:
        print(text, end="")
    write_draft(scaffold, args.out, force=args.force)
    print(f"draft written to {args.out}: review it before a delivery counts", file=sys.stderr)
    return 0


def _not_a_ledger(path: Path) -> str | None:
    """Why the SQLite file at ``path`` is no ledger to verify (opened read-only), or None."""
    import sqlite3

    if not path.is_file():
        return f"{path}: no ledger file there"
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ledger_entry'").fetchone()
    except sqlite3.DatabaseError as exc:
        return f"{path}: not a SQLite database ({exc})"
    return None if found else f"{path}: a SQLite database without a ledger (no table ledger_entry)"


COMMANDS = (add_validate, add_pools, add_ledger, add_scaffold)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m decommission", description=__doc__.split("\n")[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="command")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status."""
    from decommission.errors import DecommissionError

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except DecommissionError as exc:  # a broken input: its message names the file and the fault
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a file of the command line: the message names the path
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from airflow.sdk.exceptions import AirflowNotFoundException

        if isinstance(exc, AirflowNotFoundException):  # "The conn_id `x` isn't defined"
            print(f"error: {exc} (define it as AIRFLOW_CONN_<ID> or in the Airflow UI)", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
