"""r7sim's fault injection: latency, stalls, random 500s and a connection dropped mid-upload.

An ASGI middleware in front of the API (``/healthz`` and ``/`` are never faulted). Random draws
come from the seed, so a run with the same requests repeats.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import threading

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from r7sim.settings import Settings
from r7sim.store import Store
from r7sim.uploads import Uploads

log = logging.getLogger("r7sim")

_CHUNK_PATCH = re.compile(r"^/api/v1/packages/([^/]+)/upload$")


class Faults:
    """ASGI middleware adding the faults of :class:`Settings` to API requests."""

    def __init__(self, app: ASGIApp, *, settings: Settings, store: Store, uploads: Uploads) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self.uploads = uploads
        self._random = random.Random(settings.seed)
        self._lock = threading.Lock()

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
        await self.app(scope, receive, send)

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
