"""A real SSH/SFTP server process for the drop-folder tests (asyncssh), and helpers to run it.

    python -m tests.sftp_server --root DIR --port PORT --host-key FILE --user NAME --password SECRET

Serves ``root`` (chrooted) over SFTP to one user with a password; nothing else (no shell).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent


class _Server:
    """asyncssh server: password authentication of one user."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password

    def __call__(self):  # asyncssh wants a factory of SSHServer objects
        import asyncssh

        user, password = self.user, self.password

        class Auth(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, given: str) -> bool:
                return username == user and given == password

        return Auth()


def _sftp_server_class(write_delay: float) -> type:
    """An SFTP server that waits ``write_delay`` seconds before each write (to kill a client mid-upload)."""
    import asyncssh

    class SlowWrites(asyncssh.SFTPServer):
        async def write(self, file_obj: object, offset: int, data: bytes) -> None:
            await asyncio.sleep(write_delay)
            return super().write(file_obj, offset, data)

    return SlowWrites if write_delay else asyncssh.SFTPServer


async def _serve(args: argparse.Namespace) -> None:
    import asyncssh

    root = str(Path(args.root).resolve())
    server_class = _sftp_server_class(args.write_delay)
    await asyncssh.listen(
        "127.0.0.1",
        args.port,
        server_factory=_Server(args.user, args.password),
        server_host_keys=[args.host_key],
        sftp_factory=lambda chan: server_class(chan, chroot=root),
        allow_scp=False,
    )
    print(f"sftp server on 127.0.0.1:{args.port} serving {root}", flush=True)
    await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.sftp_server")
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host-key", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--write-delay", type=float, default=0.0, help="seconds to wait before each write")
    asyncio.run(_serve(parser.parse_args(argv)))


class DropFolderServers:
    """An SFTP server process and the r7sim drop-folder process over one folder; stopped together.

    :param base_dir: a (temporary) directory for the root, the holdings, the key and the logs
    """

    USER, PASSWORD = "archive", "drop-folder-test"

    def __init__(self, base_dir: Path, *drop_args: str, write_delay: float = 0.0) -> None:
        import asyncssh

        self.base_dir = Path(base_dir)
        self.root = self.base_dir / "root"
        self.data_dir = self.base_dir / "r7sim"
        for folder in ("inbox", "outbox", "holdings"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_key_path = self.base_dir / "host_key"
        key.write_private_key(str(self.host_key_path))
        self.public_key = key.export_public_key().decode().split()[:2]
        self.port = _free_port()
        self.drop_args = list(drop_args)
        self.write_delay = write_delay
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def connection_uri(self, **extra: object) -> str:
        """The ``AIRFLOW_CONN_R7_ARCHIVE`` value for the drop folder (host key checked)."""
        options = {"root": "/", "host_key": " ".join(self.public_key), "receipt_timeout": 30, "poll_interval": 0.1}
        return json.dumps(
            {
                "conn_type": "sftp",
                "host": "127.0.0.1",
                "port": self.port,
                "login": self.USER,
                "password": self.PASSWORD,
                "extra": {**options, **extra},
            }
        )

    def start(self) -> DropFolderServers:
        self._spawn(
            "sftp",
            [sys.executable, "-m", "tests.sftp_server", "--root", str(self.root), "--port", str(self.port),
             "--host-key", str(self.host_key_path), "--user", self.USER, "--password", self.PASSWORD,
             "--write-delay", str(self.write_delay)],
        )  # fmt: skip
        self.start_drop_folder()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"the SFTP server did not listen within 20 s:\n{self.log_text('sftp')}")

    def start_drop_folder(self, *args: str) -> None:
        """(Re)start the drop-folder stand-in, with new arguments if given."""
        self.stop("dropfolder")
        if args:
            self.drop_args = list(args)
        self._spawn(
            "dropfolder",
            [sys.executable, "-m", "r7sim.dropfolder", "--root", str(self.root), "--data-dir", str(self.data_dir),
             "--interval", "0.1", *self.drop_args],
        )  # fmt: skip

    def _spawn(self, name: str, command: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_DIR), os.environ.get("PYTHONPATH")]))}
        with (self.base_dir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                command, cwd=REPO_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log_text(self, name: str) -> str:
        path = self.base_dir / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def stop(self, *names: str) -> None:
        """Stop the named processes (all when none is named), each with its process group."""
        for name in names or tuple(self.processes):
            process = self.processes.pop(name, None)
            if process is None:
                continue
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=5)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

    def __enter__(self) -> DropFolderServers:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
