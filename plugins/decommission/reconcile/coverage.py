"""Is every table and column of the legacy database in the archive, or left out by a recorded decision?

The coverage inventory classifies every column of the live catalogue: *mapped* (it feeds a field
of the record model), *preserved* (declared in the mapping spec's ``preserved``: kept in the raw
representation, the SIARD part of every package, and nowhere else), *used* (a key, rule or
cut-off column the mapping reads without keeping it as a field; it too is in the SIARD part),
*excluded* (a plan exclusion with its decision: left out of the SIARD part as well) or
*unclassified* (in the SIARD part, but no one has said what it is). At the final
delivery an unclassified table or column, an exclusion without a decision reference, or a table
whose every row lies outside the cut-off is a FAIL reason naming ``schema.table[.column]``; at the
test and production deliveries the same findings are warnings.

A table is covered only when the SIARD part holds its rows (a spec table, read whole or by partition;
a reference table) or a decision excludes it. A table the mapping reads only through a ``join:`` or
inside a spec table's ``query:`` is not: the records hold only the values of the rows joined or
selected, so it is unclassified (its columns too, a field it feeds named beside) until it is declared
in ``tables`` or ``reference_tables`` or excluded. An exclusion names a table of the source's own
schema plainly, one of another schema as ``schema.table`` (case-insensitive), as the extraction does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from decommission.plan.mapping_spec import MappingSpec, split_name
from decommission.plan.programme import Exclusion, System
from decommission.source.catalogue import Table, exclusion_key, read_catalogue
from decommission.source.database import Source

CLASSES = ("mapped", "preserved", "used", "excluded", "unclassified")


def classify(
    catalogue: Mapping[str, Table],
    spec: MappingSpec,
    exclusions: Iterable[Exclusion],
    in_scope: Mapping[str, int],
    cut_off: dt.date,
    schema: str,
    *,
    own: str | None = None,
    elsewhere: Iterable[str] = (),
) -> dict[str, Any]:
    """Classify every table and column of one schema; return the inventory, per-class totals and the findings.

    :param in_scope: rows per source table inside the cut-off bound (as the reconciliation counts them)
    :param schema: the schema of ``catalogue``, named in the findings (``schema.table.column``)
    :param own: the source's own schema, where a spec table without ``schema:`` lives (default: ``schema``)
    :param elsewhere: tables of the source's other schemas as ``schema.table`` (an exclusion may name one)
    """
    own = own or schema
    fields: dict[str, dict[str, list[str]]] = {}
    used: dict[str, set[str]] = {}
    preserved: dict[str, set[str]] = {}
    #: the tables of this schema whose rows (each within its partition) go into the SIARD part: the spec's own
    kept: set[str] = set()
    for name, table in spec.tables.items():
        if (table.schema_name or own) == schema and table.query is None:
            preserved.setdefault(spec.source_table(name).lower(), set()).update(c.lower() for c in table.preserved)
            kept.add(spec.source_table(name).lower())
        relations = {r.alias: r for r in spec.relations(name)}

        def where(column: str) -> tuple[str | None, str]:
            """(catalogue table, column) a spec column reads; None for a query's or another schema's."""
            alias, col = table.join_of(column)  # noqa: B023 - used within this iteration only
            r = relations[alias]  # noqa: B023
            return (None if r.query or (r.schema or own) != schema else str(r.table).lower()), col.lower()

        for target, f in table.fields.items():
            for column in f.columns():
                source, col = where(column)
                if source is not None:
                    fields.setdefault(source, {}).setdefault(col, []).append(f"{table.entity}.{target}")
        read = [
            *table.columns(),
            *(c for j in table.join for c in j.on),
            *(f"{j.name}.{c}" for j in table.join for c in j.on.values()),
        ]
        for column in read:
            source, col = where(column)
            if source is not None:
                used.setdefault(source, set()).add(col)
    exclusions = list(exclusions)
    excluded = _excluded_in(exclusions, schema, own)
    # the reference tables of this schema (``schema.table`` names one of another schema than the own)
    reference = {t.lower() for s, t in map(split_name, spec.reference_tables) if (s or own) == schema}
    findings: list[str] = []
    tables = []
    for name, t in sorted(catalogue.items()):
        key = name.lower()
        whole = excluded.get((key, None))
        if key in reference and whole is None:  # kept whole in the SIARD part, once per delivery
            columns = [
                {"name": c.name, "type": c.type, "class": "excluded", "by": d.reference or d.decision}
                if (d := excluded.get((key, c.name.lower())))
                else {"name": c.name, "type": c.type, "class": "preserved", "by": "SIARD"}
                for c in t.columns
            ]
            tables.append(
                {
                    "table": name,
                    "class": "preserved",
                    "rows": t.rows,
                    "rows_in_cutoff": t.rows,
                    "rows_after_cutoff": 0,
                    "primary_key": list(t.primary_key),
                    "foreign_keys": list(t.foreign_keys),
                    "columns": columns,
                }
            )
            continue
        # a table read only through a join is in no SIARD copy: the records hold only the joined rows' values
        copied = key in kept
        columns = []
        for c in t.columns:
            col = c.name.lower()
            decision = excluded.get((key, col)) or whole
            feeds = fields.get(key, {}).get(col, [])
            if feeds and (copied or whole is not None):
                cls, by = "mapped", ", ".join(feeds)
            elif decision is not None:
                cls, by = "excluded", decision.reference or decision.decision
            elif copied and col in preserved.get(key, ()):
                cls, by = "preserved", "SIARD"
            elif copied and col in used.get(key, ()):
                cls, by = "used", ""
            else:
                cls, by = "unclassified", ", ".join(feeds)
                if whole is None and copied:
                    findings.append(f"column {schema}.{name}.{c.name} is in no mapping and no exclusion")
            columns.append({"name": c.name, "type": c.type, "class": cls, "by": by})
        if copied:
            table_class = "mapped"
        elif whole is not None:
            table_class = "excluded"
        else:
            table_class = "unclassified"
            findings.append(
                f"table {schema}.{name} ({t.rows} rows) is read only through a join, and no SIARD copy holds its rows:"
                " name it in tables or reference_tables, or exclude it by decision"
                if key in used
                else f"table {schema}.{name} ({t.rows} rows) is in no mapping and no exclusion"
            )
        rows_in = in_scope.get(name, in_scope.get(key, t.rows)) if copied else 0
        if copied and t.rows and not rows_in:
            findings.append(
                f"table {schema}.{name} has {t.rows} rows in the source but none on or before the cut-off {cut_off}"
            )
        tables.append(
            {
                "table": name,
                "class": table_class,
                "rows": t.rows,
                "rows_in_cutoff": rows_in,
                "rows_after_cutoff": max(0, t.rows - rows_in) if copied else 0,
                "primary_key": list(t.primary_key),
                "foreign_keys": list(t.foreign_keys),
                "columns": columns,
            }
        )
    known = {n.lower() for n in catalogue} | {n.lower() for n in elsewhere}
    named = [(exclusion_key(e, own), e) for e in exclusions if schema == own]  # once, with the own schema
    for (table, column), e in sorted(named, key=lambda ke: (ke[0][0], ke[0][1] or "")):
        label = table if "." in table else f"{schema}.{table}"  # another schema's table is already schema.table
        if not e.reference:
            findings.append(f"the exclusion of {label}{'.' + column if column else ''} has no decision reference")
        if table not in known:
            findings.append(f"the exclusion names {label}, which the source does not have")
    for name, table_spec in spec.tables.items():
        if (table_spec.schema_name or own) != schema or table_spec.query is not None:
            continue
        source = spec.source_table(name)
        have = {
            c.name.lower() for c in catalogue.get(source, catalogue.get(source.lower(), Table(source, (), 0))).columns
        }
        for column in table_spec.preserved:
            if column.lower() not in have:
                findings.append(
                    f"tables.{name}.preserved names {schema}.{source}.{column}, which the source does not have"
                )
    totals = {cls: sum(1 for t in tables for c in t["columns"] if c["class"] == cls) for cls in CLASSES}
    columns_all = sum(totals.values())
    covered = columns_all - totals["unclassified"]
    return {
        "schema": schema,
        "tables": tables,
        "columns_by_class": totals,
        "tables_by_class": {
            cls: sum(1 for t in tables if t["class"] == cls)
            for cls in ("mapped", "preserved", "excluded", "unclassified")
        },
        "rows": {
            "source": sum(t["rows"] for t in tables),
            "in_cutoff": sum(t["rows_in_cutoff"] for t in tables),
            "after_cutoff": sum(t["rows_after_cutoff"] for t in tables),
            "excluded": sum(t["rows"] for t in tables if t["class"] == "excluded"),
        },
        "coverage": round(covered / columns_all, 4) if columns_all else 1.0,
        "findings": findings,
    }


def _excluded_in(exclusions: Iterable[Exclusion], schema: str, own: str) -> dict[tuple[str, str | None], Exclusion]:
    """The exclusions of one schema's tables by (table, column or None), lower case: a plain table name is
    of the own schema, ``schema.table`` of that schema (:func:`~decommission.source.catalogue.exclusion_key`,
    as the extraction leaves them out of the SIARD part)."""
    out = {}
    for e in exclusions:
        table, column = exclusion_key(e, own)
        named, plain = split_name(table)
        if (named or own).lower() == schema.lower():
            out[(plain, column)] = e
    return out


def coverage_of(system: System, spec: MappingSpec, source: Source, in_scope: Mapping[str, int]) -> dict[str, Any]:
    """Read the source's live catalogue and classify it for this plan entry: its own schema, and every other
    schema a spec table or join names (``schema:``), each whole. The own schema's tables go by their names,
    the other schemas' by ``schema.table``.

    :param in_scope: rows inside the cut-off per mapping table (``Source.count_rows``)
    """
    own = system.source.schema_name or system.id
    # one read of every schema the spec names (on SQLite: the files the connection attaches under those names)
    every = read_catalogue(source, schemas=spec.schemas(own))
    catalogues: dict[str, dict[str, Table]] = {own: {n: t for n, t in every.items() if "." not in n}}
    for schema in spec.schemas(own):
        catalogues[schema] = {
            n.split(".", 1)[1]: replace(t, name=n.split(".", 1)[1])
            for n, t in every.items()
            if n.startswith(f"{schema}.")
        }
    by_source: dict[str, dict[str, int]] = {}
    for name, rows in in_scope.items():
        if spec.tables[name].query is not None:  # a query's rows are no source table's
            continue
        schema, table = spec.tables[name].schema_name or own, spec.source_table(name)
        by_source.setdefault(schema, {})[table] = by_source.setdefault(schema, {}).get(table, 0) + rows
    parts = [
        classify(
            catalogue,
            spec,
            system.exclusions,
            by_source.get(schema, {}),
            system.agreement.cut_off,
            schema,
            own=own,
            elsewhere=[f"{s}.{n}" for s, c in catalogues.items() if s != own for n in c],
        )
        for schema, catalogue in catalogues.items()
    ]
    return _merged(parts, own)


def _merged(parts: list[dict[str, Any]], own: str) -> dict[str, Any]:
    """One inventory of the per-schema ones: the own schema's first, the others' tables as ``schema.table``."""
    if len(parts) == 1:
        return parts[0]
    tables = [
        {**t, "table": t["table"] if p["schema"] == own else f"{p['schema']}.{t['table']}"}
        for p in parts
        for t in p["tables"]
    ]
    columns = {c: sum(p["columns_by_class"][c] for p in parts) for c in CLASSES}
    total = sum(columns.values())
    return {
        "schema": own,
        "schemas": [p["schema"] for p in parts],
        "tables": tables,
        "columns_by_class": columns,
        "tables_by_class": {c: sum(p["tables_by_class"][c] for p in parts) for c in parts[0]["tables_by_class"]},
        "rows": {k: sum(p["rows"][k] for p in parts) for k in parts[0]["rows"]},
        "coverage": round((total - columns["unclassified"]) / total, 4) if total else 1.0,
        "findings": [f for p in parts for f in p["findings"]],
    }
