"""The live catalogue of a legacy database: every table, its columns and types, keys and row count.

Read from the database's own catalogue (``information_schema`` and ``pg_catalog`` on PostgreSQL, ``sqlite_master``
and ``PRAGMA`` on SQLite), never from the mapping: the coverage inventory must see what the
mapping does not name. Names are passed as parameters or quoted, never pasted raw into SQL.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from decommission.errors import SourceError
from decommission.source.database import Source, quote


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    rows: int
    primary_key: tuple[str, ...] = ()
    #: each ``{"columns": [...], "table": ..., "references": [...]}``
    foreign_keys: tuple[dict[str, Any], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_catalogue(source: Source) -> dict[str, Table]:
    """Every base table of the source's schema (PostgreSQL) or file (SQLite), by name.

    :raises SourceError: the catalogue cannot be read (names the source, never a value)
    """
    try:
        with source.snapshot() as conn:
            if source.dialect == "postgres":
                shapes = _postgres_shapes(conn, source.schema or "public")
            else:
                shapes = _sqlite_shapes(conn)
            tables = {}
            for name, (columns, pk, fks) in sorted(shapes.items()):
                cur = conn.cursor()
                cur.execute(f"SELECT COUNT(*) FROM {source.qualified(name)}")
                rows = int(cur.fetchone()[0])
                cur.close()
                tables[name] = Table(name, tuple(columns), rows, tuple(pk), tuple(fks))
            return tables
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - drivers quote values in messages; name the class only
        raise SourceError(
            f"the catalogue of source '{source.conn_id}' could not be read ({type(exc).__name__})"
        ) from exc


def _postgres_shapes(conn: Any, schema: str) -> dict[str, tuple[list[Column], list[str], list[dict]]]:
    cur = conn.cursor()
    cur.execute(
        "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable FROM information_schema.columns c"
        " JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
        " WHERE c.table_schema = %s AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position",
        (schema,),
    )
    shapes: dict[str, tuple[list[Column], list[str], list[dict]]] = {}
    for table, column, data_type, nullable in cur.fetchall():
        shapes.setdefault(table, ([], [], []))[0].append(Column(column, data_type, nullable == "YES"))
    # keys from pg_catalog: information_schema shows constraints only to a login that may do more than
    # SELECT, and the programme reads through a SELECT-only login (source/privileges.py)
    cur.execute(
        "SELECT t.relname, CASE con.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'FOREIGN KEY' END, con.conname,"
        " a.attname, rt.relname, ra.attname"
        " FROM pg_constraint con"
        " JOIN pg_class t ON t.oid = con.conrelid"
        " JOIN pg_namespace n ON n.oid = t.relnamespace"
        " CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum"
        " LEFT JOIN pg_class rt ON rt.oid = con.confrelid"
        " LEFT JOIN pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = con.confkey[k.ord]"
        " WHERE n.nspname = %s AND con.contype IN ('p', 'f')"
        " ORDER BY t.relname, con.conname, k.ord",
        (schema,),
    )
    foreign: dict[tuple[str, str], dict[str, Any]] = {}
    for table, kind, constraint, column, ref_table, ref_column in cur.fetchall():
        if table not in shapes:
            continue
        if kind == "PRIMARY KEY":
            if column not in shapes[table][1]:
                shapes[table][1].append(column)
            continue
        fk = foreign.setdefault((table, constraint), {"columns": [], "table": ref_table, "references": []})
        if column not in fk["columns"]:
            fk["columns"].append(column)
        if ref_column not in fk["references"]:
            fk["references"].append(ref_column)
    for (table, _), fk in sorted(foreign.items()):
        shapes[table][2].append(fk)
    cur.close()
    return shapes


def _sqlite_shapes(conn: Any) -> dict[str, tuple[list[Column], list[str], list[dict]]]:
    cur = conn.cursor()
    cur.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    shapes: dict[str, tuple[list[Column], list[str], list[dict]]] = {}
    for (table,) in cur.fetchall():
        cur.execute(f"PRAGMA table_info({quote(table)})")
        info = cur.fetchall()
        columns = [Column(r[1], r[2] or "", not r[3]) for r in info]
        pk = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
        cur.execute(f"PRAGMA foreign_key_list({quote(table)})")
        fks: dict[int, dict[str, Any]] = {}
        for r in cur.fetchall():
            fk = fks.setdefault(r[0], {"columns": [], "table": r[2], "references": []})
            fk["columns"].append(r[3])
            fk["references"].append(r[4])
        shapes[table] = (columns, pk, [fks[k] for k in sorted(fks)])
    cur.close()
    return shapes
