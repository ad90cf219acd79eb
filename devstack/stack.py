"""A real Airflow stack: one deadline, the API as an admin sees it, diagnostics on failure.

Shared by the scheduler test (LocalExecutor), the distributed test and ``make bench MODE=distributed``
(CeleryExecutor, :mod:`devstack.celery`).
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from devstack.processes import AirflowProcesses
from r7sim.process import R7SimServer, free_port

REPO = Path(__file__).resolve().parents[1]
ADMIN = ("admin", "admin")


class Budget:
    """One deadline for the whole run (a test, a bench); every wait names what it waited for."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.end = self.started + seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def wait_for(
        self, what: str, probe: Callable[[], Any], *, interval: float = 1.0, check: Callable[[], None] | None = None
    ) -> Any:
        """Call ``probe`` until it returns something truthy; connection errors count as 'not yet'."""
        began, last_error = time.monotonic(), None
        while True:
            if check is not None:
                check()
            try:
                value = probe()
            except httpx.TransportError as exc:
                value, last_error = None, exc
            if value:
                return value
            if time.monotonic() > self.end:
                note = f" (last error: {last_error!r})" if last_error else ""
                raise TimeoutError(
                    f"gave up waiting for {what} after {time.monotonic() - began:.0f} s: the budget of "
                    f"{self.seconds:.0f} s is spent{note}"
                )
            time.sleep(interval)


