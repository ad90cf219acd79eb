"""The wall-clock deadline: an answer dripped a byte at a time, headers included, is cut off on time.

r7sim can only drip an answer's body (its server writes the headers at once), so a raw socket
server here drips the whole answer, status line and headers too, from the first byte.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
import tenacity

from decommission.deliver.archive import ArchiveHook, ArchiveTimeout
from decommission.deliver.deadline import Deadline, DeadlineAdapter

BODY = json.dumps({"delivery_id": "d-1", "packages": []}).encode()
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


class DripServer:
    """Answers every connection with :data:`ANSWER`, one byte every ``pause`` seconds (or at once when 0)."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by close()
                return
            threading.Thread(target=self._answer, args=(client,), daemon=True).start()

    def _answer(self, client: socket.socket) -> None:
        with client:
            client.settimeout(5)
            try:
                client.recv(65536)  # the request (small, one read is enough here)
                if not self.pause:
                    client.sendall(ANSWER)
                    return
                for byte in ANSWER:
                    if self.stopped.is_set():
                        return
                    client.sendall(bytes([byte]))
                    time.sleep(self.pause)
            except OSError:  # the client hung up: what the deadline is for
                return

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()
        self.thread.join(timeout=2)


@pytest.fixture
def dripping() -> Iterator[DripServer]:
    server = DripServer(pause=0.1)  # the whole answer takes about 12 s
    yield server
    server.close()


def session() -> requests.Session:
    s = requests.Session()
    s.mount("http://", DeadlineAdapter())
    return s


class TestDeadline:
    def test_headers_dripped_are_cut_off_at_the_deadline(self, dripping):
        started = time.monotonic()
        with pytest.raises(requests.RequestException), Deadline(0.5) as deadline:
            # each byte comes well within the 5 s read timeout: only the deadline can stop this
            session().get(f"http://127.0.0.1:{dripping.port}/", timeout=5)
        assert deadline.expired
        assert time.monotonic() - started < 1.5

    def test_a_quick_exchange_is_not_touched(self):
        quick = DripServer(pause=0)
        try:
            with Deadline(2) as deadline:
                answer = session().get(f"http://127.0.0.1:{quick.port}/", timeout=5)
            assert answer.json()["delivery_id"] == "d-1" and not deadline.expired
        finally:
            quick.close()

    def test_extending_moves_the_deadline(self, dripping):
        started = time.monotonic()
        with pytest.raises(requests.RequestException), Deadline(0.3) as deadline:
            deadline.extend(0.7)
            session().get(f"http://127.0.0.1:{dripping.port}/", timeout=5)
        assert 0.9 <= time.monotonic() - started < 2.0 and deadline.seconds == pytest.approx(1.0)

    def test_a_deadline_must_be_positive(self):
        with pytest.raises(ValueError, match="a deadline must be positive seconds, got 0"):
            Deadline(0)


def test_archive_hook_gives_up_on_a_dripping_archive_in_bounded_time(dripping, monkeypatch):
    uri = {"conn_type": "http", "host": "127.0.0.1", "port": dripping.port, "schema": "http", "extra": {"timeout": 0.5}}
    monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", json.dumps(uri))
    hook = ArchiveHook(retry_args={"wait": tenacity.wait_none(), "stop": tenacity.stop_after_attempt(2)})
    started = time.monotonic()
    with pytest.raises(ArchiveTimeout, match=r"GET /api/v1/deliveries/d-1 for delivery d-1 too slowly: .* 0\.5 s"):
        hook.delivery("d-1")
    assert time.monotonic() - started < 2.5  # two attempts of 0.5 s; the drip alone takes 12 s each
