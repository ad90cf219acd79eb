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
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from decommission.plan.mapping_spec import load_spec
from demo.generate import expected_by_reason
from r7sim.process import R7SimServer, free_port
from r7sim.store import PACKAGES_DIR
from tests import object_storage
from tests.airflow_processes import AirflowProcesses
from tests.airflow_stack import Budget, Stack, airflow_service_settings, interrupt, one_system_plan

pytestmark = [pytest.mark.scheduler, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
SYSTEM = "anestesi"
DAG_ID = f"decommission_{SYSTEM}"
RUNS = {
    "test_delivery": "milestone__test_delivery__2025-05-05",
    "production_delivery": "milestone__production_delivery__2025-09-15",
    "final_delivery": "milestone__final_delivery__2025-12-01",
}
WORKERS = ("worker1", "worker2")
BUDGET_S = float(os.environ.get("DECOMMISSION_DISTRIBUTED_TEST_BUDGET_S", "1200"))
PASSWORD = "user"


@dataclass
class Distributed:
    """The stack plus what only the distributed shape has."""

    stack: Stack
    s3: object_storage.S3Server
    env: dict[str, str]
    worker_homes: dict[str, Path]
    plan: Path
    source_url: str
    tmp: Path


def _stored(d: Distributed, name: str) -> bytes:
    """An artefact's bytes as the object storage holds them (read straight from the S3 server)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=d.s3.endpoint,
        aws_access_key_id=object_storage.ACCESS_KEY,
        aws_secret_access_key=object_storage.SECRET_KEY,
        region_name=object_storage.REGION,
    )
    return client.get_object(Bucket=d.s3.bucket, Key=f"region/{name}")["Body"].read()


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


def start_worker(processes: AirflowProcesses, worker: str, home: Path, queue: str, name: str | None = None) -> None:
    """A Celery worker with its own AIRFLOW_HOME and DECOMMISSION_HOME (kept across its restarts)."""
    own = {
        "AIRFLOW_HOME": str(home.parent / "airflow"),
        "DECOMMISSION_HOME": str(home),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
    }
    args = ("celery", "worker", "--queues", queue, "--concurrency", "2", "--celery-hostname", f"{worker}@%h")
    processes.start(name or worker, *args, env=own)


def _redis_answers() -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1.0)
        if sock.connect_ex(("127.0.0.1", 6379)) != 0:
            return False
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


def _tasks_logged(airflow_home: Path) -> set[str]:
    """``run_id/task_id`` of every task attempt whose log this worker wrote."""
    logs = airflow_home / "logs" / f"dag_id={DAG_ID}"
    return {f"{p.parent.parent.name}/{p.parent.name}" for p in logs.rglob("attempt=*.log")}


def _database(pg_dsn: str, name: str, *, drop: bool = False) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(pg_dsn, autocommit=True) as db:
        db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not drop:
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _environment(
    tmp: Path,
    pg: str,
    db_url: str,
    plan: Path,
    archive: R7SimServer,
    s3: object_storage.S3Server,
    api_port: int,
    chunk_size: int | None = None,
) -> dict[str, str]:
    """What every process shares: PostgreSQL, Redis (a queue of this test's own), the S3 base URL."""
    from decommission import embedded

    queue = f"decommission-test-{uuid.uuid4().hex[:8]}"
    passwords = tmp / "passwords.json"
    passwords.write_text(json.dumps(embedded.USERS), encoding="utf-8")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DECOMMISSION_"))}
    ledger = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": db_url}
    return (
        inherited
        | {
            "AIRFLOW_HOME": str(tmp / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in embedded.USERS.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db_url}",
            "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6379/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://postgres@127.0.0.1:5432/{db_url}",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
            "AIRFLOW_CONN_R7_ARCHIVE": archive.connection_uri(timeout=30, chunk_size=chunk_size),
            # a worker killed mid-task: its task's heartbeat stops, the scheduler fails the attempt and retries it
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW_CONN_PROGRAMME_LEDGER": json.dumps(ledger),
            "AIRFLOW_CONN_DECOMMISSION_ARTEFACTS": s3.connection(),
            f"AIRFLOW_CONN_LEGACY_{SYSTEM.upper()}": embedded.source_connection(pg, SYSTEM),
            "DECOMMISSION_PLAN": str(plan),
            "DECOMMISSION_ARTEFACTS": f"s3://decommission_artefacts@{s3.bucket}/region",
            "DECOMMISSION_STAGING": f"s3://decommission_artefacts@{s3.bucket}/region/staging",
            "DECOMMISSION_HOME": str(tmp / "control-home"),
            "DECOMMISSION_ALLOW_DEMO_KEY": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
        }
        | airflow_service_settings(api_port)
    )


@pytest.fixture
def distributed(request: pytest.FixtureRequest, tmp_path: Path, pg_dsn: str) -> Iterator[Distributed]:
    """The stack; ``request.param`` (indirect parametrisation) may give r7sim's arguments and a chunk size."""
    faults = getattr(request, "param", {})
    airflow = Path(sys.executable).parent / "airflow"
    missing = object_storage.available()
    if missing:
        pytest.fail(f"the distributed test needs an S3 server: {missing}")
    if not _redis_answers():
        pytest.skip("no Redis at 127.0.0.1:6379 (the Celery broker); on Debian: apt-get install redis-server")
    budget = Budget(BUDGET_S)
    logs = tmp_path / "logs"
    logs.mkdir()
    plan = one_system_plan(tmp_path / "plan", SYSTEM)
    database = f"decommission_dist_{uuid.uuid4().hex[:8]}"
    _database(pg_dsn, database)
    source_schema = SYSTEM  # the source lives in the test's own database, schema named as the system

    from demo.generate import build
    from demo.readonly import create_reader, drop_reader

    owner_url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    dirt = build(SYSTEM, owner_url, seed=7, patients=20, schema=source_schema)
    # the programme reads the source through a SELECT-only login (preflight refuses one that could write)
    reader = f"{database}_reader"
    source_url = create_reader(owner_url, source_schema, name=reader)
    archive = R7SimServer(tmp_path / "r7sim", logs / "r7sim.log", faults.get("archive_args", ()))
    archive.data_dir.mkdir(parents=True)
    s3 = object_storage.S3Server(tmp_path / "s3", logs / "s3rver.log")
    api_port = free_port()
    env = _environment(tmp_path, source_url, database, plan, archive, s3, api_port, faults.get("chunk_size"))
    processes = AirflowProcesses(airflow, env, logs)
    api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30)
    homes = {w: tmp_path / w / "home" for w in WORKERS}
    on_term = signal.getsignal(signal.SIGTERM)
    main = threading.current_thread() is threading.main_thread()
    if main:
        signal.signal(signal.SIGTERM, interrupt)
    try:
        archive.start()
        s3.start()
        processes.run("db-migrate", "db", "migrate", timeout=300)
        processes.run("pools-set", "pools", "set", f"legacy_{SYSTEM}", "1", f"connections to {SYSTEM}", timeout=90)
        for command in ("api-server", "scheduler", "dag-processor", "triggerer"):
            processes.start(command, command)
        queue = env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
        for worker in homes:
            start_worker(processes, worker, homes[worker], queue)
        home, airflow_home = Path(env["DECOMMISSION_HOME"]), Path(env["AIRFLOW_HOME"])
        stack = Stack(processes, archive, api, home, airflow_home, dirt, budget, DAG_ID)
        yield Distributed(stack, s3, env, homes, plan, source_url, tmp_path)
    finally:
        if main:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            api.close()
            processes.stop_all()
            archive.stop()
            s3.stop()
            drop_reader(owner_url, source_schema, name=reader)
            _database(pg_dsn, database, drop=True)
        finally:
            if main:
                signal.signal(signal.SIGTERM, on_term)
        left = processes.alive()
        assert not left, f"processes the test started are still alive after teardown: {left}"


def test_celery_workers_share_nothing_but_databases_broker_and_object_storage(
    distributed: Distributed, monkeypatch: pytest.MonkeyPatch
) -> None:
    from demo.signoff import answer

    stack, budget = distributed.stack, distributed.stack.budget
    try:
        budget.wait_for(
            "the api-server to answer",
            lambda: stack.api.get("/api/v2/version").status_code == 200,
            check=stack.processes.check_running,
        )
        budget.wait_for(
            f"{DAG_ID} to be parsed",
            lambda: stack.get(f"/api/v2/dags/{DAG_ID}").status_code == 200,
            interval=2.0,
            check=stack.processes.check_running,
        )
        response = stack.api.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}, headers=stack.headers())
        assert response.status_code == 200, response.text
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
        ran = {w: _tasks_logged(h.parent / "airflow") for w, h in distributed.worker_homes.items()}
        print({w: len(t) for w, t in ran.items()})
        assert all(ran.values()), f"a worker ran no task: {ran}"

        # the outcome is the embedded one: the contract exit, and figures equal to the generator's dirt report
        record = json.loads(_stored(distributed, f"{SYSTEM}/evidence/contract-exit.json"))
        assert record["status"] == "decommissioned"
        result = json.loads(_stored(distributed, f"{SYSTEM}/reconciliation/final_delivery/result.json"))
        assert result["verdict"] == "PASS", result["reasons"]
        # per spec table: a source table two spec tables read counts its dirt under each
        spec = load_spec(REPO / "include" / "mappings" / f"{SYSTEM}.yaml")
        expected = expected_by_reason(stack.dirt, spec)
        assert result["findings_by_reason"] == expected
        assert result["totals"]["source"] == result["totals"]["archived"] + result["totals"]["disposed"]

        # packages byte for byte: what the workers put in the store = what an embedded build makes
        embedded = _embedded_packages(distributed, "final_delivery", monkeypatch)
        assert embedded, "the embedded build made no package"
        for package_id, data in embedded.items():
            stored = _stored(distributed, f"{SYSTEM}/packages/{package_id}.tar")
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
    queue = d.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
    try:
        budget.wait_for(
            f"{DAG_ID} to be parsed",
            lambda: (
                stack.api.get("/api/v2/version").status_code == 200
                and stack.get(f"/api/v2/dags/{DAG_ID}").status_code == 200
            ),
            interval=2.0,
            check=stack.processes.check_running,
        )
        response = stack.api.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}, headers=stack.headers())
        assert response.status_code == 200, response.text

        killed = _kill_worker_running(d, run_id, "package", queue)
        print(f"{budget.elapsed():5.0f} s  {killed} killed while it ran package; object storage restarted")
        d.s3.restart(down_s=3.0)
        killed = _kill_worker_running(d, run_id, "submit", queue, after=lambda: _upload_started(stack))
        print(f"{budget.elapsed():5.0f} s  {killed} killed in the middle of an upload")

        state = stack.wait_run_end(run_id)
        assert state == "success", f"{run_id} ended {state}"
        response = stack.api.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": True}, headers=stack.headers())
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
        result = json.loads(_stored(d, f"{SYSTEM}/reconciliation/test_delivery/result.json"))
        assert result["verdict"] == "PASS", result["reasons"]
    except BaseException:
        print(stack.diagnostics())
        raise


