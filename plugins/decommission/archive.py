"""The archive client: deliveries, package uploads, receipts and read-back over the archive protocol.

The protocol (``docs/archive-protocol.md``) is the project's own, because R7 e-Arkiv's ingest
interface is not public; ``r7sim`` serves it locally. The connection is an Airflow HTTP
connection (default id ``r7_archive``), for example::

    AIRFLOW_CONN_R7_ARCHIVE='{"conn_type": "http", "host": "127.0.0.1", "port": 8700,
                              "schema": "http", "extra": {"timeout": 30}}'

``schema`` is the URL scheme; ``extra.timeout`` (seconds, default 30) bounds every request.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import requests
import tenacity
from airflow.providers.http.hooks.http import HttpHook

from decommission import __version__
from decommission.errors import ArchiveError

if TYPE_CHECKING:
    from requests import Response

T = TypeVar("T")

API = "/api/v1"
DEFAULT_TIMEOUT = 30.0
#: connection extras that configure the transport; any other extra becomes a request header
CONNECTION_OPTIONS = frozenset(
    {"timeout", "stream", "cert", "proxies", "proxy", "verify", "verify_ssl", "allow_redirects",
     "max_redirects", "trust_env", "check_response", "srv_lookup"}
)  # fmt: skip
_CHUNK = 1 << 20

#: retry policy (tenacity.Retrying keyword arguments) used where none is given
DEFAULT_RETRY_ARGS: dict[str, Any] = {
    "stop": tenacity.stop_after_attempt(6),
    "wait": tenacity.wait_exponential(multiplier=1, min=1, max=30),
}


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


def base_url_from_connection(conn: Any) -> str:
    """Return the archive's base URL from an HTTP connection, as ``HttpHook`` builds it.

    :param conn: an Airflow connection with host, port and schema (the URL scheme)
    """
    host = (conn.host or "").rstrip("/")
    if not host:
        raise ArchiveError(f"connection {conn.conn_id} has no host")
    base = host if "://" in host else f"{conn.schema or 'http'}://{host}"
    return f"{base}:{conn.port}" if conn.port else base


def timeout_from_connection(conn: Any) -> float:
    """Return the request timeout in seconds: the connection's extra ``timeout``, default 30."""
    value = conn.extra_dejson.get("timeout", DEFAULT_TIMEOUT)
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        raise ArchiveError(f"connection {conn.conn_id}: extra timeout must be seconds, got {value!r}") from None
    if timeout <= 0:
        raise ArchiveError(f"connection {conn.conn_id}: extra timeout must be positive, got {timeout}")
    return timeout


def headers_from_connection(conn: Any) -> dict[str, str]:
    """Return the request headers a connection's extras define (every extra that is not an option)."""
    return {str(k): str(v) for k, v in conn.extra_dejson.items() if k not in CONNECTION_OPTIONS}


def is_transient(exc: BaseException) -> bool:
    """Whether a failed request may succeed when sent again: no answer, a cut answer, or a 5xx."""
    if isinstance(exc, ArchiveResponseError):
        return exc.status_code >= 500
    return isinstance(exc, requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError)


