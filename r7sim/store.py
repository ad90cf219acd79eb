"""r7sim's holdings: an SQLite index plus one ``.tar`` file per package, all under one data directory.

Layout of ``data_dir``::

    index.sqlite3          deliveries, packages, receipts (verbatim JSON text), fired faults
    packages/<id>.tar      every package that arrived complete with a matching SHA-256
    incoming/*.part        uploads in progress (removed at startup: they never completed)

Receipts are stored as the exact JSON text that was sent, so a re-sent receipt is byte-identical.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: ids the archive accepts for deliveries and packages (they also name files)
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
#: values of the SIP ``metsHdr/@RECORDSTATUS``
RECORD_STATUSES = frozenset({"NEW", "SUPPLEMENT", "REPLACEMENT", "TEST", "VERSION", "DELETE", "OTHER"})
INDEX_FILE = "index.sqlite3"
PACKAGES_DIR = "packages"
INCOMING_DIR = "incoming"
ARCHIVE_NAME = "r7sim"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id   TEXT PRIMARY KEY,
    agreement_id  TEXT NOT NULL,
    system_id     TEXT NOT NULL,
    record_status TEXT NOT NULL,
    opened_at     TEXT NOT NULL,
    approval      TEXT
);
CREATE TABLE IF NOT EXISTS packages (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    package_id        TEXT NOT NULL UNIQUE,
    delivery_id       TEXT NOT NULL REFERENCES deliveries (delivery_id),
    size              INTEGER NOT NULL,
    sha256            TEXT NOT NULL,
    received_at       TEXT NOT NULL,
    transport_receipt TEXT NOT NULL,
    status            TEXT NOT NULL,
    ingest_receipt    TEXT
);
CREATE TABLE IF NOT EXISTS anchors (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    system_id   TEXT NOT NULL,
    ledger_seq  INTEGER NOT NULL,
    entry_hash  TEXT NOT NULL,
    note        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (system_id, ledger_seq)
);
CREATE TABLE IF NOT EXISTS evidence (
    system_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (system_id, name)
);
CREATE TABLE IF NOT EXISTS faults_fired (
    kind       TEXT NOT NULL,
    package_id TEXT NOT NULL,
    fired_at   TEXT NOT NULL,
    PRIMARY KEY (kind, package_id)
);
"""


