"""The archive client against an r7sim that breaks the protocol, and r7sim's accounts and roles.

Each fault class of issue 16 item 5 runs against a real r7sim process and must end, within a
bounded time, in an ArchiveError naming the request, the package (or delivery) and the fault:
a PATCH answered 200 without progress, answers dripped a byte at a time, redirects to another
origin, 429/503 with ``Retry-After``, and 200 answers that are an HTML page, cut JSON or an
upload document without ``offset``. The accounts: a wrong password is refused, a submitter
cannot approve, an archivist can.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import tenacity

from decommission.deliver.archive import ArchiveHook, ArchiveMalformedAnswer, ArchiveResponseError, ArchiveTimeout
from decommission.deliver.archive_connection import InsecureArchiveConnection
from decommission.deliver.triggers import IngestReceiptTrigger, wait_for_receipts
from decommission.errors import ArchiveError
from tests.r7sim_server import R7SimServer, write_fake_package

NO_WAIT = {"wait": tenacity.wait_none(), "stop": tenacity.stop_after_attempt(2)}
DELIVERY = "d-faults"


def use(server: R7SimServer, monkeypatch: pytest.MonkeyPatch, **uri: object) -> R7SimServer:
    """Point ``r7_archive`` (the submitter) and ``r7_archivist`` at the server."""
    monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", server.connection_uri(**uri))
    monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVIST", server.connection_uri(role="archivist"))
    return server


def fake(tmp_path: Path, package_id: str, filler: int = 0) -> tuple[Path, str]:
    path = tmp_path / f"{package_id}.tar"
    return path, write_fake_package(path, package_id, filler=filler)


def submit(hook: ArchiveHook, tmp_path: Path, package_id: str, filler: int = 0) -> dict:
    hook.open_delivery(DELIVERY, "LA-1", "VAS", "TEST")
    return hook.submit_package(package_id, *fake(tmp_path, package_id, filler), DELIVERY)


def events_of(trigger: IngestReceiptTrigger) -> list[dict]:
    async def collect() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


class Recorder:
    """Another origin: a TCP listener that counts who connects and what arrives (it never answers)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.received = b""
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with client:
                client.settimeout(0.5)
                try:
                    self.received += client.recv(65536)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=2)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    other = Recorder()
    yield other
    other.close()


class TestNoProgress:
    def test_patch_answered_200_without_progress_gives_up_naming_package_and_offset(
        self, r7sim_factory, monkeypatch, tmp_path
    ):
        server = use(r7sim_factory.start("--no-progress", "pkg-np"), monkeypatch, timeout=2, chunk_size=4096)
        hook = ArchiveHook(retry_args=NO_WAIT)
        started = time.monotonic()
        with pytest.raises(
            ArchiveError,
            match=r"upload of package pkg-np: the archive answered PATCH /api/v1/packages/pkg-np/upload with 200 "
            r"3 times in a row while its offset stayed at byte 0 of \d+",
        ):
            submit(hook, tmp_path, "pkg-np", filler=20_000)
        assert time.monotonic() - started < 5
        assert server.log_text().count("no_progress: answered a chunk of pkg-np") == 3  # not 9 083


class TestFalseOffset:
    def test_a_false_all_bytes_received_resumes_from_what_the_archive_holds(self, r7sim_factory, monkeypatch, tmp_path):
        server = use(r7sim_factory.start("--false-offset-once", "pkg-fo"), monkeypatch, timeout=2, chunk_size=4096)
        path, sha = fake(tmp_path, "pkg-fo", filler=20_000)
        hook = ArchiveHook(retry_args=NO_WAIT)
        hook.open_delivery(DELIVERY, "LA-1", "VAS", "TEST")

        receipt = hook.submit_package("pkg-fo", path, sha, DELIVERY)

        assert (receipt["sha256"], receipt["size"], receipt["duplicate"]) == (sha, path.stat().st_size, False)
        log = server.log_text()
        assert "false_offset_once: answering a chunk of pkg-fo" in log
        starts = [int(m) for m in re.findall(r"upload of pkg-fo: bytes (\d+)\.\.\d+ committed", log)]
        assert starts == list(range(0, path.stat().st_size, 4096))  # went on from 4096, nothing sent twice


