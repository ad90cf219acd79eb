"""The production shape, for real: Celery workers that share nothing but the databases, the broker and S3.

PostgreSQL holds Airflow's metadata, the ledger and the legacy source; Redis is the broker
(a queue of this test's own); s3rver serves the object storage where staging, packages,
receipts, results, reports and evidence live. Two Celery workers each get their own empty
AIRFLOW_HOME and DECOMMISSION_HOME: a task that read a file another worker wrote locally
would fail. One demo system (``anestesi``) runs through its three milestones to a signed-off
contract exit; the test asserts that tasks ran on both workers.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from decommission.plan.mapping_spec import load_spec
from demo.generate import expected_by_reason
from devstack import celery
from devstack.celery import CeleryStack
from devstack.stack import Budget, Stack, one_system_plan
from r7sim.store import PACKAGES_DIR

pytestmark = [pytest.mark.scheduler, pytest.mark.postgres]

SYSTEM = "anestesi"
DAG_ID = f"decommission_{SYSTEM}"
RUNS = {
    "test_delivery": "milestone__test_delivery__2025-05-05",
    "production_delivery": "milestone__production_delivery__2025-09-15",
    "final_delivery": "milestone__final_delivery__2025-12-01",
}
BUDGET_S = float(os.environ.get("DECOMMISSION_DISTRIBUTED_TEST_BUDGET_S", "1200"))
PASSWORD = "user"


@dataclass
class Distributed:
    """The Celery stack plus what this test set up around it."""

    celery: CeleryStack
    plan: Path
    source_url: str
    tmp: Path

    @property
    def stack(self) -> Stack:
        return self.celery.stack


def _embedded_packages(d: Distributed, milestone: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """The same milestone's packages built in this process the embedded way: local home, local staging."""
    from decommission import embedded

    home = d.tmp / "embedded" / milestone
    monkeypatch.setenv("DECOMMISSION_HOME", str(home))
    monkeypatch.setenv("DECOMMISSION_PLAN", str(d.plan))
    monkeypatch.delenv("DECOMMISSION_STAGING", raising=False)
    monkeypatch.delenv("DECOMMISSION_ARTEFACTS", raising=False)
    ledger = {"conn_type": "sqlite", "host": str(home / "ledger.sqlite")}
    monkeypatch.setenv("AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps(ledger))
    monkeypatch.setenv(f"AIRFLOW_CONN_LEGACY_{SYSTEM.upper()}", embedded.source_connection(d.source_url, SYSTEM))
    home.mkdir(parents=True)

    from decommission import stages
    from decommission.plan.programme import load_plan

    plan = load_plan(d.plan)
    run = stages.start_run(plan, plan.system(SYSTEM), f"embedded-{milestone}", None, {"milestone": milestone})
    built = {}
    for partition in stages.plan_partitions(run):
        package = stages.package_stage(run, stages.map_stage(run, stages.extract(run, partition)))
        built[package["package_id"]] = (home / package["container"]).read_bytes()
    return built


@pytest.fixture
def distributed(request: pytest.FixtureRequest, tmp_path: Path, pg_dsn: str) -> Iterator[Distributed]:
    """The stack; ``request.param`` (indirect parametrisation) may give r7sim's arguments and a chunk size."""
    faults = getattr(request, "param", {})
    from devstack import object_storage

    missing = object_storage.available()
    if missing:
        pytest.fail(f"the distributed test needs an S3 server: {missing}")
    if not celery.redis_answers():
        pytest.skip("no Redis at 127.0.0.1:6379 (the Celery broker); on Debian: apt-get install redis-server")
    budget = Budget(BUDGET_S)
    plan = one_system_plan(tmp_path / "plan", SYSTEM)
    database = f"decommission_dist_{uuid.uuid4().hex[:8]}"
    celery.create_database(pg_dsn, database)
    source_schema = SYSTEM  # the source lives in the test's own database, schema named as the system

    from demo.generate import build
    from demo.readonly import create_reader, drop_reader

    owner_url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    reader = f"{database}_reader"
    try:
        dirt = build(SYSTEM, owner_url, seed=7, patients=20, schema=source_schema)
        # the programme reads the source through a SELECT-only login (preflight refuses one that could write)
        source_url = create_reader(owner_url, source_schema, name=reader)
        with celery.celery_stack(
            tmp_path,
            database=database,
            plan=plan,
            dag_id=DAG_ID,
            sources={f"legacy_{SYSTEM}": source_url},
            pools={f"legacy_{SYSTEM}": 1},
            budget=budget,
            dirt=dirt,
            archive_args=faults.get("archive_args", ()),
            chunk_size=faults.get("chunk_size"),
            extra_env={"DECOMMISSION_ALLOW_DEMO_KEY": "1"},
        ) as stack:
            yield Distributed(stack, plan, source_url, tmp_path)
    finally:
        drop_reader(owner_url, source_schema, name=reader)
        celery.drop_database(pg_dsn, database)


def test_celery_workers_share_nothing_but_databases_broker_and_object_storage(
    distributed: Distributed, monkeypatch: pytest.MonkeyPatch
) -> None:
    from demo.signoff import answer

    stack, budget = distributed.stack, distributed.stack.budget
    try:
        stack.open_dag()
        for milestone in ("test_delivery", "production_delivery"):
            state = stack.wait_run_end(RUNS[milestone])
            assert state == "success", f"{milestone} ended {state}"
            print(f"{budget.elapsed():5.0f} s  {RUNS[milestone]}: {state}")

        final = RUNS["final_delivery"]
        signers = (("signoff_information_owner", "verksamhetschef"), ("signoff_archivist", "regionarkivarie"))
        for task_id, user in signers:
            stack.wait_awaiting_input(final, task_id)
            response = answer(stack.api, dag_id=DAG_ID, run_id=final, task_id=task_id, username=user, password=PASSWORD)
            assert response.status_code == 200, response.text
        assert stack.wait_run_end(final) == "success"
        print(f"{budget.elapsed():5.0f} s  {final}: success")

        # tasks ran on both workers: each writes its task logs in its own AIRFLOW_HOME
        ran = {w: {(a.run_id, a.task_id) for a in tried} for w, tried in distributed.celery.attempts_logged().items()}
        print({w: len(t) for w, t in ran.items()})
        assert all(ran.values()), f"a worker ran no task: {ran}"

        # the outcome is the embedded one: the contract exit, and figures equal to the generator's dirt report
        record = json.loads(distributed.celery.stored(f"{SYSTEM}/evidence/contract-exit.json"))
        assert record["status"] == "decommissioned"
        result = json.loads(distributed.celery.stored(f"{SYSTEM}/reconciliation/final_delivery/result.json"))
        assert result["verdict"] == "PASS", result["reasons"]
        # per spec table: a source table two spec tables read counts its dirt under each
        spec = load_spec(Path(__file__).resolve().parents[2] / "include" / "mappings" / f"{SYSTEM}.yaml")
        expected = expected_by_reason(stack.dirt, spec)
        assert result["findings_by_reason"] == expected
        assert result["totals"]["source"] == result["totals"]["archived"] + result["totals"]["disposed"]

        # packages byte for byte: what the workers put in the store = what an embedded build makes
        embedded = _embedded_packages(distributed, "final_delivery", monkeypatch)
        assert embedded, "the embedded build made no package"
        for package_id, data in embedded.items():
            stored = distributed.celery.stored(f"{SYSTEM}/packages/{package_id}.tar")
            assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest(), package_id
        held = distributed.stack.archive.data_dir / PACKAGES_DIR
        for package_id, data in embedded.items():
            assert (held / f"{package_id}.tar").read_bytes() == data, f"the archive holds another {package_id}"
    except BaseException:
        print(stack.diagnostics())
        raise


FAULTS = {"archive_args": ("--drip", "chunk", "--drip-seconds", "0.01"), "chunk_size": 16 * 1024}


@pytest.mark.parametrize("distributed", [FAULTS], indirect=True, ids=["slow-uploads"])
def test_workers_killed_mid_package_and_mid_upload_and_storage_restarted(distributed: Distributed) -> None:
    """SIGKILL the worker running ``package``, restart the object storage, SIGKILL the worker mid-upload:
    each attempt is retried on a worker still alive and the delivery completes exactly once."""
    stack, budget, d = distributed.stack, distributed.stack.budget, distributed
    run_id = RUNS["test_delivery"]
    try:
        stack.open_dag()

        killed = _kill_worker_running(d, run_id, "package")
        print(f"{budget.elapsed():5.0f} s  {killed} killed while it ran package; object storage restarted")
        d.celery.s3.restart(down_s=3.0)
        killed = _kill_worker_running(d, run_id, "submit", after=lambda: _upload_started(stack))
        print(f"{budget.elapsed():5.0f} s  {killed} killed in the middle of an upload")

        state = stack.wait_run_end(run_id)
        assert state == "success", f"{run_id} ended {state}"
        stack.set_paused(True)
        tries = {
            t: stack.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{t}/0").json()["try_number"]
            for t in ("package", "submit")
        }
        assert tries["package"] >= 2 and tries["submit"] >= 2, f"the killed attempts were not retried: {tries}"

        # exactly once: the archive holds each sent package once, with the bytes the build hashed
        sent = _ledger_packages(d)
        held = sorted(p.stem for p in (stack.archive.data_dir / PACKAGES_DIR).glob("*.tar"))
        assert held == sorted(sent), (held, sent)
        for package_id, sha256 in sent.items():
            data = (stack.archive.data_dir / PACKAGES_DIR / f"{package_id}.tar").read_bytes()
            assert hashlib.sha256(data).hexdigest() == sha256, package_id
        result = json.loads(d.celery.stored(f"{SYSTEM}/reconciliation/test_delivery/result.json"))
        assert result["verdict"] == "PASS", result["reasons"]
    except BaseException:
        print(stack.diagnostics())
        raise


def _kill_worker_running(d: Distributed, run_id: str, task_id: str, after: Any = None) -> str:
    """Wait until a worker runs ``task_id`` (its log file appears there), SIGKILL that worker, start it again."""
    stack = d.stack

    def running_on() -> str | None:
        ti = stack.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/0")
        if ti.status_code != 200 or ti.json()["state"] != "running" or (after is not None and not after()):
            return None
        for worker, home in d.celery.worker_homes.items():
            logs = home.parent / "airflow" / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
            if any(logs.rglob("attempt=1.log")):
                return worker
        return None

    worker = stack.budget.wait_for(
        f"a worker to run {task_id}", running_on, interval=0.2, check=stack.processes.check_running
    )
    started = next(s for s in reversed(stack.processes.started) if s.name.split("~")[0] == worker)
    os.killpg(started.pgid, signal.SIGKILL)
    started.popen.wait(timeout=10)
    started.service = False  # killed on purpose: check_running must not take it for a crash
    restarts = sum(1 for s in stack.processes.started if s.name.split("~")[0] == worker)
    d.celery.start_worker(worker, name=f"{worker}~{restarts}")
    return worker


def _upload_started(stack: Stack) -> bool:
    """r7sim has committed at least one chunk of an upload (its log says so)."""
    return "committed" in stack.archive.log_text()


def _ledger_packages(d: Distributed) -> dict[str, str]:
    """package id -> SHA-256 of every package the ledger says was built for the test delivery."""
    import psycopg

    ledger = json.loads(d.celery.env["AIRFLOW_CONN_PROGRAMME_LEDGER"])
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{ledger['schema']}") as db:
        query = "SELECT payload FROM ledger_entry WHERE kind = 'package' AND run_id = %s"
        rows = [json.loads(r[0]) for r in db.execute(query, (RUNS["test_delivery"],))]
    return {r["package_id"]: r["sha256"] for r in rows}