def _kill_worker_running(d: Distributed, run_id: str, task_id: str, queue: str, after: Any = None) -> str:
    """Wait until a worker runs ``task_id`` (its log file appears there), SIGKILL that worker, start it again."""
    stack = d.stack

    def running_on() -> str | None:
        ti = stack.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/0")
        if ti.status_code != 200 or ti.json()["state"] != "running" or (after is not None and not after()):
            return None
        for worker, home in d.worker_homes.items():
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
    start_worker(stack.processes, worker, d.worker_homes[worker], queue, name=f"{worker}~{restarts}")
    return worker


def _upload_started(stack: Stack) -> bool:
    """r7sim has committed at least one chunk of an upload (its log says so)."""
    return "committed" in stack.archive.log_text()


def _ledger_packages(d: Distributed) -> dict[str, str]:
    """package id -> SHA-256 of every package the ledger says was built for the test delivery."""
    import psycopg

    ledger = json.loads(d.env["AIRFLOW_CONN_PROGRAMME_LEDGER"])
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{ledger['schema']}") as db:
        query = "SELECT payload FROM ledger_entry WHERE kind = 'package' AND run_id = %s"
        rows = [json.loads(r[0]) for r in db.execute(query, (RUNS["test_delivery"],))]
    return {r["package_id"]: r["sha256"] for r in rows}
