"""Run the DAG's submit stage for one package in its own process, as a task would.

    python -m tests.submit_task PACKAGE_ID CONTAINER SHA256

Uses the demo plan's ``vas`` system at its test delivery; the archive, the ledger and the output
folder come from the environment (``AIRFLOW_CONN_R7_ARCHIVE``, ``AIRFLOW_CONN_PROGRAMME_LEDGER``,
``DECOMMISSION_HOME``). The tests kill it with SIGKILL mid-upload, then run it again.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def make_run(run_id: str = "manual__submit-test") -> object:
    """The run of the demo plan's ``vas`` system at its test delivery."""
    from decommission.plan.programme import Milestone, load_plan
    from decommission.stages import Run

    plan = load_plan(REPO / "include" / "programme.yaml")
    return Run(
        plan=plan,
        system=plan.system("vas"),
        milestone=Milestone.TEST_DELIVERY,
        run_id=run_id,
        logical_date=dt.datetime(2025, 3, 3, tzinfo=dt.UTC),
    )


def built_package(run: object, package_id: str, container: str | Path, sha256: str, counts: dict | None = None) -> dict:
    """Record a package built outside the package stage in the run's ledger, as that stage does; its task data."""
    size = Path(container).stat().st_size
    run.record("package", {"package_id": package_id, "sha256": sha256, "size": size, "counts": counts or {}})
    return {"package_id": package_id, "container": str(container), "sha256": sha256}


def main(argv: list[str]) -> None:
    from decommission.stages import submit

    package_id, container, sha256 = argv
    run = make_run()
    result = submit(run, built_package(run, package_id, container, sha256))
    print("SUBMITTED " + json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
    sys.path[:0] = [str(REPO / "plugins"), str(REPO)]
    main(sys.argv[1:])
