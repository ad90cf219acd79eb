"""The archive client: deliveries, package uploads, receipts and read-back over the archive protocol.

The protocol (``docs/archive-protocol.md``) is the project's own, because R7 e-Arkiv's ingest
interface is not public; ``r7sim`` serves it locally. The connection is an Airflow HTTP
connection (default id ``r7_archive``), for example::

    AIRFLOW_CONN_R7_ARCHIVE='{"conn_type": "http", "host": "archive.example", "schema": "https",
                              "login": "region", "password": "...", "extra": {"timeout": 30}}'

``schema`` is the URL scheme; login and password go as HTTP basic auth, over https only unless
the extra ``allow_insecure_http`` is true (a local test or demo archive); ``extra.timeout``
(seconds, default 30) is the wall-clock deadline of every request (:mod:`.deadline`).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urljoin

import requests
import tenacity
from airflow.providers.http.hooks.http import HttpHook

from decommission import __version__
from decommission.deliver.answers import field, json_object, malformed
from decommission.deliver.archive_connection import (
    API,
    OWN_OPTIONS,
    ArchiveMalformedAnswer,
    ArchiveResponseError,
    ArchiveResponseRefusal,
    ArchiveTimeout,
    base_url_from_connection,
    check_credentials_transport,
    chunk_size_from_connection,
    endpoint_under,
    headers_from_connection,
    is_transient,
    origin,
    retry_after_seconds,
    timeout_from_connection,
)
from decommission.deliver.deadline import Deadline, DeadlineAdapter
from decommission.deliver.transport import check_transport_receipt as _check_transport_receipt
from decommission.deliver.upload import FileSlice
from decommission.errors import ArchiveError

if TYPE_CHECKING:
    from requests import Response

T = TypeVar("T")
_CHUNK = 1 << 20
#: offset mismatches one upload may meet (each means another writer moved it on) before it fails
MAX_OFFSET_MISMATCHES = 20
#: chunks answered 200 in a row without the archive's offset moving before an upload gives up
MAX_NO_PROGRESS = 3
#: completions answered "not every byte arrived" (after which the upload goes on) before it gives up
MAX_COMPLETION_ROUNDS = 3
#: redirects a read may follow within the archive's base URL (a write follows none)
MAX_REDIRECTS = 5
#: a body moved (a chunk sent, a package read back) earns its request one second more per this many
#: bytes: a large transfer at a modest rate finishes, a drip of bytes does not
TRANSFER_ALLOWANCE = 64 << 10
_READS = frozenset({"GET", "HEAD"})
_PATIENT_KEY_IN_URL = re.compile(r"(/records/)[^\s'\"?]+")
__all__ = [
    "API",
    "ArchiveHook",
    "ArchiveMalformedAnswer",
    "ArchiveResponseError",
    "ArchiveTimeout",
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


def _without_keys(text: str) -> str:
    """``text`` with a record URL's patient key replaced: requests and the HTTP provider name URLs in errors."""
    return _PATIENT_KEY_IN_URL.sub(r"\1<patient key>", text)


class _KeyFreeLog:
    """The hook's logger, with every message's record URLs stripped of their patient key before it is logged.

    The HTTP provider logs a connection error with its URL ("... Tenacity will retry") before our code
    sees it; a record's URL names the patient key, so the hook's whole log goes through this.
    """

    _LEVELS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal"})

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        if name not in self._LEVELS:
            return method

        def log(msg: Any, *args: Any, **kwargs: Any) -> Any:
            text = str(msg) % args if args else str(msg)
            return method("%s", _without_keys(text), **kwargs)

        return log


