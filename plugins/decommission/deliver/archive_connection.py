"""The archive connection: what its fields and extras mean, and which failures are worth a retry.

Shared by the HTTP client (:mod:`decommission.deliver.archive`) and the receipt trigger
(:mod:`decommission.deliver.triggers`), so both read a connection the same way.
"""

from __future__ import annotations

from typing import Any

import requests

from decommission.errors import ArchiveError, ArchiveRefusal

API = "/api/v1"
DEFAULT_TIMEOUT = 30.0
DEFAULT_CHUNK_SIZE = 8 << 20
#: connection extras that configure the transport; any other extra becomes a request header
CONNECTION_OPTIONS = frozenset(
    {"timeout", "chunk_size", "stream", "cert", "proxies", "proxy", "verify", "verify_ssl", "allow_redirects",
     "max_redirects", "trust_env", "check_response", "srv_lookup"}
)  # fmt: skip
#: connection extras that are ours, not the HTTP provider's
OWN_OPTIONS = frozenset({"chunk_size"})


class ArchiveResponseError(ArchiveError):
    """The archive answered with an error status.

    :param message: what failed, naming the package or delivery (never patient data)
    :param status_code: the HTTP status
    :param code: the protocol's error code (``error`` in the JSON body), or "" when there was none
    """

    def __init__(self, message: str, *, status_code: int, code: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        # 4xx is the archive saying no: retrying the same request cannot change its answer
        self.retryable = status_code >= 500 or status_code in (408, 429)


class ArchiveResponseRefusal(ArchiveResponseError, ArchiveRefusal):
    """The archive refused a package for good: a changed package under a held id, or bytes that do not match."""


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


def is_transient(exc: BaseException) -> bool:
    """Whether a failed request may succeed when sent again: no answer, a cut answer, or a 5xx."""
    if isinstance(exc, ArchiveResponseError):
        return exc.status_code >= 500
    return isinstance(exc, requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError)