class StoreError(Exception):
    """A request the holdings refuse; carries the HTTP status, the protocol's error code and
    ``extra`` fields for the error document (e.g. the committed ``offset`` of an upload)."""

    def __init__(self, status: int, code: str, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = dict(extra or {})


def now_iso() -> str:
    """Return the current UTC time as ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def canonical_json(document: dict[str, Any]) -> str:
    """Serialise a receipt the one way r7sim always does: sorted keys, no whitespace, ASCII."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def check_id(value: str, what: str) -> None:
    """Raise a 400 :class:`StoreError` unless ``value`` is a valid delivery or package id."""
    if not ID_PATTERN.match(value):
        raise StoreError(
            400,
            "invalid_id",
            f"{what} must match {ID_PATTERN.pattern} (letters, digits, '.', '_', ':', '-'; at most 200)",
        )


class Store:
    """The SQLite index and package files of one r7sim data directory; safe to share between threads.

    :param data_dir: directory holding everything; created if missing
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.packages_dir = self.data_dir / PACKAGES_DIR
        self.incoming_dir = self.data_dir / INCOMING_DIR
        self.packages_dir.mkdir(parents=True, exist_ok=True)
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.incoming_dir.glob("*.part"):
            stale.unlink()
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.data_dir / INDEX_FILE, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the index."""
        with self._lock:
            self._db.close()

    def package_path(self, package_id: str) -> Path:
        """Return where the package's tar is (or would be) kept."""
        return self.packages_dir / f"{package_id}.tar"

    # deliveries -------------------------------------------------------------------------------

    def open_delivery(
        self, delivery_id: str, agreement_id: str, system_id: str, record_status: str
    ) -> tuple[dict[str, Any], bool]:
        """Open a delivery, or find the identical one already open.

        :returns: the delivery document and whether it was created now
        :raises StoreError: 409 when the id is taken with other attributes
        """
        with self._lock:
            row = self._db.execute("SELECT * FROM deliveries WHERE delivery_id = ?", (delivery_id,)).fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO deliveries (delivery_id, agreement_id, system_id, record_status, opened_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (delivery_id, agreement_id, system_id, record_status, now_iso()),
                )
                return self.delivery(delivery_id), True
            wanted = {"agreement_id": agreement_id, "system_id": system_id, "record_status": record_status}
            differing = sorted(k for k, v in wanted.items() if row[k] != v)
            if differing:
                raise StoreError(
                    409,
                    "delivery_conflict",
                    f"delivery {delivery_id} is already open with a different {', '.join(differing)}",
                )
            return self.delivery(delivery_id), False

    def delivery_exists(self, delivery_id: str) -> bool:
        """Whether the delivery has been opened."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM deliveries WHERE delivery_id = ?", (delivery_id,)).fetchone()
        return row is not None

    def delivery(self, delivery_id: str) -> dict[str, Any]:
        """Return the delivery with its holdings and approval state.

        :raises StoreError: 404 when no such delivery was opened
        """
        with self._lock:
            row = self._db.execute("SELECT * FROM deliveries WHERE delivery_id = ?", (delivery_id,)).fetchone()
            if row is None:
                raise StoreError(404, "delivery_not_found", f"no delivery {delivery_id}")
            packages = self._db.execute(
                "SELECT * FROM packages WHERE delivery_id = ? ORDER BY seq", (delivery_id,)
            ).fetchall()
        holdings = [self._holding(p) for p in packages]
        tally = {s: sum(1 for h in holdings if h["status"] == s) for s in ("pending", "accepted", "rejected")}
        if not holdings:
            state = "open"
        elif tally["pending"]:
            state = "pending"
        elif tally["rejected"]:
            state = "rejected"
        else:
            state = "accepted"
        return {
            "delivery_id": row["delivery_id"],
            "agreement_id": row["agreement_id"],
            "system_id": row["system_id"],
            "record_status": row["record_status"],
            "opened_at": row["opened_at"],
            "state": state,
            "package_count": len(holdings),
            "status_counts": tally,
            "packages": holdings,
            "approval": json.loads(row["approval"]) if row["approval"] else None,
            "archive": ARCHIVE_NAME,
        }

    def deliveries(self) -> list[dict[str, Any]]:
        """Return every delivery, oldest first."""
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT delivery_id FROM deliveries ORDER BY opened_at, rowid")]
            return [self.delivery(i) for i in ids]

    def approve(self, delivery_id: str, approved_by: str, comment: str, *, automatic: bool) -> dict[str, Any]:
        """Record the archive's approval of a TEST delivery whose packages are all accepted.

        A manual approval is kept once given (approving again returns it unchanged). An automatic
        one is replaced when it no longer covers every package the delivery holds.

        :raises StoreError: 404 unknown delivery; 409 not a TEST delivery or not all packages accepted
        """
        with self._lock:
            current = self.delivery(delivery_id)
            approval = current["approval"]
            held = [p["package_id"] for p in current["packages"]]
            if approval and (not approval["automatic"] or approval["packages"] == held):
                return current
            if current["record_status"] != "TEST":
                raise StoreError(
                    409,
                    "not_a_test_delivery",
                    f"delivery {delivery_id} has record status {current['record_status']}; "
                    "only TEST deliveries are approved",
                )
            if current["state"] != "accepted":
                raise StoreError(
                    409,
                    "delivery_not_ready",
                    f"delivery {delivery_id} cannot be approved in state {current['state']} "
                    f"({current['status_counts']})",
                )
            approval = {
                "delivery_id": delivery_id,
                "approved": True,
                "approved_by": approved_by,
                "comment": comment,
                "approved_at": now_iso(),
                "automatic": automatic,
                "packages": held,
            }
            self._db.execute(
                "UPDATE deliveries SET approval = ? WHERE delivery_id = ?",
                (canonical_json(approval), delivery_id),
            )
            return self.delivery(delivery_id)

    # packages ---------------------------------------------------------------------------------

    def package(self, package_id: str) -> dict[str, Any] | None:
        """Return the package's index row as a dict, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM packages WHERE package_id = ?", (package_id,)).fetchone()
        return dict(row) if row is not None else None

    def add_package(self, package_id: str, delivery_id: str, size: int, sha256: str, staged: Path) -> tuple[str, bool]:
        """Move a fully received, hash-checked upload into the holdings.

        :param staged: the temporary file holding the body; moved or deleted
        :returns: the transport receipt as sent (JSON text) and whether the package is new
        :raises StoreError: 409 when the id is held with another checksum or in another delivery
        """
        with self._lock:
            try:
                existing = self.package(package_id)
                if existing is not None:
                    self.check_same(existing, delivery_id, sha256)
                    return existing["transport_receipt"], False
                receipt = canonical_json(
                    {
                        "receipt_type": "transport",
                        "package_id": package_id,
                        "delivery_id": delivery_id,
                        "size": size,
                        "sha256": sha256,
                        "sha256_match": True,
                        "received_at": now_iso(),
                        "archive": ARCHIVE_NAME,
                    }
                )
                os.replace(staged, self.package_path(package_id))
                # an automatic approval covers the packages held when it was given: withdraw it
                self._db.execute(
                    "UPDATE deliveries SET approval = NULL WHERE delivery_id = ?"
                    " AND json_extract(approval, '$.automatic') = 1",
                    (delivery_id,),
                )
                self._db.execute(
                    "INSERT INTO packages (package_id, delivery_id, size, sha256, received_at,"
                    " transport_receipt, status) VALUES (?, ?, ?, ?, ?, ?, 'pending')",
                    (package_id, delivery_id, size, sha256, json.loads(receipt)["received_at"], receipt),
                )
                return receipt, True
            finally:
                staged.unlink(missing_ok=True)

    @staticmethod
    def check_same(existing: dict[str, Any], delivery_id: str, sha256: str) -> None:
        """Raise a 409 :class:`StoreError` unless a re-upload matches the held package."""
        package_id = existing["package_id"]
        if existing["sha256"] != sha256:
            raise StoreError(
                409,
                "package_conflict",
                f"package {package_id} is already held with a different SHA-256 ({existing['sha256']}); "
                "a changed package needs a new package id",
            )
        if existing["delivery_id"] != delivery_id:
            raise StoreError(
                409,
                "package_conflict",
                f"package {package_id} is already held in another delivery ({existing['delivery_id']})",
            )

    def restate_holding(self, package_id: str, sha256: str, size: int) -> None:
        """Hold a package under the hash and size of what is stored now (r7sim's damage faults)."""
        with self._lock:
            self._db.execute(
                "UPDATE packages SET sha256 = ?, size = ? WHERE package_id = ?", (sha256, size, package_id)
            )

    def pending_packages(self) -> list[str]:
        """Return the ids of packages whose ingest has not finished, in arrival order."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT package_id FROM packages WHERE status = 'pending'")]

    def finish_ingest(self, package_id: str, receipt: dict[str, Any], *, auto_approve_test: bool) -> dict | None:
        """Store the final ingest receipt of a package (only once).

        :param auto_approve_test: in the same step, approve the package's delivery if it is a
            TEST delivery whose packages are now all accepted
        :returns: the approval given now, if any
        """
        with self._lock:
            self._db.execute(
                "UPDATE packages SET status = ?, ingest_receipt = ? WHERE package_id = ? AND status = 'pending'",
                (receipt["status"], canonical_json(receipt), package_id),
            )
            delivery = self.delivery(receipt["delivery_id"])
            if not auto_approve_test or delivery["record_status"] != "TEST" or delivery["state"] != "accepted":
                return None
            before = delivery["approval"]
            after = self.approve(
                delivery["delivery_id"],
                "r7sim (auto_approve_test)",
                f"approved automatically: all {delivery['package_count']} packages accepted",
                automatic=True,
            )["approval"]
            return after if after != before else None

    def ingest_receipt(self, package_id: str) -> str:
        """Return the ingest receipt as JSON text ("pending" until ingest finished).

        :raises StoreError: 404 when no such package is held
        """
        row = self.package(package_id)
        if row is None:
            raise StoreError(404, "package_not_found", f"no package {package_id}")
        if row["ingest_receipt"]:
            return row["ingest_receipt"]
        return canonical_json(pending_receipt(row))

    # ledger anchors ---------------------------------------------------------------------------

    def add_anchor(self, system_id: str, ledger_seq: int, entry_hash: str, note: str) -> tuple[dict[str, Any], bool]:
        """Keep a ledger head as sent; the same head again is a no-op, another hash at a held position a 409.

        :returns: the anchor and whether it is new
        """
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM anchors WHERE system_id = ? AND ledger_seq = ?", (system_id, ledger_seq)
            ).fetchone()
            if row is not None:
                if row["entry_hash"] != entry_hash:
                    raise StoreError(
                        409,
                        "anchor_conflict",
                        f"ledger entry {ledger_seq} of system {system_id} is anchored with another hash",
                    )
                return self._anchor(row), False
            self._db.execute(
                "INSERT INTO anchors (system_id, ledger_seq, entry_hash, note, received_at) VALUES (?, ?, ?, ?, ?)",
                (system_id, ledger_seq, entry_hash, note, now_iso()),
            )
            row = self._db.execute(
                "SELECT * FROM anchors WHERE system_id = ? AND ledger_seq = ?", (system_id, ledger_seq)
            ).fetchone()
            return self._anchor(row), True

    def anchors(self, system_id: str | None = None) -> list[dict[str, Any]]:
        """Every anchor (of one system), in the order received."""
        sql, params = "SELECT * FROM anchors", ()
        if system_id is not None:
            sql, params = sql + " WHERE system_id = ?", (system_id,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq", params).fetchall()
        return [self._anchor(r) for r in rows]

    @staticmethod
    def _anchor(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "system_id": row["system_id"],
            "seq": row["ledger_seq"],
            "entry_hash": row["entry_hash"],
            "note": row["note"],
            "received_at": row["received_at"],
            "archive": ARCHIVE_NAME,
        }

    # evidence packs ---------------------------------------------------------------------------

    def add_evidence(self, system_id: str, name: str, staged: Path, sha256: str, size: int) -> tuple[dict, bool]:
        """Keep an evidence pack that arrived whole in ``staged``; the same bytes again are a no-op, others a 409."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM evidence WHERE system_id = ? AND name = ?", (system_id, name)
            ).fetchone()
            if row is not None:
                staged.unlink(missing_ok=True)
                if row["sha256"] != sha256:
                    raise StoreError(
                        409, "evidence_conflict", f"evidence {name} of {system_id} is held with another hash"
                    )
                return self._evidence(row), False
            target = self.data_dir / "evidence" / system_id / name
            target.parent.mkdir(parents=True, exist_ok=True)
            staged.replace(target)
            self._db.execute(
                "INSERT INTO evidence (system_id, name, sha256, size, received_at) VALUES (?, ?, ?, ?, ?)",
                (system_id, name, sha256, size, now_iso()),
            )
            row = self._db.execute(
                "SELECT * FROM evidence WHERE system_id = ? AND name = ?", (system_id, name)
            ).fetchone()
            return self._evidence(row), True

    def evidence(self, system_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM evidence WHERE system_id = ? ORDER BY received_at", (system_id,))
            return [self._evidence(r) for r in rows.fetchall()]

    @staticmethod
    def _evidence(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "receipt_type": "evidence",
            "system_id": row["system_id"],
            "name": row["name"],
            "sha256": row["sha256"],
            "size": row["size"],
            "received_at": row["received_at"],
            "archive": ARCHIVE_NAME,
        }

    # faults -----------------------------------------------------------------------------------

    def fire_once(self, kind: str, package_id: str) -> bool:
        """Record that a one-time fault fires for a package; False when it already fired."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO faults_fired (kind, package_id, fired_at) VALUES (?, ?, ?)",
                (kind, package_id, now_iso()),
            )
            return cursor.rowcount == 1

    @staticmethod
    def _holding(row: sqlite3.Row) -> dict[str, Any]:
        ingest = json.loads(row["ingest_receipt"]) if row["ingest_receipt"] else {}
        return {
            "package_id": row["package_id"],
            "sha256": row["sha256"],
            "size": row["size"],
            "received_at": row["received_at"],
            "status": row["status"],
            "archive_id": ingest.get("archive_id"),
            "counts": ingest.get("counts", {}),
            "ingested_at": ingest.get("ingested_at"),
        }


def pending_receipt(row: dict[str, Any]) -> dict[str, Any]:
    """Return the ingest receipt of a package whose ingest has not finished."""
    return {
        "receipt_type": "ingest",
        "package_id": row["package_id"],
        "delivery_id": row["delivery_id"],
        "sha256": row["sha256"],
        "status": "pending",
        "reasons": [],
        "archive_id": None,
        "counts": {},
        "ingested_at": None,
        "archive": ARCHIVE_NAME,
    }
