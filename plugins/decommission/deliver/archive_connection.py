"""The archive connection: what its fields and extras mean, and which failures are worth a retry.

Shared by the HTTP client (:mod:`decommission.deliver.archive`) and the receipt trigger
(:mod:`decommission.deliver.triggers`), so both read a connection the same way.
"""

from __future__ import annotations

import email.utils
import logging
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from decommission.errors import ArchiveError, ArchiveRefusal

log = logging.getLogger(__name__)

API = "/api/v1"
DEFAULT_TIMEOUT = 30.0
DEFAULT_CHUNK_SIZE = 8 << 20
#: the longest wait a Retry-After header may ask for; a longer one is cut to this
MAX_RETRY_AFTER_S = 120.0
#: connection extras that are ours, not the HTTP provider's (never sent as headers)
OWN_OPTIONS = frozenset({"chunk_size", "allow_insecure_http"})
#: connection extras that configure the transport; any other extra becomes a request header
CONNECTION_OPTIONS = frozenset(
    {"timeout", "stream", "cert", "proxies", "proxy", "verify", "verify_ssl", "allow_redirects",
     "max_redirects", "trust_env", "check_response", "srv_lookup"}
) | OWN_OPTIONS  # fmt: skip
#: header names (from extras) that carry a credential: they must not go over plain http either
_SECRET_HEADER = re.compile(r"auth|key|token|secret|passw|cookie|session", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ArchiveResponseError(ArchiveError):
    """The archive answered with an error status.

    :param message: what failed, naming the package or delivery (never patient data)
    :param status_code: the HTTP status
    :param code: the protocol's error code (``error`` in the JSON body), or "" when there was none
    :param retry_after: seconds the archive asked the client to wait (``Retry-After``), capped
    """

    def __init__(self, message: str, *, status_code: int, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.retry_after = retry_after
        # 4xx is the archive saying no: retrying the same request cannot change its answer
        self.retryable = status_code >= 500 or status_code in (408, 429)


class ArchiveResponseRefusal(ArchiveResponseError, ArchiveRefusal):
    """The archive refused a package for good: a changed package under a held id, or bytes that do not match."""


class ArchiveTimeout(ArchiveError):
    """An exchange with the archive did not finish within its wall-clock deadline (tried again, like a timeout)."""


class ArchiveMalformedAnswer(ArchiveError):
    """The archive answered with something the protocol does not allow: not JSON, cut, a field missing or mistyped.

    Not retried by the client: a broken answer is a fault to report, not congestion to wait out.
    """


class InsecureArchiveConnection(ArchiveError):
    """The connection would send credentials over plain http without saying that this is meant."""

    retryable = False


def base_url_from_connection(conn: Any) -> str:
    """Return the archive's base URL from an HTTP connection, as ``HttpHook`` builds it.

    :param conn: an Airflow connection with host, port and schema (the URL scheme)
    """
    host = (conn.host or "").rstrip("/")
    if not host:
        raise ArchiveError(f"connection {conn.conn_id} has no host")
    base = host if "://" in host else f"{conn.schema or 'http'}://{host}"
    return f"{base}:{conn.port}" if conn.port else base


def _positive_extra(conn: Any, name: str, default: float, cast: type, unit: str) -> Any:
    """A connection extra that must be a positive number; an error names the connection and the extra."""
    value = conn.extra_dejson.get(name, default)
    try:
        number = cast(value)
    except (TypeError, ValueError):
        raise ArchiveError(f"connection {conn.conn_id}: extra {name} must be {unit}, got {value!r}") from None
    if number <= 0:
        raise ArchiveError(f"connection {conn.conn_id}: extra {name} must be positive, got {number}")
    return number


def timeout_from_connection(conn: Any) -> float:
    """Return the request timeout in seconds: the connection's extra ``timeout``, default 30."""
    return _positive_extra(conn, "timeout", DEFAULT_TIMEOUT, float, "seconds")


def chunk_size_from_connection(conn: Any) -> int:
    """Return the upload chunk size in bytes: the connection's extra ``chunk_size``, default 8 MiB."""
    return _positive_extra(conn, "chunk_size", DEFAULT_CHUNK_SIZE, int, "bytes")


def headers_from_connection(conn: Any) -> dict[str, str]:
    """Return the request headers a connection's extras define (every extra that is not an option)."""
    return {str(k): str(v) for k, v in conn.extra_dejson.items() if k not in CONNECTION_OPTIONS}


def allows_insecure_http(conn: Any) -> bool:
    """Whether the connection's extra ``allow_insecure_http`` is true (JSON true or "true"/"yes"/"1")."""
    value = conn.extra_dejson.get("allow_insecure_http", False)
    return value is True or str(value).strip().lower() in {"true", "yes", "1"}


def credentials_sent(conn: Any) -> list[str]:
    """Name the credentials a connection sends with every request (never their values)."""
    sent = [f"basic auth (login {conn.login})"] if conn.login or conn.password else []
    sent += [f"header {name}" for name in headers_from_connection(conn) if _SECRET_HEADER.search(name)]
    return sent


def check_credentials_transport(conn: Any) -> None:
    """Refuse a connection that would send credentials over plain http unless it says that is meant.

    Basic auth and API keys over http can be read by anyone on the path; a local test or demo
    archive is the one place for it, and its connection says so with ``allow_insecure_http``.

    :raises InsecureArchiveConnection: credentials, an ``http`` URL and no ``allow_insecure_http``
    """
    base = base_url_from_connection(conn)
    sent = credentials_sent(conn)
    if urlsplit(base).scheme.lower() == "https" or not sent:
        return
    if not allows_insecure_http(conn):
        raise InsecureArchiveConnection(
            f"connection {conn.conn_id} would send {', '.join(sent)} over plain http to {origin(base)}: "
            "use https, or set its extra allow_insecure_http to true where that is meant (a local test or demo archive)"
        )
    log.warning(
        "connection %s sends %s over plain http to %s: its extra allow_insecure_http is true "
        "(meant for a local test or demo archive only)",
        conn.conn_id,
        ", ".join(sent),
        origin(base),
    )


def origin(url: str) -> str:
    """Return a URL's origin, ``scheme://host:port`` with the port always given (what two URLs must share)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number: no origin anything else shares
        port = None
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def endpoint_under(base_url: str, target: str) -> str | None:
    """Return ``target`` as an endpoint of the archive at ``base_url`` (path and query), or None when it is not one.

    Only a URL with the base URL's origin and under its path is the archive's: a redirect anywhere
    else is not followed, so credentials and bodies never go to another origin.
    """
    base, there = urlsplit(base_url), urlsplit(target)
    if origin(base_url) != origin(target) or not there.scheme:
        return None
    prefix = base.path.rstrip("/")
    if prefix and there.path != prefix and not there.path.startswith(prefix + "/"):
        return None
    endpoint = there.path[len(prefix) :] or "/"
    return f"{endpoint}?{there.query}" if there.query else endpoint


def retry_after_seconds(
    value: str | None, *, now: datetime | None = None, cap: float = MAX_RETRY_AFTER_S
) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for, at most ``cap``; None when absent or unreadable.

    RFC 9110 allows delay-seconds (``120``) or an HTTP-date (``Wed, 21 Oct 2026 07:28:00 GMT``);
    a date in the past means now (0). An archive must not park the client for hours, hence the cap.

    :param now: the current time, for a date (tests pass one); default the clock
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        seconds = float(int(text))
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP-date is GMT by definition
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), cap)


def is_transient(exc: BaseException) -> bool:
    """Whether a failed request may succeed when sent again: no answer, a cut or late answer, a 5xx, or a 429."""
    if isinstance(exc, ArchiveResponseError):
        return exc.status_code >= 500 or exc.status_code == 429
    if isinstance(exc, ArchiveTimeout):
        return True
    return isinstance(exc, requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError)
