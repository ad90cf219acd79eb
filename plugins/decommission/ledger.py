"""The programme ledger: an append-only, hash-chained evidence store.

Each entry's hash covers its content and the previous entry's hash, so changing any
entry breaks the chain from there on; :meth:`Ledger.verify` names the first broken
entry. The store is a database reached through an Airflow connection (SQLite in the
embedded default, PostgreSQL in production); only this module writes evidence.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decommission import settings
from decommission.errors import LedgerError

GENESIS = "0" * 64
_DDL = """CREATE TABLE IF NOT EXISTS ledger_entry (
    seq INTEGER PRIMARY KEY,
    recorded_at TEXT NOT NULL,
    system_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL
)"""

#: on PostgreSQL the database itself refuses to change or remove an entry, whoever asks (owner included)
_PG_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION ledger_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % of ledger_entry refused', TG_OP;
END $$;
CREATE TRIGGER ledger_entry_no_change BEFORE UPDATE OR DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_append_only();
CREATE TRIGGER ledger_entry_no_truncate BEFORE TRUNCATE ON ledger_entry
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entry_append_only();
"""


@dataclass(frozen=True)
class Entry:
    seq: int
    recorded_at: str
    system_id: str
    run_id: str
    kind: str
    payload: dict[str, Any]
    prev_hash: str
    entry_hash: str


def canonical(obj: Any) -> str:
    """JSON with sorted keys and no spaces: the bytes every hash in the evidence is taken of."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(
    prev_hash: str, seq: int, recorded_at: str, system_id: str, run_id: str, kind: str, payload_json: str
) -> str:
    body = canonical([prev_hash, seq, recorded_at, system_id, run_id, kind, payload_json])
    return hashlib.sha256(body.encode()).hexdigest()


class Ledger:
    """The ledger in one database. Build with :meth:`from_conn_id` or :meth:`sqlite`."""

    def __init__(self, connect: Any, *, dialect: str) -> None:
        self._connect = connect
        self.dialect = dialect
        self._ph = "%s" if dialect == "postgres" else "?"
        with self._tx() as cur:
            if dialect == "postgres":
                cur.execute("SELECT to_regclass('ledger_entry')")
                if cur.fetchone()[0] is None:  # created once, with its guards, in one transaction
                    cur.execute(_DDL)
                    cur.execute(_PG_APPEND_ONLY)
            else:
                cur.execute(_DDL)

    @classmethod
    def sqlite(cls, path: str | Path) -> Ledger:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return cls(lambda: sqlite3.connect(path, timeout=60, isolation_level=None), dialect="sqlite")

    @classmethod
    def from_conn_id(cls, conn_id: str) -> Ledger:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        if conn.conn_type == "sqlite":
            return cls.sqlite(conn.host)
        hook = conn.get_hook()
        return cls(hook.get_conn, dialect="postgres")

    @contextlib.contextmanager
    def _tx(self, *, exclusive: bool = False) -> Iterator[Any]:
        conn = self._connect()
        try:
            cur = conn.cursor()
            if self.dialect == "sqlite":
                cur.execute("BEGIN IMMEDIATE" if exclusive else "BEGIN")
            elif exclusive:
                # concurrent mapped tasks append at once: one writer at a time keeps the chain linear
                cur.execute("LOCK TABLE ledger_entry IN SHARE ROW EXCLUSIVE MODE")
            yield cur
            # sqlite3 runs in autocommit mode here, so its transaction is ended by statement
            if self.dialect == "sqlite":
                cur.execute("COMMIT")
            else:
                conn.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                if self.dialect == "sqlite":
                    conn.execute("ROLLBACK")
                else:
                    conn.rollback()
            raise
        finally:
            conn.close()

    def append(self, *, system_id: str, run_id: str, kind: str, payload: dict[str, Any]) -> Entry:
        """Add one entry at the end of the chain and return it."""
        payload_json = canonical(payload)
        recorded_at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        with self._tx(exclusive=True) as cur:
            cur.execute("SELECT seq, entry_hash FROM ledger_entry ORDER BY seq DESC LIMIT 1")
            last = cur.fetchone()
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            digest = entry_hash(prev, seq, recorded_at, system_id, run_id, kind, payload_json)
            cur.execute(
                "INSERT INTO ledger_entry (seq, recorded_at, system_id, run_id, kind, payload, prev_hash, "
                f"entry_hash) VALUES ({', '.join([self._ph] * 8)})",
                (seq, recorded_at, system_id, run_id, kind, payload_json, prev, digest),
            )
        return Entry(seq, recorded_at, system_id, run_id, kind, payload, prev, digest)

    def entries(self, *, system_id: str | None = None, kind: str | None = None) -> list[Entry]:
        sql, params = "SELECT * FROM ledger_entry", []
        where = []
        if system_id is not None:
            where.append(f"system_id = {self._ph}")
            params.append(system_id)
        if kind is not None:
            where.append(f"kind = {self._ph}")
            params.append(kind)
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._tx() as cur:
            cur.execute(sql + " ORDER BY seq", params)
            rows = cur.fetchall()
        return [Entry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7]) for r in rows]

    def verify(self) -> Entry | None:
        """Walk the chain; return the first entry whose content or link was changed, else None."""
        with self._tx() as cur:
            cur.execute("SELECT * FROM ledger_entry ORDER BY seq")
            rows = cur.fetchall()
        prev = GENESIS
        for expected_seq, r in enumerate(rows, start=1):
            seq, recorded_at, system_id, run_id, kind, payload_json, prev_hash, digest = r
            recomputed = entry_hash(prev, seq, recorded_at, system_id, run_id, kind, payload_json)
            if seq != expected_seq or prev_hash != prev or digest != recomputed:
                return Entry(seq, recorded_at, system_id, run_id, kind, json.loads(payload_json), prev_hash, digest)
            prev = digest
        return None

    def require_intact(self) -> None:
        broken = self.verify()
        if broken is not None:
            raise LedgerError(f"ledger entry {broken.seq} ({broken.kind}, {broken.system_id}) was changed")


def programme_ledger() -> Ledger:
    """The programme's ledger, through the connection the settings name."""
    return Ledger.from_conn_id(settings.LEDGER_CONN_ID)
