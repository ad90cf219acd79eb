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
from decommission.deliver.archive_connection import (
    API,
    OWN_OPTIONS,
    ArchiveResponseError,
    ArchiveResponseRefusal,
    base_url_from_connection,
    chunk_size_from_connection,
    headers_from_connection,
    is_transient,
    timeout_from_connection,
)
from decommission.deliver.transport import check_transport_receipt as _check_transport_receipt
from decommission.deliver.upload import FileSlice
from decommission.errors import ArchiveError

if TYPE_CHECKING:
    from requests import Response

T = TypeVar("T")
_CHUNK = 1 << 20
#: offset mismatches one upload may meet (each means another writer moved it on) before it fails
MAX_OFFSET_MISMATCHES = 20
__all__ = [
    "API",
    "ArchiveHook",
    "ArchiveResponseError",
    "base_url_from_connection",
    "headers_from_connection",
    "is_transient",
    "timeout_from_connection",
]

#: retry policy (tenacity.Retrying keyword arguments) used where none is given
DEFAULT_RETRY_ARGS: dict[str, Any] = {
    "stop": tenacity.stop_after_attempt(6),
    "wait": tenacity.wait_exponential(multiplier=1, min=1, max=30),
}


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

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None) -> Any:
        """Return the provider's session, minus our own extras that it would send as headers."""
        session = super().get_conn(headers=headers, extra_options=extra_options)
        for option in OWN_OPTIONS:
            session.headers.pop(option, None)
        return session

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
        """Upload a package's tar in chunks, resuming where the archive's copy ends, and return the transport receipt.

        The upload is a session on the archive (``docs/archive-protocol.md`` 3.1): opening it
        again (after a crash, a kill or a restart of either side) gives the committed offset, and
        the upload goes on from there. Each chunk is read from disk as it is sent.

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
        try:
            session = self._call(
                f"open the upload of package {package_id}",
                lambda: self._request(
                    "PUT",
                    f"{API}/packages/{package_id}/upload",
                    ok=(200, 201),
                    json={"delivery_id": delivery_id, "sha256": sha256, "size": size},
                ),
            ).json()
            if session["state"] == "open":
                if session["offset"]:
                    self.log.info(
                        "resuming the upload of package %s at byte %d of %d", package_id, session["offset"], size
                    )
                self._send_chunks(package_id, container, size, int(session["offset"]))
            response = self._call(
                f"complete the upload of package {package_id}",
                lambda: self._request("POST", f"{API}/packages/{package_id}/upload/complete", ok=(200, 201)),
            )
        except ArchiveResponseError as exc:
            raise _explained(exc, package_id, container, sha256, delivery_id) from exc
        receipt = response.json()
        _check_transport_receipt(receipt, package_id, size, sha256)
        receipt["duplicate"] = response.status_code == 200
        if receipt["duplicate"]:
            self.log.info("package %s was already in the archive; kept its original receipt", package_id)
        return receipt

    def _send_chunks(self, package_id: str, container: Path, size: int, offset: int) -> None:
        """Send the tar from ``offset`` to the end, one chunk per request, each under the retry policy.

        After a failed or unanswered chunk the next attempt asks the archive for its committed
        offset first, so a chunk the archive did keep is never sent twice.
        """
        endpoint = f"{API}/packages/{package_id}/upload"
        chunk_size = self.chunk_size
        state = {"offset": offset, "known": True}

        def attempt() -> None:
            if not state["known"]:
                state["offset"] = int(self._request("GET", endpoint, ok=(200,)).json()["offset"])
                state["known"] = True
            start = state["offset"]
            length = min(chunk_size, size - start)
            state["known"] = False  # until the archive answers for this chunk
            with FileSlice(container, start, length) as body:
                answer = self._request(
                    "PATCH",
                    endpoint,
                    ok=(200,),
                    data=body,
                    headers={
                        "Content-Type": "application/offset+octet-stream",
                        "Content-Length": str(length),
                        "Upload-Offset": str(start),
                    },
                    label=f"upload package {package_id} at byte {start}",
                )
            state["offset"], state["known"] = int(answer.json()["offset"]), True

        mismatches = 0
        while state["offset"] < size:
            try:
                self._call(f"upload package {package_id} at byte {state['offset']}", attempt)
            except ArchiveResponseError as exc:
                # another attempt (one we gave up on, or a killed run's) got there first: ask again
                if exc.code != "offset_mismatch" or mismatches >= MAX_OFFSET_MISMATCHES:
                    raise
                mismatches += 1
                self.log.info("upload of package %s: the archive holds another offset; asking again", package_id)

    def upload_status(self, package_id: str) -> dict:
        """Return the package's upload document: its committed ``offset``, ``state`` open or complete."""
        return self._get_json(f"{API}/packages/{package_id}/upload", f"read the upload of {package_id}")

    @property
    def chunk_size(self) -> int:
        """Bytes per upload request: the connection's extra ``chunk_size``, default 8 MiB."""
        return chunk_size_from_connection(self.get_connection(self.archive_conn_id))

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


def _explained(
    exc: ArchiveResponseError, package_id: str, container: Path, sha256: str, delivery_id: str
) -> ArchiveResponseError:
    """Return the upload error with what it means for the package, where the protocol says."""
    if exc.status_code == 409 and exc.code == "package_conflict":
        message = (
            f"package {package_id} already exists in the archive with a different checksum or delivery "
            f"(sent SHA-256 {sha256} in delivery {delivery_id}): a changed package needs a new package id. "
            f"Archive said: {exc}"
        )
    elif exc.status_code == 422:
        message = (
            f"the archive found that package {package_id} does not hash to the declared SHA-256 {sha256}: "
            f"{container} changed after it was hashed, or the checksum is wrong"
        )
    else:
        return exc
    return ArchiveResponseRefusal(message, status_code=exc.status_code, code=exc.code)