class ArchiveHook(HttpHook):
    """Talk to the archive (R7 e-Arkiv, or the local r7sim) over the archive protocol.

    Every request has a timeout and is retried with exponential backoff on timeouts,
    connection errors and 5xx answers; every method is safe to repeat.

    :param archive_conn_id: the HTTP connection of the archive
    :param retry_args: tenacity.Retrying keyword arguments laid over :data:`DEFAULT_RETRY_ARGS`
        (tests pass ``{"wait": tenacity.wait_none()}``); ``retry`` defaults to :func:`is_transient`
    :param kwargs: passed on to :class:`HttpHook` (``auth_type``, ``adapter``, keep-alive settings)
    """

    conn_name_attr = "archive_conn_id"
    default_conn_name = "r7_archive"
    conn_type = "http"
    hook_name = "R7 e-Arkiv archive"
    default_headers = {"Accept": "application/json", "User-Agent": f"decommission/{__version__}"}

    def __init__(
        self,
        archive_conn_id: str = default_conn_name,
        *,
        retry_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(method="GET", http_conn_id=archive_conn_id, **kwargs)
        self.archive_conn_id = archive_conn_id
        self.retry_args: dict[str, Any] = {
            **DEFAULT_RETRY_ARGS,
            "retry": tenacity.retry_if_exception(is_transient),
            "before_sleep": self._log_retry,
            "reraise": True,
            **(retry_args or {}),
        }
        self._timeout: float | None = None

    @property
    def timeout(self) -> float:
        """Seconds every request may wait (the connection's extra ``timeout``, default 30)."""
        if self._timeout is None:
            self._timeout = timeout_from_connection(self.get_connection(self.archive_conn_id))
        return self._timeout

    # deliveries -------------------------------------------------------------------------------

    def open_delivery(self, delivery_id: str, agreement_id: str, system_id: str, record_status: str) -> dict:
        """Open a delivery (or find the identical one already open).

        :param delivery_id: our id of the delivery
        :param agreement_id: the delivery agreement (leveransöverenskommelse) it falls under
        :param system_id: the retired system delivering
        :param record_status: the SIP RECORDSTATUS: TEST first, then NEW, REPLACEMENT, SUPPLEMENT, ...
        :returns: the delivery document
        :raises ArchiveError: the archive refused it, e.g. the id is open with other attributes (409)
        """
        body = {"agreement_id": agreement_id, "system_id": system_id, "record_status": record_status}
        response = self._call(
            f"open delivery {delivery_id}",
            lambda: self._request("PUT", f"{API}/deliveries/{delivery_id}", ok=(200, 201), json=body),
        )
        return response.json()

    def delivery(self, delivery_id: str) -> dict:
        """Return the delivery with its holdings (packages, sha256, size, status, counts) and approval."""
        return self._get_json(f"{API}/deliveries/{delivery_id}", f"read delivery {delivery_id}")

    def approve_delivery(self, delivery_id: str, approved_by: str, comment: str) -> dict:
        """Record the archive's approval of a TEST delivery whose packages are all accepted.

        :returns: the delivery document, with ``approval`` set
        :raises ArchiveError: not a TEST delivery, or not every package accepted (409)
        """
        body = {"approved_by": approved_by, "comment": comment}
        response = self._call(
            f"approve delivery {delivery_id}",
            lambda: self._request("POST", f"{API}/deliveries/{delivery_id}/approval", ok=(200,), json=body),
        )
        return response.json()

    # packages ---------------------------------------------------------------------------------

    def submit_package(self, package_id: str, container: Path, sha256: str, delivery_id: str) -> dict:
        """Upload a package's tar, streamed from disk, and return the transport receipt.

        :param package_id: the package's id (its OBJID); a changed package needs a new id
        :param container: the package's ``.tar``
        :param sha256: the tar's SHA-256, computed when it was written; the archive checks it
        :param delivery_id: the open delivery the package belongs to
        :returns: the transport receipt, plus ``duplicate``: True when the archive already held
            this package (the receipt is then the original one)
        :raises ArchiveError: the id is held with another checksum (409), the bytes do not match
            ``sha256`` (422), or the archive stayed unreachable
        """
        container = Path(container)
        size = container.stat().st_size
        sha256 = sha256.lower()

        def upload() -> Response:
            with container.open("rb") as body:
                return self._request(
                    "PUT",
                    f"{API}/packages/{package_id}",
                    ok=(200, 201),
                    data=body,
                    headers={
                        "Content-Type": "application/x-tar",
                        "Content-Length": str(size),
                        "X-Delivery-Id": delivery_id,
                        "X-Content-SHA256": sha256,
                    },
                )

        try:
            response = self._call(f"submit package {package_id}", upload)
        except ArchiveResponseError as exc:
            if exc.status_code == 409 and exc.code == "package_conflict":
                raise ArchiveResponseError(
                    f"package {package_id} already exists in the archive with a different checksum or "
                    f"delivery (sent SHA-256 {sha256} in delivery {delivery_id}): a changed package needs "
                    f"a new package id. Archive said: {exc}",
                    status_code=409,
                    code=exc.code,
                ) from exc
            if exc.status_code == 422:
                raise ArchiveResponseError(
                    f"the archive found that package {package_id} does not hash to the declared SHA-256 "
                    f"{sha256}: {container} changed after it was hashed, or the checksum is wrong",
                    status_code=422,
                    code=exc.code,
                ) from exc
            raise
        receipt = response.json()
        _check_transport_receipt(receipt, package_id, size, sha256)
        receipt["duplicate"] = response.status_code == 200
        if receipt["duplicate"]:
            self.log.info("package %s was already in the archive; kept its original receipt", package_id)
        return receipt

    def ingest_receipt(self, package_id: str) -> dict:
        """Return the package's ingest receipt: status pending, accepted or rejected (with reasons)."""
        return self._get_json(f"{API}/packages/{package_id}/receipt", f"read the ingest receipt of {package_id}")

    def download_package(self, package_id: str, dest: Path) -> Path:
        """Read a package back from the archive into a file, streamed and checked against its SHA-256.

        :param package_id: the package to read back
        :param dest: the file to write, or an existing directory to write ``<package_id>.tar`` into
        :returns: the file written
        :raises FileExistsError: the target file exists already
        :raises ArchiveError: the archive failed, or the bytes did not match the archive's SHA-256
        """
        dest = Path(dest)
        target = dest / f"{package_id}.tar" if dest.is_dir() else dest
        if target.exists():
            raise FileExistsError(f"refusing to overwrite {target}")

        def download() -> Path:
            response = self._request("GET", f"{API}/packages/{package_id}", ok=(200,), stream=True)
            fd, staged_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
            staged = Path(staged_name)
            try:
                digest = hashlib.sha256()
                with response, os.fdopen(fd, "wb") as out:
                    for chunk in response.iter_content(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                expected = response.headers.get("X-Content-SHA256", "").lower()
                if digest.hexdigest() != expected:
                    raise ArchiveError(
                        f"package {package_id} read back from the archive hashes to {digest.hexdigest()}, "
                        f"but the archive holds it as {expected or 'no checksum'}"
                    )
                if target.exists():
                    raise FileExistsError(f"refusing to overwrite {target}")
                staged.rename(target)
                return target
            finally:
                staged.unlink(missing_ok=True)

        return self._call(f"read back package {package_id}", download)

    def read_record(self, package_id: str, patient_key: str) -> bytes:
        """Return one patient's ``record.xml`` from a package held by the archive (for the sample check).

        :param package_id: the package holding the patient
        :param patient_key: the source system's patient key (the patient's folder name)
        """
        response = self._call(
            f"read a record of package {package_id}",
            lambda: self._request(
                "GET",
                f"{API}/packages/{package_id}/records/{patient_key}",
                ok=(200,),
                label=f"GET a record of package {package_id}",  # keeps the patient key out of errors
            ),
        )
        return response.content

    # transport --------------------------------------------------------------------------------

    def _get_json(self, endpoint: str, what: str) -> dict:
        return self._call(what, lambda: self._request("GET", endpoint, ok=(200,))).json()

    def _call(self, what: str, attempt: Callable[[], T]) -> T:
        """Run one request (``attempt``) under the retry policy; name ``what`` failed when it gives up."""
        try:
            return tenacity.Retrying(**self.retry_args)(attempt)
        except tenacity.RetryError as exc:  # a policy without reraise
            raise ArchiveError(f"{what}: gave up after {exc.last_attempt.attempt_number} attempts") from exc
        except requests.RequestException as exc:
            raise ArchiveError(f"{what}: the archive could not be reached: {type(exc).__name__}: {exc}") from exc

    def _request(
        self,
        method: str,
        endpoint: str,
        *,
        ok: tuple[int, ...],
        stream: bool = False,
        label: str | None = None,
        **request_kwargs: Any,
    ) -> Response:
        """Send one request and return the response if its status is in ``ok``, else raise.

        :param label: names the request in errors instead of ``method endpoint``
        """
        self.method = method
        response = self.run(
            endpoint,
            data=request_kwargs.pop("data", None),
            headers=request_kwargs.pop("headers", None),
            extra_options={"check_response": False, "timeout": self.timeout, "stream": stream},
            **request_kwargs,
        )
        if response.status_code in ok:
            return response
        try:
            error = response.json()
            if not isinstance(error, dict):
                error = {}
            code, message = str(error.get("error", "")), str(error.get("message", ""))
        except ValueError:
            code, message = "", response.reason or ""
        finally:
            response.close()
        where = label or f"{method} {endpoint}"
        raise ArchiveResponseError(
            f"{where}: HTTP {response.status_code} {code}: {message}".rstrip(": "),
            status_code=response.status_code,
            code=code,
        )

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
        self.log.warning(
            "archive request failed (attempt %d: %s: %s); retrying in %.1f s",
            retry_state.attempt_number,
            type(exc).__name__,
            exc,
            delay,
        )

    def test_connection(self) -> tuple[bool, str]:
        """Check that the archive answers ``/healthz``."""
        try:
            health = self._call("health check", lambda: self._request("GET", "/healthz", ok=(200,))).json()
        except (ArchiveError, ValueError) as exc:
            return False, str(exc)
        return True, f"archive {health.get('archive', '?')} is up"


def _check_transport_receipt(receipt: dict, package_id: str, size: int, sha256: str) -> None:
    """Raise unless the transport receipt confirms this package, size and checksum."""
    wrong = [
        name
        for name, expected in (("package_id", package_id), ("size", size), ("sha256", sha256), ("sha256_match", True))
        if receipt.get(name) != expected
    ]
    if receipt.get("receipt_type") != "transport" or wrong:
        raise ArchiveError(
            f"the transport receipt of package {package_id} does not confirm it: "
            f"wrong {', '.join(wrong) or 'receipt_type'}"
        )
