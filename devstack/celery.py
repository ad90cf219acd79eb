"""The distributed shape on this machine: workers that share nothing but the databases, the broker and S3.

PostgreSQL holds Airflow's metadata and the ledger (one database of the caller's); Redis is
the broker (a queue of this stack's own); s3rver serves the object storage where staging,
packages, receipts, results, reports and evidence live; r7sim is the archive. Each Celery
worker gets its own empty AIRFLOW_HOME and DECOMMISSION_HOME: a task that read a file another
worker wrote locally would fail. Used by ``tests/distributed`` and ``make bench MODE=distributed``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devstack import object_storage
from devstack.processes import AirflowProcesses
from devstack.stack import Budget, Stack, airflow_service_settings, interrupt
from r7sim.process import R7SimServer, free_port

REPO = Path(__file__).resolve().parents[1]
WORKERS = ("worker1", "worker2")
REDIS = ("127.0.0.1", 6379)
POSTGRES = "postgres@127.0.0.1:5432"
AIRFLOW = Path(sys.executable).parent / "airflow"


def redis_answers() -> bool:
    """Whether a Redis at 127.0.0.1:6379 answers PING."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        if sock.connect_ex(REDIS) != 0:
            return False
        try:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def missing() -> list[str]:
    """What this machine lacks for the Celery stack, one sentence each (empty: nothing)."""
    lacks = []
    if not AIRFLOW.exists():
        lacks.append(f"no airflow executable next to {sys.executable}")
    if not redis_answers():
        lacks.append(
            f"no Redis answers at {REDIS[0]}:{REDIS[1]} (the Celery broker); on Debian: apt-get install redis-server"
        )
    s3 = object_storage.available()
    if s3:
        lacks.append(f"no S3 server: {s3}")
    return lacks


def create_database(dsn: str, name: str) -> None:
    """A fresh, empty database ``name`` (dropped first if a crashed run left it)."""
    _database(dsn, name, drop=False)


def drop_database(dsn: str, name: str) -> None:
    _database(dsn, name, drop=True)


def _database(dsn: str, name: str, *, drop: bool) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not drop:
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@dataclass(frozen=True)
class Attempt:
    """One task attempt a worker logged in its own AIRFLOW_HOME (map_index -1: not mapped)."""

    run_id: str
    task_id: str
    map_index: int


@dataclass
class CeleryStack:
    """The running stack plus what only the distributed shape has."""

    stack: Stack
    s3: object_storage.S3Server
    env: dict[str, str]
    worker_homes: dict[str, Path]
    concurrency: int

    @property
    def queue(self) -> str:
        return self.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]

    def start_worker(self, worker: str, name: str | None = None) -> None:
        """A Celery worker with its own AIRFLOW_HOME and DECOMMISSION_HOME (kept across its restarts)."""
        home = self.worker_homes[worker]
        own = {
            "AIRFLOW_HOME": str(home.parent / "airflow"),
            "DECOMMISSION_HOME": str(home),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }
        args = ("celery", "worker", "--queues", self.queue, "--concurrency", str(self.concurrency))
        self.stack.processes.start(name or worker, *args, "--celery-hostname", f"{worker}@%h", env=own)

    def attempts_logged(self) -> dict[str, list[Attempt]]:
        """Per worker, every task attempt of the DAG whose log it wrote (each worker logs in its own home).

        The task instances' ``hostname`` cannot tell two workers on one machine apart; their log folders can.
        """
        found: dict[str, list[Attempt]] = {}
        for worker, home in self.worker_homes.items():
            logs = home.parent / "airflow" / "logs" / f"dag_id={self.stack.dag_id}"
            found[worker] = [_attempt(path, logs) for path in sorted(logs.rglob("attempt=*.log"))]
        return found

    def stored(self, name: str, prefix: str = "region") -> bytes:
        """An artefact's bytes as the object storage holds them (read straight from the S3 server)."""
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.s3.endpoint,
            aws_access_key_id=object_storage.ACCESS_KEY,
            aws_secret_access_key=object_storage.SECRET_KEY,
            region_name=object_storage.REGION,
        )
        return client.get_object(Bucket=self.s3.bucket, Key=f"{prefix}/{name}")["Body"].read()


def _attempt(path: Path, logs: Path) -> Attempt:
    """``run_id=R/task_id=T[/map_index=M]/attempt=N.log`` -> Attempt(R, T, M)."""
    parts = dict(p.split("=", 1) for p in path.relative_to(logs).parent.parts)
    return Attempt(parts["run_id"], parts["task_id"], int(parts.get("map_index", -1)))


