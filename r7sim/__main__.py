"""Run r7sim as its own process: ``python -m r7sim --data-dir DIR --port PORT [faults]``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from r7sim import BANNER, Settings, create_app
from r7sim.auth import (
    ARCHIVIST,
    DEMO_ARCHIVIST,
    DEMO_SUBMITTER,
    SUBMITTER,
    Account,
    Accounts,
    credential_default,
    parse_credential,
)
from r7sim.settings import MALFORMED_KINDS, OPERATIONS

log = logging.getLogger("r7sim")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m r7sim", description=BANNER)
    parser.add_argument("--data-dir", type=Path, required=True, help="holdings; kept across restarts")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8700, help="port to listen on (default 8700)")
    accounts = parser.add_argument_group(
        "accounts (HTTP basic auth)",
        "LOGIN:PASSWORD; the environment variables keep the password off the command line. "
        "The defaults are the demo's, fine for a local stand-in only.",
    )
    accounts.add_argument(
        "--submitter",
        default=credential_default("R7SIM_SUBMITTER", DEMO_SUBMITTER),
        metavar="LOGIN:PASSWORD",
        help=f"delivers, uploads and reads (default: $R7SIM_SUBMITTER or {':'.join(DEMO_SUBMITTER)})",
    )
    accounts.add_argument(
        "--archivist",
        default=credential_default("R7SIM_ARCHIVIST", DEMO_ARCHIVIST),
        metavar="LOGIN:PASSWORD",
        help=f"approves TEST deliveries and reads (default: $R7SIM_ARCHIVIST or {':'.join(DEMO_ARCHIVIST)})",
    )
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction of API requests answered 500")
    parser.add_argument(
        "--stall-rate", type=float, default=0.0, help="fraction of API requests held --stall-seconds first"
    )
    parser.add_argument("--stall-seconds", type=float, default=0.0, help="how long a stalled request is held")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API request")
    parser.add_argument("--ingest-delay", type=float, default=0.0, help="seconds a receipt stays pending")
    parser.add_argument(
        "--reject", action="extend", nargs="+", default=[], metavar="PACKAGE_ID", help="reject these packages"
    )
    parser.add_argument(
        "--drop-upload-once",
        action="extend",
        nargs="+",
        default=[],
        metavar="PACKAGE_ID",
        help="drop the connection of an upload of these packages once, mid-chunk",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    parser.add_argument(
        "--auto-approve-test",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="approve a TEST delivery once all its packages are accepted (default: yes)",
    )
    damage = parser.add_argument_group("an archive that damages or misreports (see r7sim/misbehave.py)")
    for flag, what in (
        ("--store-empty", "store these packages as empty files after ingest (receipts report it honestly)"),
        ("--store-flip-record", "change one byte of a record.xml of these stored packages after ingest"),
        ("--store-flip-mets", "change one byte of the root METS.xml of these stored packages after ingest"),
        ("--receipt-other-sha256", "state another SHA-256 in these packages' ingest receipts"),
        ("--hide-holdings", "leave these packages out of their delivery's holdings"),
    ):
        damage.add_argument(flag, action="extend", nargs="+", default=[], metavar="PACKAGE_ID", help=what)
    damage.add_argument(
        "--approval",
        choices=["false", "other_delivery", "partial"],
        default="",
        help="answer a TEST delivery's approval untruly: approved false, for another delivery, or partial",
    )
    protocol = parser.add_argument_group("an archive that breaks the protocol (see r7sim/faults.py)")
    protocol.add_argument(
        "--no-progress",
        action="extend",
        nargs="+",
        default=[],
        metavar="PACKAGE_ID",
        help="answer these packages' chunks 200 without keeping them (the offset never moves)",
    )
    protocol.add_argument(
        "--false-offset-once",
        action="extend",
        nargs="+",
        default=[],
        metavar="PACKAGE_ID",
        help="keep a chunk of these packages but answer that every byte arrived (once per data dir)",
    )
    operations = ", ".join(OPERATIONS)
    protocol.add_argument(
        "--drip",
        action="extend",
        nargs="+",
        default=[],
        choices=list(OPERATIONS),
        metavar="OPERATION",
        help=f"send these operations' answers one byte at a time ({operations})",
    )
    protocol.add_argument("--drip-seconds", type=float, default=0.05, help="pause between dripped bytes (0.05)")
    protocol.add_argument(
        "--redirect",
        action="extend",
        nargs="+",
        default=[],
        choices=list(OPERATIONS),
        metavar="OPERATION",
        help="answer these operations 302 to --redirect-to instead of handling them",
    )
    protocol.add_argument(
        "--redirect-to", default="http://127.0.0.1:9", metavar="ORIGIN", help="where redirects point (another origin)"
    )
    protocol.add_argument("--busy", type=int, default=0, metavar="N", help="answer the first N API requests busy")
    protocol.add_argument("--busy-status", type=int, choices=[429, 503], default=429, help="status of a busy answer")
    protocol.add_argument(
        "--retry-after", default="1", metavar="VALUE", help="Retry-After of a busy answer: seconds or an HTTP date"
    )
    protocol.add_argument(
        "--malformed",
        action="extend",
        nargs="+",
        default=[],
        metavar="KIND:OPERATION",
        help=f"handle the operation, then break its 2xx answer; KIND: {', '.join(MALFORMED_KINDS)}",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Start r7sim and serve until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings(
            error_rate=args.error_rate,
            stall_rate=args.stall_rate,
            stall_seconds=args.stall_seconds,
            latency=args.latency,
            ingest_delay=args.ingest_delay,
            reject=frozenset(args.reject),
            drop_upload_once=frozenset(args.drop_upload_once),
            seed=args.seed,
            auto_approve_test=args.auto_approve_test,
            store_empty=frozenset(args.store_empty),
            store_flip_record=frozenset(args.store_flip_record),
            store_flip_mets=frozenset(args.store_flip_mets),
            receipt_other_sha256=frozenset(args.receipt_other_sha256),
            hide_holdings=frozenset(args.hide_holdings),
            approval=args.approval,
            no_progress=frozenset(args.no_progress),
            false_offset_once=frozenset(args.false_offset_once),
            drip=frozenset(args.drip),
            drip_seconds=args.drip_seconds,
            redirect=frozenset(args.redirect),
            redirect_to=args.redirect_to,
            busy=args.busy,
            busy_status=args.busy_status,
            retry_after=args.retry_after,
            malformed=frozenset(args.malformed),
        )
        accounts = Accounts(
            Account(*parse_credential(args.submitter, "--submitter"), SUBMITTER),
            Account(*parse_credential(args.archivist, "--archivist"), ARCHIVIST),
        )
    except ValueError as exc:  # a setting or credential that makes no sense: say which, no traceback
        raise SystemExit(f"python -m r7sim: {exc}") from None
    log.warning("%s, listening on http://%s:%d", BANNER, args.host, args.port)
    app = create_app(args.data_dir, settings, accounts)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()
