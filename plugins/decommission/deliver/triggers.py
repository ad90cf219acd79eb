"""Waiting for the archive's ingest receipts: a deferrable trigger and a plain synchronous wait.

Ingest takes the archive a while, so a task defers to :class:`IngestReceiptTrigger`, which polls
the receipts on the triggerer and fires once: every receipt final ("done"), the deadline passed
("timeout"), or a request failed for good ("error"). :func:`wait_for_receipts` does the same
wait in-process, for use outside Airflow and in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import posixpath
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx
from airflow.triggers.base import BaseTrigger, TriggerEvent

from decommission.deliver.answers import field, json_object
from decommission.deliver.archive import (
    API,
    base_url_from_connection,
    headers_from_connection,
    timeout_from_connection,
)
from decommission.deliver.archive_connection import check_credentials_transport, origin, retry_after_seconds
from decommission.errors import ArchiveError

if TYPE_CHECKING:
    from decommission.deliver.archive import ArchiveHook

#: receipt statuses after which a package's ingest is over
FINAL_STATUSES = frozenset({"accepted", "rejected"})
_CONCURRENT_POLLS = 8


def _parse_deadline(timeout_at: str) -> datetime:
    """Parse an ISO 8601 instant; one without a zone is taken as UTC."""
    try:
        deadline = datetime.fromisoformat(timeout_at)
    except (TypeError, ValueError):
        raise ValueError(f"timeout_at must be an ISO 8601 date and time, got {timeout_at!r}") from None
    return deadline if deadline.tzinfo else deadline.replace(tzinfo=UTC)


def _check_receipt(package_id: str, receipt: Any) -> dict:
    """Return the receipt if it is an ingest receipt of this package, else raise ArchiveError."""
    if (
        not isinstance(receipt, dict)
        or receipt.get("receipt_type") != "ingest"
        or receipt.get("package_id") != package_id
        or receipt.get("status") not in FINAL_STATUSES | {"pending"}
    ):
        raise ArchiveError(f"the archive sent something that is not an ingest receipt of package {package_id}")
    return receipt


async def _get_connection(conn_id: str) -> Any:
    """Read an Airflow connection without blocking the triggerer's event loop."""
    from airflow.sdk import BaseHook

    try:
        from airflow.providers.common.compat.connection import get_async_connection
    except ImportError:  # an older provider: run the synchronous look-up in a thread
        from asgiref.sync import sync_to_async

        return await sync_to_async(BaseHook.get_connection)(conn_id)
    return await get_async_connection(conn_id, hook=BaseHook)


