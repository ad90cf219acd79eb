"""The raw representation against the source: per table, rows in the SIARD parts = source - disposed.

Every row the extraction read is in the SIARD part of its partition's package, flagged and
corrected rows as the source holds them, except the rows disposed of by decision. The figures
come from our own records: the source count (within the cut-off), the disposed rows the mapping
counted, and the SIARD rows each package's build wrote (the validator counted the same rows back
before the package could leave).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from decommission.plan.mapping_spec import MappingSpec


def raw_check(
    spec: MappingSpec,
    source: Mapping[str, int],
    mapped: Sequence[Mapping[str, Any]],
    packages: Sequence[Mapping[str, Any]],
    reference: Mapping[str, int] | None = None,
    default: str | None = None,
) -> dict[str, Any]:
    """Per spec table: source, disposed, expected (source - disposed) and SIARD rows; a reason per difference.

    :param source: rows per spec table within the cut-off
    :param mapped: the mapping's figures per partition (``disposed``: table -> reason -> rows)
    :param packages: the packages as the ledger recorded them (``raw_rows``: source table -> rows)
    :param reference: rows of each table not bound to a patient (kept whole, once per delivery)
    :param default: the source's own schema (a table of another schema is ``schema.table``)
    """
    siard: dict[str, int] = {}
    for package in packages:
        for table, rows in (package.get("raw_rows") or {}).items():
            siard[table] = siard.get(table, 0) + int(rows)
    by_source: dict[str, list[str]] = {}
    for name in (n for n, t in spec.tables.items() if t.query is None):  # a query's rows are no source table
        by_source.setdefault(spec.source_name(name, default), []).append(name)
    tables, reasons = [], []
    for source_table, names in sorted(by_source.items()):
        name = names[0]  # a source table two spec tables read is in the SIARD part once, as the first reads it
        disposed = sum(sum((m.get("disposed") or {}).get(name, {}).values()) for m in mapped)
        expected = int(source.get(name, 0)) - disposed
        rows = siard.get(source_table, 0)
        tables.append(
            {
                "table": source_table,
                "source": int(source.get(name, 0)),
                "disposed": disposed,
                "expected": expected,
                "siard": rows,
                "ok": rows == expected,
            }
        )
        if rows != expected:
            reasons.append(
                f"raw representation (SIARD) of table {source_table}: {rows} rows, "
                f"source {source.get(name, 0)} - disposed {disposed} = {expected}"
            )
    for table, count in sorted((reference or {}).items()):
        rows = siard.get(table, 0)
        tables.append(
            {"table": table, "source": count, "disposed": 0, "expected": count, "siard": rows, "ok": rows == count}
        )
        if rows != count:
            reasons.append(
                f"raw representation (SIARD) of table {table} (not bound to a patient): {rows} rows, source {count}"
            )
    return {
        "tables": tables,
        "rows": sum(t["siard"] for t in tables),
        "expected": sum(t["expected"] for t in tables),
        "reasons": reasons,
    }
