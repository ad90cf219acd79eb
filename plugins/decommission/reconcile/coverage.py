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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from decommission.plan.mapping_spec import MappingSpec, qualified_name, split_name
from decommission.plan.programme import Exclusion, System
from decommission.source.catalogue import Table, read_catalogue
from decommission.source.database import Source

CLASSES = ("mapped", "preserved", "used", "excluded", "unclassified")


def classify(
    catalogue: Mapping[str, Table],
    spec: MappingSpec,
    exclusions: Iterable[Exclusion],
    in_scope: Mapping[str, int],
    cut_off: dt.date,
    schema: str,
) -> dict[str, Any]:
    """Classify every table and column; return the inventory, per-class totals and the findings.

    :param in_scope: rows per source table inside the cut-off bound (as the reconciliation counts them)
    :param schema: the schema name used in the findings (``schema.table.column``)
    """
    fields: dict[str, dict[str, list[str]]] = {}
    used: dict[str, set[str]] = {}
    preserved: dict[str, set[str]] = {}

    def full(table: str) -> str:
        """``schema.table`` of a catalogue name (a table of another schema is named so already)."""
        return table if "." in table else f"{schema}.{table}"

    for name, table in spec.tables.items():
        source = spec.source_name(name, schema).lower()
        preserved.setdefault(source, set()).update(c.lower() for c in table.preserved)
        relations = {r.alias: r for r in spec.relations(name)}

        def where(column: str) -> tuple[str | None, str]:
            """(catalogue table, column) a spec column reads; None for a query's."""
            alias, col = table.join_of(column)  # noqa: B023 - used within this iteration only
            r = relations[alias]  # noqa: B023
            return (None if r.query else qualified_name(r.schema, str(r.table), schema).lower()), col.lower()

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
    excluded: dict[tuple[str, str | None], Exclusion] = {
        (e.table.lower(), e.column.lower() if e.column else None): e for e in exclusions
    }
    reference = {qualified_name(*split_name(n), schema).lower() for n in spec.reference_tables}
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
        columns = []
        for c in t.columns:
            col = c.name.lower()
            decision = excluded.get((key, col)) or whole
            if key in fields and col in fields[key]:
                cls, by = "mapped", ", ".join(fields[key][col])
            elif decision is not None:
                cls, by = "excluded", decision.reference or decision.decision
            elif col in preserved.get(key, ()):
                cls, by = "preserved", "SIARD"
            elif col in used.get(key, ()):
                cls, by = "used", ""
            else:
                cls, by = "unclassified", ""
                if whole is None and key in used:
                    findings.append(f"column {full(name)}.{c.name} is in no mapping and no exclusion")
            columns.append({"name": c.name, "type": c.type, "class": cls, "by": by})
        if key not in used and whole is None:
            findings.append(f"table {full(name)} ({t.rows} rows) is in no mapping and no exclusion")
            table_class = "unclassified"
        else:
            table_class = "excluded" if whole is not None and key not in used else "mapped"
        rows_in = in_scope.get(name, in_scope.get(key, t.rows)) if key in used else 0
        if key in used and t.rows and not rows_in:
            findings.append(
                f"table {full(name)} has {t.rows} rows in the source but none on or before the cut-off {cut_off}"
            )
        tables.append(
            {
                "table": name,
                "class": table_class,
                "rows": t.rows,
                "rows_in_cutoff": rows_in,
                "rows_after_cutoff": max(0, t.rows - rows_in) if key in used else 0,
                "primary_key": list(t.primary_key),
                "foreign_keys": list(t.foreign_keys),
                "columns": columns,
            }
        )
    for (table, column), e in sorted(excluded.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        if not e.reference:
            findings.append(f"the exclusion of {full(table)}{'.' + column if column else ''} has no decision reference")
        known = table in {n.lower() for n in catalogue}
        if not known:
            findings.append(f"the exclusion names {full(table)}, which the source does not have")
    for name, table_spec in spec.tables.items():
        source = spec.source_name(name, schema)
        have = {
            c.name.lower() for c in catalogue.get(source, catalogue.get(source.lower(), Table(source, (), 0))).columns
        }
        for column in table_spec.preserved:
            if column.lower() not in have:
                findings.append(
                    f"tables.{name}.preserved names {full(source)}.{column}, which the source does not have"
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


def coverage_of(system: System, spec: MappingSpec, source: Source, in_scope: Mapping[str, int]) -> dict[str, Any]:
    """Read the source's live catalogue and classify it for this plan entry.

    :param in_scope: rows inside the cut-off per mapping table (``Source.count_rows``)
    """
    schema = system.source.schema_name or system.id
    by_source: dict[str, int] = {}
    for name, rows in in_scope.items():
        source_table = spec.source_name(name, schema)
        by_source[source_table] = by_source.get(source_table, 0) + rows
    return classify(
        read_catalogue(source, schemas=spec.schemas(schema)),
        spec,
        system.exclusions,
        by_source,
        system.agreement.cut_off,
        schema,
    )