class TestDrip:
    def test_a_dripped_answer_is_cut_off_at_the_deadline(self, r7sim_factory, monkeypatch, tmp_path):
        server = use(r7sim_factory.start("--drip", "open_upload", "--drip-seconds", "0.05"), monkeypatch, timeout=1)
        hook = ArchiveHook(retry_args=NO_WAIT)
        started = time.monotonic()
        with pytest.raises(
            ArchiveTimeout,
            match=r"the archive answered PUT /api/v1/packages/pkg-drip/upload for package pkg-drip too slowly: "
            r"not finished within the 1 s deadline \(wall clock\)",
        ):
            submit(hook, tmp_path, "pkg-drip")
        elapsed = time.monotonic() - started
        assert elapsed < 4, elapsed  # two attempts of 1 s; the whole drip would take ~10 s each
        assert server.log_text().count("drip: sending the answer to PUT /api/v1/packages/pkg-drip/upload") == 2

    def test_dripped_receipts_end_the_trigger_and_the_wait_on_time(self, r7sim_factory, monkeypatch, tmp_path):
        use(r7sim_factory.start("--drip", "receipt", "--drip-seconds", "0.1"), monkeypatch, timeout=0.5)
        submit(ArchiveHook(retry_args=NO_WAIT), tmp_path, "pkg-drip-r")

        started = time.monotonic()
        events = events_of(IngestReceiptTrigger(["pkg-drip-r"], "r7_archive", 0.1, in_seconds(1.5)))
        assert [(e["status"], e.get("pending")) for e in events] == [("timeout", ["pkg-drip-r"])]
        assert time.monotonic() - started < 3.5

        started = time.monotonic()
        with pytest.raises(ArchiveTimeout, match="GET /api/v1/packages/pkg-drip-r/receipt for package pkg-drip-r too"):
            wait_for_receipts(ArchiveHook(retry_args=NO_WAIT), ["pkg-drip-r"], timeout_s=30, poll_s=0.1)
        assert time.monotonic() - started < 2.5


class TestRedirect:
    @pytest.mark.parametrize(
        ("operation", "says"),
        [
            pytest.param(
                "open_delivery",
                rf"PUT /api/v1/deliveries/{DELIVERY} for delivery {DELIVERY}: the archive answered with a "
                r"redirect \(HTTP 302 to {origin}\); a write is never redirected",
                id="put-delivery",
            ),
            pytest.param(
                "chunk",
                r"PATCH /api/v1/packages/pkg-redir/upload for package pkg-redir \(the chunk at byte 0\): the archive "
                r"answered with a redirect \(HTTP 302 to {origin}\); a write is never redirected",
                id="patch-chunk",
            ),
            pytest.param(
                "complete",
                r"POST /api/v1/packages/pkg-redir/upload/complete for package pkg-redir: the archive answered with "
                r"a redirect \(HTTP 302 to {origin}\)",
                id="post-complete",
            ),
        ],
    )
    def test_a_write_is_never_redirected(self, r7sim_factory, monkeypatch, tmp_path, recorder, operation, says):
        use(r7sim_factory.start("--redirect", operation, "--redirect-to", recorder.url), monkeypatch, timeout=2)
        hook = ArchiveHook(retry_args=NO_WAIT)
        with pytest.raises(ArchiveResponseError, match=says.format(origin=recorder.url)) as caught:
            submit(hook, tmp_path, "pkg-redir")
        assert (caught.value.status_code, caught.value.retryable) == (302, False)
        if operation == "complete":  # the archive never completed it: the redirect did not count as success
            assert hook.upload_status("pkg-redir")["state"] == "open"
        time.sleep(0.2)
        assert (recorder.connections, recorder.received) == (0, b"")  # no body, no credentials went there

    def test_a_read_redirected_to_another_origin_is_not_followed(self, r7sim_factory, monkeypatch, tmp_path, recorder):
        use(r7sim_factory.start("--redirect", "receipt", "--redirect-to", recorder.url), monkeypatch, timeout=2)
        hook = ArchiveHook(retry_args=NO_WAIT)
        submit(hook, tmp_path, "pkg-redir-r")

        with pytest.raises(
            ArchiveResponseError,
            match=rf"GET /api/v1/packages/pkg-redir-r/receipt for package pkg-redir-r: the archive redirected it "
            rf"\(HTTP 302\) to {recorder.url}, outside http://127.0.0.1:\d+; not followed",
        ):
            hook.ingest_receipt("pkg-redir-r")
        events = events_of(IngestReceiptTrigger(["pkg-redir-r"], "r7_archive", 0.1, in_seconds(5)))
        assert [e["status"] for e in events] == ["error"]
        assert f"redirected it (HTTP 302) to {recorder.url}; redirects are not followed" in events[0]["message"]
        time.sleep(0.2)
        assert (recorder.connections, recorder.received) == (0, b"")


