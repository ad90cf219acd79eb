"""``make bench``: extraction, mapping and packaging at scale, against a raw ``COPY ... TO STDOUT``.

Builds a VAS-like demo database in a dedicated PostgreSQL schema (about ``--rows``
journal notes), measures a raw ``COPY (SELECT <mapped columns> ...) TO STDOUT`` of every
table the mapping reads, then runs the DAG's own task functions (``stages.plan_partitions``,
``extract``, ``map_stage``, ``package_stage``, then ``validate_stage``) over a one-system plan
pointed at that database, stage after stage, each stage on as many worker processes as the source's pool
has slots (:mod:`bench.pipeline`). Progress goes to stderr; the last stdout line is one
JSON object with counts and rates only (no patient data): ``ratio`` covers extraction,
mapping and packaging with SHA-256; ``ratio_with_validation`` adds the validation gate. The schema and the temporary
folder are removed at the end, also on failure.

``--distributed`` then runs the system's real DAG (its test delivery) on two Celery workers with
staging and artefacts on an S3 server (:mod:`bench.distributed`) and adds its stage times and
rows/s to the JSON line as ``distributed``; it fails before building anything if Redis or the
S3 server is missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PLUGINS = REPO / "plugins"
SPEC_PATH = REPO / "include" / "mappings" / "vas.yaml"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_vas"
CONN_ID = "bench_pg"
CUT_OFF = dt.date(2024, 9, 30)
#: journal notes per patient the VAS generator writes (seed 7: 10.08 at 19 646 patients, 10.05 at 196 464)
NOTES_PER_PATIENT = 10.05
COPY_REPEATS = 3


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _paths() -> None:
    for p in (str(REPO), str(PLUGINS)):
        if p not in sys.path:
            sys.path.insert(0, p)


def _rate(rows: int, seconds: float) -> float:
    return round(rows / seconds, 1) if seconds > 0 else 0.0


# ------------------------------------------------------------------ parent: build + COPY


def build_database(url: str, schema: str, rows: int) -> dict[str, Any]:
    from demo.generate import MIN_PATIENTS, build

    patients = max(MIN_PATIENTS, round(rows / NOTES_PER_PATIENT))
    log(f"building a VAS-like database: {patients} patients in schema {schema} (target {rows} notes)")
    started = time.perf_counter()
    report = build("vas", url, seed=7, patients=patients, schema=schema)
    tables = report["tables"]
    log(
        f"built in {time.perf_counter() - started:.1f} s: {tables['journalanteckning']} notes, "
        f"{sum(tables.values())} rows in {len(tables)} tables"
    )
    return report


def settle(conn: Any, schema: str, tables: list[str]) -> None:
    """Bring the fresh database to rest, as a legacy system's is: statistics, hint bits and the
    visibility map set (VACUUM ANALYZE), the load's dirty pages written (CHECKPOINT). Otherwise
    the first reader sets the hint bits and the checkpointer flushes gigabytes in the middle of
    whatever runs next: the same statistics and the same quiet for COPY and for the pipeline."""
    import psycopg
    from psycopg import sql

    for table in tables:
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))
    try:
        conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        log("CHECKPOINT needs superuser or pg_checkpoint: the load's pages are flushed whenever PostgreSQL likes")


def measure_copy(url: str, schema: str) -> dict[str, Any]:
    """Raw ``COPY (SELECT <the columns the mapping reads> FROM <table>) TO STDOUT``, blocks discarded."""
    import psycopg
    from psycopg import sql

    from decommission.plan.mapping_spec import load_spec

    spec = load_spec(SPEC_PATH)
    runs = []
    with psycopg.connect(url, autocommit=True) as conn:
        settle(conn, schema, [spec.source_table(name) for name in spec.tables])
        for attempt in range(COPY_REPEATS):
            rows = 0
            nbytes = 0
            started = time.perf_counter()
            for name, table in spec.tables.items():
                query = sql.SQL("COPY (SELECT {} FROM {}.{}) TO STDOUT").format(
                    sql.SQL(", ").join(sql.Identifier(c) for c in table.columns()),
                    sql.Identifier(schema),
                    sql.Identifier(spec.source_table(name)),
                )
                with conn.cursor() as cur, cur.copy(query) as copy:
                    for block in copy:
                        nbytes += len(block)
                    rows += cur.rowcount
            seconds = time.perf_counter() - started
            runs.append((seconds, rows, nbytes))
            log(f"COPY run {attempt + 1}: {rows} rows, {nbytes / 1e6:.0f} MB in {seconds:.2f} s")
    seconds, rows, nbytes = sorted(runs)[len(runs) // 2]  # the median run
    return {"rows": rows, "bytes": nbytes, "seconds": seconds, "rows_per_s": _rate(rows, seconds)}


def pipeline_env(url: str, work: Path, plan: Path) -> dict[str, str]:
    """The environment of the worker processes: an Airflow connection to the bench database, a ledger."""
    from decommission.embedded import source_connection

    env = {
        f"AIRFLOW_CONN_{CONN_ID.upper()}": source_connection(url, None),
        "AIRFLOW_CONN_PROGRAMME_LEDGER": json.dumps({"conn_type": "sqlite", "host": str(work / "ledger.sqlite")}),
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(work / "no-dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{work / 'airflow' / 'airflow.db'}",
        "DECOMMISSION_HOME": str(work / "home"),
        "DECOMMISSION_PLAN": str(plan),
        "DECOMMISSION_HASH_KEY": secrets.token_hex(32),  # a real (throwaway) key, as production has
        "PYTHONPATH": os.pathsep.join([str(PLUGINS), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    (work / "airflow").mkdir(parents=True, exist_ok=True)
    return env


# ------------------------------------------------------------------ entry point


def drop_schema(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="journal notes to generate (about)")
    parser.add_argument("--url", default=os.environ.get("BENCH_PG", DEFAULT_URL), help="PostgreSQL URL")
    parser.add_argument("--schema", default=SCHEMA, help="schema for the bench database (dropped at the end)")
    # a task has a fixed cost (a connection, a snapshot, the ledger, files swapped into place);
    # 6 000 patients (about 60 000 notes) make it small, while packaging still holds only
    # partition.CHUNK_PATIENTS of them in memory at a time
    parser.add_argument("--per-partition", type=int, default=6000, help="patients per partition (package)")
    parser.add_argument("--workers", type=int, default=2, help="the source pool's slots: tasks at once per stage")
    parser.add_argument(
        "--until",
        choices=("extract", "map", "package", "validate", "reconcile"),
        default="reconcile",
        help="last stage (partial runs: dev only)",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="then run the DAG on two Celery workers with S3 staging (needs Redis and `make s3-server`)",
    )
    parser.add_argument("--worker-concurrency", type=int, default=1, help="task slots of each Celery worker")
    parser.add_argument("--budget", type=float, default=3600.0, help="seconds the distributed run may take at most")
    args = parser.parse_args(argv)
    _paths()
    from bench.pipeline import pipeline, write_plan

    if args.distributed:
        from bench.distributed import missing

        lacks = missing()
        if lacks:  # before the long build, never a silent skip
            parser.exit(2, "make bench: the distributed mode cannot run here: " + "; ".join(lacks) + "\n")
        if args.until != "reconcile":
            parser.error("--distributed compares whole runs: leave --until at reconcile")
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="decommission-bench-"))
    distributed = None
    try:
        build_database(args.url, args.schema, args.rows)
        copy = measure_copy(args.url, args.schema)
        log(f"COPY (median of {COPY_REPEATS}): {copy['rows_per_s']:.0f} rows/s")
        plan = write_plan(
            REPO, work, conn_id=CONN_ID, schema=args.schema, per_partition=args.per_partition, slots=args.workers
        )
        os.environ.update(pipeline_env(args.url, work, plan))
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # warm workers use cached bytecode, as installed ones do
        log(f"running the DAG's tasks stage by stage, {args.workers} worker processes per stage")
        result = pipeline(args.workers, log, until=args.until)
        load_after = os.getloadavg()
        if args.distributed:
            distributed = run_distributed(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        try:
            drop_schema(args.url, args.schema)
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the real error
            log(f"could not drop schema {args.schema}: {type(exc).__name__}")
    rows = result["rows"]
    timings = result["timings"]
    # the scope: extraction, mapping and packaging with SHA-256; validation is reported beside it,
    # the reconciliation (its per-partition tasks, then the one adding them up) on its own line
    reconciling = ("reconcile_partition", "reconcile")
    seconds = round(sum(t["seconds"] for name, t in timings.items() if name not in ("validate", *reconciling)), 3)
    rows_per_s = _rate(rows, seconds)
    with_validation = round(sum(t["seconds"] for name, t in timings.items() if name not in reconciling), 3)
    # the reconciliation as the DAG runs it: the partitions' tallies side by side, then the task adding them up
    reconcile_s = sum(timings[name]["seconds"] for name in reconciling if name in timings)
    # the SIARD part's share: its task time spread over the package stage's workers (the tasks run side by side)
    raw_wall = min(result["raw_task_seconds"] / max(1, args.workers), timings.get("package", {}).get("seconds", 0.0))
    without_siard = round(seconds - raw_wall, 3)
    stages = {
        name: {
            "seconds": round(t["seconds"], 3),
            "task_seconds": round(t["task_seconds"], 3),
            "rows_per_s": _rate(rows, t["seconds"]),
            "rows_per_task_s": _rate(rows, t["task_seconds"]),
            "rows_per_cpu_s": _rate(rows, t["cpu_seconds"]),
        }
        for name, t in timings.items()
        if name != "plan_partitions"
    }
    for name, st in stages.items():
        log(f"{name:8s} {st['seconds']:8.2f} s  {st['rows_per_s']:10.0f} rows/s")
    log(f"pipeline {rows} rows in {seconds:.1f} s ({rows_per_s:.0f} rows/s); peak RSS {result['peak_rss_mb']} MB")
    log(f"with validation {with_validation:.1f} s ({_rate(rows, with_validation):.0f} rows/s)")
    if reconcile_s:
        log(
            f"reconciliation {reconcile_s:.2f} s ({_rate(rows, reconcile_s):.0f} rows/s; "
            f"the map stage {stages['map']['rows_per_s']:.0f} rows/s)"
        )
    log(
        f"SIARD part: {result['raw_rows']} rows, {result['raw_task_seconds']:.1f} s of package task time; "
        f"without it about {without_siard:.1f} s ({_rate(rows, without_siard):.0f} rows/s)"
    )
    summary = {
        "rows": rows,
        "notes": result["notes"],
        "seconds": seconds,
        "rows_per_s": rows_per_s,
        "copy_rows_per_s": copy["rows_per_s"],
        "ratio": round(rows_per_s / copy["rows_per_s"], 4) if copy["rows_per_s"] else 0.0,
        "ratio_without_siard": round(_rate(rows, without_siard) / copy["rows_per_s"], 4) if copy["rows_per_s"] else 0.0,
        "siard_rows": result["raw_rows"],
        "siard_task_seconds": round(result["raw_task_seconds"], 3),
        "seconds_with_validation": with_validation,
        "ratio_with_validation": round(_rate(rows, with_validation) / copy["rows_per_s"], 4)
        if copy["rows_per_s"]
        else 0.0,
        "peak_rss_mb": result["peak_rss_mb"],
        "peak_rss_one_process_mb": result["peak_rss_one_process_mb"],
        "stages": stages,
        "reconcile_rows_per_s": _rate(rows, reconcile_s),
        "plan_seconds": round(timings["plan_partitions"]["seconds"], 3),
        "workers": args.workers,
        "until": args.until,
        "partitions": result["partitions"],
        "flagged": result["flagged"],
        "disposed": result["disposed"],
        "package_bytes": result["package_bytes"],
        "load_average": [round(x, 2) for x in (*load_before, *load_after)],
    }
    if distributed is not None:
        if distributed["rows"] != rows:  # the same database at rest: both must read every row once
            raise RuntimeError(f"the distributed run extracted {distributed['rows']} rows, the embedded one {rows}")
        summary["distributed"] = distributed | {"embedded_rows_per_s": rows_per_s}
        report_distributed(summary)
    print(json.dumps(summary), flush=True)
    return 0


def run_distributed(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The DAG's test delivery on the Celery stack, over the same database (see :mod:`bench.distributed`)."""
    from bench import distributed
    from bench.pipeline import write_plan

    folder = work / "distributed"
    plan = write_plan(
        REPO, folder, conn_id=CONN_ID, schema=args.schema, per_partition=args.per_partition, slots=args.workers
    )
    return distributed.measure(
        url=args.url,
        schema=args.schema,
        conn_id=CONN_ID,
        plan=plan,
        work=folder / "stack",
        slots=args.workers,
        concurrency=args.worker_concurrency,
        budget_s=args.budget,
        log=log,
    )


