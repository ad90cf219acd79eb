"""From a live catalogue to a draft mapping: which table is the patient, what each other table feeds, and how.

Pure: the catalogue comes in (schema by schema, the source's own schema first), the draft goes out;
the one question for the database, whether a key the table does not declare is unique, is asked
through ``unique``. Every guess carries its reason (the name that matched), every column the draft
does not map is listed as preserved, every table has a role: ``patient``, ``entity`` (mapped),
``reference`` (no patient: kept whole in the raw representation), ``unlinked`` (no patient, in a schema
``reference_tables`` cannot name) or ``undecided`` (bound to a patient, but no entity or key is likely).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from decommission.model import ENTITIES, Entity
from decommission.scaffold import patterns as pt
from decommission.source.catalogue import Column, Table

#: an entity is guessed when its table name matches (TABLE_WEIGHT) or at least one of its sign fields does
TABLE_WEIGHT = 3
#: ``unique(schema, table, columns)``: whether no two rows share these columns' values
Unique = Callable[[str | None, str, Sequence[str]], bool]


def kind(type_name: str) -> str:
    """The kind of a catalogue type: int, number, bool, text, char, date, timestamp, timestamptz, bytes, any, other."""
    t = type_name.lower().strip()
    if not t:
        return "any"  # SQLite: a column declared without a type holds anything
    if t.startswith("timestamp") or t == "datetime":
        return "timestamptz" if ("with time zone" in t or t == "timestamptz") else "timestamp"
    if t == "date":
        return "date"
    if t in ("boolean", "bool"):
        return "bool"
    if "int" in t or "serial" in t:
        return "int"
    if t.startswith(("character(", "char(", "nchar")) or t in ("character", "char", "bpchar"):
        return "char"
    if any(w in t for w in ("char", "text", "clob", "uuid", "json", "xml", "citext")) or t == "name":
        return "text"
    if any(w in t for w in ("bytea", "blob", "binary")):
        return "bytes"
    if any(w in t for w in ("numeric", "decimal", "real", "double", "float", "money")):
        return "number"
    return "other"


def transform_for(model_type: str, column_kind: str) -> str | None:
    """The transform that makes a column of this kind into a field of this model type; None: not likely."""
    if model_type == "string":
        if column_kind == "char":
            return "trim"
        return "str" if column_kind in ("text", "int", "number", "any", "bool") else None
    if model_type == "timestamp":
        return {
            "timestamp": "local_time",
            "date": "local_time",
            "text": "local_time",
            "char": "local_time",
            "timestamptz": "utc_time",
            "int": "epoch_seconds",
        }.get(column_kind)
    if model_type == "date32":
        return "date" if column_kind in ("date", "timestamp", "timestamptz", "text", "char") else None
    if model_type == "bool":
        return "bool" if column_kind in ("bool", "int", "text", "char") else None
    if model_type == "large_binary":
        return "bytes" if column_kind == "bytes" else None
    return None


_TRANSFORM_WHY = {
    "local_time": "read as local wall-clock time",
    "utc_time": "a time with its zone: read as UTC",
    "epoch_seconds": "an integer time: read as unix seconds (UTC); check it is not milliseconds",
    "date": "read as a date",
    "bool": "read as 0/1, true/false, J/N",
    "bytes": "kept as bytes",
    "trim": "char(n): trailing blanks trimmed (recorded in the spec)",
}


@dataclass(frozen=True)
class FieldGuess:
    field: str
    #: the field spec as the YAML writes it: ``{"column": c, "transform": t}``, ``{"compose": ...}``
    spec: dict[str, Any]
    why: str


@dataclass(frozen=True)
class RuleGuess:
    spec: dict[str, Any]
    why: str


@dataclass
class DraftTable:
    """One table of the catalogue and what the draft does with it."""

    schema: str | None
    table: Table
    name: str  # the key in the spec's ``tables`` (or in ``reference_tables``)
    role: str = "undecided"
    entity: str | None = None
    why: str = ""
    key: list[str] = field(default_factory=list)
    key_why: str = ""
    key_prefix: str = ""
    patient_key: str | None = None
    patient_why: str = ""
    #: a left join to the table that holds the patient's key, when this one holds none itself
    join: dict[str, Any] | None = None
    join_why: str = ""
    cutoff: str | None = None
    fields: list[FieldGuess] = field(default_factory=list)
    rules: list[RuleGuess] = field(default_factory=list)
    preserved: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table.name}" if self.schema else self.table.name

    def column(self, name: str) -> Column:
        """The table's own column (a joined table's ``alias.column`` is none: a KeyError)."""
        found = next((c for c in self.table.columns if c.name == name), None)
        if found is None:
            raise KeyError(name)
        return found


@dataclass
class Draft:
    system: str
    conn_id: str
    schemas: list[str | None]
    patient_table: str | None
    tables: list[DraftTable]
    problems: list[str] = field(default_factory=list)

    @property
    def mapped(self) -> list[DraftTable]:
        return [t for t in self.tables if t.role in ("patient", "entity")]


def draft(
    system: str,
    conn_id: str,
    catalogues: Sequence[tuple[str | None, dict[str, Table]]],
    *,
    unique: Unique,
    patient_table: str | None = None,
    entities: dict[str, Entity] | None = None,
) -> Draft:
    """Guess a mapping for every table of ``catalogues`` (the source's own schema first).

    :param patient_table: ``table`` or ``schema.table`` to take as the patient table instead of guessing
    :param entities: the record model (default: :data:`decommission.model.ENTITIES` as it is now)
    """
    model = entities if entities is not None else ENTITIES
    own = catalogues[0][0] if catalogues else None
    tables = _tables(catalogues, own)
    d = Draft(system, conn_id, [s for s, _ in catalogues], None, tables)
    patient = _patient(tables, patient_table, unique)
    if patient is None:
        wanted = f"'{patient_table}' is not a table of the catalogue" if patient_table else "no table looks like one"
        d.problems.append(
            f"no patient table: {wanted} (a name like patient or person, a column like personnummer); "
            "name it with --patient-table [SCHEMA.]TABLE"
        )
        return d
    d.patient_table = patient.name
    _map_patient(patient, model["patient"])
    for t in tables:
        if t is not patient:
            _link(t, patient)
    direct = [t for t in tables if t.patient_key is not None and t is not patient]
    for t in tables:
        if t is patient:
            continue
        if t.patient_key is None:
            _link_through(t, direct, own)
        if t.patient_key is None:
            t.role = "reference" if t.schema == own else "unlinked"
            t.why = "no column holds the patient's key" + (
                "" if t.role == "reference" else " (reference_tables reads the source's own schema only)"
            )
            continue
        _choose_entity(t, model)
    for t in tables:
        if t.role == "entity" and not _own_key(t, unique):
            t.role, t.entity = "undecided", None
    first_of: dict[str | None, DraftTable] = {}  # a link field's target: the entity's first table
    for t in tables:
        if t.role == "entity":
            first_of.setdefault(t.entity, t)
    for t in tables:
        if t.role == "entity":
            _map_fields(t, model[str(t.entity)], first_of)
    _prefix_shared_entities(tables)
    for t in tables:
        _finish(t, model)
    return d


def _tables(catalogues: Sequence[tuple[str | None, dict[str, Table]]], own: str | None) -> list[DraftTable]:
    """Every table, named in the spec by its own name, or ``schema_table`` when two schemas share the name."""
    seen: dict[str, int] = {}
    for _, cat in catalogues:
        for name in cat:
            seen[name.lower()] = seen.get(name.lower(), 0) + 1
    out, taken = [], set()
    for schema, cat in catalogues:
        for name, table in sorted(cat.items()):
            spec_name = name if seen[name.lower()] == 1 or schema == own else f"{schema}_{name}"
            # the spec's name of a table names its staging files: nothing a path could read as a folder
            spec_name = _SAFE.sub("_", spec_name).lstrip(".") or "table"
            while spec_name.lower() in taken:
                spec_name += "_"
            taken.add(spec_name.lower())
            out.append(DraftTable(schema, table, spec_name))
    return out


_SAFE = re.compile(r"[^\w\- ]")


def _patient(tables: list[DraftTable], wanted: str | None, unique: Unique) -> DraftTable | None:
    if wanted:
        found = [t for t in tables if wanted in (t.table.name, t.label, t.name)]
        if not found:
            return None
        t = found[0]
        t.why = "named by --patient-table"
    else:
        scored = []
        for t in tables:
            score, why = 0, []
            matched = pt.first_match(_ENTITY["patient"].tables, t.table.name)
            if matched:
                score += TABLE_WEIGHT
                why.append(f"the table name matched '{matched}'")
            ids = [(p, c.name) for c in t.table.columns if (p := pt.first_match(_PERSONAL_ID, c.name))]
            if ids:
                score += TABLE_WEIGHT
                why.append(f"column '{ids[0][1]}' matched '{ids[0][0]}' (an identity number)")
            if score >= TABLE_WEIGHT and _patient_key_of(t) is not None:
                scored.append((-score, t.label, t, "; ".join(why)))
        if not scored:
            return None
        _, _, t, reason = min(scored, key=lambda s: (s[0], s[1]))
        t.why = reason
    key = _patient_key_of(t)
    if key is None:
        return None
    t.key, t.key_why = [key[0]], key[1]
    t.patient_key, t.patient_why = key[0], key[1]
    if not t.table.primary_key and not unique(t.schema, t.table.name, [key[0]]):
        t.notes.append(f"column '{key[0]}' is not unique in the source: the patient table needs a unique key")
    t.role, t.entity = "patient", "patient"
    return t


_ENTITY = {r.entity: r for r in pt.ENTITY_RULES}
_PERSONAL_ID = tuple(p for r in _ENTITY["patient"].fields if r.field == "personal_id" and r.sign for p in r.names)


def _patient_key_of(t: DraftTable) -> tuple[str, str] | None:
    """The patient table's key: its one-column primary key, else a likely column; an integer (partitions are ranges)."""
    pk = t.table.primary_key
    if len(pk) == 1 and kind(t.column(pk[0]).type) in ("int", "any"):
        return pk[0], "the table's primary key"
    for pattern in pt.PATIENT_KEY:
        for c in t.table.columns:
            if kind(c.type) in ("int", "any") and pt.matches(pattern, c.name) and pattern == pt.words(c.name):
                return c.name, f"no one-column integer primary key; the column name is '{pattern}'"
    return None


def _map_patient(t: DraftTable, entity: Entity) -> None:
    t.fields.append(FieldGuess("patient_key", {"column": t.key[0]}, f"the patient's internal key ({t.key_why})"))
    _map_fields(t, entity, {})
    names = {f.field for f in t.fields}
    if "given_name" not in names and "family_name" not in names:
        for c in _free(t):
            p = pt.first_match(pt.FULL_NAME, c.name)
            if p and kind(c.type) in ("text", "char", "any"):
                why = f"column name matched '{p}'; read as 'Family, Given': check how the source writes names"
                t.fields.append(FieldGuess("family_name", {"column": c.name, "transform": "before_comma"}, why))
                t.fields.append(FieldGuess("given_name", {"column": c.name, "transform": "after_comma"}, why))
                break


def _link(t: DraftTable, patient: DraftTable) -> None:
    """The column of ``t`` that holds the patient's key: a foreign key to it, its name, or a likely name."""
    key = patient.key[0]
    key_kind = kind(patient.column(key).type)

    def fits(c: Column) -> bool:
        return kind(c.type) in ("int", "any") or kind(c.type) == key_kind

    for fk in t.table.foreign_keys:
        if fk["table"] == patient.table.name and list(fk["references"]) == [key] and len(fk["columns"]) == 1:
            t.patient_key, t.patient_why = fk["columns"][0], f"a foreign key to {patient.label}.{key}"
            return
    if key.lower() not in ("id", "nr"):
        for c in t.table.columns:
            if c.name.lower() == key.lower() and fits(c):
                t.patient_key, t.patient_why = c.name, f"the same name as {patient.label}'s key"
                return
    for pattern in pt.PATIENT_LINK:
        for c in t.table.columns:
            if pt.matches(pattern, c.name) and pattern == pt.words(c.name) and fits(c):
                t.patient_key, t.patient_why = c.name, f"the column name is '{pattern}' (a patient's key)"
                return


def _link_through(t: DraftTable, linked: list[DraftTable], own: str | None) -> None:
    """No column of its own holds the patient's key: take it from a table this one refers to, by a left join.

    A foreign key to that table's one-column primary key, else a column with that key's name. Left, so a row
    whose referred row is missing still counts in the source: with no patient key it is an ORPHAN when the
    delivery has one partition, and a difference in ``source = extracted`` when it has several (never silent).
    """
    for fk in t.table.foreign_keys:
        if len(fk["columns"]) != 1:
            continue
        for u in linked:
            if u.table.name == fk["table"] and list(u.table.primary_key) == list(fk["references"]):
                _join(t, u, fk["columns"][0], f"a foreign key to {u.label}", own)
                return
    for u in linked:
        pk = u.table.primary_key
        if len(pk) != 1 or pk[0].lower() in ("id", "nr"):
            continue
        c = next((c for c in t.table.columns if c.name.lower() == pk[0].lower()), None)
        if c is not None:
            _join(t, u, c.name, f"the same name as {u.label}'s key", own)
            return


def _join(t: DraftTable, u: DraftTable, column: str, why: str, own: str | None) -> None:
    alias = u.table.name if _ALIAS.fullmatch(u.table.name) and u.table.name != t.table.name else "linked"
    t.join = {"table": u.table.name, "schema": u.schema if u.schema != own else None, "as": alias}
    t.join |= {"on": {column: u.table.primary_key[0]}, "type": "left"}
    t.patient_key = f"{alias}.{u.patient_key}"
    t.patient_why = f"{u.label}'s {u.patient_key}, through the join"
    t.join_why = f"{why}; a left join: a row without a match has no patient key (see source = extracted)"


_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _choose_entity(t: DraftTable, model: dict[str, Entity]) -> None:
    best: tuple[int, int, str, str] | None = None
    for order, rule in enumerate(pt.ENTITY_RULES):
        if rule.entity == "patient" or rule.entity not in model:
            continue  # one patient table; an entity the model does not have (yet) is never guessed
        score, why = 0, []
        matched = pt.first_match(rule.tables, t.table.name)
        if matched:
            score += TABLE_WEIGHT
            why.append(f"the table name matched '{matched}'")
        names = set(model[rule.entity].field_names)
        for f in rule.fields:
            if not f.sign or f.field not in names:
                continue
            hit = next(
                ((p, c) for p in f.names for c in _candidates(t, model[rule.entity], f.field) if pt.matches(p, c.name)),
                None,
            )
            if hit:
                score += 1
                why.append(f"column '{hit[1].name}' matched '{hit[0]}' ({f.field})")
        if score and (best is None or (-score, order) < (-best[0], best[1])):
            best = (score, order, rule.entity, "; ".join(why))
    if best is None:
        t.role, t.why = "undecided", "bound to a patient, but no table or column name suggests an entity"
        return
    t.role, t.entity, t.why = "entity", best[2], best[3]
    if best[0] < TABLE_WEIGHT:
        t.why += " (a weak guess: the table's name says nothing)"


def _own_key(t: DraftTable, unique: Unique) -> bool:
    """The table's own key: its primary key, else the first likely column that is unique in the source."""
    if t.table.primary_key:
        t.key = list(t.table.primary_key)
        t.key_why = "the table's primary key"
        return True
    tried: set[str] = set()
    for pattern in pt.OWN_KEY:
        for c in t.table.columns:
            if c.name == t.patient_key or not pt.matches(pattern, c.name) or kind(c.type) in ("bytes", "other"):
                continue
            if c.name in tried:
                continue
            tried.add(c.name)
            if unique(t.schema, t.table.name, [c.name]):
                t.key, t.key_why = [c.name], f"no primary key; the column name matched '{pattern}' and it is unique"
                return True
    t.why = "bound to a patient, but it has no primary key and no unique column with a key's name"
    return False


#: fields that name another record: a part of a composite key may be one (a diagnosis keyed by episode and rank)
LINK_FIELDS = {"case_id": "case", "document_id": "document"}


def _candidates(t: DraftTable, entity: Entity, field_name: str) -> list[Column]:
    """Columns not yet used whose kind can become the field's type."""
    model_type = dict(entity.fields)[field_name]
    free = _free(t)
    if field_name in LINK_FIELDS and len(t.key) > 1:
        parts = [
            c
            for c in t.table.columns
            if c.name in t.key and c.name not in {u for f in t.fields for u in _columns_of(f.spec)}
        ]
        free = [c for c in t.table.columns if c in free or c in parts]
    return [c for c in free if transform_for(model_type, kind(c.type)) is not None]


def _free(t: DraftTable) -> list[Column]:
    used = {*t.key, t.patient_key}
    for f in t.fields:
        used.update(_columns_of(f.spec))
    return [c for c in t.table.columns if c.name not in used]


def _columns_of(spec: dict[str, Any]) -> list[str]:
    return [spec["column"]] if "column" in spec else []


def _map_fields(t: DraftTable, entity: Entity, first_of: dict[str | None, DraftTable]) -> None:
    """Each field of the entity the names make likely; a link field first by the linked table's key name."""
    names = dict(entity.fields)
    if t.role == "entity":
        t.fields.append(FieldGuess("patient_key", {"column": t.patient_key}, t.patient_why))
    done = {f.field for f in t.fields} | {entity.key}
    for link, target in LINK_FIELDS.items():
        other = first_of.get(target)
        if link in names and other is not None and other is not t and len(other.key) == 1:
            c = next((c for c in _candidates(t, entity, link) if c.name.lower() == other.key[0].lower()), None)
            if c is not None:
                t.fields.append(FieldGuess(link, {"column": c.name}, f"the same name as {other.label}'s key"))
                done.add(link)
    for rule in _ENTITY[entity.name].fields:
        if rule.field in done or rule.field not in names:
            continue
        candidates = _candidates(t, entity, rule.field)
        if names[rule.field] in ("timestamp", "date32"):
            # a column typed as a time first, whatever pattern it matches; text or integer only if no such one
            # does, and never one whose name says it is something else (discharge_location)
            typed = [c for c in candidates if kind(c.type) in ("date", "timestamp", "timestamptz")]
            loose = [c for c in candidates if c not in typed and pt.first_match(pt.NOT_TIME, c.name) is None]
            passes = [typed, loose]
        else:
            passes = [candidates]
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
        why += f"; {_TRANSFORM_WHY[how]}"
    t.fields.append(FieldGuess(rule.field, spec, why))
    system = rule.system_of(pattern)
    sys_field = f"{rule.field}_system" if rule.field != "code" else "code_system"
    if system and kind(c.type) in ("text", "char", "any"):
        if sys_field in names:
            t.fields.append(FieldGuess(sys_field, {"value": system}, f"'{c.name}' matched '{pattern}'"))
        t.rules.append(
            RuleGuess({"rule": "code", "column": c.name, "system": system}, f"codes of {system}: invalid ones flagged")
        )


def _prefix_shared_entities(tables: list[DraftTable]) -> None:
    """Two tables feeding one entity get their names as key prefixes, so their records' ids never collide."""
    by_entity: dict[str, list[DraftTable]] = {}
    for t in tables:
        if t.role == "entity":
            by_entity.setdefault(str(t.entity), []).append(t)
    for group in by_entity.values():
        if len(group) > 1:
            for t in group:
                t.key_prefix = f"{t.name}-"


def _finish(t: DraftTable, model: dict[str, Entity]) -> None:
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
        c = next((c for c in _free(t) if pt.matches(name, c.name) and kind(c.type) in ("int", "bool")), None)
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
    read = {*t.key, str(t.patient_key), *(c for f in t.fields for c in _columns_of(f.spec))}
    read |= set((t.join or {}).get("on", {}))
    read |= {r.spec["column"] for r in t.rules}
    t.preserved = sorted((c.name for c in t.table.columns if c.name not in read), key=str.lower)