class TestBusy:
    def test_429_is_retried_after_the_seconds_retry_after_asks(self, r7sim_factory, monkeypatch):
        server = use(r7sim_factory.start("--busy", "2", "--retry-after", "1"), monkeypatch, timeout=2)
        hook = ArchiveHook(retry_args={"wait": tenacity.wait_none(), "stop": tenacity.stop_after_attempt(4)})
        started = time.monotonic()

        assert hook.open_delivery(DELIVERY, "LA-1", "VAS", "TEST")["delivery_id"] == DELIVERY

        elapsed = time.monotonic() - started
        assert server.log_text().count(f"busy: answering PUT /api/v1/deliveries/{DELIVERY} with 429") == 2
        assert 2.0 <= elapsed < 5, elapsed  # the policy waits nothing: only Retry-After (1 s, twice) made it wait

    def test_503_is_retried_at_the_http_date_retry_after_names(self, r7sim_factory, monkeypatch):
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
        when = format_datetime(at, usegmt=True)
        server = r7sim_factory.start("--busy", "1", "--busy-status", "503", "--retry-after", when)
        use(server, monkeypatch, timeout=2)
        hook = ArchiveHook(retry_args={"wait": tenacity.wait_none(), "stop": tenacity.stop_after_attempt(3)})
        started, expected = time.monotonic(), (at - datetime.now(UTC)).total_seconds()  # what is left of the 5 s

        assert hook.open_delivery(DELIVERY, "LA-1", "VAS", "TEST")["delivery_id"] == DELIVERY

        elapsed = time.monotonic() - started
        assert f"busy: answering PUT /api/v1/deliveries/{DELIVERY} with 503" in server.log_text()
        assert expected - 1.05 <= elapsed < max(expected, 0) + 2, (elapsed, expected)  # the date has whole seconds

    def test_busy_for_good_gives_up_naming_the_request(self, r7sim_factory, monkeypatch):
        use(r7sim_factory.start("--busy", "100", "--retry-after", "0"), monkeypatch, timeout=2)
        hook = ArchiveHook(retry_args={"wait": tenacity.wait_none(), "stop": tenacity.stop_after_attempt(3)})
        with pytest.raises(ArchiveResponseError, match=rf"PUT /api/v1/deliveries/{DELIVERY}: HTTP 429 busy") as caught:
            hook.open_delivery(DELIVERY, "LA-1", "VAS", "TEST")
        assert (caught.value.status_code, caught.value.retry_after) == (429, 0.0)