class ArchiveHook(HttpHook):
    """Talk to the archive (R7 e-Arkiv, or the local r7sim) over the archive protocol.

    Every request has a wall-clock deadline (the connection's ``timeout``, plus one second per
    :data:`TRANSFER_ALLOWANCE` bytes of body moved) and is retried with exponential backoff on
    timeouts, connection errors, 5xx and 429 answers, waiting at least what ``Retry-After`` asks;
    every method is safe to repeat. Answers are checked against the protocol: a broken one raises
    :class:`ArchiveMalformedAnswer` naming the request, what it was about and what came. No write
    follows a redirect; a read follows one only within the archive's base URL.

    :param archive_conn_id: the HTTP connection of the archive
    :param retry_args: tenacity.Retrying keyword arguments laid over :data:`DEFAULT_RETRY_ARGS`
        (tests pass ``{"wait": tenacity.wait_none()}``); ``retry`` defaults to :func:`is_transient`
    :param kwargs: passed on to :class:`HttpHook` (``auth_type``, keep-alive settings); the hook
        mounts its own adapter (:class:`DeadlineAdapter`), on which the deadlines depend
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
        if "adapter" in kwargs:
            raise TypeError("ArchiveHook mounts its own adapter (DeadlineAdapter): the request deadlines depend on it")
        keep_alive = {
            name: kwargs.pop(f"tcp_keep_alive_{name}", default)
            for name, default in (("idle", 120), ("count", 20), ("interval", 30))
        }
        super().__init__(method="GET", http_conn_id=archive_conn_id, adapter=DeadlineAdapter(**keep_alive), **kwargs)
        self.archive_conn_id = archive_conn_id
        self.retry_args: dict[str, Any] = {
            **DEFAULT_RETRY_ARGS,
            "retry": tenacity.retry_if_exception(is_transient),
            "before_sleep": self._log_retry,
            "reraise": True,
            **(retry_args or {}),
        }
        self._timeout: float | None = None
        self._connection_checked = False

    @property
    def log(self) -> Any:  # type: ignore[override]
        return _KeyFreeLog(super().log)

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None) -> Any:
        """Return the provider's session, minus our own extras that it would send as headers."""
        session = super().get_conn(headers=headers, extra_options=extra_options)
        for option in OWN_OPTIONS:
            session.headers.pop(option, None)
        return session

    @property
    def timeout(self) -> float:
        """Seconds every request may take, wall clock (the connection's extra ``timeout``, default 30)."""
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
        return self._delivery_call(f"open delivery {delivery_id}", "PUT", delivery_id, ok=(200, 201), json=body)

    def delivery(self, delivery_id: str) -> dict:
        """Return the delivery with its holdings (packages, sha256, size, status, counts) and approval."""
        return self._delivery_call(f"read delivery {delivery_id}", "GET", delivery_id, ok=(200,))

    def approve_delivery(self, delivery_id: str, approved_by: str, comment: str) -> dict:
        """Record the archive's approval of a TEST delivery whose packages are all accepted.

        Needs the archivist's credential: the connection's user must be allowed to approve (403 otherwise).

        :returns: the delivery document, with ``approval`` set
        :raises ArchiveError: not a TEST delivery, or not every package accepted (409); not an archivist (403)
        """
        body = {"approved_by": approved_by, "comment": comment}
        return self._delivery_call(
            f"approve delivery {delivery_id}", "POST", delivery_id, ok=(200,), suffix="/approval", json=body
        )

    def _delivery_call(
        self, what: str, method: str, delivery_id: str, *, ok: tuple[int, ...], suffix: str = "", **kwargs: Any
    ) -> dict:
        """One request answered by a delivery document, checked: ``delivery_id`` text, ``packages`` with ids."""
        endpoint = f"{API}/deliveries/{delivery_id}{suffix}"
        where, subject = f"{method} {endpoint}", f"delivery {delivery_id}"

        def attempt() -> dict:
            document = self._json(self._request(method, endpoint, ok=ok, subject=subject, **kwargs), where, subject)
            field(document, "delivery_id", str, where, subject)
            for package in field(document, "packages", list, where, subject):
                if not isinstance(package, dict) or not isinstance(package.get("package_id"), str):
                    raise malformed(where, subject, "an entry of 'packages' that has no package_id text")
            return document

        return self._call(what, attempt)

    # ledger anchors ---------------------------------------------------------------------------

    def anchor(self, system_id: str, seq: int, entry_hash: str, note: str = "") -> dict:
        """Hand the archive the ledger's head (``docs/archive-protocol.md`` 5); return its anchor, checked.

        :raises ArchiveRefusal: the archive holds another hash at that position (409 ``anchor_conflict``)
        """
        endpoint = f"{API}/anchors"
        where, subject = f"POST {endpoint}", f"the ledger anchor of system {system_id}"
        body = {"system_id": system_id, "seq": seq, "entry_hash": entry_hash, "note": note}

        def attempt() -> dict:
            _response, anchor = self._json_answer("POST", endpoint, ok=(200, 201), subject=subject, json=body)
            for name, expected in (("system_id", system_id), ("seq", seq), ("entry_hash", entry_hash)):
                if anchor.get(name) != expected:
                    raise malformed(where, subject, f"an anchor whose {name} is not the one sent")
            return anchor

        return self._call(f"anchor the ledger of {system_id} at entry {seq}", attempt)

    def anchors(self, system_id: str | None = None) -> list[dict]:
        """Every ledger anchor the archive holds (of one system), in the order received."""
        endpoint = f"{API}/anchors" + (f"?system_id={quote(system_id, safe='')}" if system_id else "")
        where, subject = f"GET {endpoint}", "the ledger anchors"

        def attempt() -> list[dict]:
            _response, answer = self._json_answer("GET", endpoint, ok=(200,), subject=subject)
            anchors = field(answer, "anchors", list, where, subject)
            for a in anchors:
                if not (isinstance(a, dict) and isinstance(a.get("seq"), int) and isinstance(a.get("entry_hash"), str)):
                    raise malformed(where, subject, "an anchor without an integer seq and an entry_hash text")
            return anchors

        return self._call("read the ledger anchors", attempt)

    def submit_evidence(self, system_id: str, path: Path, sha256: str) -> dict:
        """Hand the archive an evidence pack (protocol 3.6), streamed; return its receipt, checked against ours.

        :raises ArchiveRefusal: the archive holds another pack under that name (409 ``evidence_conflict``)
        """
        size = path.stat().st_size
        endpoint = f"{API}/evidence/{system_id}/{path.name}"
        where, subject = f"PUT {endpoint}", f"the evidence pack {path.name}"

        def attempt() -> dict:
            with FileSlice(path, 0, size) as body:
                _response, receipt = self._json_answer(
                    "PUT",
                    endpoint,
                    ok=(200, 201),
                    subject=subject,
                    data=body,
                    headers={
                        "Content-Type": "application/x-tar",
                        "Content-Length": str(size),
                        "X-Content-SHA256": sha256,
                    },
                    body_bytes=size,
                )
            for name, expected in (
                ("receipt_type", "evidence"),
                ("name", path.name),
                ("sha256", sha256),
                ("size", size),
            ):
                if receipt.get(name) != expected:
                    raise malformed(where, subject, f"a receipt whose {name} is not the one sent")
            return receipt

        return self._call(f"hand the archive the evidence pack {path.name}", attempt)

    # packages ---------------------------------------------------------------------------------

    def submit_package(self, package_id: str, container: Path, sha256: str, delivery_id: str) -> dict:
        """Upload a package's tar in chunks, resuming where the archive's copy ends, and return the transport receipt.

        The upload is a session on the archive (``docs/archive-protocol.md`` 3.1): opening it
        again (after a crash, a kill or a restart of either side) gives the committed offset, and
        the upload goes on from there. Each chunk is read from disk as it is sent. A completion
        answered "not every byte arrived" goes on from the offset the archive then states.

        :param package_id: the package's id (its OBJID); a changed package needs a new id
        :param container: the package's ``.tar``
        :param sha256: the tar's SHA-256, computed when it was written; the archive checks it
        :param delivery_id: the open delivery the package belongs to
        :returns: the transport receipt, plus ``duplicate``: True when the archive already held
            this package (the receipt is then the original one)
        :raises ArchiveError: the id is held with another checksum (409), the bytes do not match
            ``sha256`` (422), the archive stayed unreachable, answered out of protocol, or took
            chunks without its offset moving
        """
        container = Path(container) if isinstance(container, str) else container  # or an ObjectStoragePath
        size = container.stat().st_size
        sha256 = sha256.lower()
        endpoint = f"{API}/packages/{package_id}/upload"
        subject = f"package {package_id}"
        try:
            session = self._upload_call(
                f"open the upload of package {package_id}",
                "PUT",
                endpoint,
                subject,
                size,
                ok=(200, 201),
                json={"delivery_id": delivery_id, "sha256": sha256, "size": size},
            )
            for completion in range(1, MAX_COMPLETION_ROUNDS + 1):
                if session["state"] == "open":
                    if session["offset"]:
                        self.log.info(
                            "resuming the upload of package %s at byte %d of %d", package_id, session["offset"], size
                        )
                    self._send_chunks(package_id, container, size, session["offset"])
                try:
                    response, receipt = self._call(
                        f"complete the upload of package {package_id}",
                        lambda: self._json_answer("POST", f"{endpoint}/complete", ok=(200, 201), subject=subject),
                    )
                    break
                except ArchiveResponseError as exc:
                    if exc.code != "upload_incomplete" or completion == MAX_COMPLETION_ROUNDS:
                        raise
                # every chunk was answered as kept, yet bytes are missing: go on from what the archive holds
                session = self._upload_call(f"read the upload of package {package_id}", "GET", endpoint, subject, size)
                self.log.warning(
                    "completing package %s: the archive holds only %d of %d bytes; sending the rest",
                    package_id,
                    session["offset"],
                    size,
                )
        except ArchiveResponseError as exc:
            raise _explained(exc, package_id, container, sha256, delivery_id) from exc
        _check_transport_receipt(receipt, package_id, size, sha256)
        receipt["duplicate"] = response.status_code == 200
        if receipt["duplicate"]:
            self.log.info("package %s was already in the archive; kept its original receipt", package_id)
        return receipt

    def _send_chunks(self, package_id: str, container: Path, size: int, offset: int) -> None:
        """Send the tar from ``offset`` to the end, one chunk per request, each under the retry policy.

        After a failed or unanswered chunk the next attempt asks the archive for its committed
        offset first, so a chunk the archive did keep is never sent twice. An archive that answers
        200 without its offset moving (it takes the chunk and keeps nothing) would be sent the same
        chunk for ever: after :data:`MAX_NO_PROGRESS` such answers in a row the upload gives up.
        """
        endpoint = f"{API}/packages/{package_id}/upload"
        chunk_size = self.chunk_size
        state: dict[str, Any] = {"offset": offset, "known": True}

        def attempt() -> None:
            subject = f"package {package_id}"
            if not state["known"]:
                state["offset"] = self._upload_document("GET", endpoint, subject, size)["offset"]
                state["known"] = True
            start = state["offset"]
            if start >= size:  # the archive has every byte after all
                return
            length = min(chunk_size, size - start)
            state["known"] = False  # until the archive answers for this chunk
            with FileSlice(container, start, length) as body:
                document = self._upload_document(
                    "PATCH",
                    endpoint,
                    f"package {package_id} (the chunk at byte {start})",
                    size,
                    data=body,
                    headers={
                        "Content-Type": "application/offset+octet-stream",
                        "Content-Length": str(length),
                        "Upload-Offset": str(start),
                    },
                    body_bytes=length,
                )
            state["offset"], state["known"] = document["offset"], True

        mismatches = stalled = 0
        furthest = offset
        while state["offset"] < size:
            try:
                self._call(f"upload package {package_id} at byte {state['offset']}", attempt)
            except ArchiveResponseError as exc:
                # another attempt (one we gave up on, or a killed run's) got there first: ask again
                if exc.code != "offset_mismatch" or mismatches >= MAX_OFFSET_MISMATCHES:
                    raise
                mismatches += 1
                self.log.info("upload of package %s: the archive holds another offset; asking again", package_id)
                continue
            if state["offset"] > furthest:
                furthest, stalled = state["offset"], 0
                continue
            stalled += 1
            if stalled >= MAX_NO_PROGRESS:
                raise ArchiveError(
                    f"upload of package {package_id}: the archive answered PATCH {endpoint} with 200 {stalled} times "
                    f"in a row while its offset stayed at byte {state['offset']} of {size} (never past byte "
                    f"{furthest}); it takes chunks without keeping them, so the upload gives up"
                )
            self.log.warning(
                "upload of package %s: the archive answered a chunk without its offset moving from byte %d",
                package_id,
                state["offset"],
            )

    def _upload_call(self, what: str, method: str, endpoint: str, subject: str, size: int, **kwargs: Any) -> dict:
        """One upload request under the retry policy, answered by a checked upload document."""
        return self._call(what, lambda: self._upload_document(method, endpoint, subject, size, **kwargs))

    def _upload_document(
        self, method: str, endpoint: str, subject: str, size: int | None, *, ok: tuple[int, ...] = (200,), **kwargs: Any
    ) -> dict:
        """Send one upload request; return its upload document: ``state`` open/complete, ``offset`` within the tar."""
        where = f"{method} {endpoint}"
        _response, document = self._json_answer(method, endpoint, ok=ok, subject=subject, **kwargs)
        if field(document, "state", str, where, subject) not in ("open", "complete"):
            raise malformed(where, subject, "a 'state' that is neither open nor complete")
        offset = field(document, "offset", int, where, subject)
        if offset < 0 or (size is not None and offset > size):
            raise malformed(where, subject, f"'offset' {offset}, outside the package's {size} bytes")
        return document

    def upload_status(self, package_id: str) -> dict:
        """Return the package's upload document: its committed ``offset``, ``state`` open or complete."""
        endpoint = f"{API}/packages/{package_id}/upload"
        return self._call(
            f"read the upload of {package_id}",
            lambda: self._upload_document("GET", endpoint, f"package {package_id}", None),
        )

    @property
    def chunk_size(self) -> int:
        """Bytes per upload request: the connection's extra ``chunk_size``, default 8 MiB."""
        return chunk_size_from_connection(self.get_connection(self.archive_conn_id))

    def ingest_receipt(self, package_id: str) -> dict:
        """Return the package's ingest receipt: status pending, accepted or rejected (with reasons)."""
        endpoint = f"{API}/packages/{package_id}/receipt"
        where, subject = f"GET {endpoint}", f"package {package_id}"

        def attempt() -> dict:
            _response, receipt = self._json_answer("GET", endpoint, ok=(200,), subject=subject)
            for name in ("receipt_type", "package_id", "status"):
                field(receipt, name, str, where, subject)
            return receipt

        return self._call(f"read the ingest receipt of {package_id}", attempt)

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
            fd, staged_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
            staged = Path(staged_name)
            try:
                digest = hashlib.sha256()
                with os.fdopen(fd, "wb") as out:

                    def keep(block: bytes) -> None:
                        digest.update(block)
                        out.write(block)

                    response = self._request(
                        "GET", f"{API}/packages/{package_id}", ok=(200,), subject=f"package {package_id}", sink=keep
                    )
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
                subject=f"package {package_id}",
                label=f"GET {API}/packages/{package_id}/records/<patient key>",  # keeps the key out of errors
            ),
        )
        return response.content

    # transport --------------------------------------------------------------------------------

    def _json_answer(
        self, method: str, endpoint: str, *, ok: tuple[int, ...], subject: str, **kwargs: Any
    ) -> tuple[Response, dict[str, Any]]:
        """Send one request; return its answer and the JSON object it must carry."""
        response = self._request(method, endpoint, ok=ok, subject=subject, **kwargs)
        return response, self._json(response, f"{method} {endpoint}", subject)

    @staticmethod
    def _json(response: Response, where: str, subject: str) -> dict[str, Any]:
        return json_object(response.content, response.headers.get("Content-Type", ""), where, subject)

    def _call(self, what: str, attempt: Callable[[], T]) -> T:
        """Run one request (``attempt``) under the retry policy; name ``what`` failed when it gives up."""
        policy = dict(self.retry_args)
        if not isinstance(policy.get("wait"), _WaitRetryAfter):
            policy["wait"] = _WaitRetryAfter(policy.get("wait") or tenacity.wait_none())
        try:
            return tenacity.Retrying(**policy)(attempt)
        except tenacity.RetryError as exc:  # a policy without reraise
            raise ArchiveError(f"{what}: gave up after {exc.last_attempt.attempt_number} attempts") from exc
        except requests.RequestException as exc:
            # requests names the URL, and a record's URL holds a patient key
            detail = _without_keys(str(exc))
            raise ArchiveError(f"{what}: the archive could not be reached: {type(exc).__name__}: {detail}") from exc

    def _request(
        self,
        method: str,
        endpoint: str,
        *,
        ok: tuple[int, ...],
        subject: str,
        label: str | None = None,
        body_bytes: int = 0,
        sink: Callable[[bytes], None] | None = None,
        **request_kwargs: Any,
    ) -> Response:
        """Send one request, read its whole answer within a wall-clock deadline, return it if its status is in ``ok``.

        :param subject: what the request is about, for errors (``package p-1``)
        :param label: names the request in errors instead of ``method endpoint``
        :param body_bytes: size of the body sent: one more second of deadline per :data:`TRANSFER_ALLOWANCE` bytes
        :param sink: takes the body of an ``ok`` answer block by block (a download), each block earning
            the deadline its allowance; otherwise the answer is read whole into the response
        :raises ArchiveTimeout: the exchange was not over by its deadline
        :raises ArchiveResponseError: a status not in ``ok``, a redirected write, or a redirect off the archive
        """
        where = label or f"{method} {endpoint}"
        self._check_connection()
        with Deadline(self.timeout + body_bytes / TRANSFER_ALLOWANCE) as deadline:
            try:
                response = self._send(method, endpoint, deadline, where, subject, request_kwargs)
                with response:
                    if sink is not None and response.status_code in ok:
                        for block in response.iter_content(_CHUNK):
                            deadline.extend(len(block) / TRANSFER_ALLOWANCE)
                            sink(block)
                    else:
                        response.content  # noqa: B018 - read it all now, while the deadline watches
            except requests.RequestException as exc:
                if deadline.expired:
                    raise self._late(where, subject, deadline) from exc
                raise
            if deadline.expired:  # a body cut by the deadline can look complete: never trust it
                raise self._late(where, subject, deadline)
        if response.status_code in ok:
            return response
        raise self._error_answer(response, where, subject)

    def _send(
        self, method: str, endpoint: str, deadline: Deadline, where: str, subject: str, request_kwargs: dict[str, Any]
    ) -> Response:
        """Send the request, following no redirect but a read's to the archive's own base URL.

        A write redirected could turn into a GET (302) whose 200 looks like success, or carry its
        body and credentials elsewhere; a read redirected to another origin would hand that origin
        the credentials. Neither is followed.
        """
        data, headers = request_kwargs.pop("data", None), request_kwargs.pop("headers", None)
        self.method = method
        for _hop in range(MAX_REDIRECTS + 1):
            response = self.run(
                endpoint,
                data=data,
                headers=headers,
                extra_options={
                    "check_response": False,
                    # no single wait may outlast what is left of the deadline
                    "timeout": max(min(self.timeout, deadline.remaining()), 0.001),
                    "stream": True,
                    "allow_redirects": False,
                },
                **request_kwargs,
            )
            if not response.is_redirect:
                return response
            status, target = response.status_code, urljoin(response.url, response.headers["Location"])
            response.close()
            if method not in _READS:
                raise ArchiveResponseError(
                    f"{where} for {subject}: the archive answered with a redirect (HTTP {status} to "
                    f"{origin(target)}); a write is never redirected, so nothing was sent there",
                    status_code=status,
                    code="redirect",
                )
            followed = endpoint_under(self.base_url, target)
            if followed is None:
                raise ArchiveResponseError(
                    f"{where} for {subject}: the archive redirected it (HTTP {status}) to {origin(target)}, "
                    f"outside {self.base_url}; not followed, so no credentials went there",
                    status_code=status,
                    code="redirect",
                )
            endpoint, data = followed, None
        raise ArchiveResponseError(
            f"{where} for {subject}: more than {MAX_REDIRECTS} redirects", status_code=status, code="redirect"
        )

    def _check_connection(self) -> None:
        """Refuse, once per hook, a connection that would send credentials over plain http unannounced."""
        if not self._connection_checked:
            check_credentials_transport(self.get_connection(self.archive_conn_id))
            self._connection_checked = True

    @staticmethod
    def _late(where: str, subject: str, deadline: Deadline) -> ArchiveTimeout:
        return ArchiveTimeout(
            f"the archive answered {where} for {subject} too slowly: not finished within the "
            f"{deadline.seconds:g} s deadline (wall clock), so it was cut off"
        )

    def _error_answer(self, response: Response, where: str, subject: str) -> ArchiveResponseError:
        """The error for an answer whose status is not the one expected, with the archive's code and message."""
        try:
            error = response.json()
            if not isinstance(error, dict):
                error = {}
            code, message = str(error.get("error", "")), str(error.get("message", ""))
        except ValueError:
            code, message = "", response.reason or ""
        if response.status_code == 401:
            message += f" (the archive does not accept the credentials of connection {self.archive_conn_id})"
        elif response.status_code == 403:
            message += f" (the user of connection {self.archive_conn_id} may not do this for {subject})"
        return ArchiveResponseError(
            f"{where}: HTTP {response.status_code} {code}: {message.strip()}".replace("  ", " ").rstrip(": "),
            status_code=response.status_code,
            code=code,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        )

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
        self.log.warning(
            "archive request failed (attempt %d: %s: %s); retrying in %.1f s",
            retry_state.attempt_number,
            type(exc).__name__,
            _without_keys(str(exc)),
            delay,
        )

    def test_connection(self) -> tuple[bool, str]:
        """Check that the archive answers ``/healthz``."""
        try:
            _response, health = self._call(
                "health check", lambda: self._json_answer("GET", "/healthz", ok=(200,), subject="the health check")
            )
        except ArchiveError as exc:
            return False, str(exc)
        return True, f"archive {health.get('archive', '?')} is up"


class _WaitRetryAfter(tenacity.wait.wait_base):
    """The policy's wait, or longer when the archive said how long to wait (``Retry-After`` on a 429 or 503)."""

    def __init__(self, policy: Callable[[tenacity.RetryCallState], float]) -> None:
        self.policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        wait = self.policy(retry_state)
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        asked = getattr(exc, "retry_after", None)
        return max(wait, asked) if asked is not None else wait


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
