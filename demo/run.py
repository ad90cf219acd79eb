"""Run the demo region end to end: build the legacy systems, start r7sim, run every milestone.

``python -m demo.run [--patients N] [--seed S] [--postgres URL] [--out DIR]``

Each system's DAG runs once per delivery milestone with ``dag.test()``; the sign-off
requests of the final milestone are answered through Airflow's REST API as the plan's
assigned respondents. Ends with a summary table per system.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from decommission import embedded  # noqa: E402 - the path above must come first
from decommission.settings import plan_path  # noqa: E402

SYSTEMS = ("vas", "lab", "anestesi", "sjukhus")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo.run", description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=300, help="patients per legacy system (default 300)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres", metavar="URL", help="build the legacy systems in PostgreSQL, not SQLite")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "demo")
    return parser.parse_args(argv)


def build_sources(
    out: Path, args: argparse.Namespace
) -> tuple[dict[str, str], dict[str, dict], dict[str, dict[str, str]]]:
    """Build every demo system; return their sources, dirt reports and the SQLite files each attaches."""
    from demo.generate import HOSPITAL, build
    from demo.sjukhus import ADT, KLINIK, klinik_path

    sources, reports, attached = {}, {}, {}
    for system in SYSTEMS:
        target = args.postgres or str(out / "sources" / f"{system}.sqlite")
        if not args.postgres:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        reports[system] = build(system, target, seed=args.seed, patients=args.patients)
        # the hospital system has two schemas: adt (the plan's source schema) and klinik
        schema, others = (ADT, (KLINIK,)) if system == HOSPITAL else (system, ())
        if args.postgres:  # read through a SELECT-only login, as a region should (preflight checks it)
            from demo.readonly import create_reader

            target = create_reader(args.postgres, schema, also=others)
        elif system == HOSPITAL:  # on SQLite the second schema is a second file the connection attaches
            attached[system] = {KLINIK: str(klinik_path(target))}
        sources[system] = target
        print(f"  built {system:9} {sum(reports[system]['tables'].values()):>8} rows  ({target.split('@')[-1]})")
    return sources, reports, attached


class SignoffResponder(threading.Thread):
    """Answers waiting sign-off tasks over the REST API as the plan's assigned respondents."""

    def __init__(self, plan: Any) -> None:
        super().__init__(daemon=True)
        self.who = {
            f"decommission_{s.id}": {
                "signoff_information_owner": s.signoff.information_owner.id,
                "signoff_archivist": s.signoff.archivist.id,
            }
            for s in plan.systems
        }
        self.stop = threading.Event()
        self.answered: list[tuple[str, str, int]] = []

    def run(self) -> None:
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        from demo.signoff import answer, waiting

        client = TestClient(create_app(apps="core"))
        while not self.stop.is_set():
            for dag_id, run_id, task_id in waiting():
                user = self.who.get(dag_id, {}).get(task_id)
                if user is None:
                    continue
                response = answer(
                    client, dag_id=dag_id, run_id=run_id, task_id=task_id, username=user, password=embedded.USERS[user]
                )
                self.answered.append((dag_id, task_id, response.status_code))
                print(f"    REST PATCH hitlDetails {dag_id}/{task_id} as '{user}': HTTP {response.status_code}")
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out.resolve()
    started = time.monotonic()
    for stale in ("airflow", "staging", "r7sim", *SYSTEMS):
        shutil.rmtree(out / stale, ignore_errors=True)
    for stale in ("ledger.sqlite", "alerts.jsonl"):
        (out / stale).unlink(missing_ok=True)
    print(f"Demo region → {out}")

    from r7sim.process import R7SimServer

    archive = R7SimServer(out / "r7sim", out / "r7sim.log")
    archive.data_dir.mkdir(parents=True, exist_ok=True)
    print("Building the legacy systems…")
    sources, dirt, attached = build_sources(out, args)
    embedded.configure(
        home=out,
        airflow_home=out / "airflow",
        sources=sources,
        archive_port=archive.port,
        archive_conn=archive.connection_uri(timeout=30),
        attached=attached,
    )

    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.pool import Pool
    from airflow.utils import db

    from decommission.plan.programme import load_plan, pools

    db.resetdb()
    plan = load_plan(plan_path())
    for name, pool in pools(plan).items():
        Pool.create_or_update_pool(name, pool["slots"], pool["description"], include_deferred=False)
    dagbag = DagBag(dag_folder=str(REPO / "dags"))
    if dagbag.import_errors:
        print(json.dumps(dagbag.import_errors, indent=2))
        return 1

    archive.start()
    print(f"r7sim (stand-in for R7 e-Arkiv, not R7) listening on {archive.url}")
    print(
        f"  the archive connection logs in as r7sim's demo submitter ({archive.accounts['submitter'][0]}) over "
        "plain http: its extra allow_insecure_http says so; a real archive takes https"
    )
    responder = SignoffResponder(plan)
    responder.start()
    states = {}
    try:
        for system in plan.systems:
            dag = dagbag.get_dag(f"decommission_{system.id}")
            # Airflow 3.3.2: dag.test() crashes in DagRun.update_state on a DAG with deadline alerts
            # ('dict' object has no attribute 'hex'); deadlines are the scheduler's job, not the demo's.
            dag.deadline = None
            for milestone, day in system.milestones.items():
                if not milestone.runs_dag:
                    continue
                print(f"  {system.id}: {milestone.value} ({day})")
                at = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
                with named_after(milestone.value):
                    dag_run = dag.test(logical_date=at, run_conf={"milestone": milestone.value})
                states[(system.id, milestone.value)] = str(dag_run.state)
                if str(dag_run.state) != "success":
                    print(f"    run {dag_run.run_id} ended {dag_run.state}: see {out / 'airflow' / 'logs'}")
                    return 1
    finally:
        responder.stop.set()
        archive.stop()
    print_summary(out, plan, dirt)
    from decommission import stages
    from demo.ui import how_to_open

    board = stages.board_report(plan, dt.datetime.now(dt.UTC).date(), "demo__board_report")
    print(f"\nBoard report (Lägesrapport): {board['pdf']} (+ .html), SHA-256 {board['pdf_sha256']} in the ledger")
    print(how_to_open(8080))
    print(f"\nDemo finished in {time.monotonic() - started:.0f} s.")
    return 0


