"""The inventory beside a draft: tables, columns, rows, keys, foreign keys, and what the draft made of each.

Names and counts only: no value of the source is in it. Text in Swedish (default) or English, or JSON.
"""

from __future__ import annotations

import json
from typing import Any

from decommission.scaffold.drafts import Draft, DraftTable
from decommission.words import number

#: what each column of a table became: a field, a key or rule only, preserved (SIARD only), or nothing yet
COLUMN_CLASSES = ("mapped", "used", "preserved", "undecided")
ROLES = ("patient", "entity", "reference", "undecided", "unlinked")


def _column_classes(t: DraftTable) -> dict[str, int]:
    out = dict.fromkeys(COLUMN_CLASSES, 0)
    n = len(t.table.columns)
    if t.role == "reference":
        out["preserved"] = n
    elif t.role in ("undecided", "unlinked"):
        out["undecided"] = n
    else:
        mapped = {f.spec["column"] for f in t.fields if "column" in f.spec}
        out["mapped"] = len(mapped)
        out["preserved"] = len(t.preserved)
        out["used"] = n - out["mapped"] - out["preserved"]
    return out


def summary(d: Draft) -> dict[str, Any]:
    """The inventory as one JSON-able dict (sorted, so the same catalogue gives the same bytes)."""
    tables = []
    for t in sorted(d.tables, key=lambda t: ((t.schema or ""), t.table.name)):
        tables.append(
            {
                "schema": t.schema,
                "table": t.table.name,
                "spec_name": t.name,
                "rows": t.table.rows,
                "columns": len(t.table.columns),
                "primary_key": list(t.table.primary_key),
                "foreign_keys": len(t.table.foreign_keys),
                "role": t.role,
                "entity": t.entity,
                "fields_guessed": len(t.fields) if t.role in ("patient", "entity") else 0,
                "column_classes": _column_classes(t),
            }
        )
    columns = {c: sum(t["column_classes"][c] for t in tables) for c in COLUMN_CLASSES}
    return {
        "system": d.system,
        "conn_id": d.conn_id,
        "schemas": [s for s in d.schemas if s],
        "patient_table": d.patient_table,
        "totals": {
            "tables": len(tables),
            "columns": sum(t["columns"] for t in tables),
            "rows": sum(max(t["rows"], 0) for t in tables),
            "tables_with_primary_key": sum(1 for t in tables if t["primary_key"]),
            "foreign_keys": sum(t["foreign_keys"] for t in tables),
            "tables_by_role": {r: sum(1 for t in tables if t["role"] == r) for r in ROLES},
            "fields_guessed": sum(t["fields_guessed"] for t in tables),
            "columns_by_class": columns,
        },
        "tables": tables,
        "problems": list(d.problems),
    }


_WORDS = {
    "sv": {
        "title": "Inventering av källan '{conn}' ({schemas}) för systemet {system}",
        "file": "databasfilen",
        "tables": "Tabeller: {n} ({patient} patienttabell, {entity} mappade, {reference} referenstabeller, "
        "{undecided} obestämda, {unlinked} utanför källans schema)",
        "columns": "Kolumner: {n} ({mapped} mappade till fält, {used} nycklar och regler, "
        "{preserved} bevarade endast i SIARD, {undecided} obestämda)",
        "rows": "Rader: {n}",
        "keys": "Tabeller med primärnyckel: {pk} av {n}; främmande nycklar: {fk}",
        "guessed": "Gissade fält: {n}",
        "head": ("tabell", "rader", "kolumner", "primärnyckel", "FK", "roll", "fält", "bevarade"),
        "role": {
            "patient": "patient",
            "entity": "{entity}",
            "reference": "referens",
            "undecided": "OBESTÄMD",
            "unlinked": "utanför",
        },
        "problem": "Problem: {p}",
        "none": "–",
    },
    "en": {
        "title": "Inventory of source '{conn}' ({schemas}) for system {system}",
        "file": "the database file",
        "tables": "Tables: {n} ({patient} patient table, {entity} mapped, {reference} reference, "
        "{undecided} undecided, {unlinked} outside the source's schema)",
        "columns": "Columns: {n} ({mapped} mapped to fields, {used} keys and rules, "
        "{preserved} preserved in SIARD only, {undecided} undecided)",
        "rows": "Rows: {n}",
        "keys": "Tables with a primary key: {pk} of {n}; foreign keys: {fk}",
        "guessed": "Fields guessed: {n}",
        "head": ("table", "rows", "columns", "primary key", "FK", "role", "fields", "preserved"),
        "role": {
            "patient": "patient",
            "entity": "{entity}",
            "reference": "reference",
            "undecided": "UNDECIDED",
            "unlinked": "outside",
        },
        "problem": "Problem: {p}",
        "none": "-",
    },
}


def to_text(s: dict[str, Any], language: str = "sv") -> str:
    """The inventory for people: totals, then one line per table."""
    w = _WORDS[language]
    t = s["totals"]
    roles, cols = t["tables_by_role"], t["columns_by_class"]

    def n(value: int) -> str:
        return number(value, language)

    lines = [
        w["title"].format(conn=s["conn_id"], schemas=", ".join(s["schemas"]) or w["file"], system=s["system"]),
        w["tables"].format(n=n(t["tables"]), **{k: n(v) for k, v in roles.items()}),
        w["columns"].format(n=n(t["columns"]), **{k: n(v) for k, v in cols.items()}),
        w["rows"].format(n=n(t["rows"])),
        w["keys"].format(pk=n(t["tables_with_primary_key"]), n=n(t["tables"]), fk=n(t["foreign_keys"])),
        w["guessed"].format(n=n(t["fields_guessed"])),
        "",
    ]
    rows = [w["head"]]
    for table in s["tables"]:
        label = f"{table['schema']}.{table['table']}" if table["schema"] else table["table"]
        rows.append(
            (
                label,
                n(table["rows"]) if table["rows"] >= 0 else w["none"],
                n(table["columns"]),
                ", ".join(table["primary_key"]) or w["none"],
                n(table["foreign_keys"]),
                w["role"][table["role"]].format(entity=table["entity"]),
                n(table["fields_guessed"]),
                n(table["column_classes"]["preserved"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {1, 2, 4, 6, 7}
    for r in rows:
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
    lines += [w["problem"].format(p=p) for p in s["problems"]]
    return "\n".join(lines) + "\n"


def to_json(s: dict[str, Any]) -> str:
    return json.dumps(s, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
