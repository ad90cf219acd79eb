"""r7sim's HTTP interface: the archive protocol of ``docs/archive-protocol.md`` as a FastAPI app.

r7sim is a local stand-in for R7 e-Arkiv, not R7: R7's real ingest interface is not public.
Faults (errors, latency, rejects, dropped uploads, slow ingest) are settings, so clients can
be tested against the failures a real archive has.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import queue
import random
import re
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from r7sim.store import ARCHIVE_NAME, RECORD_STATUSES, Store, StoreError, canonical_json, check_id, now_iso

log = logging.getLogger("r7sim")

BANNER = "r7sim — a local stand-in for R7 e-Arkiv, not R7"
#: tar members holding one patient's record: ``[<root>/]representations/rep1/data/<patient>/record.xml``
RECORD_MEMBER = re.compile(r"^(?:\./)?(?:[^/]+/)?representations/rep1/data/([^/]+)/record\.xml$")
_PACKAGE_PUT = re.compile(r"^/api/v1/packages/([^/]+)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
_MAX_REASONS = 1000
_ARCHIVE_ID_NAMESPACE = uuid.UUID("6f1d9c1e-0d7e-4b8e-9a51-7a1c2b3d4e5f")


@dataclass(frozen=True)
class Settings:
    """How r7sim behaves; the fault settings let clients be tested against a misbehaving archive.

    :param error_rate: fraction of API requests answered 500 (drawn from ``seed``)
    :param latency: seconds added to every API request
    :param ingest_delay: seconds between arrival and ingest, during which the receipt is "pending"
    :param reject: package ids to reject at ingest, whatever their content
    :param drop_upload_once: package ids whose first upload has its connection dropped mid-body
    :param seed: seed of the fault draws, so a run can be repeated
    :param auto_approve_test: approve a TEST delivery once all its packages are accepted
    """

    error_rate: float = 0.0
    latency: float = 0.0
    ingest_delay: float = 0.0
    reject: frozenset[str] = field(default_factory=frozenset)
    drop_upload_once: frozenset[str] = field(default_factory=frozenset)
    seed: int = 0
    auto_approve_test: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be between 0 and 1, got {self.error_rate}")
        for name in ("latency", "ingest_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        object.__setattr__(self, "reject", frozenset(self.reject))
        object.__setattr__(self, "drop_upload_once", frozenset(self.drop_upload_once))


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


def create_app(data_dir: Path, settings: Settings | None = None) -> FastAPI:
    """Build the r7sim app over the holdings in ``data_dir``.

    :param data_dir: where the index and package files live; survives restarts
    :param settings: behaviour and faults; defaults to a well-behaved archive
    """
    settings = settings or Settings()
    store = Store(Path(data_dir))
    ingestor = _Ingestor(store, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.warning("%s. Nothing sent here reaches R7 e-Arkiv.", BANNER)
        log.info("r7sim data directory %s; settings %s", store.data_dir, settings)
        if _validator_missing():
            log.warning("decommission.validate is not importable: every package will be rejected")
        ingestor.start()
        try:
            yield
        finally:
            ingestor.stop()
            store.close()

    app = FastAPI(title="r7sim", summary=BANNER, version="1", lifespan=lifespan)
    app.state.store = store
    app.state.settings = settings
    app.add_middleware(_Faults, settings=settings, store=store)

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message)

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
        return _index_html(store.deliveries(), settings)

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
        return store.delivery(delivery_id)

    @app.post("/api/v1/deliveries/{delivery_id}/approval")
    async def approve(delivery_id: str, body: ApprovalRequest) -> dict[str, Any]:
        return store.approve(delivery_id, body.approved_by, body.comment, automatic=False)

    @app.put("/api/v1/packages/{package_id}")
    async def put_package(package_id: str, request: Request) -> Response:
        try:
            return await receive_package(package_id, request)
        except StoreError:
            # read what is left of the body, so the client gets the answer rather than a reset
            await _drain(request)
            raise

    async def receive_package(package_id: str, request: Request) -> Response:
        check_id(package_id, "package_id")
        delivery_id, declared, length = _upload_headers(request)
        if not store.delivery_exists(delivery_id):
            raise StoreError(404, "delivery_not_found", f"no delivery {delivery_id}; open it first")
        existing = store.package(package_id)
        if existing is not None:
            store.check_same(existing, delivery_id, declared)
        with _staging(store, package_id, keep=existing is None) as (staged, sink):
            digest = hashlib.sha256()
            size = 0
            try:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > length:
                        raise StoreError(400, "body_too_long", "the body is longer than Content-Length")
                    digest.update(chunk)
                    if sink is not None:
                        sink.write(chunk)
            except ClientDisconnect:
                log.warning("upload of %s broke off after %d of %d bytes; nothing kept", package_id, size, length)
                return _error(400, "incomplete_body", "the connection closed before the body was complete")
            if size != length:
                raise StoreError(400, "incomplete_body", f"received {size} of {length} bytes")
            if digest.hexdigest() != declared:
                raise StoreError(
                    422,
                    "sha256_mismatch",
                    f"the body of package {package_id} hashes to {digest.hexdigest()}, "
                    f"not the declared {declared}; nothing was kept",
                )
            if existing is not None:
                return _json_text(existing["transport_receipt"], 200)
            sink.close()
            receipt, created = store.add_package(package_id, delivery_id, size, declared, staged)
        if created:
            log.info("package %s arrived in delivery %s (%d bytes)", package_id, delivery_id, size)
            ingestor.schedule(package_id)
        return _json_text(receipt, 201 if created else 200)

    @app.get("/api/v1/packages/{package_id}/receipt")
    async def ingest_receipt(package_id: str) -> Response:
        return _json_text(store.ingest_receipt(package_id), 200)

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
        content = await asyncio.to_thread(_record_from_tar, store.package_path(package_id), patient_key)
        if content is None:
            raise StoreError(404, "record_not_found", f"package {package_id} holds no record for that patient key")
        return Response(content, media_type="application/xml")

    return app


# requests --------------------------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _json_text(text: str, status: int) -> Response:
    """Send stored JSON text verbatim, so a receipt is the same bytes each time."""
    return Response(text, status_code=status, media_type="application/json")


async def _drain(request: Request) -> None:
    try:
        async for _chunk in request.stream():
            pass
    except (ClientDisconnect, RuntimeError):  # gone, or already read
        return


def _upload_headers(request: Request) -> tuple[str, str, int]:
    delivery_id = request.headers.get("x-delivery-id", "")
    declared = request.headers.get("x-content-sha256", "").lower()
    length_text = request.headers.get("content-length")
    if not delivery_id:
        raise StoreError(400, "invalid_request", "header X-Delivery-Id is required")
    check_id(delivery_id, "X-Delivery-Id")
    if not _SHA256.match(declared):
        raise StoreError(400, "invalid_request", "header X-Content-SHA256 must be 64 hex digits")
    if length_text is None or not length_text.isdigit():
        raise StoreError(411, "length_required", "header Content-Length is required (no chunked uploads)")
    return delivery_id, declared, int(length_text)


@contextmanager
def _staging(store: Store, package_id: str, *, keep: bool) -> Iterator[tuple[Path, Any]]:
    """Yield a temporary file for the body (or None when the body is only hashed); remove it after."""
    staged = store.incoming_dir / f"{package_id}.{uuid.uuid4().hex}.part"
    sink = staged.open("wb") if keep else None
    try:
        yield staged, sink
    finally:
        if sink is not None:
            sink.close()
        staged.unlink(missing_ok=True)


def _held(store: Store, package_id: str) -> dict[str, Any]:
    row = store.package(package_id)
    if row is None:
        raise StoreError(404, "package_not_found", f"no package {package_id}")
    return row


def _record_members(tar: tarfile.TarFile) -> Iterator[tuple[str, tarfile.TarInfo]]:
    for member in tar:
        match = RECORD_MEMBER.match(member.name)
        if match and member.isfile():
            yield match.group(1), member


def _record_from_tar(tar_path: Path, patient_key: str) -> bytes | None:
    with tarfile.open(tar_path, "r:") as tar:
        for key, member in _record_members(tar):
            if key == patient_key:
                extracted = tar.extractfile(member)
                return extracted.read() if extracted is not None else None
    return None


# faults ----------------------------------------------------------------------------------------


class _Faults:
    """ASGI middleware adding latency, random 500s and one dropped upload per listed package."""

    def __init__(self, app: ASGIApp, *, settings: Settings, store: Store) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self._random = random.Random(settings.seed)
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        if self.settings.latency:
            await asyncio.sleep(self.settings.latency)
        if self.settings.error_rate:
            with self._lock:
                draw = self._random.random()
            if draw < self.settings.error_rate:
                log.info("error_rate: answering %s %s with 500", scope["method"], scope["path"])
                response = _error(500, "simulated_fault", "r7sim error_rate: a simulated internal error")
                response.headers["Connection"] = "close"
                await response(scope, receive, send)
                return
        match = _PACKAGE_PUT.match(scope["path"])
        if (
            match
            and scope["method"] == "PUT"
            and match.group(1) in self.settings.drop_upload_once
            and self.store.fire_once("drop_upload_once", match.group(1))
        ):
            log.info("drop_upload_once: dropping the connection of the first upload of %s", match.group(1))
            await _drop_connection(scope, receive, send)
            return
        await self.app(scope, receive, send)


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


# ingest ----------------------------------------------------------------------------------------


def _validator_missing() -> bool:
    try:
        from decommission.validate import validate_package  # noqa: F401
    except ImportError:
        return True
    return False


class _Ingestor:
    """One background thread that ingests packages ``ingest_delay`` seconds after they arrive."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._queue: queue.PriorityQueue[tuple[float, int, str]] = queue.PriorityQueue()
        self._seq = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="r7sim-ingest", daemon=True)

    def start(self) -> None:
        """Start the thread and queue every package a previous run left pending."""
        for package_id in self.store.pending_packages():
            log.info("resuming the ingest of %s", package_id)
            self.schedule(package_id)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the package being ingested; unfinished ones stay pending for the next run."""
        self._stopping.set()
        self._thread.join(timeout=10)

    def schedule(self, package_id: str) -> None:
        """Queue a package for ingest after the configured delay."""
        self._seq += 1
        self._queue.put((time.monotonic() + self.settings.ingest_delay, self._seq, package_id))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                due, seq, package_id = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            wait = due - time.monotonic()
            if wait > 0:
                self._queue.put((due, seq, package_id))
                self._stopping.wait(min(wait, 0.1))
                continue
            try:
                self._ingest(package_id)
            except Exception:  # keep the thread alive; the package stays pending
                log.exception("ingest of %s failed inside r7sim", package_id)

    def _ingest(self, package_id: str) -> None:
        row = self.store.package(package_id)
        if row is None or row["status"] != "pending":
            return
        status, reasons, counts = ingest_package(
            self.store.package_path(package_id), forced_reject=package_id in self.settings.reject
        )
        receipt = {
            "receipt_type": "ingest",
            "package_id": package_id,
            "delivery_id": row["delivery_id"],
            "sha256": row["sha256"],
            "status": status,
            "reasons": reasons,
            "archive_id": _archive_id(package_id, row["sha256"]) if status == "accepted" else None,
            "counts": counts,
            "ingested_at": now_iso(),
            "archive": ARCHIVE_NAME,
        }
        approval = self.store.finish_ingest(package_id, receipt, auto_approve_test=self.settings.auto_approve_test)
        log.info("package %s %s (%d reasons)", package_id, status, len(reasons))
        if approval:
            log.info("TEST delivery %s approved automatically: %s", row["delivery_id"], approval)


def _archive_id(package_id: str, sha256: str) -> str:
    """Return the archive's id of an accepted package: the same package always gets the same id."""
    name = package_id + "\n" + sha256
    return f"r7sim:{uuid.uuid5(_ARCHIVE_ID_NAMESPACE, name)}"


