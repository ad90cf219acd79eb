"""Run real Airflow processes (api-server, scheduler, ...) from a test or the bench; none outlives its owner.

Every process starts in its own session (process group) with a marker variable in its
environment. ``stop_all()`` sends SIGTERM to every group, waits, then SIGKILLs the groups
and every process still carrying the marker: the LocalExecutor's workers survive a SIGTERM
of the scheduler, and task runners live in process groups of their own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

MARKER = "DECOMMISSION_TEST_PROCESSES"


@dataclass
class Started:
    """One process group started here (its leader's pid is the group id)."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    service: bool
    pgid: int = field(init=False)

    def __post_init__(self) -> None:
        self.pgid = self.popen.pid


class AirflowProcesses:
    """Start ``airflow`` sub-commands with one environment; logs go to ``log_dir/<name>.log``.

    :param airflow: path of the ``airflow`` executable
    :param env: the complete environment of the processes (a marker is added)
    :param log_dir: where the logs go
    """

    def __init__(self, airflow: Path, env: Mapping[str, str], log_dir: Path) -> None:
        self.airflow = Path(airflow)
        self.marker = uuid.uuid4().hex
        self.env = {**env, MARKER: self.marker}
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.started: list[Started] = []

    # -- starting -------------------------------------------------------------------------------
    def _popen(
        self, name: str, args: tuple[str, ...], *, service: bool, env: Mapping[str, str] | None = None
    ) -> Started:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                [str(self.airflow), *args],
                env={**self.env, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        started = Started(name, popen, log_path, service)
        self.started.append(started)
        return started

    def run(self, name: str, *args: str, timeout: float = 180.0) -> str:
        """Run a one-shot command to its end; raise with its output if it fails or overruns."""
        started = self._popen(name, args, service=False)
        try:
            code = started.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill_group(started.pgid, signal.SIGKILL)
            started.popen.wait()
            raise RuntimeError(
                f"`airflow {' '.join(args)}` did not finish within {timeout:.0f} s:\n{self.tail(started)}"
            ) from None
        if code != 0:
            raise RuntimeError(f"`airflow {' '.join(args)}` exited {code}:\n{self.tail(started)}")
        return started.log_path.read_text(encoding="utf-8", errors="replace")

    def start(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> Started:
        """Start a long-running command (``api-server``, ``scheduler``...) in the background.

        :param env: variables of this process only (a Celery worker's own local folders)
        """
        return self._popen(name, args, service=True, env=env)

    def check_running(self) -> None:
        """Raise, with its log, if a background process has exited."""
        for started in self.started:
            code = started.popen.poll()
            if started.service and code is not None:
                raise RuntimeError(f"`airflow {started.name}` exited with {code}:\n{self.tail(started)}")

    # -- stopping -------------------------------------------------------------------------------
    def stop_all(self, term_timeout: float = 20.0) -> None:
        """SIGTERM every group, wait for the leaders, then SIGKILL what is left of them and of our marker."""
        for started in self.started:
            if started.popen.poll() is None:
                self._kill_group(started.pgid, signal.SIGTERM)
        deadline = time.monotonic() + term_timeout
        for started in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                started.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        for _ in range(3):
            for started in self.started:
                self._kill_group(started.pgid, signal.SIGKILL)
            for proc in self.marked():
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            for started in self.started:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    started.popen.wait(timeout=5)
                self._reap(started.pgid)
            if not self.alive():
                return
            time.sleep(0.5)

    @staticmethod
    def _kill_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    @staticmethod
    def _reap(pgid: int) -> None:
        """Collect zombies of the group that happen to be our children."""
        while True:
            try:
                pid, _ = os.waitpid(-pgid, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def marked(self) -> list[psutil.Process]:
        """Every live (non-zombie) process whose environment carries this instance's marker."""
        found = []
        for proc in psutil.process_iter(["pid"]):
            if proc.pid == os.getpid():
                continue
            with contextlib.suppress(psutil.Error):
                if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get(MARKER) == self.marker:
                    found.append(proc)
        return found

    def alive(self) -> list[str]:
        """Descriptions of what is still running: groups that answer ``killpg(pgid, 0)``, marked processes."""
        left = []
        for started in self.started:
            try:
                os.killpg(started.pgid, 0)
            except ProcessLookupError:
                continue
            members = [p for p in psutil.process_iter(["pid"]) if _live_in_group(p, started.pgid)]
            if members:  # killpg also answers for zombies, which are gone in all but name
                left.append(f"group {started.pgid} ({started.name}): pids {[p.pid for p in members]}")
        left += [f"pid {p.pid} ({' '.join(_cmdline(p))[:120]})" for p in self.marked()]
        return left

    # -- logs -----------------------------------------------------------------------------------
    def log_has(self, name: str, *needles: str) -> bool:
        """Whether one line of process ``name``'s log contains every one of ``needles``."""
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return False
        with path.open(encoding="utf-8", errors="replace") as log:
            return any(all(n in line for n in needles) for line in log)

    @staticmethod
    def tail(started: Started, lines: int = 60) -> str:
        text = started.log_path.read_text(encoding="utf-8", errors="replace") if started.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def tails(self, lines: int = 60) -> str:
        """The last lines of every process's log, for a failure message."""
        return "\n".join(
            f"----- {s.name} (pid {s.pgid}, exit {s.popen.poll()}) {s.log_path} -----\n{self.tail(s, lines)}"
            for s in self.started
        )


def _live_in_group(proc: psutil.Process, pgid: int) -> bool:
    try:
        return os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE
    except (ProcessLookupError, psutil.Error):
        return False


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []
