"""``make bench`` at a toy size: it runs every stage and its last line is the JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres


def test_bench_prints_its_summary_last(pg_dsn):
    import psycopg

    schema = f"scale_bench_test_{os.getpid()}"
    cmd = [sys.executable, "-m", "bench.run", "--rows", "3000", "--url", pg_dsn, "--schema", schema]
    cmd += ["--per-partition", "100"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["rows"] > summary["notes"] > 2000
    assert set(summary["stages"]) == {"extract", "map", "package", "validate", "reconcile_partition", "reconcile"}
    assert all(s["rows_per_s"] > 0 for s in summary["stages"].values())
    # the reconciliation as the DAG runs it: the partitions' tasks, then the one adding them up
    reconciling = summary["rows"] / (summary["reconcile_rows_per_s"])
    parts = [summary["rows"] / summary["stages"][s]["rows_per_s"] for s in ("reconcile_partition", "reconcile")]
    assert reconciling == pytest.approx(sum(parts), rel=1e-3)
    assert summary["ratio"] == pytest.approx(summary["rows_per_s"] / summary["copy_rows_per_s"], abs=1e-4)
    assert summary["seconds_with_validation"] > summary["seconds"]
    assert summary["ratio_with_validation"] < summary["ratio"]
    assert summary["partitions"] > 1 and summary["workers"] == 2
    # the SIARD part holds every extracted row but the disposed ones; taking it off cannot slow the run
    assert summary["siard_rows"] == summary["rows"] - summary["disposed"]
    assert summary["ratio_without_siard"] >= summary["ratio"]
    assert 0 < summary["peak_rss_one_process_mb"] <= summary["peak_rss_mb"]
    with psycopg.connect(pg_dsn) as db:  # the bench removes its schema
        assert db.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()[0] == 0