class TestMalformed:
    @pytest.mark.parametrize(
        ("fault", "says"),
        [
            pytest.param(
                "html:open_upload",
                r"the archive answered PUT /api/v1/packages/pkg-m/upload for package pkg-m with an HTML page "
                r"\(text/html, \d+ bytes\), not JSON",
                id="html-page",
            ),
            pytest.param(
                "cut_json:open_upload",
                r"the archive answered PUT /api/v1/packages/pkg-m/upload for package pkg-m with cut or broken JSON "
                r"\(\d+ bytes, unreadable at byte \d+",
                id="cut-json",
            ),
            pytest.param(
                "no_offset:chunk",
                r"the archive answered PATCH /api/v1/packages/pkg-m/upload for package pkg-m \(the chunk at byte 0\) "
                r"with JSON without 'offset'$",
                id="missing-offset",
            ),
            pytest.param(
                "html:complete",
                r"the archive answered POST /api/v1/packages/pkg-m/upload/complete for package pkg-m with an HTML page",
                id="html-transport-receipt",
            ),
        ],
    )
    def test_a_broken_upload_answer_is_named(self, r7sim_factory, monkeypatch, tmp_path, fault, says):
        server = use(r7sim_factory.start("--malformed", fault), monkeypatch, timeout=2)
        hook = ArchiveHook(retry_args=NO_WAIT)
        with pytest.raises(ArchiveMalformedAnswer, match=says):
            submit(hook, tmp_path, "pkg-m")
        assert server.log_text().count("malformed: answering") == 1  # reported, not sent again

    def test_a_cut_delivery_document_is_named(self, r7sim_factory, monkeypatch):
        use(r7sim_factory.start("--malformed", "cut_json:delivery"), monkeypatch, timeout=2)
        hook = ArchiveHook(retry_args=NO_WAIT)
        hook.open_delivery(DELIVERY, "LA-1", "VAS", "TEST")
        with pytest.raises(
            ArchiveMalformedAnswer,
            match=rf"^the archive answered GET /api/v1/deliveries/{DELIVERY} for delivery {DELIVERY} with cut or",
        ):
            hook.delivery(DELIVERY)

    def test_the_trigger_names_a_broken_receipt(self, r7sim_factory, monkeypatch, tmp_path):
        use(r7sim_factory.start("--malformed", "html:receipt"), monkeypatch, timeout=2)
        submit(ArchiveHook(retry_args=NO_WAIT), tmp_path, "pkg-m-r")
        events = events_of(IngestReceiptTrigger(["pkg-m-r"], "r7_archive", 0.1, in_seconds(5)))
        assert [e["status"] for e in events] == ["error"]
        assert (
            "the archive answered GET /api/v1/packages/pkg-m-r/receipt for package pkg-m-r with an HTML page"
            in events[0]["message"]
        )


