"""Run r7sim as its own process: ``python -m r7sim --data-dir DIR --port PORT [faults]``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from r7sim import BANNER, Settings, create_app

log = logging.getLogger("r7sim")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m r7sim", description=BANNER)
    parser.add_argument("--data-dir", type=Path, required=True, help="holdings; kept across restarts")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8700, help="port to listen on (default 8700)")
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
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Start r7sim and serve until interrupted."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
    )
    log.warning("%s, listening on http://%s:%d", BANNER, args.host, args.port)
    app = create_app(args.data_dir, settings)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()
