"""Where things are: the plan, the output folders and the staging area (environment-driven)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def plan_path() -> Path:
    # set but empty is unset, as in a shell (Path("") would be the working folder)
    return Path(os.environ.get("DECOMMISSION_PLAN") or REPO / "include" / "programme.yaml")


def home() -> Path:
    """Root of the outputs: ``<home>/<system>/{packages,receipts,reconciliation,evidence}``."""
    return Path(os.environ.get("DECOMMISSION_HOME", REPO / "out" / "demo"))


def staging_url() -> str:
    """Base of the staging area; a file:// URL locally, object storage when workers are many."""
    return os.environ.get("DECOMMISSION_STAGING", (home() / "staging").as_uri())


def system_dir(system_id: str, part: str) -> Path:
    path = home() / system_id / part
    path.mkdir(parents=True, exist_ok=True)
    return path


ARCHIVE_CONN_ID = os.environ.get("DECOMMISSION_ARCHIVE_CONN", "r7_archive")
LEDGER_CONN_ID = os.environ.get("DECOMMISSION_LEDGER_CONN", "programme_ledger")

#: where the api-server mounts the programme overview (decommission/ui); reports are linked through it
UI_PREFIX = "/decommission"


def report_url(system_id: str, milestone: str, name: str = "report.pdf") -> str:
    """The report file's address in the Airflow UI (served by the overview, verified against the ledger)."""
    return f"{UI_PREFIX}/systems/{system_id}/{milestone}/{name}"
