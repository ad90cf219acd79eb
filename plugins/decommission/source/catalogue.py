"""The live catalogue of a legacy database: every table, its columns and types, keys and row count.

Read from the database's own catalogue (``information_schema`` and ``pg_catalog`` on PostgreSQL, ``sqlite_master``
and ``PRAGMA`` on SQLite), never from the mapping: the coverage inventory must see what the
mapping does not name. Names are passed as parameters or quoted, never pasted raw into SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from decommission.errors import SourceError
from decommission.plan.mapping_spec import MappingSpec, qualified_name, split_name
from decommission.source.database import Source, quote


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    comment: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    rows: int
    primary_key: tuple[str, ...] = ()
    #: each ``{"columns": [...], "table": ..., "references": [...]}``
    foreign_keys: tuple[dict[str, Any], ...] = field(default=())
    comment: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_catalogue(source: Source, *, count: bool = True, schemas: Iterable[str] = ()) -> dict[str, Table]:
    """Every base table of the source's schema (PostgreSQL) or file (SQLite), by name; and of ``schemas``.

    :param count: count each table's rows (False: ``rows`` is -1; the extraction needs only the shapes)
    :param schemas: other schemas the mapping reads (on SQLite, the files the connection attaches under
        those names): their tables are named ``schema.table`` (:func:`~decommission.plan.mapping_spec.qualified_name`),
        and so are the tables their foreign keys name

    :raises SourceError: the catalogue cannot be read (names the source, never a value)
    """
    try:
        with source.snapshot() as conn:
            tables = {}
            for schema in [None, *sorted(set(schemas) - {source.schema})]:
                tables |= _tables(source, conn, schema, count=count)
            return dict(sorted(tables.items()))
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - drivers quote values in messages; name the class only
        raise SourceError(
            f"the catalogue of source '{source.conn_id}' could not be read ({type(exc).__name__})"
        ) from exc


def _tables(source: Source, conn: Any, schema: str | None, *, count: bool) -> dict[str, Table]:
    """The tables of one schema (None: the source's own), by their name across schemas."""
    postgres = source.dialect == "postgres"
    own = (source.schema or "public") if postgres else None
    where = schema or own
    shapes = _postgres_shapes(conn, where) if postgres else _sqlite_shapes(conn, schema)
    comments = _postgres_comments(conn, where) if postgres else {}
    tables = {}
    for name, (columns, pk, fks) in sorted(shapes.items()):
        rows = -1
        if count:
            cur = conn.cursor()
            cur.execute(f"SELECT COUNT(*) FROM {source.qualified(name, schema)}")
            rows = int(cur.fetchone()[0])
            cur.close()
        described = [Column(c.name, c.type, c.nullable, comments.get((name, c.name), "")) for c in columns]
        named = qualified_name(schema, name)
        foreign = tuple({**fk, "table": qualified_name(schema, fk["table"])} for fk in fks)
        tables[named] = Table(named, tuple(described), rows, tuple(pk), foreign, comments.get((name, None), ""))
    return tables


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


def _postgres_comments(conn: Any, schema: str) -> dict[tuple[str, str | None], str]:
    """The comments (COMMENT ON) of the schema's tables and columns: (table, column or None) -> text."""
    cur = conn.cursor()
    cur.execute(
        "SELECT c.relname, a.attname, d.description FROM pg_catalog.pg_description d"
        " JOIN pg_catalog.pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_catalog.pg_class'::regclass"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0"
        " WHERE n.nspname = %s",
        (schema,),
    )
    out = {(table, column): text for table, column, text in cur.fetchall() if text}
    cur.close()
    return out


def _sqlite_shapes(conn: Any, schema: str | None = None) -> dict[str, tuple[list[Column], list[str], list[dict]]]:
    """The tables of the main file, or of the file attached as ``schema``."""
    cur = conn.cursor()
    within = f"{quote(schema)}." if schema else ""
    cur.execute(
        f"SELECT name FROM {within}sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    shapes: dict[str, tuple[list[Column], list[str], list[dict]]] = {}
    for (table,) in cur.fetchall():
        cur.execute(f"PRAGMA {within}table_info({quote(table)})")
        info = cur.fetchall()
        columns = [Column(r[1], r[2] or "", not r[3]) for r in info]
        pk = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
        cur.execute(f"PRAGMA {within}foreign_key_list({quote(table)})")
        fks: dict[int, dict[str, Any]] = {}
        for r in cur.fetchall():
            fk = fks.setdefault(r[0], {"columns": [], "table": r[2], "references": []})
            fk["columns"].append(r[3])
            fk["references"].append(r[4])
        shapes[table] = (columns, pk, [fks[k] for k in sorted(fks)])
    cur.close()
    return shapes


def exclusion_key(exclusion: Any, default: str | None = None) -> tuple[str, str | None]:
    """(table, column or None) a plan exclusion names, lower case, the table as the catalogue names it.

    A table of the source's own schema goes by its plain name (``default.table`` is the same table); a
    table of another schema by ``schema.table``: a plain name never reaches into another schema, where a
    table of the same name may be one the exclusion was not meant for.

    :param default: the source's own schema
    """
    schema, table = split_name(exclusion.table.lower())
    if schema is not None and schema == (default or "").lower():
        schema = None
    return qualified_name(schema, table), exclusion.column.lower() if exclusion.column else None


def raw_scope(
    catalogue: Mapping[str, Table], spec: MappingSpec, exclusions: Iterable[Any], default: str | None = None
) -> dict[str, Table]:
    """Per spec table, its catalogue entry less the columns a plan exclusion leaves out (by decision).

    The raw representation keeps every other column, as the source holds it. A column the spec
    reads stays even when excluded (the mapping needs it). A table the catalogue lacks is left out
    here (preflight has refused such a spec already). A spec table read by a ``query:`` has no entry:
    its rows are the query's, not a source table's (its base tables are covered each on its own:
    mapped, a reference table, or excluded by decision; the coverage inventory names any that is not).

    :param catalogue: the catalogue of the source's own schema and of the other schemas the spec names
        (:func:`read_catalogue` with ``schemas``: their tables as ``schema.table``)
    :param default: the source's own schema (its tables go by their plain names)
    """
    by_name = {name.lower(): table for name, table in catalogue.items()}
    gone = {exclusion_key(e, default) for e in exclusions}
    out = {}
    for name, table_spec in spec.tables.items():
        source = spec.source_name(name, default)
        table = by_name.get(source.lower())
        if table is None or table_spec.query is not None:
            continue
        needed = {c.lower() for c in table_spec.columns()}
        whole = (source.lower(), None) in gone
        kept = tuple(
            c
            for c in table.columns
            if c.name.lower() in needed or not (whole or (source.lower(), c.name.lower()) in gone)
        )
        out[name] = replace(table, columns=kept)
    return out


def reference_scope(
    catalogue: Mapping[str, Table], spec: MappingSpec, exclusions: Iterable[Any], default: str | None = None
) -> dict[str, Table]:
    """The spec's tables not bound to a patient, each less the columns a plan exclusion leaves out."""
    by_name = {name.lower(): table for name, table in catalogue.items()}
    gone = {exclusion_key(e, default) for e in exclusions}
    out = {}
    for entry in spec.reference_tables:
        name = qualified_name(*split_name(entry), default)
        table = by_name.get(name.lower())
        if table is None or (name.lower(), None) in gone:
            continue
        kept = tuple(c for c in table.columns if (name.lower(), c.name.lower()) not in gone)
        out[table.name] = replace(table, columns=kept)
    return out


def table_from_json(data: Mapping[str, Any]) -> Table:
    return Table(
        name=data["name"],
        columns=tuple(Column(**c) for c in data["columns"]),
        rows=int(data["rows"]),
        primary_key=tuple(data.get("primary_key", ())),
        foreign_keys=tuple(data.get("foreign_keys", ())),
        comment=data.get("comment", ""),
    )


def missing_schemas(source: Source, schemas: Iterable[str]) -> list[str]:
    """The schemas of ``schemas`` that the source login cannot see (PostgreSQL; a SQLite file has one, unnamed).

    :raises SourceError: the source cannot be reached
    """
    wanted = list(schemas)
    if source.dialect != "postgres" or not wanted:
        return []
    with source.snapshot() as conn:
        cur = conn.cursor()
        # has_schema_privilege: a schema the login may not use is as good as missing for reading
        cur.execute(
            "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname = ANY(%s)"
            " AND has_schema_privilege(oid, 'USAGE')",
            (wanted,),
        )
        found = {row[0] for row in cur.fetchall()}
        cur.close()
    return [s for s in wanted if s not in found]


def is_unique(source: Source, table: str, columns: Iterable[str], schema: str | None = None) -> bool:
    """Whether no two rows of ``table`` share the values of ``columns`` (a null counts as a value): counts only.

    :raises SourceError: the table cannot be read (names the table, never a value)
    """
    names = ", ".join(quote(c) for c in columns)
    try:
        with source.snapshot() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT 1 FROM {source.qualified(table, schema)} GROUP BY {names} HAVING COUNT(*) > 1 LIMIT 1")
            duplicate = cur.fetchone() is not None
            cur.close()
            return not duplicate
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - drivers quote values in messages; name the class only
        raise SourceError(
            f"table '{table}' of source '{source.conn_id}' could not be read ({type(exc).__name__})"
        ) from exc
