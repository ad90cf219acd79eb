"""The bench's pipeline: the DAG's own task functions, run as its mapped tasks would run them.

``plan_partitions``, then every ``extract``, then every ``map``, then every ``package``
(``stages.package_stage``: ``sip.build_package``, hashing as it writes), then every
``validate`` (``stages.validate_stage``: the DAG's gate before delivery), each stage in its
own pool of worker processes as wide as the source's pool (``max_connections``), so the
peak memory measured is the pipeline's (the sum over its live worker processes, sampled)
and not the database generator's. Workers import their modules before the clock starts,
as a warm Airflow worker would have.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psutil

SYSTEM = "vas"
RUN_ID = "bench"
LOGICAL_DATE = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
_RUN: Any = None


def write_plan(repo: Path, work: Path, *, conn_id: str, schema: str, per_partition: int, slots: int) -> Path:
    """A one-system plan: the demo's VAS entry, pointed at the bench database."""
    import shutil

    import yaml

    raw = yaml.safe_load((repo / "include" / "programme.yaml").read_text(encoding="utf-8"))
    raw["systems"] = [s for s in raw["systems"] if s["id"] == SYSTEM]
    system = raw["systems"][0]
    system["source"] = {"conn_id": conn_id, "schema": schema, "max_connections": slots}
    system["partition_patients"] = per_partition
    (work / "include" / "mappings").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(repo / "include" / "mappings" / "vas.yaml", work / "include" / "mappings" / "vas.yaml")
    # the spec names its correction list, a file under its own folder
    shutil.copytree(repo / "include" / "mappings" / "corrections", work / "include" / "mappings" / "corrections")
    path = work / "include" / "programme.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# ------------------------------------------------------------------ in the worker processes


def _run() -> Any:
    global _RUN
    if _RUN is None:
        from decommission.plan.programme import Milestone, load_plan
        from decommission.stages import Run

        plan = load_plan(os.environ["DECOMMISSION_PLAN"])
        _RUN = Run(plan, plan.system(SYSTEM), Milestone.TEST_DELIVERY, RUN_ID, LOGICAL_DATE)
    return _RUN


def warm(pause: float) -> int:
    """Import what the tasks import, then hold the worker so the other one gets a warm-up too."""
    import adbc_driver_postgresql.dbapi  # noqa: F401
    from airflow.sdk import BaseHook, ObjectStoragePath  # noqa: F401

    from decommission import stages  # noqa: F401
    from decommission.mapping import transform as mapping  # noqa: F401
    from decommission.package import sip  # noqa: F401
    from decommission.validate import validator as validate  # noqa: F401

    _run()
    time.sleep(pause)
    return os.getpid()


def task(stage: str, arg: Any) -> tuple[Any, float, float]:
    """One task instance: the stage function of ``decommission.stages``, its duration and CPU time."""
    from decommission import stages

    run = _run()
    started, cpu = time.perf_counter(), time.process_time()
    if stage == "plan_partitions":
        out = stages.plan_partitions(run)
    elif stage == "extract":
        out = stages.extract(run, arg)
    elif stage == "map":
        out = stages.map_stage(run, arg)
    elif stage == "package":
        out = stages.package_stage(run, arg)
    elif stage == "reconcile_partition":
        out = stages.reconcile_partition(run, arg)
    elif stage == "reconcile":
        out = reconcile_rows(run, *arg)
    else:
        out = stages.validate_stage(run, arg)
    return out, time.perf_counter() - started, time.process_time() - cpu


def reconcile_rows(run: Any, partition_ids: list[str], package_ids: list[str]) -> int:
    """The reconcile task's work that grows with the rows: the source counted again within the cut-off,
    and the breakdown (the ``reconcile_partition`` tasks' tallies added up, the packages' digests from
    the validation gate: years, units, patients, fingerprints). The archive's part (receipts, fixity,
    the read-back sample) is per package or per sampled patient, not per row, and needs an archive:
    not measured here."""
    from decommission.reconcile.breakdown import kept_tallies, reconcile_breakdown
    from decommission.source.database import Source

    counts = Source.for_system(run.system).count_rows(run.spec, run.system.agreement.cut_off)
    tallies = kept_tallies(run, partition_ids)
    if sorted(tallies) != sorted(partition_ids):  # the bench measures the run as the DAG makes it
        raise RuntimeError(f"tallies of {sorted(tallies)} kept, partitions {sorted(partition_ids)}")
    breakdown = reconcile_breakdown(run, partition_ids, package_ids, tallies)
    differ = [t for t, f in breakdown["fingerprints"].items() if f["source"] != f["package"]]
    if differ:  # the bench refuses to report a run that does not reconcile
        raise RuntimeError(f"fingerprints differ for {differ}")
    return sum(counts.values())


