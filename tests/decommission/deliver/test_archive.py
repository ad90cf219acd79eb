"""ArchiveHook: connection handling, retries, errors and streaming (requests_mock is not installed: real r7sim)."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import tenacity
from airflow.sdk import Connection

from decommission.deliver.archive import (
    ArchiveHook,
    ArchiveResponseError,
    _check_transport_receipt,
    base_url_from_connection,
    headers_from_connection,
    is_transient,
    timeout_from_connection,
)
from decommission.deliver.archive_connection import chunk_size_from_connection
from decommission.deliver.transport import ArchiveTransport, transport_class, transport_for
from decommission.deliver.upload import FileSlice
from decommission.errors import ArchiveError
from tests.r7sim_server import R7SimFactory, R7SimServer, free_port, write_fake_package

NO_WAIT = {"wait": tenacity.wait_none(), "stop": tenacity.stop_after_attempt(3)}


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[R7SimFactory]:
    with R7SimFactory(tmp_path_factory.mktemp("r7sim")) as started:
        yield started


@pytest.fixture(scope="module")
def server(factory: R7SimFactory) -> R7SimServer:
    return factory.start()


@pytest.fixture
def hook(server: R7SimServer, monkeypatch: pytest.MonkeyPatch) -> ArchiveHook:
    monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", server.connection_uri())
    return ArchiveHook(retry_args=NO_WAIT)


def conn(**fields) -> Connection:
    fields.setdefault("conn_type", "http")
    if "extra" in fields:
        fields["extra"] = json.dumps(fields["extra"])
    return Connection(conn_id="r7_archive", **fields)


class TestConnectionHelpers:
    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            pytest.param(
                {"host": "127.0.0.1", "port": 8700, "schema": "http"}, "http://127.0.0.1:8700", id="json-form"
            ),
            pytest.param({"host": "archive.example", "schema": "https"}, "https://archive.example", id="https-no-port"),
            pytest.param({"host": "archive.example"}, "http://archive.example", id="no-schema"),
            pytest.param(
                {"host": "https://archive.example/", "port": 443}, "https://archive.example:443", id="url-host"
            ),
        ],
    )
    def test_base_url(self, fields, expected):
        assert base_url_from_connection(conn(**fields)) == expected

    def test_base_url_without_host_raises(self):
        with pytest.raises(ArchiveError, match="connection r7_archive has no host"):
            base_url_from_connection(conn())

    @pytest.mark.parametrize(
        ("extra", "expected"),
        [pytest.param({}, 30.0, id="default"), pytest.param({"timeout": 5}, 5.0, id="extra")],
    )
    def test_timeout(self, extra, expected):
        assert timeout_from_connection(conn(host="h", extra=extra)) == expected

    @pytest.mark.parametrize("bad", [pytest.param("soon", id="text"), pytest.param(0, id="zero")])
    def test_bad_timeout_raises(self, bad):
        with pytest.raises(ArchiveError, match="extra timeout must be"):
            timeout_from_connection(conn(host="h", extra={"timeout": bad}))

    def test_headers_are_extras_that_are_not_options(self):
        extra = {"timeout": 5, "verify": False, "X-Region": "Norrbotten"}
        assert headers_from_connection(conn(host="h", extra=extra)) == {"X-Region": "Norrbotten"}

    def test_hook_builds_urls_from_the_json_connection(self, monkeypatch):
        uri = {"conn_type": "http", "host": "127.0.0.1", "port": 8123, "schema": "http", "extra": {"timeout": 7}}
        monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", json.dumps(uri))
        hook = ArchiveHook()
        assert hook.url_from_endpoint("/api/v1/deliveries/d-1") == "http://127.0.0.1:8123/api/v1/deliveries/d-1"
        assert hook.timeout == 7.0


class TestHookShape:
    def test_connection_metadata(self):
        assert (ArchiveHook.conn_name_attr, ArchiveHook.default_conn_name, ArchiveHook.conn_type) == (
            "archive_conn_id",
            "r7_archive",
            "http",
        )
        assert ArchiveHook.hook_name

    def test_init_reads_no_connection(self):
        hook = ArchiveHook("no_such_connection")  # would raise if __init__ looked the connection up
        assert hook.archive_conn_id == hook.http_conn_id == "no_such_connection"


class TestIsTransient:
    @pytest.mark.parametrize(
        ("exc", "expected"),
        [
            pytest.param(requests.ConnectionError("refused"), True, id="connection"),
            pytest.param(requests.ReadTimeout("slow"), True, id="timeout"),
            pytest.param(requests.exceptions.ChunkedEncodingError("cut"), True, id="cut-answer"),
            pytest.param(ArchiveResponseError("x", status_code=503), True, id="5xx"),
            pytest.param(ArchiveResponseError("x", status_code=409), False, id="409"),
            pytest.param(ArchiveError("x"), False, id="archive-error"),
            pytest.param(ValueError("x"), False, id="other"),
        ],
    )
    def test_is_transient(self, exc, expected):
        assert is_transient(exc) is expected


class TestTransportReceiptCheck:
    GOOD = {"receipt_type": "transport", "package_id": "p", "size": 3, "sha256": "a" * 64, "sha256_match": True}

    def test_matching_receipt_passes(self):
        _check_transport_receipt(dict(self.GOOD), "p", 3, "a" * 64)

    @pytest.mark.parametrize(
        ("change", "named"),
        [
            pytest.param({"sha256": "b" * 64}, "sha256", id="sha"),
            pytest.param({"size": 4}, "size", id="size"),
            pytest.param({"sha256_match": False}, "sha256_match", id="no-match"),
            pytest.param({"receipt_type": "ingest"}, "receipt_type", id="type"),
        ],
    )
    def test_mismatch_raises(self, change, named):
        with pytest.raises(ArchiveError, match=f"does not confirm it: wrong {named}"):
            _check_transport_receipt({**self.GOOD, **change}, "p", 3, "a" * 64)


class TestRequests:
    def test_connection_check(self, hook):
        assert hook.test_connection() == (True, "archive r7sim is up")

    def test_unreachable_archive_raises_after_the_injected_attempts(self, monkeypatch):
        port = free_port()
        monkeypatch.setenv(
            "AIRFLOW_CONN_R7_ARCHIVE", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port})
        )
        attempts = []
        hook = ArchiveHook(retry_args={**NO_WAIT, "before_sleep": attempts.append})
        with pytest.raises(ArchiveError, match="open delivery d-1: the archive could not be reached: ConnectionError"):
            hook.open_delivery("d-1", "LA-1", "VAS", "NEW")
        assert len(attempts) == 2  # three attempts, two waits

    def test_every_request_has_the_connection_timeout(self, factory, monkeypatch):
        slow = factory.start("--latency", "2")
        monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", slow.connection_uri(timeout=0.3))
        hook = ArchiveHook(retry_args={**NO_WAIT, "stop": tenacity.stop_after_attempt(2)})
        started = time.monotonic()
        with pytest.raises(ArchiveError, match=r"GET /api/v1/deliveries/d-1 for delivery d-1 too slowly: .* 0\.3 s"):
            hook.delivery("d-1")
        assert time.monotonic() - started < 1.8  # one untimed request alone takes 2 s

    def test_error_answers_carry_status_and_code(self, hook):
        with pytest.raises(ArchiveResponseError, match="HTTP 404 delivery_not_found: no delivery d-missing") as caught:
            hook.delivery("d-missing")
        assert (caught.value.status_code, caught.value.code) == (404, "delivery_not_found")

    def test_submit_to_unknown_delivery_raises(self, hook, tmp_path):
        path = tmp_path / "p.tar"
        sha = write_fake_package(path, "p-unknown-delivery")
        with pytest.raises(ArchiveResponseError, match="open it first"):
            hook.submit_package("p-unknown-delivery", path, sha, "d-never-opened")

    def test_submit_streams_the_file(self, hook, tmp_path):
        hook.open_delivery("d-big", "LA-1", "VAS", "NEW")
        path = tmp_path / "big.tar"
        sha = write_fake_package(path, "p-big", filler=48 << 20)
        tracemalloc.start()
        try:
            receipt = hook.submit_package("p-big", path, sha, "d-big")
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert receipt["size"] == path.stat().st_size > 48 << 20
        assert peak < 8 << 20, f"peak Python memory {peak} bytes: the upload was read into memory"

    def test_approval_is_refused_for_a_non_test_or_empty_delivery(self, hook, server, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVIST", server.connection_uri(role="archivist"))
        archivist = ArchiveHook("r7_archivist", retry_args=NO_WAIT)
        hook.open_delivery("d-new", "LA-1", "VAS", "NEW")
        with pytest.raises(ArchiveResponseError, match="only TEST deliveries are approved"):
            archivist.approve_delivery("d-new", "archivist", "ok")
        hook.open_delivery("d-empty", "LA-1", "VAS", "TEST")
        with pytest.raises(ArchiveResponseError, match="cannot be approved in state open"):
            archivist.approve_delivery("d-empty", "archivist", "ok")
        assert hook.delivery("d-empty")["approval"] is None


def test_download_refuses_to_overwrite(hook, tmp_path):
    target = tmp_path / "exists.tar"
    target.write_bytes(b"")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        hook.download_package("any", target)


def test_download_of_unknown_package_leaves_no_file(hook, tmp_path):
    with pytest.raises(ArchiveResponseError, match="no package p-none"):
        hook.download_package("p-none", tmp_path)
    assert list(Path(tmp_path).iterdir()) == []


class TestFileSlice:
    def test_reads_only_its_bytes_in_blocks(self, tmp_path):
        path = tmp_path / "f.bin"
        path.write_bytes(bytes(range(256)) * 1024)
        with FileSlice(path, 1000, 70_000) as body:
            assert len(body) == 70_000
            blocks = list(body)
        assert b"".join(blocks) == path.read_bytes()[1000:71_000]
        assert max(len(b) for b in blocks) <= 1 << 16  # streamed, never whole

    def test_slice_past_the_end_raises(self, tmp_path):
        path = tmp_path / "f.bin"
        path.write_bytes(b"x" * 10)
        with pytest.raises(ValueError, match=r"bytes 5\.\.15 are not within"):
            FileSlice(path, 5, 10)


class TestChunkSize:
    @pytest.mark.parametrize(
        ("extra", "expected"),
        [pytest.param({}, 8 << 20, id="default"), pytest.param({"chunk_size": "65536"}, 65536, id="extra")],
    )
    def test_chunk_size(self, extra, expected):
        assert chunk_size_from_connection(conn(host="h", extra=extra)) == expected

    @pytest.mark.parametrize("bad", [pytest.param("big", id="text"), pytest.param(0, id="zero")])
    def test_bad_chunk_size_raises(self, bad):
        with pytest.raises(ArchiveError, match="extra chunk_size must be"):
            chunk_size_from_connection(conn(host="h", extra={"chunk_size": bad}))

    def test_chunk_size_is_not_sent_as_a_header(self, monkeypatch):
        uri = {"conn_type": "http", "host": "127.0.0.1", "port": 1, "extra": {"chunk_size": 4096, "X-Region": "BD"}}
        monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", json.dumps(uri))
        session = ArchiveHook().get_conn()
        assert "chunk_size" not in session.headers and session.headers["X-Region"] == "BD"


class TestTransportChoice:
    @pytest.mark.parametrize(
        ("conn_type", "name"),
        [pytest.param("http", "ArchiveHook", id="http"), pytest.param("sftp", "SftpDropFolder", id="sftp")],
    )
    def test_connection_type_chooses_the_transport(self, conn_type, name):
        assert transport_class(conn_type).__name__ == name

    def test_unknown_connection_type_raises(self):
        with pytest.raises(ArchiveError, match="no archive transport for connection type 'ftp'; known: http, https"):
            transport_class("ftp")

    def test_http_connection_gives_the_hook(self, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", json.dumps({"conn_type": "http", "host": "h"}))
        chosen = transport_for("r7_archive")
        assert isinstance(chosen, ArchiveHook) and isinstance(chosen, ArchiveTransport)