def ingest_package(tar_path: Path, *, forced_reject: bool = False) -> tuple[str, list[dict[str, str]], dict]:
    """Validate a package and count its records, as the archive's ingest does.

    :param tar_path: the package's tar file
    :param forced_reject: reject whatever the validator says (setting ``reject``)
    :returns: status ("accepted" or "rejected"), reasons, and entity counts (accepted only)
    """
    reasons: list[dict[str, str]] = []
    if forced_reject:
        reasons.append(
            _reason("R7SIM-REJECT", "", "rejected by the r7sim setting 'reject' (a simulated archive rejection)")
        )
    try:
        from decommission.validate import validate_package

        report = validate_package(tar_path)
    except Exception as exc:  # the archive reports its failure instead of crashing
        log.exception("validation of %s raised", tar_path.name)
        reasons.append(_reason("R7SIM-INGEST", "", f"the package could not be validated: {_describe(exc)}"))
        return "rejected", reasons, {}
    if not report.ok:
        problems = list(report.problems)
        reasons.extend(_reason(p.requirement, p.path, p.message) for p in problems[:_MAX_REASONS])
        if len(problems) > _MAX_REASONS:
            reasons.append(_reason("R7SIM-INGEST", "", f"{len(problems) - _MAX_REASONS} more problems omitted"))
        if not problems:
            reasons.append(_reason("R7SIM-INGEST", "", "the validator reported the package invalid"))
    if reasons:
        return "rejected", reasons, {}
    try:
        counts = _count_records(tar_path)
    except Exception as exc:
        log.exception("counting the records of %s raised", tar_path.name)
        return "rejected", [_reason("R7SIM-COUNT", "", f"the records could not be counted: {_describe(exc)}")], {}
    return "accepted", [], counts


