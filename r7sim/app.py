"""r7sim's HTTP interface: the archive protocol of ``docs/archive-protocol.md`` as a FastAPI app.

r7sim is a local stand-in for R7 e-Arkiv, not R7: R7's real ingest interface is not public.
Packages arrive through resumable upload sessions (:mod:`r7sim.uploads`), are ingested in the
background (:mod:`r7sim.ingest`) and faults are injected in front of the API (:mod:`r7sim.faults`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from r7sim.auth import Accounts, Auth
from r7sim.faults import Faults
from r7sim.ingest import Ingestor, ingest_package, record_from_tar, validator_missing
from r7sim.misbehave import delivery_answer, receipt_answer
from r7sim.page import BANNER, index_html
from r7sim.settings import Settings
from r7sim.store import ARCHIVE_NAME, RECORD_STATUSES, Store, StoreError, canonical_json, check_id
from r7sim.uploads import Uploads

log = logging.getLogger("r7sim")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: on every answer, so a client's logs show what it talked to (header values are ASCII)
STAND_IN_HEADER = "r7sim, a local stand-in for R7 e-Arkiv, not R7"


class DeliveryRequest(BaseModel):
    """Body of ``PUT /api/v1/deliveries/{delivery_id}``."""

    model_config = ConfigDict(extra="forbid")
    agreement_id: str = Field(min_length=1, max_length=200)
    system_id: str = Field(min_length=1, max_length=200)
    record_status: str


class ApprovalRequest(BaseModel):
    """Body of ``POST /api/v1/deliveries/{delivery_id}/approval``."""

    model_config = ConfigDict(extra="forbid")
    approved_by: str = Field(min_length=1, max_length=200)
    comment: str = Field(default="", max_length=4000)


class UploadRequest(BaseModel):
    """Body of ``PUT /api/v1/packages/{package_id}/upload``."""

    model_config = ConfigDict(extra="forbid")
    delivery_id: str = Field(min_length=1, max_length=200)
    sha256: str = Field(pattern=_SHA256.pattern)
    size: int = Field(ge=0)


class AnchorRequest(BaseModel):
    """Body of ``POST /api/v1/anchors``: the head of the programme's ledger for one system."""

    model_config = ConfigDict(extra="forbid")
    system_id: str
    seq: int = Field(ge=1)
    entry_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    note: str = Field(default="", max_length=200)


