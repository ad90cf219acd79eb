"""Reading the legacy database: the only module that talks to a source system.

Extraction streams each table of one patient-key range into Parquet, inside one
read-only transaction, so the tables of a partition are one consistent snapshot. The
delivery agreement's cut-off bounds every query; reconciliation re-counts with the
same bound (:func:`count_rows`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from decommission.errors import SourceError
from decommission.mapping_spec import MappingSpec, TableSpec

BATCH_ROWS = 10_000
#: far-future sentinels (9999-12-31) are kept past the cut-off bound, so the rules see them
FAR_FUTURE = "9999-01-01"


@dataclass(frozen=True)
class Partition:
    """A half-open patient-key range; ``None`` means unbounded, so no row falls outside all ranges."""

    id: str
    lo: int | None
    hi: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "lo": self.lo, "hi": self.hi}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Partition:
        return cls(d["id"], d["lo"], d["hi"])


class Source:
    """A legacy database reached through an Airflow connection (any DB-API hook)."""

    def __init__(self, conn_id: str, *, schema: str | None = None) -> None:
        self.conn_id = conn_id
        self.schema = schema
        self._hook: Any = None

    @property
    def hook(self) -> Any:
        if self._hook is None:
            from airflow.sdk import BaseHook

            try:
                self._hook = BaseHook.get_connection(self.conn_id).get_hook()
            except Exception as exc:
                raise SourceError(f"source connection '{self.conn_id}': {exc}") from exc
        return self._hook

    @property
    def dialect(self) -> str:
        return "postgres" if "postgres" in type(self.hook).__name__.lower() else "generic"

    @property
    def placeholder(self) -> str:
        return "%s" if self.dialect == "postgres" else "?"

    def qualified(self, table: str) -> str:
        # a schema only exists on server databases; an embedded SQLite file has none
        if self.schema and self.dialect == "postgres":
            return f'"{self.schema}"."{table}"'
        return f'"{table}"'

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Any]:
        """One connection in one read-only transaction: every read inside sees the same data."""
        try:
            conn = self.hook.get_conn()
        except Exception as exc:
            raise SourceError(f"source connection '{self.conn_id}' is not reachable: {exc}") from exc
        try:
            _begin_read_only(conn)
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.rollback()
            conn.close()

    def live_schema(self, tables: list[str]) -> dict[str, list[str]]:
        """Columns of each table that exists, for checking a mapping spec before a run."""
        out: dict[str, list[str]] = {}
        with self.snapshot() as conn:
            for table in tables:
                cur = conn.cursor()
                try:
                    cur.execute(f"SELECT * FROM {self.qualified(table)} WHERE 1 = 0")
                    out[table] = [d[0] for d in cur.description]
                except Exception:  # noqa: BLE001 - a missing table is reported by the caller
                    conn.rollback()
                finally:
                    cur.close()
        return out

    def patient_keys(self, spec: MappingSpec) -> list[int]:
        t = spec.tables[spec.patient_table]
        with self.snapshot() as conn:
            cur = conn.cursor()
            cur.execute(
                f'SELECT "{t.patient_key}" FROM {self.qualified(spec.source_table(spec.patient_table))} '
                f'ORDER BY "{t.patient_key}"'
            )
            return [int(r[0]) for r in cur.fetchall()]

    def _where(self, table: TableSpec, part: Partition | None, cut_off: dt.date) -> tuple[str, list[Any]]:
        clauses, params = [], []
        p = self.placeholder
        if part is not None and part.lo is not None:
            clauses.append(f'"{table.patient_key}" >= {p}')
            params.append(part.lo)
        if part is not None and part.hi is not None:
            clauses.append(f'"{table.patient_key}" < {p}')
            params.append(part.hi)
        if table.cutoff_column:
            c = f'"{table.cutoff_column}"'
            bound = (cut_off + dt.timedelta(days=1)).isoformat()
            clauses.append(f"({c} IS NULL OR {c} < {p} OR {c} >= {p})")
            params += [bound, FAR_FUTURE]
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def count_rows(self, spec: MappingSpec, cut_off: dt.date) -> dict[str, int]:
        """Rows per source table within the cut-off bound (the reconciliation's source side)."""
        out = {}
        with self.snapshot() as conn:
            for name, table in spec.tables.items():
                where, params = self._where(table, None, cut_off)
                cur = conn.cursor()
                cur.execute(f"SELECT COUNT(*) FROM {self.qualified(spec.source_table(name))}{where}", params)
                out[name] = int(cur.fetchone()[0])
                cur.close()
        return out

    def extract_partition(
        self, spec: MappingSpec, part: Partition, cut_off: dt.date, sink: Any
    ) -> dict[str, dict[str, Any]]:
        """Stream every table of the partition to ``sink(table) -> writable file``.

        :returns: control totals per table: rows and an order-independent digest.
        """
        totals: dict[str, dict[str, Any]] = {}
        with self.snapshot() as conn:
            for name, table in spec.tables.items():
                cols = ", ".join(f'"{c}"' for c in table.columns())
                where, params = self._where(table, part, cut_off)
                sql = f"SELECT {cols} FROM {self.qualified(spec.source_table(name))}{where}"
                cur = self._stream_cursor(conn, name)
                try:
                    cur.execute(sql, params)
                except Exception as exc:
                    raise SourceError(f"source '{self.conn_id}', table '{name}': query failed: {exc}") from exc
                with sink(name) as fh:
                    totals[name] = _write_batches(cur, table.columns(), fh)
                cur.close()
        return totals

    def _stream_cursor(self, conn: Any, name: str) -> Any:
        if self.dialect == "postgres":
            # a named (server-side) cursor keeps memory flat whatever the table size
            return conn.cursor(name=f"extract_{name}")
        return conn.cursor()


def _begin_read_only(conn: Any) -> None:
    """Start a repeatable-read, read-only transaction on whichever driver the hook gave us."""
    if hasattr(conn, "set_session"):  # psycopg2
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
    elif hasattr(conn, "read_only"):  # psycopg 3: settings apply to the next implicit BEGIN
        import psycopg

        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
    else:  # sqlite3 and other DB-API drivers: an explicit transaction
        cur = conn.cursor()
        cur.execute("BEGIN")
        cur.close()


def _write_batches(cur: Any, columns: list[str], fh: Any) -> dict[str, Any]:
    rows = 0
    digest = 0
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    try:
        while True:
            batch = cur.fetchmany(BATCH_ROWS)
            if not batch:
                break
            frame = pd.DataFrame.from_records(batch, columns=columns)
            table = _to_arrow(frame, schema)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(fh, schema, compression="zstd")
            writer.write_table(table)
            rows += len(frame)
            digest = (digest + int(pd.util.hash_pandas_object(frame, index=False).sum())) % 2**64
        if writer is None:  # an empty table still gets a file, so every stage sees every table
            schema = pa.schema([(c, pa.string()) for c in columns])
            writer = pq.ParquetWriter(fh, schema, compression="zstd")
            writer.write_table(schema.empty_table())
    finally:
        if writer is not None:
            writer.close()
    return {"rows": rows, "digest": f"{digest:016x}"}


def _to_arrow(frame: pd.DataFrame, schema: pa.Schema | None) -> pa.Table:
    """Arrow table of one batch; later batches are cast to the first batch's schema."""
    if schema is None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        # an all-null first batch column must not fix the type to null
        fields = [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
        return table.cast(pa.schema(fields))
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def make_partitions(keys: list[int], per_partition: int) -> list[Partition]:
    """Split sorted patient keys into ranges of ``per_partition`` patients, open at both ends."""
    if not keys:
        return [Partition("p0001", None, None)]
    bounds = [keys[i] for i in range(per_partition, len(keys), per_partition)]
    los: list[int | None] = [None, *bounds]
    his: list[int | None] = [*bounds, None]
    return [Partition(f"p{i + 1:04d}", lo, hi) for i, (lo, hi) in enumerate(zip(los, his, strict=True))]
