"""Resumable uploads: one upload session per package, its bytes in ``incoming/<id>.upload``.

A session remembers the committed offset in the index; bytes count as committed only once a
whole chunk arrived and was flushed to disk, so a chunk cut off by a dropped connection, a killed
client or a stopped server is discarded and sent again from the committed offset. Sessions
survive restarts; at startup each file is cut back to its committed offset.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from r7sim.store import INDEX_FILE, Store, StoreError, now_iso

log = logging.getLogger("r7sim")

UPLOAD_SUFFIX = ".upload"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    package_id  TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    committed   INTEGER NOT NULL,
    opened_at   TEXT NOT NULL
);
"""
_HASH_BLOCK = 1 << 20


class Uploads:
    """The upload sessions of one r7sim data directory.

    :param store: the holdings a finished upload goes into
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._db = sqlite3.connect(store.data_dir / INDEX_FILE, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)
        self._recover()

    def close(self) -> None:
        """Close the index connection."""
        with self._lock:
            self._db.close()

    def path(self, package_id: str) -> Path:
        """Return the file holding the upload's bytes so far."""
        return self.store.incoming_dir / f"{package_id}{UPLOAD_SUFFIX}"

    def session(self, package_id: str) -> dict[str, Any] | None:
        """Return the open session of a package, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM uploads WHERE package_id = ?", (package_id,)).fetchone()
        return dict(row) if row is not None else None

    def _session(self, package_id: str) -> dict[str, Any]:
        found = self.session(package_id)
        if found is None:
            raise StoreError(404, "upload_not_found", f"no upload of package {package_id} is open")
        return found

    def open(self, package_id: str, delivery_id: str, sha256: str, size: int) -> tuple[dict[str, Any], bool]:
        """Open the upload of a package, or find the one already open for the same bytes.

        :returns: the upload document (``state`` "open" with ``offset``, or "complete" with the
            transport receipt when the archive holds the package already) and whether it is new
        :raises StoreError: 404 no such delivery; 409 the package is held with other bytes
        """
        if not self.store.delivery_exists(delivery_id):
            raise StoreError(404, "delivery_not_found", f"no delivery {delivery_id}; open it first")
        held = self.store.package(package_id)
        if held is not None:
            self.store.check_same(held, delivery_id, sha256)
            return _complete_document(held), False
        with self._lock:
            current = self.session(package_id)
            if current is not None and (current["delivery_id"], current["sha256"], current["size"]) == (
                delivery_id,
                sha256,
                size,
            ):
                return _open_document(current), False
            if current is not None:
                # nothing of an unfinished upload is held yet: other bytes replace it, from 0
                log.warning("upload of %s restarted with other bytes; the unfinished one is dropped", package_id)
            self._db.execute(
                "INSERT OR REPLACE INTO uploads (package_id, delivery_id, sha256, size, committed, opened_at)"
                " VALUES (?, ?, ?, ?, 0, ?)",
                (package_id, delivery_id, sha256, size, now_iso()),
            )
            self.path(package_id).write_bytes(b"")
            return _open_document(self._session(package_id)), True

    def status(self, package_id: str) -> dict[str, Any]:
        """Return the upload document: the committed offset, or "complete" once the package is held.

        :raises StoreError: 404 when there is neither a session nor a held package
        """
        held = self.store.package(package_id)
        if held is not None:
            return _complete_document(held)
        return _open_document(self._session(package_id))

    async def append(self, package_id: str, offset: int, length: int, body: AsyncIterator[bytes]) -> dict[str, Any]:
        """Write one chunk at ``offset`` (which must be the committed offset) and commit it.

        :param body: the chunk's bytes as they arrive
        :raises StoreError: 404 no session; 409 ``offset_mismatch``; 400 a chunk past the end or cut short
        """
        current = self._session(package_id)
        committed = current["committed"]
        if offset != committed:
            raise StoreError(
                409,
                "offset_mismatch",
                f"package {package_id}: the upload is committed up to byte {committed}, not {offset}",
                extra={"offset": committed},
            )
        if offset + length > current["size"]:
            raise StoreError(400, "body_too_long", f"package {package_id}: the chunk ends past the declared size")
        received = 0
        with self.path(package_id).open("r+b") as out:
            out.truncate(offset)  # drop whatever an earlier, unfinished chunk left
            out.seek(offset)
            try:
                async for piece in body:
                    received += len(piece)
                    if received > length:
                        raise StoreError(400, "body_too_long", "the chunk is longer than its Content-Length")
                    out.write(piece)
                if received != length:
                    raise StoreError(400, "incomplete_body", f"received {received} of {length} bytes of the chunk")
            except BaseException:  # a cut connection included: the chunk is not committed
                out.truncate(offset)
                raise
            out.flush()
            os.fsync(out.fileno())
        with self._lock:
            self._db.execute(
                "UPDATE uploads SET committed = ? WHERE package_id = ? AND committed = ?",
                (offset + length, package_id, offset),
            )
        return _open_document(self._session(package_id))

    def finish(self, package_id: str) -> tuple[str, bool]:
        """Check the whole upload against its declared SHA-256 and move it into the holdings.

        Runs in a worker thread: it hashes the whole file.

        :returns: the transport receipt (JSON text) and whether the package is new
        :raises StoreError: 409 ``upload_incomplete``; 422 ``sha256_mismatch`` (the session is dropped)
        """
        held = self.store.package(package_id)
        if held is not None and self.session(package_id) is None:
            return held["transport_receipt"], False
        current = self._session(package_id)
        if current["committed"] != current["size"]:
            raise StoreError(
                409,
                "upload_incomplete",
                f"package {package_id}: {current['committed']} of {current['size']} bytes received",
                extra={"offset": current["committed"]},
            )
        path = self.path(package_id)
        digest = hashlib.sha256()
        with path.open("rb") as data:
            while block := data.read(_HASH_BLOCK):
                digest.update(block)
        if digest.hexdigest() != current["sha256"]:
            self._drop(package_id)
            raise StoreError(
                422,
                "sha256_mismatch",
                f"the upload of package {package_id} hashes to {digest.hexdigest()}, not the declared "
                f"{current['sha256']}; nothing was kept",
            )
        receipt, created = self.store.add_package(
            package_id, current["delivery_id"], current["size"], current["sha256"], path
        )
        self._drop(package_id)
        return receipt, created

    def _drop(self, package_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM uploads WHERE package_id = ?", (package_id,))
        self.path(package_id).unlink(missing_ok=True)

    def _recover(self) -> None:
        """At startup: cut every upload file back to its committed offset; remove orphan files."""
        with self._lock:
            rows = [dict(r) for r in self._db.execute("SELECT * FROM uploads")]
        known = set()
        for row in rows:
            path = self.path(row["package_id"])
            known.add(path.name)
            if not path.exists():
                path.write_bytes(b"")
            size = path.stat().st_size
            if size > row["committed"]:
                with path.open("r+b") as out:
                    out.truncate(row["committed"])
            elif size < row["committed"]:  # flushed bytes went missing: resume from what is there
                with self._lock:
                    self._db.execute("UPDATE uploads SET committed = ? WHERE package_id = ?", (size, row["package_id"]))
            log.info("upload of %s open at byte %d of %d", row["package_id"], min(size, row["committed"]), row["size"])
        for stray in self.store.incoming_dir.glob(f"*{UPLOAD_SUFFIX}"):
            if stray.name not in known:
                stray.unlink()


def _open_document(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "package_id": row["package_id"],
        "delivery_id": row["delivery_id"],
        "sha256": row["sha256"],
        "size": row["size"],
        "offset": row["committed"],
        "state": "open",
        "opened_at": row["opened_at"],
    }


def _complete_document(held: dict[str, Any]) -> dict[str, Any]:
    return {
        "package_id": held["package_id"],
        "delivery_id": held["delivery_id"],
        "sha256": held["sha256"],
        "size": held["size"],
        "offset": held["size"],
        "state": "complete",
    }
