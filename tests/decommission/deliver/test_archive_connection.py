"""The pure helpers of the archive connection: Retry-After, origins, credentials over http, broken answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import tenacity
from airflow.sdk import Connection

from decommission.deliver.answers import field, json_object
from decommission.deliver.archive import _WaitRetryAfter
from decommission.deliver.archive_connection import (
    MAX_RETRY_AFTER_S,
    ArchiveMalformedAnswer,
    ArchiveResponseError,
    ArchiveTimeout,
    InsecureArchiveConnection,
    check_credentials_transport,
    credentials_sent,
    endpoint_under,
    headers_from_connection,
    is_transient,
    origin,
    retry_after_seconds,
)

NOW = datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC)
WHERE, SUBJECT = "PATCH /api/v1/packages/p-1/upload", "package p-1"


def conn(**fields) -> Connection:
    fields.setdefault("conn_type", "http")
    if "extra" in fields:
        fields["extra"] = json.dumps(fields["extra"])
    return Connection(conn_id="r7_archive", **fields)


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("3", 3.0, id="seconds"),
            pytest.param(" 0 ", 0.0, id="zero-spaces"),
            pytest.param("Wed, 21 Oct 2026 07:28:30 GMT", 30.0, id="http-date"),
            pytest.param("Wednesday, 21-Oct-26 07:28:45 GMT", 45.0, id="rfc850-date"),
            pytest.param("Wed, 21 Oct 2026 07:00:00 GMT", 0.0, id="date-past-is-now"),
            pytest.param("86400", MAX_RETRY_AFTER_S, id="capped"),
            pytest.param("Thu, 22 Oct 2026 07:28:00 GMT", MAX_RETRY_AFTER_S, id="date-capped"),
        ],
    )
    def test_parses_seconds_and_dates(self, value, expected):
        assert retry_after_seconds(value, now=NOW) == expected

    @pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "٣"], ids=str)
    def test_unreadable_is_none(self, value):
        assert retry_after_seconds(value, now=NOW) is None

    def test_own_cap(self):
        assert retry_after_seconds("60", now=NOW, cap=2) == 2

    def test_wait_is_the_longer_of_the_policy_and_retry_after(self):
        def state(exc: BaseException) -> tenacity.RetryCallState:
            retry_state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
            retry_state.set_exception((type(exc), exc, None))
            return retry_state

        wait = _WaitRetryAfter(tenacity.wait_fixed(1))
        assert wait(state(ArchiveResponseError("busy", status_code=429, retry_after=5))) == 5
        assert wait(state(ArchiveResponseError("busy", status_code=503, retry_after=0.2))) == 1
        assert wait(state(ArchiveResponseError("down", status_code=503))) == 1


class TestTransient:
    @pytest.mark.parametrize(
        ("exc", "expected"),
        [
            pytest.param(ArchiveResponseError("x", status_code=429), True, id="429"),
            pytest.param(ArchiveResponseError("x", status_code=503), True, id="503"),
            pytest.param(ArchiveResponseError("x", status_code=302, code="redirect"), False, id="redirect"),
            pytest.param(ArchiveTimeout("late"), True, id="deadline"),
            pytest.param(ArchiveMalformedAnswer("broken"), False, id="malformed"),
        ],
    )
    def test_what_is_retried(self, exc, expected):
        assert is_transient(exc) is expected


class TestOrigin:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            pytest.param("http://Archive.Example/api", "http://archive.example:80", id="default-http-port"),
            pytest.param("https://archive.example:443/x", "https://archive.example:443", id="explicit-https-port"),
            pytest.param("http://[::1]:8700/", "http://[::1]:8700", id="ipv6"),
        ],
    )
    def test_origin(self, url, expected):
        assert origin(url) == expected

    @pytest.mark.parametrize(
        ("base", "target", "expected"),
        [
            pytest.param("http://a:8700", "http://a:8700/api/v1/x?y=1", "/api/v1/x?y=1", id="same-origin"),
            pytest.param("https://a", "https://a:443/api/v1/x", "/api/v1/x", id="default-port-same"),
            pytest.param("https://a/r7", "https://a/r7/api/v1/x", "/api/v1/x", id="under-base-path"),
            pytest.param("https://a/r7", "https://a/other/api", None, id="outside-base-path"),
            pytest.param("https://a/r7", "https://a/r7x/api", None, id="prefix-is-not-under"),
            pytest.param("http://a:8700", "http://b:8700/api/v1/x", None, id="other-host"),
            pytest.param("http://a:8700", "http://a:8701/api/v1/x", None, id="other-port"),
            pytest.param("https://a", "http://a:443/api/v1/x", None, id="other-scheme"),
            pytest.param("http://a:8700", "/api/v1/x", None, id="not-absolute"),
        ],
    )
    def test_endpoint_under(self, base, target, expected):
        assert endpoint_under(base, target) == expected


class TestCredentialsOverHttp:
    def test_basic_auth_over_http_is_refused_naming_the_connection(self):
        plain = conn(host="127.0.0.1", port=8700, schema="http", login="region", password="secret")
        with pytest.raises(InsecureArchiveConnection, match="connection r7_archive would send basic auth") as caught:
            check_credentials_transport(plain)
        assert "secret" not in str(caught.value) and "allow_insecure_http" in str(caught.value)
        assert caught.value.retryable is False

    def test_api_key_header_over_http_is_refused(self):
        keyed = conn(host="a.example", schema="http", extra={"X-Api-Key": "k", "X-Region": "BD"})
        assert credentials_sent(keyed) == ["header X-Api-Key"]
        with pytest.raises(InsecureArchiveConnection, match="header X-Api-Key over plain http to http://a.example:80"):
            check_credentials_transport(keyed)

    @pytest.mark.parametrize(
        "fields",
        [
            pytest.param({"schema": "https", "login": "region", "password": "p"}, id="https"),
            pytest.param({"schema": "http"}, id="http-without-credentials"),
            pytest.param(
                {"schema": "http", "login": "r", "password": "p", "extra": {"allow_insecure_http": True}}, id="allowed"
            ),
            pytest.param(
                {"schema": "http", "login": "r", "password": "p", "extra": {"allow_insecure_http": "true"}},
                id="allowed-as-text",
            ),
        ],
    )
    def test_allowed(self, fields):
        check_credentials_transport(conn(host="a.example", **fields))

    def test_the_allowing_extra_is_not_sent_as_a_header(self):
        extra = {"allow_insecure_http": True, "chunk_size": 5, "X-Region": "BD"}
        assert headers_from_connection(conn(host="h", extra=extra)) == {"X-Region": "BD"}


class TestMalformedAnswers:
    @pytest.mark.parametrize(
        ("body", "content_type", "says"),
        [
            pytest.param(b"<!DOCTYPE html><html><h1>Bad Gateway</h1></html>", "text/html", "an HTML page", id="html"),
            pytest.param(b"<html>oops</html>", "application/json", "an HTML page", id="html-labelled-json"),
            pytest.param(b'{"offset": 4096, "sta', "application/json", "cut or broken JSON", id="cut"),
            pytest.param(b"", "application/json", "an empty body", id="empty"),
            pytest.param(b"OK", "text/plain", "a body that is not JSON", id="text"),
            pytest.param(b"[1, 2]", "application/json", "JSON that is a list, not an object", id="list"),
        ],
    )
    def test_not_a_json_object(self, body, content_type, says):
        with pytest.raises(ArchiveMalformedAnswer, match=f"^the archive answered {WHERE} for {SUBJECT} with {says}"):
            json_object(body, content_type, WHERE, SUBJECT)

    def test_cut_json_says_where_it_breaks_not_what_it_holds(self):
        says = r"\(22 bytes, unreadable at byte 12: Unterminated string"
        with pytest.raises(ArchiveMalformedAnswer, match=says) as caught:
            json_object(b'{"patient": "19121212-', "application/json", WHERE, SUBJECT)
        assert "19121212" not in str(caught.value)

    @pytest.mark.parametrize(
        ("document", "says"),
        [
            pytest.param({"state": "open"}, "JSON without 'offset'", id="missing"),
            pytest.param({"offset": "4096"}, "'offset' that is text, not a whole number", id="text"),
            pytest.param({"offset": True}, "'offset' that is true or false, not a whole number", id="bool"),
            pytest.param({"offset": 1.5}, "'offset' that is a decimal number, not a whole number", id="float"),
            pytest.param({"offset": None}, "'offset' that is null, not a whole number", id="null"),
        ],
    )
    def test_field_missing_or_mistyped(self, document, says):
        with pytest.raises(ArchiveMalformedAnswer, match=f"^the archive answered {WHERE} for {SUBJECT} with {says}$"):
            field(document, "offset", int, WHERE, SUBJECT)

    def test_field_of_the_right_type(self):
        assert field({"offset": 0}, "offset", int, WHERE, SUBJECT) == 0
