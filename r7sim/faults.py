"""r7sim's fault injection: what a network, a proxy or a broken archive does to a client.

An ASGI middleware in front of the API (``/healthz`` and ``/`` are never faulted), behind the
authentication (a fault never lets a request without credentials through). Random draws come
from the seed, so a run with the same requests repeats. The faults:

- latency, stalls (held, then handled), random 500s, a connection dropped mid-upload;
- ``busy``: the first N requests answered 429 or 503 with ``Retry-After``;
- ``no_progress``: a package's chunks answered 200 without being kept (the offset never moves);
- ``false_offset_once``: a package's first chunk kept but answered "all bytes received";
- ``redirect``: an operation answered 302 to another origin instead of being handled;
- ``drip``: an operation's answer sent one byte at a time;
- ``malformed``: an operation handled, then its 2xx answer broken: an HTML error page, the JSON
  cut in half, or an upload document without ``offset``.

Operations are named in :data:`r7sim.settings.OPERATIONS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import threading
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from r7sim.auth import drain
from r7sim.settings import OPERATIONS, Settings
from r7sim.store import Store
from r7sim.uploads import Uploads

log = logging.getLogger("r7sim")

_CHUNK_PATCH = re.compile(r"^/api/v1/packages/([^/]+)/upload$")
_OPERATIONS = [(name, methods, re.compile(f"^{pattern}$")) for name, (methods, pattern) in OPERATIONS.items()]
#: what a proxy in front of an archive answers when the archive behind it fails
_HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>The proxy server received an invalid response from an upstream server.</p>"
    b"<hr><address>r7sim malformed fault</address></body></html>\n"
)
#: (status, headers, body) -> the same, changed
_Rewrite = Callable[[int, list[tuple[bytes, bytes]], bytes], tuple[int, list[tuple[bytes, bytes]], bytes]]


def operation_of(method: str, path: str) -> str | None:
    """The protocol operation a request is (:data:`r7sim.settings.OPERATIONS`), or None."""
    for name, methods, pattern in _OPERATIONS:
        if method in methods and pattern.match(path):
            return name
    return None


class Faults:
    """ASGI middleware adding the faults of :class:`Settings` to API requests."""

    def __init__(self, app: ASGIApp, *, settings: Settings, store: Store, uploads: Uploads) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self.uploads = uploads
        self._random = random.Random(settings.seed)
        self._lock = threading.Lock()
        self._busy_left = settings.busy
        self._malformed = dict(reversed(pair.split(":", 1)) for pair in settings.malformed)  # operation -> kind

    def _draw(self) -> float:
        with self._lock:
            return self._random.random()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        where = f"{scope['method']} {scope['path']}"
        if self.settings.latency:
            await asyncio.sleep(self.settings.latency)
        if self.settings.error_rate and self._draw() < self.settings.error_rate:
            log.info("error_rate: answering %s with 500", where)
            response = JSONResponse(
                {"error": "simulated_fault", "message": "r7sim error_rate: a simulated internal error"},
                status_code=500,
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        if self.settings.stall_rate and self._draw() < self.settings.stall_rate:
            # the request is still handled afterwards: a client that gave up must find out what happened
            log.info("stall_rate: holding %s for %.1f s", where, self.settings.stall_seconds)
            await asyncio.sleep(self.settings.stall_seconds)
        dropped = self._drop_now(scope)
        if dropped is not None:
            package_id, offset = dropped
            log.info("drop_upload_once: dropping the connection of the chunk of %s at byte %d", package_id, offset)
            await _drop_connection(scope, receive, send)
            return
        if self._busy_now():
            await self._busy(scope, receive, send, where)
            return
        operation = operation_of(scope["method"], scope["path"])
        if operation == "chunk" and await self._no_progress(scope, receive, send):
            return
        if operation == "chunk" and self._false_offset_now(scope):
            send = _rewriting(send, _claim_complete)
        if operation in self.settings.redirect:
            await self._redirect(scope, receive, send, where)
            return
        if operation in self.settings.drip:
            log.info("drip: sending the answer to %s one byte every %.2f s", where, self.settings.drip_seconds)
            send = _dripping(send, receive, self.settings.drip_seconds)
        kind = self._malformed.get(operation or "")
        if kind is not None:
            log.info("malformed: answering %s with %s", where, kind)
            send = _rewriting(send, _REWRITES[kind])
        await self.app(scope, receive, send)

    def _busy_now(self) -> bool:
        with self._lock:
            if self._busy_left <= 0:
                return False
            self._busy_left -= 1
            return True

    async def _busy(self, scope: Scope, receive: Receive, send: Send, where: str) -> None:
        """Answer 429/503 with Retry-After, without handling the request."""
        status, retry_after = self.settings.busy_status, self.settings.retry_after
        log.info("busy: answering %s with %d, Retry-After %s", where, status, retry_after)
        await drain(receive)
        response = JSONResponse(
            {"error": "busy", "message": f"r7sim busy: a simulated {status}; try again after {retry_after}"},
            status_code=status,
            headers={"Retry-After": retry_after},
        )
        await response(scope, receive, send)

    async def _no_progress(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer a ``no_progress`` package's chunk 200 with the offset unchanged, keeping nothing; False if not one."""
        package_id = _CHUNK_PATCH.match(scope["path"]).group(1)  # type: ignore[union-attr]
        if package_id not in self.settings.no_progress or self.uploads.session(package_id) is None:
            return False
        await drain(receive)
        document = self.uploads.status(package_id)
        log.info("no_progress: answered a chunk of %s with 200, offset still %d", package_id, document["offset"])
        response = JSONResponse(document, headers={"Upload-Offset": str(document["offset"])})
        await response(scope, receive, send)
        return True

    def _false_offset_now(self, scope: Scope) -> bool:
        """Whether this chunk's answer is to claim every byte arrived (once per package and data dir)."""
        package_id = _CHUNK_PATCH.match(scope["path"]).group(1)  # type: ignore[union-attr]
        if package_id not in self.settings.false_offset_once:
            return False
        if not self.store.fire_once("false_offset_once", package_id):
            return False
        log.info("false_offset_once: answering a chunk of %s with offset = its size", package_id)
        return True

    async def _redirect(self, scope: Scope, receive: Receive, send: Send, where: str) -> None:
        """Answer 302 to the same path on another origin, without handling the request."""
        query = scope.get("query_string", b"").decode("latin-1")
        location = self.settings.redirect_to.rstrip("/") + scope["path"] + (f"?{query}" if query else "")
        log.info("redirect: answering %s with 302 to %s", where, self.settings.redirect_to)
        await drain(receive)
        await Response(status_code=302, headers={"Location": location})(scope, receive, send)

    def _drop_now(self, scope: Scope) -> tuple[str, int] | None:
        """Return (package id, chunk offset) when this request is the upload chunk to drop."""
        match = _CHUNK_PATCH.match(scope["path"])
        if not match or scope["method"] != "PATCH" or match.group(1) not in self.settings.drop_upload_once:
            return None
        package_id = match.group(1)
        headers = dict(scope["headers"])
        offset = int(headers.get(b"upload-offset", b"0") or 0)
        length = int(headers.get(b"content-length", b"0") or 0)
        session = self.uploads.session(package_id)
        if session is None:
            return None
        # not the first chunk, so that a resumed upload has something to resume from
        last_chance = offset + length >= session["size"]
        if (offset > 0 or last_chance) and self.store.fire_once("drop_upload_once", package_id):
            return package_id, offset
        return None


