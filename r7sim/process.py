"""Run r7sim as a real process (demo and tests): a free port, a data dir, a clean stop.

Use :func:`running_r7sim` as a context manager, or :class:`R7SimFactory` inside a fixture::

    @pytest.fixture
    def r7sim(tmp_path):
        with R7SimFactory(tmp_path) as factory:
            yield factory.start()

The server runs in its own process group and is killed with it, so nothing outlives the test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from r7sim.auth import DEMO_ARCHIVIST, DEMO_SUBMITTER

REPO_DIR = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class R7SimServer:
    """One r7sim process; ``restart()`` keeps its port, data dir and accounts.

    :param data_dir: the holdings (kept across restarts)
    :param log_path: where the process's output goes
    :param args: extra command-line arguments (fault settings)
    :param port: port to listen on; a free one if not given
    :param submitter: the submitter's (login, password); the demo's when not given
    :param archivist: the archivist's (login, password); the demo's when not given
    """

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        args: Sequence[str] = (),
        port: int | None = None,
        *,
        submitter: tuple[str, str] = DEMO_SUBMITTER,
        archivist: tuple[str, str] = DEMO_ARCHIVIST,
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.args = list(args)
        self.port = port or free_port()
        self.accounts = {"submitter": submitter, "archivist": archivist}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234``."""
        return f"http://127.0.0.1:{self.port}"

    def connection_uri(
        self,
        timeout: float = 10.0,
        chunk_size: int | None = None,
        *,
        role: str = "submitter",
        password: str | None = None,
    ) -> str:
        """Return the value for ``AIRFLOW_CONN_R7_ARCHIVE`` (Airflow 3's JSON form), with that role's credential.

        r7sim listens on plain http on 127.0.0.1, so the connection sets ``allow_insecure_http``:
        the client refuses to send credentials over http otherwise.

        :param timeout: seconds each request may take (wall clock)
        :param chunk_size: bytes per upload request (the client's default when not given)
        :param role: ``submitter`` (deliveries, uploads, reads) or ``archivist`` (approvals)
        :param password: another password than the role's (to test a wrong one)
        """
        login, right = self.accounts[role]
        extra: dict[str, float | int | bool] = {"timeout": timeout, "allow_insecure_http": True}
        if chunk_size is not None:
            extra["chunk_size"] = chunk_size
        return json.dumps(
            {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": self.port,
                "schema": "http",
                "login": login,
                "password": right if password is None else password,
                "extra": extra,
            }
        )

    def start(self, args: Sequence[str] | None = None) -> R7SimServer:
        """Start the process (optionally with new arguments) and wait until ``/healthz`` answers."""
        if self.process is not None:
            raise RuntimeError(f"r7sim is already running as pid {self.process.pid}")
        if args is not None:
            self.args = list(args)
        command = [sys.executable, "-m", "r7sim", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        env = {
            **os.environ,
            # this checkout's validator (plugins/ first): a venv shared with another checkout must not
            # validate with that checkout's record schema
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_DIR / "plugins"), str(REPO_DIR), os.environ.get("PYTHONPATH")])
            ),
            # the accounts go by environment, not argv: other users' ps would show them
            "R7SIM_SUBMITTER": ":".join(self.accounts["submitter"]),
            "R7SIM_ARCHIVIST": ":".join(self.accounts["archivist"]),
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, *self.args],
                cwd=REPO_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_healthy()
        return self

    def stop(self) -> None:
        """Stop the process group: SIGTERM, then SIGKILL if it lingers."""
        if self.process is None:
            return
        process, self.process = self.process, None
        for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # whatever is left of the group
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def restart(self, args: Sequence[str] | None = None) -> R7SimServer:
        """Stop and start again on the same port and data dir."""
        self.stop()
        return self.start(args)

    def log_text(self) -> str:
        """Return what the process wrote so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"r7sim exited at startup:\n{self.log_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"r7sim did not answer /healthz within {STARTUP_TIMEOUT_S} s:\n{self.log_text()[-3000:]}")


class R7SimFactory:
    """Start any number of r7sim servers under one directory and stop them all on exit.

    :param base_dir: a (temporary) directory for the servers' data and logs
    """

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.servers: list[R7SimServer] = []

    def start(self, *args: str, **accounts: tuple[str, str]) -> R7SimServer:
        """Start a server with these command-line arguments (e.g. ``"--error-rate", "0.5"``).

        :param accounts: ``submitter=(login, password)`` and/or ``archivist=...``; the demo's otherwise
        """
        n = len(self.servers)
        data_dir = self.base_dir / f"r7sim-{n}"
        server = R7SimServer(data_dir, self.base_dir / f"r7sim-{n}.log", args, **accounts)
        self.servers.append(server)
        return server.start()

    def stop_all(self) -> None:
        """Stop every server started here."""
        for server in self.servers:
            server.stop()

    def __enter__(self) -> R7SimFactory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()


@contextmanager
def running_r7sim(base_dir: Path, *args: str) -> Iterator[R7SimServer]:
    """Run one r7sim with these arguments for the duration of the block."""
    with R7SimFactory(base_dir) as factory:
        yield factory.start(*args)