@contextlib.contextmanager
def named_after(milestone: str) -> Iterator[None]:
    """Name a ``dag.test()`` run after its milestone, as the timetable names scheduled and triggered runs.

    Airflow 3.3's ``dag.test()`` names every run ``manual__<time>`` without asking the timetable.
    """
    from unittest import mock

    from airflow.models.dagrun import DagRun

    def generate_run_id(*, run_type: Any, logical_date: Any = None, run_after: dt.datetime) -> str:
        return f"{getattr(run_type, 'value', run_type)}__milestone__{milestone}__{run_after.isoformat()}"

    with mock.patch.object(DagRun, "generate_run_id", staticmethod(generate_run_id)):
        yield


def print_summary(out: Path, plan: Any, dirt: dict[str, dict]) -> None:
    from decommission.plan.mapping_spec import load_spec
    from demo.generate import expected_outcome

    print("\nSummary (final delivery):")
    header = (
        f"{'system':9} {'source':>7} {'archived':>8} {'flagged':>7} {'corrected':>9} {'disposed':>8} "
        f"{'coverage':>8} {'packages':>8} {'accepted':>8} verdict  report"
    )
    print(header)
    print("-" * len(header))
    for system in plan.systems:
        result = json.loads((out / system.id / "reconciliation" / "final_delivery" / "result.json").read_text())
        totals = result["totals"]
        accepted = result["packages"].get("accepted", 0)
        coverage = (result.get("coverage") or {}).get("coverage")
        exit_record = out / system.id / "evidence" / "contract-exit.json"
        print(
            f"{system.id:9} {totals['source']:>7} {totals['archived']:>8} {totals['flagged']:>7} "
            f"{totals['corrected']:>9} {totals['disposed']:>8} "
            f"{'-' if coverage is None else f'{coverage:.0%}':>8} {result['packages']['count']:>8} {accepted:>8} "
            f"{result['verdict']:7}  {out / system.id / 'reconciliation' / 'final_delivery' / 'report.html'}"
        )
        expected = expected_outcome(dirt[system.id], load_spec(plan.mapping_path(system)))
        got = {kind: {t: row[kind] for t, row in result["tables"].items() if row[kind]} for kind in expected}
        match = "equal" if expected == got else "DIFFER FROM"
        print(
            f"          source = archived + disposed: "
            f"{'yes' if totals['source'] == totals['archived'] + totals['disposed'] else 'NO'}; "
            f"findings by class {match} the generator's dirt report"
        )
        for kind in ("flagged", "corrected", "disposed"):
            by_reason = result["by_reason"][kind]
            if by_reason:
                print(f"            {kind}: " + ", ".join(f"{r}={n}" for r, n in by_reason.items()))
        for c in (result.get("dispositions") or {}).get("classes", []):
            if c["class"] != "flagged":
                reference = c.get("reference") or ", ".join(c.get("references") or [])
                print(f"            {c['table']} {c['reason']} {c['class']} {c['rows']}: {reference}")
        pack = out / system.id / "evidence" / f"evidence-{system.id}-final_delivery.tar"
        folder = out / system.id / "reconciliation" / "final_delivery"
        sample = result["sample"]
        if result.get("placeholders"):
            print(f"          placeholder patients holding orphan rows: {result['placeholders']}")
        print(f"          report PDF and annexes: {folder}/report.pdf, annex-*.csv, annexes.xlsx")
        print(f"          read-back sample: {sample['checked']} patients, {len(sample['mismatches'])} differ")
        print(f"          evidence pack: {pack if pack.exists() else 'MISSING'}")
        print(f"          contract exit: {exit_record if exit_record.exists() else 'MISSING'} (+ .pdf)")


if __name__ == "__main__":
    sys.exit(main())