async def _drop_connection(scope: Scope, receive: Receive, send: Send) -> None:
    """Read about half the request body, then close the connection without answering."""
    headers = dict(scope["headers"])
    target = max(1, int(headers.get(b"content-length", b"0") or 0) // 2)
    received = 0
    while received < target:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is not None:  # uvicorn: abort the TCP connection outright
        transport.abort()
        while (await receive())["type"] != "http.disconnect":
            pass
        return
    # any other server: start an answer and never finish it, which makes it close the connection
    await send({"type": "http.response.start", "status": 500, "headers": [(b"content-length", b"1000")]})


def _rewriting(send: Send, rewrite: _Rewrite) -> Send:
    """A sender that holds the answer back until its last byte, then sends it rewritten (2xx answers only)."""
    held: dict[str, Any] = {"start": None, "body": []}

    async def send_rewritten(message: Message) -> None:
        if message["type"] == "http.response.start":
            held["start"] = message
            return
        if message["type"] != "http.response.body" or held["start"] is None:
            await send(message)
            return
        held["body"].append(message.get("body", b""))
        if message.get("more_body", False):
            return
        start, body = held["start"], b"".join(held["body"])
        status, headers = start["status"], list(start.get("headers", []))
        if 200 <= status < 300:
            status, headers, body = rewrite(status, headers, body)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return send_rewritten


def _dripping(send: Send, receive: Receive, pause: float) -> Send:
    """A sender that sends the answer's body one byte at a time, ``pause`` seconds apart, until the client leaves."""
    state: dict[str, Any] = {"gone": None, "sent": 0}

    async def client_gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def send_dripping(message: Message) -> None:
        if message["type"] != "http.response.body":
            await send(message)
            return
        if state["gone"] is None:  # the request was read by now: what receive() says next is the client leaving
            state["gone"] = asyncio.create_task(client_gone())
        gone: asyncio.Task = state["gone"]
        try:
            for byte in message.get("body", b""):
                if gone.done():
                    log.info("drip: the client left after %d bytes", state["sent"])
                    return
                await send({"type": "http.response.body", "body": bytes([byte]), "more_body": True})
                state["sent"] += 1
                await asyncio.sleep(pause)
            if not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if not message.get("more_body", False) or gone.done():
                gone.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await gone

    return send_dripping


def _set_length(headers: list[tuple[bytes, bytes]], body: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() != b"content-length"] + [
        (b"content-length", str(len(body)).encode())
    ]


def _html_page(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, list, bytes]:
    kept = [(k, v) for k, v in headers if k.lower() not in (b"content-type", b"upload-offset")]
    return 200, _set_length([*kept, (b"content-type", b"text/html; charset=utf-8")], _HTML_PAGE), _HTML_PAGE


def _cut_json(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, list, bytes]:
    cut = body[: len(body) // 2]
    return status, _set_length(headers, cut), cut


def _no_offset(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, list, bytes]:
    try:
        document = json.loads(body)
    except ValueError:
        return status, headers, body
    if isinstance(document, dict):
        document.pop("offset", None)
    changed = json.dumps(document).encode()
    kept = [(k, v) for k, v in headers if k.lower() != b"upload-offset"]
    return status, _set_length(kept, changed), changed


def _claim_complete(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, list, bytes]:
    """An upload document whose ``offset`` is the package's size: "every byte arrived" (untrue)."""
    document = json.loads(body)
    document["offset"] = document["size"]
    changed = json.dumps(document).encode()
    kept = [(k, v) for k, v in headers if k.lower() != b"upload-offset"]
    return status, _set_length([*kept, (b"upload-offset", str(document["size"]).encode())], changed), changed


_REWRITES: dict[str, _Rewrite] = {"html": _html_page, "cut_json": _cut_json, "no_offset": _no_offset}