def environment(
    tmp: Path,
    *,
    database: str,
    plan: Path,
    sources: Mapping[str, str],
    archive: R7SimServer,
    s3: object_storage.S3Server,
    api_port: int,
    chunk_size: int | None = None,
) -> dict[str, str]:
    """What every process shares: PostgreSQL, Redis (a queue of this stack's own), the S3 base URL.

    :param database: the PostgreSQL database of Airflow's metadata and the ledger
    :param sources: connection id -> postgresql:// URL of each legacy source the plan names
    """
    from decommission import embedded

    queue = f"decommission-{uuid.uuid4().hex[:8]}"
    passwords = tmp / "passwords.json"
    passwords.write_text(json.dumps(embedded.USERS), encoding="utf-8")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DECOMMISSION_"))}
    ledger = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": database}
    connections = {f"AIRFLOW_CONN_{c.upper()}": embedded.source_connection(url, None) for c, url in sources.items()}
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
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{POSTGRES}/{database}",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{POSTGRES}/{database}",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
            "AIRFLOW_CONN_R7_ARCHIVE": archive.connection_uri(timeout=30, chunk_size=chunk_size),
            # a worker killed mid-task: its task's heartbeat stops, the scheduler fails the attempt and retries it
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW_CONN_PROGRAMME_LEDGER": json.dumps(ledger),
            "AIRFLOW_CONN_DECOMMISSION_ARTEFACTS": s3.connection(),
            "DECOMMISSION_PLAN": str(plan),
            "DECOMMISSION_ARTEFACTS": f"s3://decommission_artefacts@{s3.bucket}/region",
            "DECOMMISSION_STAGING": f"s3://decommission_artefacts@{s3.bucket}/region/staging",
            "DECOMMISSION_HOME": str(tmp / "control-home"),
            "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
        }
        | connections
        | airflow_service_settings(api_port)
    )


@contextmanager
def celery_stack(
    tmp: Path,
    *,
    database: str,
    plan: Path,
    dag_id: str,
    sources: Mapping[str, str],
    pools: Mapping[str, int],
    budget: Budget,
    dirt: dict[str, Any] | None = None,
    archive_args: Sequence[str] = (),
    chunk_size: int | None = None,
    concurrency: int = 2,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[CeleryStack]:
    """Start r7sim, s3rver, the Airflow services and two Celery workers; stop every one of them after.

    The metadata ``database`` must exist (empty); the DAG stays paused until :meth:`Stack.open_dag`.
    A SIGTERM (a CI timeout) becomes KeyboardInterrupt, so the clean-up still runs. Raises if a
    process it started outlives the clean-up.

    :param tmp: a folder of this stack's own (logs, homes, the archive's and the object storage's data)
    :param pools: Airflow pool -> slots (a legacy source's pool: as many as its plan allows connections)
    :param concurrency: task slots of each worker
    :param extra_env: variables every process gets besides (a hash key)
    """
    lacks = missing()
    if lacks:
        raise RuntimeError("the Celery stack cannot start here: " + "; ".join(lacks))
    logs = tmp / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    archive = R7SimServer(tmp / "r7sim", logs / "r7sim.log", archive_args)
    archive.data_dir.mkdir(parents=True)
    s3 = object_storage.S3Server(tmp / "s3", logs / "s3rver.log")
    api_port = free_port()
    env = environment(
        tmp,
        database=database,
        plan=plan,
        sources=sources,
        archive=archive,
        s3=s3,
        api_port=api_port,
        chunk_size=chunk_size,
    ) | dict(extra_env or {})
    processes = AirflowProcesses(AIRFLOW, env, logs)
    api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30)
    homes = {w: tmp / w / "home" for w in WORKERS}
    on_term = signal.getsignal(signal.SIGTERM)
    main = threading.current_thread() is threading.main_thread()
    if main:
        signal.signal(signal.SIGTERM, interrupt)
    try:
        archive.start()
        s3.start()
        processes.run("db-migrate", "db", "migrate", timeout=300)
        for pool, slots in pools.items():
            processes.run(f"pools-set-{pool}", "pools", "set", pool, str(slots), "a legacy source's connections")
        for command in ("api-server", "scheduler", "dag-processor", "triggerer"):
            processes.start(command, command)
        stack = Stack(
            processes,
            archive,
            api,
            Path(env["DECOMMISSION_HOME"]),
            Path(env["AIRFLOW_HOME"]),
            dirt or {},
            budget,
            dag_id,
        )
        celery = CeleryStack(stack, s3, env, homes, concurrency)
        for worker in homes:
            celery.start_worker(worker)
        yield celery
    finally:
        if main:  # a second SIGTERM must not cut the clean-up short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            api.close()
            processes.stop_all()
            archive.stop()
            s3.stop()
        finally:
            if main:
                signal.signal(signal.SIGTERM, on_term)
    left = processes.alive()
    if left:
        raise RuntimeError(f"processes the stack started are still alive after its clean-up: {left}")