class TestAccounts:
    def test_wrong_or_missing_credentials_are_refused(self, r7sim, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_R7_WRONG", r7sim.connection_uri(password="not-the-password"))
        with pytest.raises(ArchiveResponseError, match="HTTP 401 unauthorized: .*credentials of connection r7_wrong"):
            ArchiveHook("r7_wrong", retry_args=NO_WAIT).delivery(DELIVERY)
        anonymous = {"conn_type": "http", "host": "127.0.0.1", "port": r7sim.port, "schema": "http"}
        monkeypatch.setenv("AIRFLOW_CONN_R7_ANONYMOUS", json.dumps(anonymous))
        with pytest.raises(ArchiveResponseError, match="HTTP 401 unauthorized") as caught:
            ArchiveHook("r7_anonymous", retry_args=NO_WAIT).open_delivery(DELIVERY, "LA-1", "VAS", "TEST")
        assert caught.value.retryable is False
        log = r7sim.log_text()
        assert "auth: refused GET" in log and "auth: refused PUT" in log and "not-the-password" not in log

    def test_the_trigger_sends_the_credentials_and_a_wrong_one_is_an_error(self, r7sim, monkeypatch, tmp_path):
        submit(ArchiveHook(retry_args=NO_WAIT), tmp_path, "pkg-auth")
        assert [
            e["status"] for e in events_of(IngestReceiptTrigger(["pkg-auth"], "r7_archive", 0.1, in_seconds(20)))
        ] == ["done"]
        monkeypatch.setenv("AIRFLOW_CONN_R7_WRONG", r7sim.connection_uri(password="nope"))
        events = events_of(IngestReceiptTrigger(["pkg-auth"], "r7_wrong", 0.1, in_seconds(5)))
        assert [e["status"] for e in events] == ["error"] and "HTTP 401" in events[0]["message"]

    def test_submitter_cannot_approve_and_archivist_can(self, validator, r7sim_factory, monkeypatch, built):
        use(r7sim_factory.start("--no-auto-approve-test"), monkeypatch)
        submitter = ArchiveHook(retry_args=NO_WAIT)
        archivist = ArchiveHook("r7_archivist", retry_args=NO_WAIT)
        submitter.open_delivery(DELIVERY, "LO-2025-01", "vas", "TEST")
        result = built[0]
        submitter.submit_package(result.package_id, result.container, result.sha256, DELIVERY)
        wait_for_receipts(submitter, [result.package_id], timeout_s=30, poll_s=0.1)

        with pytest.raises(
            ArchiveResponseError, match="HTTP 403 forbidden: this needs the archivist's credential"
        ) as c:
            submitter.approve_delivery(DELIVERY, "Regionarkivet", "approved by the wrong role")
        assert c.value.status_code == 403 and submitter.delivery(DELIVERY)["approval"] is None
        with pytest.raises(ArchiveResponseError, match="HTTP 403 forbidden: this needs the submitter's credential"):
            archivist.open_delivery("d-by-archivist", "LO-2025-01", "vas", "TEST")

        approved = archivist.approve_delivery(DELIVERY, "Regionarkivet", "test delivery meets the agreement")
        assert approved["approval"]["approved"] is True
        assert approved["approval"]["packages"] == [result.package_id]

    def test_accounts_come_from_the_command_line(self, r7sim_factory, monkeypatch):
        server = r7sim_factory.start("--submitter", "region-bd:s3cret:with:colons", "--archivist", "arkiv:pw-2")
        monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", server.connection_uri())  # the demo's account: not this one
        with pytest.raises(ArchiveResponseError, match="HTTP 401"):
            ArchiveHook(retry_args=NO_WAIT).delivery(DELIVERY)
        server.accounts["submitter"] = ("region-bd", "s3cret:with:colons")
        monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", server.connection_uri())
        assert ArchiveHook(retry_args=NO_WAIT).open_delivery(DELIVERY, "LA-1", "VAS", "TEST")["delivery_id"] == DELIVERY

    def test_a_server_started_with_other_accounts_takes_its_own_connection(self, r7sim_factory, monkeypatch):
        server = use(r7sim_factory.start(submitter=("region-x", "p-1"), archivist=("arkiv-x", "p-2")), monkeypatch)
        assert json.loads(server.connection_uri(role="archivist"))["login"] == "arkiv-x"
        assert ArchiveHook(retry_args=NO_WAIT).open_delivery(DELIVERY, "LA-1", "VAS", "TEST")["delivery_id"] == DELIVERY

    def test_credentials_over_plain_http_need_the_connection_to_say_so(self, r7sim, monkeypatch):
        unannounced = json.loads(r7sim.connection_uri())
        del unannounced["extra"]["allow_insecure_http"]
        monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", json.dumps(unannounced))
        with pytest.raises(
            InsecureArchiveConnection, match=r"connection r7_archive would send basic auth \(login submitter\) over"
        ):
            ArchiveHook(retry_args=NO_WAIT).delivery(DELIVERY)
        assert "auth: refused" not in r7sim.log_text()  # nothing was sent
        events = events_of(IngestReceiptTrigger(["p-1"], "r7_archive", 0.1, in_seconds(5)))
        assert [e["status"] for e in events] == ["error"] and "allow_insecure_http" in events[0]["message"]
