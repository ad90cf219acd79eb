"""Stage times of a real DAG run, from its task instances' start and end (pure functions, no Airflow).

A stage of the DAG is one task id, mapped over the partitions: its wall time is the first
instance's start to the last one's end, as the embedded bench's stage is its first task's
start to its last task's end. ``task_seconds`` adds up what each instance took (the embedded
bench's ``task_seconds``). The API lists a task instance's last try only: a stage whose
``tries`` exceed 1 was retried and its span misses the failed attempts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

#: the embedded bench's stage -> the DAG's task id that does the same work
STAGE_TASKS = {
    "extract": "extract",
    "map": "map_partition",
    "package": "package",
    "validate": "validate",
    "reconcile_partition": "reconcile_partition",
    "reconcile": "reconcile",
}
#: what the rows/s of the issue covers (extraction, mapping, packaging with SHA-256)
THROUGHPUT = ("extract", "map", "package")
#: the archive's part of a run (upload, the archive's ingest, its receipts): outside the comparison
DELIVERY = ("submit", "await_ingest")
#: the run's lightest task (a short-circuit reading the plan and the ledger): a task's fixed cost on a worker
LIGHTEST = "is_final_delivery"
#: states of an instance that ran to its end
ENDED = {"success", "failed", "up_for_retry"}


def timestamp(value: Any) -> dt.datetime:
    """An API timestamp (ISO 8601, ``Z`` or an offset) or a datetime, as an aware datetime."""
    stamp = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    return stamp


def stage_spans(task_instances: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per task id: first start, last end, wall seconds between them, summed instance seconds, instances, tries.

    Only instances that ran to an end count (success, failed, up_for_retry): skipped, removed
    or unfinished ones are left out. One that ended without both a start and an end is an
    error, not a gap in the figures. The spans come in the order the tasks started.

    :param task_instances: records with ``task_id``, ``state``, ``start_date``, ``end_date`` and
        optionally ``map_index`` and ``try_number`` (the API's task instance fields)
    """
    spans: dict[str, dict[str, Any]] = {}
    for ti in task_instances:
        if ti.get("state") not in ENDED:  # skipped ones carry a start and an end too, but did nothing
            continue
        start, end = ti.get("start_date"), ti.get("end_date")
        if start is None or end is None:
            raise ValueError(
                f"task {ti['task_id']}[{ti.get('map_index', -1)}] ended {ti['state']} without a start and an end"
            )
        first, last = timestamp(start), timestamp(end)
        if last < first:
            raise ValueError(f"task {ti['task_id']}[{ti.get('map_index', -1)}] ends before it starts")
        span = spans.setdefault(
            ti["task_id"], {"start": first, "end": last, "task_seconds": 0.0, "instances": 0, "tries": 0, "states": {}}
        )
        span["start"] = min(span["start"], first)
        span["end"] = max(span["end"], last)
        span["task_seconds"] += (last - first).total_seconds()
        span["instances"] += 1
        span["tries"] = max(span["tries"], int(ti.get("try_number") or 1))
        state = str(ti.get("state"))
        span["states"][state] = span["states"].get(state, 0) + 1
    for span in spans.values():
        span["seconds"] = (span["end"] - span["start"]).total_seconds()
    return dict(sorted(spans.items(), key=lambda item: item[1]["start"]))


def covering(spans: Mapping[str, Mapping[str, Any]], task_ids: Iterable[str]) -> float:
    """Wall seconds from the first start to the last end over these tasks (the gaps between them included)."""
    chosen = [spans[t] for t in task_ids]
    return (max(s["end"] for s in chosen) - min(s["start"] for s in chosen)).total_seconds()


def by_stage(spans: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The spans under the embedded bench's stage names where one matches, the DAG's task id otherwise."""
    names = {task: stage for stage, task in STAGE_TASKS.items()}
    return {names.get(task, task): span for task, span in spans.items()}