def _count_records(tar_path: Path) -> dict[str, int]:
    from decommission.records import count_entities

    totals: dict[str, int] = {}
    with tarfile.open(tar_path, "r:") as tar, tempfile.TemporaryDirectory(prefix="r7sim-count-") as scratch:
        for _key, member in _record_members(tar):
            extracted = tar.extractfile(member)
            if extracted is None:
                continue
            record_path = Path(scratch) / "record.xml"
            with record_path.open("wb") as out:
                while chunk := extracted.read(_CHUNK):
                    out.write(chunk)
            for entity, n in count_entities(record_path).items():
                totals[entity] = totals.get(entity, 0) + int(n)
    return dict(sorted(totals.items()))


def _reason(requirement: Any, path: Any, message: Any) -> dict[str, str]:
    return {"requirement": str(requirement), "path": str(path or ""), "message": str(message)}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


# the page for people -------------------------------------------------------------------------


def _index_html(deliveries: list[dict[str, Any]], settings: Settings) -> str:
    rows = []
    for d in deliveries:
        approval = d["approval"]
        approved = (
            f"approved by {html.escape(approval['approved_by'])} at {html.escape(approval['approved_at'])}"
            if approval
            else "not approved"
        )
        rows.append(
            f"<h2>Delivery {html.escape(d['delivery_id'])}</h2>"
            f"<p>agreement {html.escape(d['agreement_id'])}, system {html.escape(d['system_id'])}, "
            f"record status {html.escape(d['record_status'])}, state {html.escape(d['state'])}, {approved}</p>"
        )
        if d["packages"]:
            cells = "".join(
                f"<tr><td>{html.escape(p['package_id'])}</td><td>{p['size']}</td>"
                f"<td><code>{p['sha256']}</code></td><td>{html.escape(p['status'])}</td>"
                f"<td>{html.escape(json.dumps(p['counts']))}</td></tr>"
                for p in d["packages"]
            )
            rows.append(
                "<table><tr><th>package</th><th>bytes</th><th>SHA-256</th><th>status</th><th>counts</th></tr>"
                f"{cells}</table>"
            )
    body = "".join(rows) or "<p>No deliveries yet.</p>"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>r7sim</title></head><body>"
        f"<h1>{html.escape(BANNER)}</h1>"
        "<p>This server only simulates an archive for development and tests. Nothing delivered here "
        "is archived in R7 e-Arkiv.</p>"
        f"<p>Settings: <code>{html.escape(str(settings))}</code></p>"
        f"<p>Generated {now_iso()}.</p>{body}</body></html>"
    )


__all__ = ["BANNER", "Settings", "create_app", "ingest_package", "canonical_json"]
