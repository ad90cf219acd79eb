"""``make bench``: extraction, mapping and packaging at scale, against a raw ``COPY ... TO STDOUT``.

Builds a VAS-like demo database in a dedicated PostgreSQL schema (about ``--rows``
journal notes), measures a raw ``COPY (SELECT <mapped columns> ...) TO STDOUT`` of every
table the mapping reads, then runs the same functions the DAG runs (``Source.extract_partition``,
``map_partition``, ``sip.build_package``) over every partition in one fresh process, so its
peak resident set is the pipeline's alone. Progress goes to stderr; the last stdout line
is one JSON object with counts and rates only (no patient data). The schema and the
temporary folder are removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
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


def measure_copy(url: str, schema: str) -> dict[str, Any]:
    """Raw ``COPY (SELECT <the columns the mapping reads> FROM <table>) TO STDOUT``, blocks discarded."""
    import psycopg
    from psycopg import sql

    from decommission.mapping_spec import load_spec

    spec = load_spec(SPEC_PATH)
    runs = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")  # the same statistics for COPY and for the pipeline's queries
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


def run_pipeline_process(url: str, schema: str, per_partition: int, work: Path) -> dict[str, Any]:
    """The pipeline in a fresh interpreter: its ru_maxrss is the pipeline's peak, not the generator's."""
    from decommission.embedded import source_connection

    env = dict(os.environ)
    env.update(
        {
            f"AIRFLOW_CONN_{CONN_ID.upper()}": source_connection(url, None),
            "AIRFLOW_HOME": str(work / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(work / "no-dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{work / 'airflow' / 'airflow.db'}",
            "DECOMMISSION_HOME": str(work / "home"),
            "PYTHONPATH": os.pathsep.join([str(PLUGINS), str(REPO), env.get("PYTHONPATH", "")]),
        }
    )
    cmd = [sys.executable, "-m", "bench.run", "--pipeline", "--schema", schema]
    cmd += ["--per-partition", str(per_partition), "--work", str(work)]
    done = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the pipeline process failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ child: the pipeline


def pipeline(schema: str, per_partition: int, work: Path) -> dict[str, Any]:
    """Extract, map and package every partition with the product's functions, timing each stage."""
    from decommission import staging
    from decommission.mapping import map_partition
    from decommission.mapping_spec import load_spec
    from decommission.sip import PackageContext, build_package
    from decommission.source import Source, make_partitions

    spec = load_spec(SPEC_PATH)
    source = Source(CONN_ID, schema=schema)
    docs = work / "documentation"
    docs.mkdir(parents=True, exist_ok=True)
    mapping_doc = docs / "mapping-spec.yaml"
    shutil.copyfile(SPEC_PATH, mapping_doc)
    description = docs / "system-description.txt"
    description.write_text("Benchmark VAS (synthetic)\n", encoding="utf-8")
    context = PackageContext(
        system_id="vas",
        system_name="VAS (bench)",
        region_name="Region Bench",
        region_id="SE0000000000",
        archive_name="R7 e-Arkiv",
        submitter_name="Region Bench",
        agreement_id="BENCH-1",
        record_status="TEST",
        created=dt.datetime.combine(CUT_OFF, dt.time(23, 59, 59), tzinfo=dt.UTC),
        documentation=(mapping_doc, description),
    )

    started = time.perf_counter()
    keys = source.patient_keys(spec)
    partitions = make_partitions(keys, per_partition)
    plan_seconds = time.perf_counter() - started
    log(f"{len(keys)} patients in {len(partitions)} partitions of {per_partition} ({plan_seconds:.2f} s)")

    seconds = {"extract": 0.0, "map": 0.0, "package": 0.0}
    rows = 0
    notes = 0
    packaged_bytes = 0
    for number, part in enumerate(partitions, 1):
        extract_dir = work / "staging" / "extract" / part.id
        mapped_dir = work / "staging" / "mapped" / part.id
        package_dir = work / "packages"
        extract_dir.mkdir(parents=True)

        t0 = time.perf_counter()
        totals = source.extract_partition(
            spec, part, CUT_OFF, lambda table, d=extract_dir: (d / f"{table}.parquet").open("wb")
        )
        t1 = time.perf_counter()
        map_partition(spec, lambda table, d=extract_dir: staging.read_frame(d / f"{table}.parquet"), mapped_dir)
        t2 = time.perf_counter()
        files = {p.stem: p for p in mapped_dir.glob("*.parquet") if p.stem != "quarantine"}
        result = build_package(mapped=files, context=context, partition_id=part.id, out_dir=package_dir)
        t3 = time.perf_counter()

        seconds["extract"] += t1 - t0
        seconds["map"] += t2 - t1
        seconds["package"] += t3 - t2
        part_rows = sum(v["rows"] for v in totals.values())
        rows += part_rows
        notes += totals["journalanteckning"]["rows"]
        packaged_bytes += result.size
        # outputs stay where the stage wrote them, as in a DAG run (removed with the work folder)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        log(
            f"partition {number}/{len(partitions)}: {part_rows} rows, extract {t1 - t0:.2f} s, "
            f"map {t2 - t1:.2f} s, package {t3 - t2:.2f} s, peak RSS so far {rss:.0f} MB"
        )

    total = plan_seconds + sum(seconds.values())
    return {
        "rows": rows,
        "notes": notes,
        "seconds": round(total, 3),
        "plan_seconds": round(plan_seconds, 3),
        "stages": {k: {"seconds": round(v, 3), "rows_per_s": _rate(rows, v)} for k, v in seconds.items()},
        "partitions": len(partitions),
        "patients": len(keys),
        "package_bytes": packaged_bytes,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


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
    parser.add_argument("--per-partition", type=int, default=500, help="patients per partition")
    parser.add_argument("--pipeline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    _paths()

    if args.pipeline:  # the child process: environment and database are ready
        print(json.dumps(pipeline(args.schema, args.per_partition, args.work)), flush=True)
        return 0

    work = Path(tempfile.mkdtemp(prefix="decommission-bench-"))
    try:
        build_database(args.url, args.schema, args.rows)
        copy = measure_copy(args.url, args.schema)
        log(f"COPY (median of {COPY_REPEATS}): {copy['rows_per_s']:.0f} rows/s")
        log("running extract -> map -> package over every partition in a fresh process")
        result = run_pipeline_process(args.url, args.schema, args.per_partition, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        try:
            drop_schema(args.url, args.schema)
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the real error
            log(f"could not drop schema {args.schema}: {type(exc).__name__}")
    rows_per_s = _rate(result["rows"], result["seconds"])
    stages = result["stages"]
    slowest = max(stages, key=lambda s: stages[s]["seconds"])
    log(
        f"pipeline {result['rows']} rows in {result['seconds']:.1f} s ({rows_per_s:.0f} rows/s); "
        f"slowest stage: {slowest} ({stages[slowest]['seconds']:.1f} s); peak RSS {result['peak_rss_mb']} MB"
    )
    summary = {
        "rows": result["rows"],
        "notes": result["notes"],
        "seconds": result["seconds"],
        "rows_per_s": rows_per_s,
        "copy_rows_per_s": copy["rows_per_s"],
        "ratio": round(rows_per_s / copy["rows_per_s"], 4) if copy["rows_per_s"] else 0.0,
        "peak_rss_mb": result["peak_rss_mb"],
        "stages": stages,
        "partitions": result["partitions"],
        "patients": result["patients"],
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
