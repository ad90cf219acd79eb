"""Targets of the synthetic legacy systems: a SQLite file or a PostgreSQL schema.

A :class:`Writer` creates the tables of a list of :class:`Table`, takes rows in batches
and on :meth:`Writer.finish` adds the primary keys and patient indexes and commits;
:meth:`Writer.abort` leaves nothing half-written behind.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PostgresWriter", "SqliteWriter", "Table", "Writer"]


@dataclass(frozen=True)
class Table:
    """One table of a legacy system: its columns, patient key column and write batch size."""

    name: str
    #: (column, SQLite type, PostgreSQL type); the first column is the primary key
    columns: tuple[tuple[str, str, str], ...]
    #: column that holds the patient key (indexed)
    patient_column: str | None
    batch: int = 5000
    #: the primary key's columns when it is not the first column alone (a composite key)
    primary_key: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, ...]:
        return self.primary_key or (self.columns[0][0],)


class Writer:
    """Where the rows of one legacy system go."""

    def write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class SqliteWriter(Writer):
    """Writes ``<file>.tmp`` and renames it over ``<file>`` when complete."""

    def __init__(self, path: Path, tables: Sequence[Table]) -> None:
        self.path, self.tables = path, tables
        self.tmp_path = path.with_name(path.name + ".tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_path.unlink(missing_ok=True)
        self.conn = sqlite3.connect(self.tmp_path)
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.inserts = {}
        for t in tables:
            columns = ", ".join(f"{c} {lite}" for c, lite, _ in t.columns)
            self.conn.execute(f"CREATE TABLE {t.name} ({columns}, PRIMARY KEY ({', '.join(t.key)}))")
            self.inserts[t.name] = f"INSERT INTO {t.name} VALUES ({', '.join('?' * len(t.columns))})"

    def write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        self.conn.executemany(self.inserts[table], rows)

    def finish(self) -> None:
        for t in self.tables:
            if t.patient_column:
                self.conn.execute(f"CREATE INDEX ix_{t.name}_{t.patient_column} ON {t.name} ({t.patient_column})")
        self.conn.commit()
        self.conn.close()
        os.replace(self.tmp_path, self.path)

    def abort(self) -> None:
        self.conn.close()
        self.tmp_path.unlink(missing_ok=True)


class PostgresWriter(Writer):
    """Drops and recreates the schema, loads with COPY, commits once at the end."""

    def __init__(self, url: str, schema: str, tables: Sequence[Table]) -> None:
        import psycopg
        from psycopg import sql

        self.sql, self.tables = sql, tables
        self.schema = sql.Identifier(schema)
        self.conn = psycopg.connect(url, connect_timeout=10)
        self.conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(self.schema))
        self.conn.execute(sql.SQL("CREATE SCHEMA {}").format(self.schema))
        self.copies = {}
        for t in tables:
            columns = sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(pg)) for c, _, pg in t.columns
            )
            self.conn.execute(sql.SQL("CREATE TABLE {}.{} ({})").format(self.schema, sql.Identifier(t.name), columns))
            names = sql.SQL(", ").join(sql.Identifier(c) for c, _, _ in t.columns)
            self.copies[t.name] = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
                self.schema, sql.Identifier(t.name), names
            )

    def write(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        with self.conn.cursor() as cur, cur.copy(self.copies[table]) as copy:
            for row in rows:
                copy.write_row(row)

    def finish(self) -> None:
        sql = self.sql
        for t in self.tables:
            name = sql.Identifier(t.name)
            self.conn.execute(
                sql.SQL("ALTER TABLE {}.{} ADD PRIMARY KEY ({})").format(
                    self.schema, name, sql.SQL(", ").join(sql.Identifier(c) for c in t.key)
                )
            )
            if t.patient_column:
                self.conn.execute(
                    sql.SQL("CREATE INDEX ON {}.{} ({})").format(self.schema, name, sql.Identifier(t.patient_column))
                )
        self.conn.commit()
        self.conn.close()

    def abort(self) -> None:
        self.conn.rollback()
        self.conn.close()
