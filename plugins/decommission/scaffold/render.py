"""The draft mapping as YAML text: every guess with its reason in a comment, a header that asks for review.

Written by hand rather than by a YAML dumper, which drops comments; every scalar goes through
:func:`scalar`, which quotes whatever a YAML 1.1 reader could take for anything but a string.
The same draft gives the same bytes: tables in name order, columns in the catalogue's order,
preserved columns sorted, and no date or clock in the text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from decommission.scaffold.drafts import Draft, DraftTable

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: words a YAML 1.1 reader takes for booleans or null when they stand plain
_SPECIAL = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def scalar(value: Any) -> str:
    """One YAML scalar: plain when it can only be read back as the same string, else JSON-quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _SPECIAL:
        return text
    return json.dumps(text, ensure_ascii=False)


def flow(mapping: dict[str, Any]) -> str:
    """``{key: value, ...}`` on one line."""
    return "{" + ", ".join(f"{scalar(k)}: {scalar(v)}" for k, v in mapping.items()) + "}"


def _comment(text: str) -> str:
    return "# " + " ".join(text.split())


def render(d: Draft, *, timezone: str = "Europe/Stockholm") -> str:
    """The draft spec's YAML text."""
    mapped = [t for t in d.tables if t.role in ("patient", "entity")]
    reference = [t for t in d.tables if t.role == "reference"]
    undecided = [t for t in d.tables if t.role == "undecided"]
    unlinked = [t for t in d.tables if t.role == "unlinked"]
    schemas = "schemas: " + ", ".join(s for s in d.schemas if s) if any(d.schemas) else "a database file"
    guessed = sum(len(t.fields) for t in mapped)
    preserved = sum(len(t.preserved) for t in mapped) + sum(len(t.table.columns) for t in reference)
    out = [
        f"# DRAFT mapping of system '{d.system}', written by `python -m decommission scaffold` from the live",
        f"# catalogue of connection '{d.conn_id}' (schemas: {schemas}). Names only were read, never values.",
        "#",
        "# REVIEW IT BEFORE A DELIVERY COUNTS. Every entity, key, field and rule below is a guess from a table or",
        "# column name, and its comment says which name matched. Check each one, in particular:",
        "#   - the patient table and its key (an internal key, never the personnummer);",
        "#   - times: local wall-clock, UTC or unix seconds; text dates compared with the cut-off as text;",
        "#   - code systems, value lookups (sex, yes/no flags) and which rows are soft-deleted;",
        "#   - 'preserved' columns: kept in the raw representation (SIARD) only, with no field of the record model;",
        "#   - UNDECIDED tables (commented out below): map them, or leave them out by a plan exclusion with",
        "#     its decision; until then the coverage inventory counts them unclassified.",
        "# Then load it: `python -m decommission pools include/programme.yaml` names any fault with its line.",
        "#",
        f"# {len(d.tables)} tables: {len(mapped)} mapped, {len(reference)} reference, {len(undecided)} undecided, "
        f"{len(unlinked)} outside the source's schema; {guessed} fields guessed, {preserved} columns preserved.",
        f"system: {scalar(d.system)}",
        f"timezone: {scalar(timezone)}",
        f"patient_table: {scalar(d.patient_table)}",
        "tables:",
    ]
    for t in sorted(mapped, key=lambda t: t.name):
        out += _table(t, d)
    for t in sorted(undecided, key=lambda t: t.name):
        out += _undecided(t)
    if reference:
        out.append(
            "# tables with no column holding a patient's key: kept whole in the raw representation (SIARD), "
            "once per delivery"
        )
        out.append("reference_tables:")
        for t in sorted(reference, key=lambda t: t.name):
            out.append(f"  - {scalar(t.table.name):<30} {_comment(_about(t) + '; ' + t.why)}")
    for t in sorted(unlinked, key=lambda t: t.name):
        out.append(_comment(f"NOT IN THE DRAFT {_about(t)}: {t.why}; columns: {_columns(t)}"))
        out.append("#   leave it out by a plan exclusion with its decision, or map it as a table of the system")
    return "\n".join(out) + "\n"


def _about(t: DraftTable) -> str:
    pk = f"primary key ({', '.join(t.table.primary_key)})" if t.table.primary_key else "no primary key"
    fks = len(t.table.foreign_keys)
    return f"{t.label}: {t.table.rows:,} rows, {len(t.table.columns)} columns, {pk}, {fks} foreign keys"


def _columns(t: DraftTable) -> str:
    return ", ".join(f"{c.name} ({c.type or 'no type'})" for c in t.table.columns)


def _table(t: DraftTable, d: Draft) -> list[str]:
    role = "the patient table" if t.role == "patient" else f"entity {t.entity}"
    out = [f"  {_comment(_about(t))}", f"  {_comment(f'{role}: {t.why}')}"]
    for note in t.notes:
        out.append(f"  {_comment('CHECK: ' + note)}")
    out.append(f"  {scalar(t.name)}:")
    out.append(f"    entity: {t.entity}")
    if t.schema is not None and t.schema != d.schemas[0]:
        out.append(f"    schema: {scalar(t.schema)}")
    if t.name != t.table.name:
        out.append(f"    table: {scalar(t.table.name)}")
    key = scalar(t.key[0]) if len(t.key) == 1 else "[" + ", ".join(scalar(k) for k in t.key) + "]"
    out.append(f"    key: {key:<28} {_comment(t.key_why)}")
    if t.key_prefix:
        out.append(
            f"    key_prefix: {scalar(t.key_prefix):<21} "
            + _comment("another table feeds the same entity: the prefix keeps their ids apart")
        )
    if t.join:
        j = {k: v for k, v in t.join.items() if v is not None and k != "on"}
        on = "{" + ", ".join(f"{scalar(a)}: {scalar(b)}" for a, b in t.join["on"].items()) + "}"
        entry = flow(j)[:-1] + f", {scalar('on')}: {on}" + "}"
        out.append("    join:")
        out.append(f"      - {entry:<56} {_comment(t.join_why)}")
    out.append(f"    patient_key: {scalar(t.patient_key):<20} {_comment(t.patient_why)}")
    if t.cutoff:
        out.append(
            f"    cutoff_column: {scalar(t.cutoff):<18} "
            + _comment("the record's date: rows after the delivery's cut-off are left out")
        )
    out.append("    fields:")
    for f in t.fields:
        out.append(f"      {f.field + ': ' + flow(f.spec):<58} {_comment(f.why)}")
    if t.rules:
        out.append("    rules:")
        for r in t.rules:
            out.append(f"      - {flow(r.spec):<56} {_comment(r.why)}")
    if t.preserved:
        out.append("    preserved:  # no field guessed: kept in the raw representation (SIARD) only")
        types = {c.name: c.type for c in t.table.columns}
        for name in t.preserved:
            kinds = types[name] or "no type"
            out.append(f"      - {scalar(name):<56} # {kinds}")
    return out


def _undecided(t: DraftTable) -> list[str]:
    link = f"bound to the patient through '{t.patient_key}' ({t.patient_why})" if t.patient_key else ""
    return [
        f"  {_comment('UNDECIDED ' + _about(t))}",
        f"  {_comment(t.why + ('; ' + link if link else ''))}",
        f"  {_comment('columns: ' + _columns(t))}",
        "  # map it (entity, key, patient_key, fields) or leave it out by a plan exclusion with its decision",
    ]