@dataclass
class Stack:
    """The running set-up: processes, archive, the API and where the outputs go."""

    processes: AirflowProcesses
    archive: R7SimServer
    api: httpx.Client
    home: Path
    airflow_home: Path
    dirt: dict[str, Any]
    budget: Budget
    dag_id: str
    admin_token: str | None = None

    def headers(self) -> dict[str, str]:
        """An admin's bearer token (fetched once)."""
        from demo.signoff import token

        if self.admin_token is None:
            self.admin_token = token(self.api, *ADMIN)
        return {"Authorization": f"Bearer {self.admin_token}"}

    def get(self, path: str) -> httpx.Response:
        return self.api.get(path, headers=self.headers())

    def open_dag(self) -> None:
        """Wait until the api-server answers and the dag-processor has parsed the DAG, then unpause it."""
        self.budget.wait_for(
            "the api-server to answer /api/v2/version",
            lambda: self.api.get("/api/v2/version").status_code == 200,
            check=self.processes.check_running,
        )
        self.budget.wait_for(
            f"{self.dag_id} to be known to the API (parsed by the dag-processor)",
            lambda: self.get(f"/api/v2/dags/{self.dag_id}").status_code == 200,
            interval=2.0,
            check=self.processes.check_running,
        )
        self.set_paused(False)

    def set_paused(self, paused: bool) -> None:
        """Pause or unpause the DAG; raise with the API's answer if it did not take."""
        response = self.api.patch(f"/api/v2/dags/{self.dag_id}", json={"is_paused": paused}, headers=self.headers())
        if response.status_code != 200 or response.json().get("is_paused") is not paused:
            raise RuntimeError(
                f"could not set is_paused={paused} on {self.dag_id}: {response.status_code} {response.text}"
            )

    def task_instances(self, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (mapped ones one by one), as the API lists them."""
        path = f"/api/v2/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances"
        found: list[dict[str, Any]] = []
        while True:
            response = self.get(f"{path}?limit=100&offset={len(found)}")
            response.raise_for_status()
            page = response.json()
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def run_state(self, run_id: str) -> str | None:
        response = self.get(f"/api/v2/dags/{self.dag_id}/dagRuns/{run_id}")
        return response.json()["state"] if response.status_code == 200 else None

    def ti_state(self, run_id: str, task_id: str) -> str | None:
        response = self.get(f"/api/v2/dags/{self.dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        return response.json()["state"] if response.status_code == 200 else None

    def wait_run_end(self, run_id: str) -> str:
        return self.budget.wait_for(
            f"run {run_id} of {self.dag_id} to end (success or failed)",
            lambda: (state := self.run_state(run_id)) in {"success", "failed"} and state,
            interval=2.0,
            check=self.processes.check_running,
        )

    def wait_awaiting_input(self, run_id: str, task_id: str) -> None:
        """Wait until the task asks for sign-off and the scheduler has settled its deferral.

        Airflow 3.3.2 race: if the answer makes the trigger fire before the scheduler has processed
        the executor's "success" of the attempt that deferred, the scheduler may already have
        re-queued the task and then takes that event for an external kill (UP_FOR_RETRY): the retry
        asks again and the answer is lost. A person never answers within that second; the test
        would, so it waits for the scheduler's "TaskInstance Finished ... state=awaiting_input".
        """

        def probe() -> bool:
            if self.run_state(run_id) == "failed":
                raise AssertionError(f"run {run_id} failed before {task_id} asked for sign-off")
            return self.ti_state(run_id, task_id) == "awaiting_input"

        self.budget.wait_for(
            f"task {task_id} of run {run_id} to be awaiting_input",
            probe,
            interval=2.0,
            check=self.processes.check_running,
        )
        self.budget.wait_for(
            f"the scheduler to log the end of {task_id}'s attempt that deferred (TaskInstance Finished ... "
            "state=awaiting_input)",
            lambda: self.processes.log_has(
                "scheduler",
                f"TaskInstance Finished: dag_id={self.dag_id}, task_id={task_id}, run_id={run_id},",
                "state=awaiting_input",
            ),
            interval=0.5,
            check=self.processes.check_running,
        )

    def diagnostics(self) -> str:
        """Run and task states, tails of failed tasks' logs and of every process log."""
        lines = [f"after {self.budget.elapsed():.0f} s"]
        try:
            runs = self.get(f"/api/v2/dags/{self.dag_id}/dagRuns").json().get("dag_runs", [])
            for run in runs:
                lines.append(f"run {run['dag_run_id']} ({run['run_type']}): {run['state']}")
                tis = self.get(f"/api/v2/dags/{self.dag_id}/dagRuns/{run['dag_run_id']}/taskInstances").json()
                for ti in tis.get("task_instances", []):
                    lines.append(f"    {ti['task_id']}[{ti['map_index']}] {ti['state']} try {ti['try_number']}")
                    if ti["state"] in {"failed", "up_for_retry", "upstream_failed"}:
                        lines += task_log_tails(self.airflow_home, self.dag_id, run["dag_run_id"], ti["task_id"])
        except Exception as exc:  # noqa: BLE001 - diagnostics must not hide the real failure
            lines.append(f"(no run states from the API: {exc!r})")
        lines.append(self.processes.tails(40))
        archive_log = self.archive.log_text().splitlines()[-20:]
        lines.append(f"----- r7sim {self.archive.log_path} -----\n" + "\n".join(archive_log))
        return "\n".join(lines)


def task_log_tails(airflow_home: Path, dag_id: str, run_id: str, task_id: str, lines: int = 30) -> list[str]:
    folder = airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    out = []
    for log in sorted(folder.rglob("*.log"))[-2:]:
        text = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        out.append(f"    --- {log.relative_to(airflow_home)} ---\n" + "\n".join("      " + t for t in text))
    return out


def one_system_plan(folder: Path, system: str) -> Path:
    """A copy of the programme with only this system; its mapping beside it (paths are plan-relative)."""
    folder.mkdir(parents=True)
    shutil.copytree(REPO / "include" / "mappings", folder / "mappings")
    plan = yaml.safe_load((REPO / "include" / "programme.yaml").read_text(encoding="utf-8"))
    plan["systems"] = [s for s in plan["systems"] if s["id"] == system]
    assert plan["systems"], f"include/programme.yaml has no system '{system}'"
    path = folder / "programme.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def airflow_service_settings(api_port: int) -> dict[str, str]:
    """What every process of one stack shares: keys, the API's address, free log-server ports, a calm parser."""
    from cryptography.fernet import Fernet

    return {
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        # the log servers of the scheduler and the triggerer default to 8793/8794 on every interface
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",  # parse once at start; spare the 2 cores
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    }