def report_distributed(summary: dict[str, Any]) -> None:
    """Stage by stage, embedded beside distributed (progress on stderr, as the rest)."""
    d = summary["distributed"]
    log(f"{'stage':18s} {'embedded s':>10s} {'(task s)':>9s} {'distributed s':>13s} {'(task s)':>9s} {'at once':>7s}")
    for name, st in d["stages"].items():
        embedded = summary["stages"].get(name)
        shown = f"{embedded['seconds']:10.2f} {embedded['task_seconds']:9.2f}" if embedded else f"{'-':>10s} {'':9s}"
        at_once = f"{st['parallelism']:7.2f}" if st["parallelism"] is not None else f"{'-':>7s}"
        log(f"{name:18s} {shown} {st['seconds']:13.2f} {st['task_seconds']:9.2f} {at_once}")
    log(
        f"extract+map+package: embedded {summary['rows_per_s']:.0f} rows/s, distributed {d['rows_per_s']:.0f} rows/s "
        f"(stage spans added up), {d['through_rows_per_s']:.0f} rows/s first extract to last package"
    )
    log(f"delivery (submit, await_ingest; not in rows/s) {d['delivery_seconds']:.1f} s; run {d['run_seconds']:.1f} s")
    log(f"a task's fixed cost on a worker (is_final_delivery): {d['fixed_task_seconds']} s")
    log(f"tasks by worker: {d['tasks_by_worker']}; retried: {d['retried'] or 'none'}; verdict {d['verdict']}")
    if d["idle_workers"]:
        log(f"NOTE: {d['idle_workers']} ran no extract, map or package task: these figures are one worker's")


if __name__ == "__main__":
    sys.exit(main())
