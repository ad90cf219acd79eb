"""The fields, rules and preserved columns of a table whose entity is guessed: from column names and types."""

from __future__ import annotations

from typing import Any

from decommission.model import Entity
from decommission.scaffold import patterns as pt
from decommission.scaffold.drafts import DraftTable, FieldGuess, RuleGuess
from decommission.scaffold.kinds import TRANSFORM_WHY, kind, transform_for
from decommission.source.catalogue import Column

#: fields that name another record: a part of a composite key may be one (a diagnosis keyed by episode and rank)
LINK_FIELDS = {"case_id": "case", "document_id": "document"}


def candidates(t: DraftTable, entity: Entity, field_name: str) -> list[Column]:
    """Columns not yet used whose kind can become the field's type."""
    model_type = dict(entity.fields)[field_name]
    free = free_columns(t)
    if field_name in LINK_FIELDS and len(t.key) > 1:
        parts = [
            c
            for c in t.table.columns
            if c.name in t.key and c.name not in {u for f in t.fields for u in columns_of(f.spec)}
        ]
        free = [c for c in t.table.columns if c in free or c in parts]
    return [c for c in free if transform_for(model_type, kind(c.type)) is not None]


def free_columns(t: DraftTable) -> list[Column]:
    """The table's columns that no key, patient link or field has taken yet."""
    used = {*t.key, t.patient_key}
    for f in t.fields:
        used.update(columns_of(f.spec))
    return [c for c in t.table.columns if c.name not in used]


def columns_of(spec: dict[str, Any]) -> list[str]:
    """The column a field spec reads (none for a constant)."""
    return [spec["column"]] if "column" in spec else []


def map_fields(t: DraftTable, entity: Entity, first_of: dict[str | None, DraftTable]) -> None:
    """Each field of the entity the names make likely; a link field first by the linked table's key name."""
    names = dict(entity.fields)
    if t.role == "entity":
        t.fields.append(FieldGuess("patient_key", {"column": t.patient_key}, t.patient_why))
    done = {f.field for f in t.fields} | {entity.key}
    for link, target in LINK_FIELDS.items():
        other = first_of.get(target)
        if link in names and other is not None and other is not t and len(other.key) == 1:
            c = next((c for c in candidates(t, entity, link) if c.name.lower() == other.key[0].lower()), None)
            if c is not None:
                t.fields.append(FieldGuess(link, {"column": c.name}, f"the same name as {other.label}'s key"))
                done.add(link)
    for rule in pt.RULES_BY_ENTITY[entity.name].fields:
        if rule.field in done or rule.field not in names:
            continue
        found = candidates(t, entity, rule.field)
        if names[rule.field] in ("timestamp", "date32"):
            # a column typed as a time first, whatever pattern it matches; text or integer only if no such one
            # does, and never one whose name says it is something else (discharge_location)
            typed = [c for c in found if kind(c.type) in ("date", "timestamp", "timestamptz")]
            loose = [c for c in found if c not in typed and pt.first_match(pt.NOT_TIME, c.name) is None]
            passes = [typed, loose]
        else:
            passes = [found]
        for group in passes:
            hit = next(((p, c) for p in rule.names for c in group if pt.matches(p, c.name)), None)
            if hit is not None:
                done.add(rule.field)
                _add_field(t, entity, rule, *hit)
                break


def _add_field(t: DraftTable, entity: Entity, rule: pt.FieldRule, pattern: str, c: Column) -> None:
    names = dict(entity.fields)
    how = transform_for(names[rule.field], kind(c.type))
    why = f"column name matched '{pattern}'"
    if rule.field == "personal_id":
        for target in ("personal_id", "id_type", "id_scheme"):
            if target in names:
                t.fields.append(
                    FieldGuess(target, {"column": c.name, "transform": target}, why + " (an identity number)")
                )
        t.rules.append(RuleGuess({"rule": "personal_id", "column": c.name}, f"'{c.name}' holds identity numbers"))
        return
    spec: dict[str, Any] = {"column": c.name}
    if how and how != "str":
        spec["transform"] = how
        why += f"; {TRANSFORM_WHY[how]}"
    t.fields.append(FieldGuess(rule.field, spec, why))
    system = rule.system_of(pattern)
    sys_field = f"{rule.field}_system" if rule.field != "code" else "code_system"
    if system and kind(c.type) in ("text", "char", "any"):
        if sys_field in names:
            t.fields.append(FieldGuess(sys_field, {"value": system}, f"'{c.name}' matched '{pattern}'"))
        t.rules.append(
            RuleGuess({"rule": "code", "column": c.name, "system": system}, f"codes of {system}: invalid ones flagged")
        )


def finish(t: DraftTable, model: dict[str, Entity]) -> None:
    """Key field, cut-off, the rules every mapped text needs, and the preserved columns."""
    if t.role not in ("patient", "entity"):
        return
    entity = model[str(t.entity)]
    if t.role == "entity" and not (len(t.key) > 1 or t.key_prefix):
        t.fields.insert(0, FieldGuess(entity.key, {"column": t.key[0]}, f"the row's own key ({t.key_why})"))
    by_field = {f.field: f for f in t.fields}
    dated = by_field.get(entity.date_field or "")
    if dated is not None and dated.spec.get("transform") in ("local_time", "utc_time", "date"):
        c = t.column(dated.spec["column"])
        t.cutoff = c.name
        t.rules.append(RuleGuess({"rule": "sentinel_date", "column": c.name}, "dates like 1900-01-01 flagged"))
    for name in pt.SOFT_DELETED:
        c = next((c for c in free_columns(t) if pt.matches(name, c.name) and kind(c.type) in ("int", "bool")), None)
        if c is not None and c.name != t.cutoff:
            t.rules.append(
                RuleGuess({"rule": "soft_deleted", "column": c.name}, f"column name matched '{name}' (1/true)")
            )
            break
    string_fields = {n for n, ty in entity.fields if ty == "string"}
    texts: dict[str, str] = {}
    for f in t.fields:
        col = f.spec.get("column")
        own = col is not None and any(c.name == col for c in t.table.columns)  # not a joined table's column
        if own and f.field in string_fields and kind(t.column(col).type) in ("text", "char", "any"):
            texts.setdefault(col, f.field)
    for col, target in texts.items():
        if any(r.spec["rule"] == "personal_id" and r.spec["column"] == col for r in t.rules):
            continue
        t.rules.append(RuleGuess({"rule": "xml_chars", "column": col}, "text: characters XML forbids escaped, flagged"))
        if target in pt.FREE_TEXT:
            t.rules.append(RuleGuess({"rule": "encoding", "column": col}, "free text: mis-decoded characters flagged"))
    for f in t.fields:
        if f.field == "content" and f.spec.get("transform") == "bytes":
            t.rules.append(RuleGuess({"rule": "not_empty", "column": f.spec["column"]}, "an empty file flagged"))
    read = {*t.key, str(t.patient_key), *(c for f in t.fields for c in columns_of(f.spec))}
    read |= set((t.join or {}).get("on", {}))
    read |= {r.spec["column"] for r in t.rules}
    t.preserved = sorted((c.name for c in t.table.columns if c.name not in read), key=str.lower)
