"""The distributed bench's stage times, from task instance records as the API lists them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bench import timings
from bench.distributed import attempts_by_worker, summarise
from devstack.celery import Attempt, _attempt

T0 = dt.datetime(2026, 12, 3, 18, 0, tzinfo=dt.UTC)


def ti(task_id: str, start: float | None, end: float | None, *, map_index: int = -1, state: str = "success", tries=1):
    """A task instance record: seconds after T0, written as the API writes them (ISO 8601 with ``Z``)."""

    def stamp(s: float | None) -> str | None:
        return None if s is None else (T0 + dt.timedelta(seconds=s)).isoformat().replace("+00:00", "Z")

    return {
        "task_id": task_id,
        "map_index": map_index,
        "state": state,
        "start_date": stamp(start),
        "end_date": stamp(end),
        "try_number": tries,
    }


RUN = [
    ti("preflight", 0, 4),
    ti("plan_partitions", 5, 7),
    ti("extract", 8, 14, map_index=0),
    ti("extract", 9, 20, map_index=1),
    ti("extract", 15, 19, map_index=2),
    ti("map_partition", 22, 25, map_index=0),
    ti("map_partition", 23, 27, map_index=1),
    ti("map_partition", 26, 28, map_index=2),
    ti("package", 30, 40, map_index=0),
    ti("package", 31, 42, map_index=1, tries=2),
    ti("package", 41, 45, map_index=2),
    ti("validate", 46, 50, map_index=0),
    ti("submit", 51, 55, map_index=0),
    ti("await_ingest", 56, 70),
    ti("reconcile", 71, 80),
    ti("is_final_delivery", 80, 81.5),
    ti("signoff_archivist", None, None, state="skipped"),
    ti("contract_exit", 80, 80, state="skipped"),
    ti("report", 81, None, state="running"),
]


class TestStageSpans:
    def test_a_mapped_stage_spans_its_first_start_to_its_last_end(self):
        spans = timings.stage_spans(RUN)
        assert spans["extract"]["seconds"] == 12.0  # 8 -> 20
        assert spans["extract"]["task_seconds"] == 6 + 11 + 4
        assert spans["extract"]["instances"] == 3
        assert spans["map_partition"]["seconds"] == 6.0
        assert spans["package"]["seconds"] == 15.0 and spans["package"]["tries"] == 2

    def test_only_instances_that_ran_to_an_end_count(self):
        spans = timings.stage_spans(RUN)
        assert "signoff_archivist" not in spans and "contract_exit" not in spans and "report" not in spans
        assert list(spans)[:3] == ["preflight", "plan_partitions", "extract"]  # in the order they started

    def test_an_ended_instance_without_times_is_an_error_not_a_gap(self):
        with pytest.raises(ValueError, match=r"task extract\[3\] ended success without a start and an end"):
            timings.stage_spans([ti("extract", 0, 1, map_index=0), ti("extract", None, None, map_index=3)])

    def test_an_instance_that_ends_before_it_starts_is_refused(self):
        with pytest.raises(ValueError, match="ends before it starts"):
            timings.stage_spans([ti("map_partition", 5, 4, map_index=0)])

    def test_a_time_without_a_zone_is_refused(self):
        record = ti("extract", 0, 1) | {"start_date": "2026-12-03T18:00:00"}
        with pytest.raises(ValueError, match="without a time zone"):
            timings.stage_spans([record])

    def test_covering_includes_the_gaps_between_stages(self):
        spans = timings.stage_spans(RUN)
        assert timings.covering(spans, ["extract", "map_partition", "package"]) == 37.0  # 8 -> 45
        assert timings.covering(spans, timings.DELIVERY) == 19.0  # 51 -> 70

    def test_by_stage_names_the_dag_tasks_as_the_embedded_bench_does(self):
        named = timings.by_stage(timings.stage_spans(RUN))
        assert {"extract", "map", "package", "validate", "reconcile", "submit", "await_ingest"} <= set(named)
        assert "map_partition" not in named


class TestSummary:
    def test_rows_per_second_cover_extract_map_and_package_not_the_delivery(self):
        workers = {"worker1": {"extract": 2}, "worker2": {"extract": 1}}
        run = {"start_date": ti("x", 0, 90)["start_date"], "end_date": ti("x", 0, 90)["end_date"]}
        d = summarise(RUN, run, 36_000, workers, {"verdict": "PASS"}, 1)
        assert d["seconds"] == 12 + 6 + 15
        assert d["rows_per_s"] == round(36_000 / 33, 1)
        assert d["through_seconds"] == 37 and d["through_rows_per_s"] == round(36_000 / 37, 1)
        assert d["delivery_seconds"] == 19 and d["run_seconds"] == 90
        assert d["fixed_task_seconds"] == 1.5  # the lightest task: what any task costs before its work
        assert d["retried"] == ["package"]
        assert d["stages"]["map"]["instances"] == 3 and d["workers"] == 2
        assert d["idle_workers"] == []
        assert d["stages"]["extract"]["parallelism"] == round(21 / 12, 2)  # 21 task seconds over a 12 s span

    def test_a_worker_that_ran_none_of_the_compared_stages_is_named(self):
        run = {"start_date": ti("x", 0, 1)["start_date"], "end_date": ti("x", 0, 1)["end_date"]}
        workers = {"worker1": {"extract": 3, "package": 3}, "worker2": {"preflight": 1, "submit": 2}}
        assert summarise(RUN, run, 1, workers, {"verdict": "PASS"}, 1)["idle_workers"] == ["worker2"]

    def test_a_run_without_a_timed_delivery_is_refused(self):
        run = {"start_date": ti("x", 0, 1)["start_date"], "end_date": ti("x", 0, 1)["end_date"]}
        without = [t for t in RUN if t["task_id"] != "await_ingest"]
        with pytest.raises(RuntimeError, match="no timed instance of"):
            summarise(without, run, 1, {}, {"verdict": "PASS"}, 1)


def test_a_workers_log_folder_says_which_attempts_it_ran(tmp_path: Path):
    logs = tmp_path / "dag_id=decommission_vas"
    mapped = logs / "run_id=r1" / "task_id=extract" / "map_index=1" / "attempt=2.log"
    plain = logs / "run_id=r1" / "task_id=preflight" / "attempt=1.log"
    assert _attempt(mapped, logs) == Attempt("r1", "extract", 1)
    assert _attempt(plain, logs) == Attempt("r1", "preflight", -1)
    tried = {"worker1": [Attempt("r1", "extract", 0), Attempt("r1", "extract", 1), Attempt("r0", "extract", 0)]}
    assert attempts_by_worker(tried, "r1") == {"worker1": {"extract": 2}}
