"""Reading the legacy database: the only module that talks to a source system.

Extraction streams each table of one patient-key range into Parquet, inside one
read-only transaction, so the tables of a partition are one consistent snapshot. The
delivery agreement's cut-off bounds every query; reconciliation re-counts with the
same bound (:func:`count_rows`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from urllib.parse import quote as url_quote

import pyarrow as pa

from decommission.errors import SourceError
from decommission.plan.mapping_spec import KEY_SEPARATOR, ROW_KEY, MappingSpec, Relation, TableSpec, split_name
from decommission.privacy import keyed_hash
from decommission.source import pg_fast, privileges, staged_table

if TYPE_CHECKING:
    from decommission.plan.programme import System

log = logging.getLogger(__name__)

BATCH_ROWS = 10_000
#: the SQL alias of a spec table's own table (or its query); a join goes by its own name
MAIN = "_src"
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

    def __init__(self, conn_id: str, *, schema: str | None = None, fast: bool = True) -> None:
        """:param fast: read PostgreSQL through the Arrow-native path when it can (False: DB-API cursor)."""
        self.conn_id = conn_id
        self.schema = schema
        self.fast = fast
        self._hook: Any = None
        self._extra: dict[str, Any] = {}

    @classmethod
    def for_system(cls, system: System) -> Source:
        """The source database of a plan entry."""
        return cls(system.source.conn_id, schema=system.source.schema_name)

    @property
    def hook(self) -> Any:
        if self._hook is None:
            from airflow.sdk import BaseHook

            try:
                connection = BaseHook.get_connection(self.conn_id)
                self._extra = dict(connection.extra_dejson or {})
                self._hook = connection.get_hook()
            except Exception as exc:
                raise SourceError(f"source connection '{self.conn_id}': {exc}") from exc
        return self._hook

    @property
    def dialect(self) -> str:
        return "postgres" if "postgres" in type(self.hook).__name__.lower() else "generic"

    @property
    def placeholder(self) -> str:
        return "%s" if self.dialect == "postgres" else "?"

    def qualified(self, table: str, schema: str | None = None) -> str:
        """The table's name in SQL: in ``schema`` when the spec names one, else in the source's schema."""
        if schema and (self.dialect == "postgres" or schema not in (self.schema, "main")):
            return f"{quote(schema)}.{quote(table)}"
        # a SQLite file's own tables are its schema's (the plan's schema, or "main"); another schema is
        # a file the connection attaches (_connect)
        if self.schema and self.dialect == "postgres":
            return f"{quote(self.schema)}.{quote(table)}"
        return quote(table)

    def relation(self, spec: MappingSpec, name: str, *, bound: bool = True) -> str:
        """The FROM clause of spec table ``name``: its table with its joins, or its query as a subquery.

        Every name is quoted (:func:`quote`); the query is the spec's own text, run in the same
        read-only transaction as every read, with our bounds applied outside it.

        :param bound: the SQL goes with bound parameters (psycopg's ``%s``: a ``%`` of the query is doubled)
        """
        t = spec.tables[name]
        if t.query is not None:
            query = t.query.strip()
            if bound and self.placeholder == "%s":
                query = query.replace("%", "%%")
            return f"({query}) AS {quote(MAIN)}"
        sql = f"{self.qualified(spec.source_table(name), t.schema_name)} AS {quote(MAIN)}"
        for j in t.join:
            on = " AND ".join(f"{column_ref(t, left)} = {quote(j.name)}.{quote(right)}" for left, right in j.on.items())
            kind = "LEFT JOIN" if j.type == "left" else "JOIN"
            sql += f" {kind} {self.qualified(j.table, j.schema_name)} AS {quote(j.name)} ON {on}"
        return sql

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Any]:
        """One connection in one read-only transaction: every read inside sees the same data."""
        try:
            conn = self._connect()
        except Exception as exc:
            raise SourceError(f"source connection '{self.conn_id}' is not reachable: {exc}") from exc
        if isinstance(conn, sqlite3.Connection):  # SQLite keeps any bytes in TEXT: stage them, not crash
            conn.text_factory = text_or_bytes
        try:
            _begin_read_only(conn)
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.rollback()
            conn.close()

    def _connect(self) -> Any:
        """The hook's connection; a SQLite file opened read-only by the operating system, ATTACH disabled.

        ``mode=ro`` cannot be undone by a statement, and with no database to attach none can open the
        same file again for writing: the extraction session cannot write whatever it runs. A system of
        several schemas on SQLite is several files: the connection's extra names the others
        (``{"attach": {"klinik": "/data/klinik.sqlite"}}``), attached here, read-only too, under their
        schema names before ATTACH is disabled; never by a statement of a mapping.
        """
        if "sqlite" not in type(self.hook).__name__.lower():
            return self.hook.get_conn()
        conn = sqlite3.connect(_read_only_uri(self.hook.get_uri().replace("sqlite:///", "file:", 1)), uri=True)
        try:
            for schema, path in self.attached().items():
                uri = _read_only_uri("file:" + url_quote(str(Path(path).resolve())))
                conn.execute(f"ATTACH DATABASE ? AS {quote(schema)}", (uri,))
        except Exception:
            conn.close()
            raise
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        return conn

    def attached(self) -> dict[str, str]:
        """SQLite: schema name -> database file of the other schemas (the connection's extra ``attach``)."""
        self.hook  # noqa: B018 - reads the connection and its extra
        attach = self._extra.get("attach") or {}
        if not isinstance(attach, dict) or not all(isinstance(v, str) and v for v in attach.values()):
            raise SourceError(f"source connection '{self.conn_id}': extra 'attach' must map schema names to files")
        bad = sorted(k for k in attach if not _SCHEMA.match(str(k)) or str(k).lower() in ("main", "temp"))
        if bad:
            raise SourceError(f"source connection '{self.conn_id}': attach: {bad} are not schema names for SQLite")
        return {str(k): attach[k] for k in sorted(attach)}

    def write_access(self, schemas: Sequence[str] = ()) -> list[str]:
        """What the source login could change (see :mod:`decommission.source.privileges`); empty: read only.

        :param schemas: the other schemas the mapping reads, checked as the source's own
        """
        if self.dialect == "postgres":
            with self.snapshot() as conn:
                out: list[str] = []
                for schema in dict.fromkeys([self.schema, *schemas]):
                    out += [p for p in privileges.postgres_write_access(conn, schema) if p not in out]
                return out
        if "sqlite" in type(self.hook).__name__.lower():
            return []  # opened read-only, ATTACH disabled (_connect)
        return [
            f"the privileges of source '{self.conn_id}' ({type(self.hook).__name__}) cannot be checked: "
            "only PostgreSQL and SQLite sources are"
        ]

    def live_schema(self, relations: list[Relation]) -> dict[str, list[str]]:
        """Columns of each table (or query) that can be read, by its label, for checking a mapping spec."""
        out: dict[str, list[str]] = {}
        with self.snapshot() as conn:
            for r in relations:
                cur = conn.cursor()
                source = f"({r.query.strip()})" if r.query else self.qualified(str(r.table), r.schema)
                try:
                    cur.execute(f"SELECT * FROM {source} AS {quote(MAIN)} WHERE 1 = 0")
                    out[r.label] = [d[0] for d in cur.description]
                except Exception:  # noqa: BLE001 - a missing table is reported by the caller
                    conn.rollback()
                finally:
                    cur.close()
        return out

    def patient_keys(self, spec: MappingSpec) -> list[int]:
        t = spec.tables[spec.patient_table]
        with self.snapshot() as conn:
            cur = conn.cursor()
            key = column_ref(t, t.patient_key)
            # no bind parameters here: a '%' of a query stays as it is
            cur.execute(f"SELECT {key} FROM {self.relation(spec, spec.patient_table, bound=False)} ORDER BY {key}")
            return [int(r[0]) for r in cur.fetchall()]

    def _where(self, table: TableSpec, part: Partition | None, cut_off: dt.date) -> tuple[str, list[Any]]:
        clauses, params = [], []
        p = self.placeholder
        key = column_ref(table, table.patient_key)
        if part is not None and part.lo is not None:
            clauses.append(f"{key} >= {p}")
            params.append(part.lo)
        if part is not None and part.hi is not None:
            clauses.append(f"{key} < {p}")
            params.append(part.hi)
        if table.cutoff_column:
            c = column_ref(table, table.cutoff_column)
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
                cur.execute(f"SELECT COUNT(*) FROM {self.relation(spec, name)}{where}", params)
                out[name] = int(cur.fetchone()[0])
                cur.close()
        return out

    def stream(
        self, spec: MappingSpec, columns: dict[str, list[str]], cut_off: dt.date, part: Partition | None = None
    ) -> Iterator[tuple[str, pa.Table]]:
        """Every row within the cut-off of each spec table named in ``columns`` (only those columns, and
        the row key a composite or prefixed key makes), as (table, Arrow batch), from one snapshot.

        What the reconciliation reads again: the same FROM and bounds as extraction, within ``part``'s
        patient-key range when given.
        """
        selects = {}
        for name, wanted in columns.items():
            table = spec.tables[name]
            read = [c for c in dict.fromkeys([*wanted, *table.key_columns]) if c != ROW_KEY]
            selects[name] = (read, table)
        info = self._fast_conninfo()
        if info is not None:
            try:
                yield from self._stream_fast(info, spec, selects, cut_off, pg_fast.BUILTIN, part)
            except pg_fast.UnknownTypes:  # raised before a batch of that table: nothing is read twice
                yield from self._stream_fast(info, spec, selects, cut_off, pg_fast.SERVER, part)
            return
        with self.snapshot() as conn:
            for name, (read, table) in selects.items():
                where, params = self._where(table, part, cut_off)
                cur = self._stream_cursor(conn, f"stream_{name}")
                try:
                    cur.execute(self._select(spec, name, where, columns=read), params)
                    while batch := cur.fetchmany(BATCH_ROWS):
                        frame, _mixed = staged_table.from_rows(batch, read)
                        yield name, self._with_key(table, staged_table.canonical(frame))
                finally:
                    cur.close()

    def _stream_fast(
        self,
        info: str,
        spec: MappingSpec,
        selects: dict[str, Any],
        cut_off: dt.date,
        types: str,
        part: Partition | None = None,
    ) -> Iterator[tuple[str, pa.Table]]:
        with pg_fast.snapshot(info, self.conn_id, types) as conn:
            for name, (read, table) in selects.items():
                sql = self._select(spec, name, self._where_literal(table, part, cut_off), bound=False, columns=read)
                for batch in pg_fast.read_batches(conn, sql):
                    yield name, self._with_key(table, staged_table.canonical(pa.Table.from_batches([batch])))

    @staticmethod
    def _with_key(table: TableSpec, frame: pa.Table) -> pa.Table:
        if not table.derived_key:
            return frame
        return staged_table.with_row_key(frame, table.key_columns, table.key_prefix, ROW_KEY, KEY_SEPARATOR)

    def extract_partition(
        self,
        spec: MappingSpec,
        part: Partition,
        cut_off: dt.date,
        sink: Any,
        extra: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Write every table of the partition to ``sink(table) -> writable file``, from one snapshot.

        :param extra: per spec table, source columns to read beyond those the spec reads (the raw
            representation keeps every column); they follow the spec's columns in the file

        PostgreSQL is read through its Arrow-native fast path when the driver is installed
        and the connection allows it; every other database through its DB-API cursor.
        Both give the same files and totals (see :mod:`decommission.source.staged_table`).

        :returns: control totals per table: rows, distinct keys, SHA-256 of keys and rows.
        """
        columns = {name: _columns(table, (extra or {}).get(name, ())) for name, table in spec.tables.items()}
        info = self._fast_conninfo()
        if info is not None:
            return self._extract_fast(info, spec, part, cut_off, sink, columns)
        totals: dict[str, dict[str, Any]] = {}
        with self.snapshot() as conn:
            for name, table in spec.tables.items():
                where, params = self._where(table, part, cut_off)
                cur = self._stream_cursor(conn, name)
                try:
                    cur.execute(self._select(spec, name, where, columns=columns[name]), params)
                    parts, coerced = [], set()
                    while batch := cur.fetchmany(BATCH_ROWS):
                        frame, mixed = staged_table.from_rows(batch, columns[name])
                        parts.append(frame)
                        coerced.update(mixed)
                except SourceError:
                    raise
                except Exception as exc:
                    raise _query_failed(self.conn_id, name, exc) from exc
                finally:
                    cur.close()
                frame, mixed = staged_table.concat(parts, columns[name])
                frame = self._keyed(name, table, frame)
                with sink(name) as fh:
                    totals[name] = staged_table.write(frame, table.row_key, fh, sorted(coerced | set(mixed)))
        return totals

    def extract_whole(self, tables: Mapping[str, Any], sink: Any) -> dict[str, dict[str, Any]]:
        """Write whole tables (catalogue entries: no patient range, no cut-off) to ``sink(table)``, from one snapshot.

        For the tables not bound to a patient (code tables, units, users): small, read once per delivery.
        """
        totals: dict[str, dict[str, Any]] = {}
        if not tables:
            return totals
        with self.snapshot() as conn:
            for name, table in tables.items():
                columns = [c.name for c in table.columns]
                key = (list(table.primary_key) or columns)[0]
                cur = conn.cursor()
                try:
                    schema, plain = split_name(name)  # a reference table of another schema: schema.table
                    cur.execute(f"SELECT {', '.join(quote(c) for c in columns)} FROM {self.qualified(plain, schema)}")
                    parts, coerced = [], set()
                    while batch := cur.fetchmany(BATCH_ROWS):
                        frame, mixed = staged_table.from_rows(batch, columns)
                        parts.append(frame)
                        coerced.update(mixed)
                except Exception as exc:
                    raise _query_failed(self.conn_id, name, exc) from exc
                finally:
                    cur.close()
                frame, mixed = staged_table.concat(parts, columns)
                with sink(name) as fh:
                    totals[f"reference:{name}"] = staged_table.write(frame, key, fh, sorted(coerced | set(mixed)))
        return totals

    def _fast_conninfo(self) -> str | None:
        if not self.fast or self.dialect != "postgres" or not pg_fast.available():
            return None
        return pg_fast.conninfo(self.hook)

    def _extract_fast(
        self, info: str, spec: MappingSpec, part: Partition, cut_off: dt.date, sink: Any, columns: Any
    ) -> dict[str, dict[str, Any]]:
        try:
            return self._extract_snapshot(info, spec, part, cut_off, sink, pg_fast.BUILTIN, columns)
        except pg_fast.UnknownTypes as exc:  # an enum or other own type: the server's catalogue names it
            log.info("source '%s': %s has a type outside the driver's catalogue; reading again", self.conn_id, exc)
            return self._extract_snapshot(info, spec, part, cut_off, sink, pg_fast.SERVER, columns)

    def _extract_snapshot(
        self,
        info: str,
        spec: MappingSpec,
        part: Partition,
        cut_off: dt.date,
        sink: Any,
        types: str,
        columns: Mapping[str, list[str]],
    ) -> dict[str, dict[str, Any]]:
        totals: dict[str, dict[str, Any]] = {}
        with pg_fast.snapshot(info, self.conn_id, types) as conn:
            for name, table in spec.tables.items():
                where = self._where_literal(table, part, cut_off)
                try:
                    batches = list(
                        pg_fast.read_batches(conn, self._select(spec, name, where, bound=False, columns=columns[name]))
                    )
                except pg_fast.UnknownTypes:
                    raise
                except Exception as exc:
                    raise _query_failed(self.conn_id, name, exc) from exc
                parts = [pa.Table.from_batches([b]) for b in batches]
                frame, coerced = staged_table.concat(parts, columns[name])
                del batches, parts
                frame = self._keyed(name, table, frame)
                with sink(name) as fh:
                    totals[name] = staged_table.write(frame, table.row_key, fh, coerced)
        return totals

    def _keyed(self, name: str, table: TableSpec, frame: pa.Table) -> pa.Table:
        """The frame with its row key made (composite or prefixed keys), its keys checked unique.

        A key two rows share would make two records of one id: refused here, naming the table and
        its key columns (the keys as keyed hashes), not found later as a fingerprint that differs.
        """
        frame = self._with_key(table, frame)
        rows, keys = staged_table.duplicate_keys(frame, table.row_key)
        if rows:
            raise SourceError(
                f"source '{self.conn_id}', table '{name}': {rows} rows share their key with another row "
                f"(key columns: {', '.join(table.key_columns)}; keys, as keyed hashes: "
                f"{', '.join(keyed_hash(k) for k in keys)}{' ...' if rows > len(keys) * 2 else ''}); "
                "the key must name one row: give the mapping a key that does (key: [col_a, col_b])"
            )
        return frame

    def _select(
        self, spec: MappingSpec, name: str, where: str, *, bound: bool = True, columns: list[str] | None = None
    ) -> str:
        table = spec.tables[name]
        cols = ", ".join(f"{column_ref(table, c)} AS {quote(c)}" for c in columns or table.columns())
        return f"SELECT {cols} FROM {self.relation(spec, name, bound=bound)}{where}"

    def _where_literal(self, table: TableSpec, part: Partition | None, cut_off: dt.date) -> str:
        """The same bound as :meth:`_where`, with literals: a binary COPY takes no parameters.

        Only integers and ISO dates we made ourselves are inlined, never a value from a user.
        """
        where, params = self._where(table, part, cut_off)
        for value in params:
            literal = str(int(value)) if isinstance(value, int) else f"'{dt.date.fromisoformat(value).isoformat()}'"
            where = where.replace(self.placeholder, literal, 1)
        return where

    def _stream_cursor(self, conn: Any, name: str) -> Any:
        if self.dialect == "postgres":
            # a named (server-side) cursor keeps memory flat whatever the table size
            return conn.cursor(name=f"extract_{name}")
        return conn.cursor()


_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _read_only_uri(uri: str) -> str:
    """A SQLite ``file:`` URI with ``mode=ro`` (whatever mode it named)."""
    parts = urlsplit(uri)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "mode"] + [("mode", "ro")]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _columns(table: TableSpec, extra: Sequence[str]) -> list[str]:
    """The spec's columns, then the extra ones it does not read, each once."""
    return list(dict.fromkeys([*table.columns(), *extra]))


def column_ref(table: TableSpec, column: str) -> str:
    """A spec column in SQL: ``"_src"."col"`` for the table's own, ``"alias"."col"`` for a join's."""
    alias, name = table.join_of(column)
    return f"{quote(alias or MAIN)}.{quote(name)}"


def quote(name: str) -> str:
    """An SQL identifier in double quotes, an embedded quote doubled: a name from configuration stays a name."""
    return '"' + name.replace('"', '""') + '"'


def text_or_bytes(raw: bytes) -> str | bytes:
    """A TEXT value as text, or its bytes when they are not UTF-8 (the mapping keeps those as their bytes, flagged)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _query_failed(conn_id: str, table: str, exc: Exception) -> SourceError:
    """The error of a failed read: table and the driver's error class, never its message (it quotes values)."""
    error = SourceError(f"source '{conn_id}', table '{table}': query failed: {_failure(exc)}")
    if str(getattr(exc, "sqlstate", None) or "")[:2] in ("22", "42"):
        # a value the database cannot read, or a query it refuses: no retry mends it, a person must
        error.retryable = False
    return error


def _failure(exc: Exception) -> str:
    """What a driver error was, without its message: drivers quote the values they choked on."""
    code = getattr(exc, "sqlstate", None) or getattr(exc, "sqlite_errorname", None)
    return f"{type(exc).__name__}{f' ({code})' if code else ''}"


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


def make_partitions(keys: list[int], per_partition: int) -> list[Partition]:
    """Split sorted patient keys into ranges of ``per_partition`` patients, open at both ends."""
    if not keys:
        return [Partition("p0001", None, None)]
    bounds = [keys[i] for i in range(per_partition, len(keys), per_partition)]
    los: list[int | None] = [None, *bounds]
    his: list[int | None] = [*bounds, None]
    return [Partition(f"p{i + 1:04d}", lo, hi) for i, (lo, hi) in enumerate(zip(los, his, strict=True))]