class IngestReceiptTrigger(BaseTrigger):
    """Poll the archive until every package's ingest receipt is final, or a deadline passes.

    Fires one event: ``{"status": "done", "receipts": {package_id: receipt}}``,
    ``{"status": "timeout", "pending": [package_id, ...], "receipts": {...final ones...}}``, or
    ``{"status": "error", "message": ...}``. Unanswered polls (connection errors, 5xx, 429, and
    answers not complete within the connection's ``timeout``, wall clock) are tried again at the
    next interval, or later when ``Retry-After`` asks; any other failure ends the wait with an
    error: a 4xx, a redirect (never followed), or an answer that is not a receipt ("the archive
    answered GET ... for package ... with ...").

    :param package_ids: the packages whose receipts to wait for
    :param conn_id: the archive's HTTP connection
    :param poll_interval: seconds between polls
    :param timeout_at: ISO 8601 instant at which to give up (no zone: UTC)
    """

    def __init__(self, package_ids: list[str], conn_id: str, poll_interval: float, timeout_at: str) -> None:
        super().__init__()
        self._asked_wait = 0.0
        if not package_ids or not all(isinstance(p, str) and p for p in package_ids):
            raise ValueError(f"package_ids must be a non-empty list of package ids, got {package_ids!r}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive seconds, got {poll_interval!r}")
        _parse_deadline(timeout_at)
        self.package_ids = list(package_ids)
        self.conn_id = conn_id
        self.poll_interval = float(poll_interval)
        self.timeout_at = timeout_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the (primitive) keyword arguments that recreate this trigger."""
        return (
            "decommission.deliver.triggers.IngestReceiptTrigger",
            {
                "package_ids": list(self.package_ids),
                "conn_id": self.conn_id,
                "poll_interval": self.poll_interval,
                "timeout_at": self.timeout_at,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the receipts and yield one event."""
        try:
            event = await self._wait()
        except Exception as exc:
            self.log.error("waiting for ingest receipts failed: %s: %s", type(exc).__name__, exc)
            event = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
        yield TriggerEvent(event)

    async def _wait(self) -> dict[str, Any]:
        deadline = _parse_deadline(self.timeout_at)
        conn = await _get_connection(self.conn_id)
        receipts: dict[str, dict] = {}
        limit = asyncio.Semaphore(_CONCURRENT_POLLS)
        while True:
            self._asked_wait = 0.0  # the longest Retry-After of this round
            # a fresh connection each round: a broken one must not end the wait
            async with self._reader(conn) as read:

                async def poll(package_id: str) -> None:
                    async with limit:
                        receipt = await read(package_id)
                    if receipt is not None and receipt["status"] in FINAL_STATUSES:
                        receipts[package_id] = receipt

                # a round ends by the deadline (plus one poll's limit): many slow polls must not add up past it
                remaining = (deadline - datetime.now(UTC)).total_seconds()
                try:
                    async with asyncio.timeout(max(remaining, 0.0) + timeout_from_connection(conn)):
                        await asyncio.gather(*(poll(p) for p in self.package_ids if p not in receipts))
                except TimeoutError:
                    self.log.warning("a round of polls outlasted the wait's deadline; counting the rest as pending")
            pending = [p for p in self.package_ids if p not in receipts]
            if not pending:
                return {"status": "done", "receipts": {p: receipts[p] for p in self.package_ids}}
            remaining = (deadline - datetime.now(UTC)).total_seconds()
            if remaining <= 0:
                self.log.warning("%d of %d ingest receipts still pending", len(pending), len(self.package_ids))
                return {"status": "timeout", "pending": pending, "receipts": receipts}
            self.log.info("%d of %d ingest receipts pending", len(pending), len(self.package_ids))
            await asyncio.sleep(min(max(self.poll_interval, self._asked_wait), remaining))

    def _reader(self, conn: Any) -> Any:
        """Return an async context giving ``read(package_id) -> receipt | None`` for the connection's transport."""
        if (conn.conn_type or "").lower() == "sftp":
            return self._sftp_reader(conn)
        return self._http_reader(conn)

    @contextlib.asynccontextmanager
    async def _http_reader(self, conn: Any) -> AsyncIterator[Callable[[str], Awaitable[dict | None]]]:
        check_credentials_transport(conn)
        auth = httpx.BasicAuth(conn.login, conn.password or "") if conn.login else None
        limit = timeout_from_connection(conn)
        async with httpx.AsyncClient(
            base_url=base_url_from_connection(conn),
            timeout=limit,
            headers={"Accept": "application/json", **headers_from_connection(conn)},
            auth=auth,
            follow_redirects=False,  # a redirect could hand the credentials to another origin
        ) as client:
            yield lambda package_id: self._poll(client, package_id, limit)

    @contextlib.asynccontextmanager
    async def _sftp_reader(self, conn: Any) -> AsyncIterator[Callable[[str], Awaitable[dict | None]]]:
        """Read receipts from the drop folder's outbox with the SFTP provider's async hook."""
        import asyncssh
        from airflow.providers.sftp.hooks.sftp import SFTPHookAsync

        from decommission.deliver.sftp_transport import pending_receipt

        outbox = posixpath.join(str(conn.extra_dejson.get("root", "/")), "outbox")
        hook = SFTPHookAsync(sftp_conn_id=self.conn_id)

        async def read_json(sftp: Any, name: str) -> dict | None:
            try:
                async with sftp.open(posixpath.join(outbox, name), "rb") as remote:
                    return json.loads(await remote.read())
            except asyncssh.SFTPNoSuchFile:
                return None

        async def read(sftp: Any, package_id: str) -> dict | None:
            receipt = await read_json(sftp, f"{package_id}.ingest.json")
            if receipt is not None:
                return _check_receipt(package_id, receipt)
            transport = await read_json(sftp, f"{package_id}.transport.json")
            if transport is None:
                raise ArchiveError(f"no package {package_id} in the drop folder's outbox")
            return pending_receipt(transport)

        async def no_answer(_package_id: str) -> None:
            return None

        async with contextlib.AsyncExitStack() as stack:
            try:
                sftp = await stack.enter_async_context(hook.get_managed_conn())
            except (OSError, asyncssh.Error) as exc:
                self.log.warning("drop folder: no answer (%s); polling again", exc)
                yield no_answer
                return
            try:
                yield lambda package_id: read(sftp, package_id)
            except (OSError, asyncssh.Error) as exc:
                self.log.warning("drop folder: the connection broke (%s); polling again", exc)

    async def _poll(self, client: httpx.AsyncClient, package_id: str, limit: float) -> dict | None:
        """Return the package's receipt, or None when the archive did not answer (in time) this time.

        :param limit: seconds the whole exchange may take, wall clock: httpx's timeout bounds each
            read, so an answer dripped a byte at a time would outlast it
        """
        endpoint = f"{API}/packages/{package_id}/receipt"
        where, subject = f"GET {endpoint}", f"package {package_id}"
        try:
            async with asyncio.timeout(limit):
                response = await client.get(endpoint)
        except TimeoutError:
            self.log.warning("%s for %s: not finished within %g s (wall clock); polling again", where, subject, limit)
            return None
        except httpx.TransportError as exc:
            self.log.warning("ingest receipt of %s: no answer (%s); polling again", package_id, exc)
            return None
        if response.status_code >= 500 or response.status_code == 429:
            asked = retry_after_seconds(response.headers.get("Retry-After"))
            self._asked_wait = max(self._asked_wait, asked or 0.0)
            self.log.warning(
                "ingest receipt of %s: HTTP %d%s; polling again",
                package_id,
                response.status_code,
                f" (Retry-After {asked:g} s)" if asked is not None else "",
            )
            return None
        if response.is_redirect:
            target = urljoin(str(response.url), response.headers.get("Location", ""))
            raise ArchiveError(
                f"{where} for {subject}: the archive redirected it (HTTP {response.status_code}) to "
                f"{origin(target)}; redirects are not followed, so no credentials went there"
            )
        if response.status_code != 200:
            try:
                error = response.json()
                message = str(error.get("message", "")) if isinstance(error, dict) else ""
            except ValueError:
                message = response.reason_phrase
            raise ArchiveError(
                f"ingest receipt of package {package_id}: HTTP {response.status_code}: {message}".rstrip(": ")
            )
        receipt = json_object(response.content, response.headers.get("Content-Type", ""), where, subject)
        for name in ("receipt_type", "package_id", "status"):
            field(receipt, name, str, where, subject)
        return _check_receipt(package_id, receipt)


def wait_for_receipts(
    hook: ArchiveHook, package_ids: Sequence[str], timeout_s: float, poll_s: float
) -> dict[str, dict]:
    """Poll the archive until every package's ingest receipt is final (accepted or rejected).

    :param hook: the archive client
    :param package_ids: the packages to wait for
    :param timeout_s: seconds to wait at most
    :param poll_s: seconds between polls
    :returns: the final receipt of each package, in the order given
    :raises ArchiveError: receipts still pending after ``timeout_s``, or the archive failed
    """
    deadline = time.monotonic() + timeout_s
    receipts: dict[str, dict] = {}
    while True:
        for package_id in package_ids:
            if package_id not in receipts:
                receipt = _check_receipt(package_id, hook.ingest_receipt(package_id))
                if receipt["status"] in FINAL_STATUSES:
                    receipts[package_id] = receipt
        pending = [p for p in package_ids if p not in receipts]
        if not pending:
            return {p: receipts[p] for p in package_ids}
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            shown = ", ".join(pending[:10]) + (", ..." if len(pending) > 10 else "")
            raise ArchiveError(
                f"{len(pending)} of {len(package_ids)} ingest receipts still pending after {timeout_s} s: {shown}"
            )
        time.sleep(min(poll_s, remaining))