# ------------------------------------------------------------------ in the parent


class MemorySampler:
    """Peak of the summed resident set of this process's children (the workers), sampled."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak_sum = 0
        self.peak_one = 0
        self.stage_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    rss = child.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                self.peak_one = max(self.peak_one, rss)
            self.peak_sum = max(self.peak_sum, total)
            self.stage_peak = max(self.stage_peak, total)
            self._stop.wait(self.interval)


def run_stage(
    stage: str, args: list[Any], workers: int, log: Any, memory: MemorySampler
) -> tuple[list[Any], dict[str, float]]:
    """Run one stage's task instances on ``workers`` fresh processes; wall time excludes their start."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        t0 = time.perf_counter()
        list(pool.map(warm, [0.5] * workers))
        warm_s = time.perf_counter() - t0
        memory.stage_peak = 0
        started = time.perf_counter()
        futures = [pool.submit(task, stage, a) for a in args]
        results = [f.result() for f in futures]
        wall = time.perf_counter() - started
    busy = sum(s for _, s, _ in results)
    cpu = sum(c for _, _, c in results)
    peak = memory.stage_peak / 2**20
    log(
        f"{stage}: {len(args)} task(s) in {wall:.2f} s on {workers} worker(s) "
        f"(task time {busy:.2f} s, of it CPU in the workers {cpu:.2f} s; peak {peak:.0f} MB)"
    )
    timing = {"seconds": wall, "task_seconds": busy, "cpu_seconds": cpu, "start_seconds": warm_s, "peak_mb": peak}
    return [r for r, _, _ in results], timing


def _children_maxrss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def pipeline(workers: int, log: Any, *, until: str = "package") -> dict[str, Any]:
    """plan_partitions -> extract[p] -> map[p] -> package[p] -> validate[p], stage after stage as the DAG's.

    :param until: the last stage to run (``extract`` ... ``validate``; ``reconcile`` for a full bench).
    """
    timings: dict[str, dict[str, float]] = {}
    with MemorySampler() as memory:
        (partitions,), timings["plan_partitions"] = run_stage("plan_partitions", [None], 1, log, memory)
        extracted, timings["extract"] = run_stage("extract", partitions, workers, log, memory)
        mapped, packages = [], []
        if until in ("map", "package", "validate", "reconcile"):
            mapped, timings["map"] = run_stage("map", extracted, workers, log, memory)
        if until in ("package", "validate", "reconcile"):
            packages, timings["package"] = run_stage("package", mapped, workers, log, memory)
        if until in ("validate", "reconcile"):
            _, timings["validate"] = run_stage("validate", packages, workers, log, memory)
        if until == "reconcile":
            # as in the DAG: a task per partition counts its rows again, then one task adds them up
            _, timings["reconcile_partition"] = run_stage("reconcile_partition", mapped, workers, log, memory)
            pids = [p["id"] for p in partitions]
            (_counted,), timings["reconcile"] = run_stage(
                "reconcile", [(pids, [p["package_id"] for p in packages])], 1, log, memory
            )
    one = max(memory.peak_one / 2**20, _children_maxrss_mb())
    rows = sum(sum(e["rows"].values()) for e in extracted)
    notes = sum(e["rows"].get("journalanteckning", 0) for e in extracted)
    disposed = sum(sum(sum(r.values()) for r in m["disposed"].values()) for m in mapped)
    flagged = sum(sum(sum(r.values()) for r in m["flagged"].values()) for m in mapped)
    mapped_rows = sum(sum(m["mapped"].values()) for m in mapped)
    if mapped and mapped_rows + disposed != rows:  # nothing lost: the bench refuses to report a leaky run
        raise RuntimeError(f"extracted {rows} rows but archived {mapped_rows} + disposed {disposed}")
    return {
        "rows": rows,
        "notes": notes,
        "mapped": mapped_rows,
        "flagged": flagged,
        "disposed": disposed,
        "partitions": len(partitions),
        "packages": len(packages),
        "package_bytes": sum(p["size"] for p in packages),
        "raw_rows": sum(sum(p.get("raw_rows", {}).values()) for p in packages),
        "raw_task_seconds": sum(p.get("raw_seconds", 0.0) for p in packages),
        "timings": timings,
        # the summed workers, sampled; never below the kernel's own peak of the largest worker
        "peak_rss_mb": round(max(memory.peak_sum / 2**20, one), 1),
        "peak_rss_one_process_mb": round(one, 1),
    }
