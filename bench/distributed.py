"""``make bench MODE=distributed``: the bench system's real DAG on two Celery workers with S3 staging.

After the embedded pipeline, the same database (at rest, read through a SELECT-only login,
as preflight requires) is run through the system's real DAG, its test delivery milestone,
on the Celery stack of :mod:`devstack.celery`: scheduler, dag-processor, api-server, triggerer
and two workers with homes of their own, Airflow's metadata and the ledger in a PostgreSQL
database of the run's own, staging and artefacts on s3rver, the archive r7sim. Stage times
come from the task instances (:mod:`bench.timings`); where each task ran from the workers' own
log folders. Delivery (upload, the archive's ingest) is timed but kept out of the rows/s
comparison: the embedded bench has no archive.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench import timings

SYSTEM = "vas"
DAG_ID = f"decommission_{SYSTEM}"
MILESTONE = "test_delivery"


def missing() -> list[str]:
    """What this machine lacks for the distributed mode (checked before the long build starts)."""
    from devstack import celery

    return celery.missing()


def run_id(plan: Path) -> str:
    """The scheduled run of the plan's test delivery (the timetable names runs after their milestone)."""
    raw = yaml.safe_load(plan.read_text(encoding="utf-8"))
    (system,) = [s for s in raw["systems"] if s["id"] == SYSTEM]
    return f"milestone__{MILESTONE}__{system['milestones'][MILESTONE]}"


def measure(
    *,
    url: str,
    schema: str,
    conn_id: str,
    plan: Path,
    work: Path,
    slots: int,
    concurrency: int,
    budget_s: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Run the DAG's test delivery on the Celery stack; its stage spans, rows, workers and the archive's verdict.

    :param url: the bench database (a login that may create roles: the SELECT-only one is made from it)
    :param plan: the one-system plan pointed at ``conn_id`` and ``schema``
    :param slots: the source pool's slots (as many tasks read the source at once as in the embedded run)
    :param concurrency: task slots of each Celery worker
    """
    from demo.readonly import create_reader, drop_reader
    from devstack import celery
    from devstack.stack import Budget

    database = f"decommission_bench_{uuid.uuid4().hex[:8]}"
    the_run = run_id(plan)
    reader_url = create_reader(url, schema)
    try:
        celery.create_database(url, database)
        log(f"distributed: starting the Celery stack (2 workers x {concurrency} slot(s), S3 staging), DAG {DAG_ID}")
        with celery.celery_stack(
            work,
            database=database,
            plan=plan,
            dag_id=DAG_ID,
            sources={conn_id: reader_url},
            pools={f"legacy_{SYSTEM}": slots},
            budget=Budget(budget_s),
            concurrency=concurrency,
            extra_env={"DECOMMISSION_HASH_KEY": secrets.token_hex(32)},
        ) as running:
            stack = running.stack
            try:
                stack.open_dag()
                log(f"distributed: {DAG_ID} parsed and unpaused; waiting for {the_run}")
                state = stack.wait_run_end(the_run)
                stack.set_paused(True)  # catch-up would start the production delivery next
                if state != "success":
                    raise RuntimeError(f"the distributed run {the_run} ended {state}")
                tis = stack.task_instances(the_run)
                dag_run = stack.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{the_run}").json()
                result = json.loads(running.stored(f"{SYSTEM}/reconciliation/{MILESTONE}/result.json"))
                if result["verdict"] not in ("PASS", "PASS_WITH_WAIVER"):  # the bench reports no run that fails
                    raise RuntimeError(f"the distributed run's reconciliation says {result['verdict']}")
                attempts = running.attempts_logged()
            except BaseException:
                log(stack.diagnostics())
                raise
        rows = extracted_rows(url, database, the_run)
    finally:
        drop_reader(url, schema)
        celery.drop_database(url, database)
    return summarise(tis, dag_run, rows, attempts_by_worker(attempts, the_run), result, concurrency)


def extracted_rows(url: str, database: str, run: str) -> int:
    """Rows the run's extract tasks recorded in the ledger (the last record per partition: a retry replaces)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(make_conninfo(url, dbname=database)) as db:
        query = "SELECT payload FROM ledger_entry WHERE kind = 'extract' AND run_id = %s ORDER BY seq"
        by_partition = {}
        for (payload,) in db.execute(query, (run,)):
            entry = json.loads(payload)
            by_partition[json.dumps(entry["partition"], sort_keys=True)] = entry["totals"]
    return sum(t["rows"] for totals in by_partition.values() for t in totals.values())


def attempts_by_worker(attempts: dict[str, list[Any]], run: str) -> dict[str, dict[str, int]]:
    """Per worker, how many attempts of each task of this run it logged."""
    counted = {w: Counter(a.task_id for a in tried if a.run_id == run) for w, tried in attempts.items()}
    return {w: dict(sorted(c.items())) for w, c in counted.items()}


def summarise(
    tis: list[dict[str, Any]],
    dag_run: dict[str, Any],
    rows: int,
    workers: dict[str, dict[str, int]],
    result: dict[str, Any],
    concurrency: int,
) -> dict[str, Any]:
    """The ``distributed`` object of the bench's JSON line."""
    spans = timings.stage_spans(tis)
    lacking = [timings.STAGE_TASKS[s] for s in timings.THROUGHPUT] + list(timings.DELIVERY)
    lacking = [t for t in lacking if t not in spans]
    if lacking:
        raise RuntimeError(f"the run has no timed instance of {lacking}")
    stages = {
        name: {
            "seconds": round(s["seconds"], 3),
            "task_seconds": round(s["task_seconds"], 3),
            "instances": s["instances"],
            "tries": s["tries"],
            # instances at work at once, on average over the span (2 slots: up to 2)
            "parallelism": round(s["task_seconds"] / s["seconds"], 2) if s["seconds"] > 0 else None,
            "rows_per_s": round(rows / s["seconds"], 1) if s["seconds"] > 0 else 0.0,
        }
        for name, s in timings.by_stage(spans).items()
    }
    throughput_tasks = [timings.STAGE_TASKS[s] for s in timings.THROUGHPUT]
    seconds = round(sum(spans[t]["seconds"] for t in throughput_tasks), 3)
    through = round(timings.covering(spans, throughput_tasks), 3)
    # the lightest task of the run (it reads the plan and the ledger): what any task costs before its work
    fixed = spans.get(timings.LIGHTEST, {}).get("task_seconds")
    run_seconds = (timings.timestamp(dag_run["end_date"]) - timings.timestamp(dag_run["start_date"])).total_seconds()
    return {
        "rows": rows,
        "workers": len(workers),
        "worker_concurrency": concurrency,
        "stages": stages,
        # the stages' own spans added up, as the embedded figure adds up its stages
        "seconds": seconds,
        "rows_per_s": round(rows / seconds, 1) if seconds else 0.0,
        # first extract start to last package end: the scheduler's hand-overs between the stages included
        "through_seconds": through,
        "through_rows_per_s": round(rows / through, 1) if through else 0.0,
        # the archive's part: not in rows/s (the embedded bench has no archive)
        "delivery_seconds": round(timings.covering(spans, timings.DELIVERY), 3),
        "run_seconds": round(run_seconds, 3),
        "fixed_task_seconds": round(fixed, 3) if fixed is not None else None,
        "retried": sorted(name for name, s in stages.items() if s["tries"] > 1),
        "tasks_by_worker": workers,
        # the comparison assumes both workers took a share of the stages it covers
        "idle_workers": sorted(w for w, ran in workers.items() if not set(ran) & set(throughput_tasks)),
        "verdict": result["verdict"],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
