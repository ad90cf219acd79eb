"""An S3-compatible object storage served by a real process, for the distributed tests and bench.

s3rver (npm, installed under ``tests/s3`` by ``make s3-server``) keeps its objects on disk, so
a restart in the middle of a run keeps what was written: that is what the fault tests need
(moto's server keeps objects in memory and loses them on a restart).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from r7sim.process import free_port

REPO = Path(__file__).resolve().parents[1]
S3RVER = REPO / "tests" / "s3" / "node_modules" / ".bin" / "s3rver"
#: s3rver's fixed credentials
ACCESS_KEY = SECRET_KEY = "S3RVER"
REGION = "eu-north-1"


def available() -> str | None:
    """Why no S3 server can be started here (None: it can)."""
    if shutil.which("node") is None:
        return "no node executable (s3rver runs on Node.js)"
    if not S3RVER.exists():
        return f"s3rver is not installed ({S3RVER} missing): run `make s3-server`"
    return None


class S3Server:
    """One s3rver process serving ``bucket`` from ``data_dir`` on 127.0.0.1.

    :param data_dir: where the objects live (kept across restarts)
    :param log_path: where the process's output goes
    :param bucket: the bucket created at start
    """

    def __init__(self, data_dir: Path, log_path: Path, bucket: str = "decommission") -> None:
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.bucket = bucket
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connection(self) -> str:
        """The value of an ``AIRFLOW_CONN_<ID>`` variable for the Amazon provider (JSON form)."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": ACCESS_KEY,
                "password": SECRET_KEY,
                "extra": {"endpoint_url": self.endpoint, "region_name": REGION},
            }
        )

    def start(self) -> S3Server:
        if self.process is not None:
            raise RuntimeError(f"s3rver already runs as pid {self.process.pid}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [str(S3RVER), "--directory", str(self.data_dir), "--address", "127.0.0.1"]
        command += ["--port", str(self.port), "--configure-bucket", self.bucket, "--silent"]
        # s3rver's list continuation tokens use DES, which Node's OpenSSL 3 offers only as a legacy algorithm
        env = {**os.environ, "NODE_OPTIONS": "--openssl-legacy-provider"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_listening()
        return self

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL what lingers."""
        if self.process is None:
            return
        process, self.process = self.process, None
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue

    def restart(self, down_s: float = 0.0) -> None:
        """Stop, stay down ``down_s`` seconds, start again on the same port and data."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def _wait_listening(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"s3rver exited at start:\n{self.log_path.read_text(errors='replace')[-2000:]}")
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"s3rver did not listen on port {self.port} within {timeout:.0f} s")