def create_app(data_dir: Path, settings: Settings | None = None, accounts: Accounts | None = None) -> FastAPI:
    """Build the r7sim app over the holdings in ``data_dir``.

    :param data_dir: where the index, package files and unfinished uploads live; survives restarts
    :param settings: behaviour and faults; defaults to a well-behaved archive
    :param accounts: the submitter's and the archivist's credentials; defaults to the demo's
    """
    settings = settings or Settings()
    accounts = accounts or Accounts.demo()
    store = Store(Path(data_dir))
    uploads = Uploads(store)
    ingestor = Ingestor(store, settings)
    # one writer per package at a time: a retry may arrive while the cut-off request is still read
    package_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.warning("%s. Nothing sent here reaches R7 e-Arkiv.", BANNER)
        log.info("r7sim data directory %s; settings %s", store.data_dir, settings)
        log.info("accounts: submitter %s, archivist %s", accounts.submitter.login, accounts.archivist.login)
        if validator_missing():
            log.warning("decommission.validate.validator is not importable: every package will be rejected")
        ingestor.start()
        try:
            yield
        finally:
            ingestor.stop()
            uploads.close()
            store.close()

    app = FastAPI(title="r7sim", summary=BANNER, version="1", lifespan=lifespan)
    app.state.store = store
    app.state.settings = settings
    # the last added runs first: stand-in header, then authentication, then faults, then the routes
    app.add_middleware(Faults, settings=settings, store=store, uploads=uploads)
    app.add_middleware(Auth, accounts=accounts)
    app.add_middleware(_StandInHeader)

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # name the fields only: the values may hold anything, patient data included
        fields = sorted({".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()})
        return _error(400, "invalid_request", f"invalid or missing fields: {', '.join(fields)}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "archive": ARCHIVE_NAME, "note": BANNER}

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return index_html(store.deliveries(), settings)

    @app.put("/api/v1/deliveries/{delivery_id}")
    async def open_delivery(delivery_id: str, body: DeliveryRequest) -> JSONResponse:
        check_id(delivery_id, "delivery_id")
        if body.record_status not in RECORD_STATUSES:
            raise StoreError(
                400, "invalid_request", f"record_status must be one of {', '.join(sorted(RECORD_STATUSES))}"
            )
        document, created = store.open_delivery(delivery_id, body.agreement_id, body.system_id, body.record_status)
        return JSONResponse(document, status_code=201 if created else 200)

    @app.get("/api/v1/deliveries/{delivery_id}")
    async def get_delivery(delivery_id: str) -> dict[str, Any]:
        return delivery_answer(store.delivery(delivery_id), settings)

    @app.post("/api/v1/deliveries/{delivery_id}/approval")
    async def approve(delivery_id: str, body: ApprovalRequest) -> dict[str, Any]:
        return store.approve(delivery_id, body.approved_by, body.comment, automatic=False)

    @app.post("/api/v1/anchors")
    async def add_anchor(body: AnchorRequest) -> JSONResponse:
        check_id(body.system_id, "system_id")
        anchor, created = store.add_anchor(body.system_id, body.seq, body.entry_hash, body.note)
        return JSONResponse(anchor, status_code=201 if created else 200)

    @app.get("/api/v1/anchors")
    async def list_anchors(system_id: str | None = None) -> dict[str, Any]:
        return {"anchors": store.anchors(system_id), "archive": ARCHIVE_NAME}

    @app.put("/api/v1/evidence/{system_id}/{name}")
    async def add_evidence(system_id: str, name: str, request: Request) -> JSONResponse:
        check_id(system_id, "system_id")
        check_id(name, "name")
        declared = request.headers.get("X-Content-SHA256", "").lower()
        digest, size = hashlib.sha256(), 0
        fd, staged_name = tempfile.mkstemp(dir=store.incoming_dir, suffix=".part")
        staged = Path(staged_name)
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if digest.hexdigest() != declared:
            staged.unlink(missing_ok=True)
            raise StoreError(422, "sha256_mismatch", f"evidence {name} does not hash to the declared SHA-256")
        receipt, created = store.add_evidence(system_id, name, staged, declared, size)
        return JSONResponse(receipt, status_code=201 if created else 200)

    @app.get("/api/v1/evidence/{system_id}")
    async def list_evidence(system_id: str) -> dict[str, Any]:
        return {"evidence": store.evidence(system_id), "archive": ARCHIVE_NAME}

    @app.put("/api/v1/packages/{package_id}/upload")
    async def open_upload(package_id: str, body: UploadRequest) -> JSONResponse:
        check_id(package_id, "package_id")
        check_id(body.delivery_id, "delivery_id")
        async with package_locks[package_id]:
            document, created = uploads.open(package_id, body.delivery_id, body.sha256, body.size)
        if created:
            log.info("upload of %s opened in delivery %s (%d bytes)", package_id, body.delivery_id, body.size)
        elif document["state"] == "open":
            log.info("upload of %s found open at byte %d of %d", package_id, document["offset"], body.size)
        return _upload_answer(document, 201 if created else 200)

    @app.api_route("/api/v1/packages/{package_id}/upload", methods=["GET", "HEAD"])
    async def upload_status(package_id: str) -> JSONResponse:
        return _upload_answer(uploads.status(package_id), 200)

    @app.patch("/api/v1/packages/{package_id}/upload")
    async def append_chunk(package_id: str, request: Request) -> Response:
        try:
            offset, length = _chunk_headers(request)
            async with package_locks[package_id]:
                document = await uploads.append(package_id, offset, length, request.stream())
        except StoreError:
            await _drain(request)  # the client then gets the answer rather than a reset
            raise
        except ClientDisconnect:
            kept = uploads.session(package_id) or {"committed": 0}
            log.warning("a chunk of %s broke off; the upload stays committed at byte %d", package_id, kept["committed"])
            return _error(400, "incomplete_body", "the connection closed before the chunk was complete")
        log.info("upload of %s: bytes %d..%d committed", package_id, offset, document["offset"])
        return _upload_answer(document, 200)

    @app.post("/api/v1/packages/{package_id}/upload/complete")
    async def complete_upload(package_id: str) -> Response:
        async with package_locks[package_id]:
            receipt, created = await asyncio.to_thread(uploads.finish, package_id)
        if created:
            log.info("package %s arrived complete with a matching SHA-256", package_id)
            ingestor.schedule(package_id)
        return _json_text(receipt, 201 if created else 200)

    @app.get("/api/v1/packages/{package_id}/receipt")
    async def ingest_receipt(package_id: str) -> Response:
        receipt = store.ingest_receipt(package_id)
        if settings.receipt_other_sha256:
            receipt = canonical_json(receipt_answer(json.loads(receipt), settings))
        return _json_text(receipt, 200)

    @app.get("/api/v1/packages/{package_id}")
    async def read_package(package_id: str) -> FileResponse:
        row = _held(store, package_id)
        return FileResponse(
            store.package_path(package_id),
            media_type="application/x-tar",
            filename=f"{package_id}.tar",
            headers={"X-Content-SHA256": row["sha256"]},
        )

    @app.get("/api/v1/packages/{package_id}/records/{patient_key}")
    async def read_record(package_id: str, patient_key: str) -> Response:
        _held(store, package_id)
        content = await asyncio.to_thread(record_from_tar, store.package_path(package_id), patient_key)
        if content is None:
            raise StoreError(404, "record_not_found", f"package {package_id} holds no record for that patient key")
        return Response(content, media_type="application/xml")

    return app


class _StandInHeader:
    """ASGI middleware: every answer carries ``X-Archive-Stand-In``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), _STAND_IN]}
            await send(message)

        await self.app(scope, receive, send_marked)


_STAND_IN = (b"x-archive-stand-in", STAND_IN_HEADER.encode("ascii"))


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


def _json_text(text: str, status: int) -> Response:
    """Send stored JSON text verbatim, so a receipt is the same bytes each time."""
    return Response(text, status_code=status, media_type="application/json")


def _upload_answer(document: dict[str, Any], status: int) -> JSONResponse:
    return JSONResponse(document, status_code=status, headers={"Upload-Offset": str(document["offset"])})


async def _drain(request: Request) -> None:
    try:
        async for _chunk in request.stream():
            pass
    except (ClientDisconnect, RuntimeError):  # gone, or already read
        return


def _chunk_headers(request: Request) -> tuple[int, int]:
    offset_text = request.headers.get("upload-offset", "")
    length_text = request.headers.get("content-length")
    if not offset_text.isdigit():
        raise StoreError(400, "invalid_request", "header Upload-Offset (the chunk's first byte) is required")
    if length_text is None or not length_text.isdigit():
        raise StoreError(411, "length_required", "header Content-Length is required (no chunked transfer)")
    return int(offset_text), int(length_text)


def _held(store: Store, package_id: str) -> dict[str, Any]:
    row = store.package(package_id)
    if row is None:
        raise StoreError(404, "package_not_found", f"no package {package_id}")
    return row


__all__ = ["BANNER", "Settings", "create_app", "ingest_package", "canonical_json"]
