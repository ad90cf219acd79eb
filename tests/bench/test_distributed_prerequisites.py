"""``make bench MODE=distributed`` on a machine without Redis or the S3 server: a clear refusal, never a skip."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bench import run
from devstack import celery, object_storage


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_missing_names_redis_and_the_s3_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setattr(celery, "REDIS", ("127.0.0.1", _closed_port()))
    monkeypatch.setattr(object_storage, "S3RVER", tmp_path / "no-s3rver")
    lacks = " | ".join(celery.missing())
    assert "no Redis answers at 127.0.0.1:" in lacks
    assert "s3rver is not installed" in lacks and "make s3-server" in lacks


def test_the_bench_refuses_before_it_builds_anything(monkeypatch: pytest.MonkeyPatch, capsys):
    from bench import distributed

    monkeypatch.setattr(distributed, "missing", lambda: ["no Redis answers at 127.0.0.1:6379 (the Celery broker)"])
    built = []
    monkeypatch.setattr(run, "build_database", lambda *a: built.append(a))
    with pytest.raises(SystemExit) as exited:
        run.main(["--rows", "1000", "--distributed"])
    assert exited.value.code == 2
    assert "the distributed mode cannot run here: no Redis answers" in capsys.readouterr().err
    assert built == []
