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

from decommission.model import ENTITIES, Entity
from decommission.scaffold import patterns as pt
from decommission.scaffold.drafts import Draft, DraftTable, FieldGuess
from decommission.scaffold.fields import candidates, finish, free_columns, map_fields
from decommission.scaffold.kinds import kind
from decommission.source.catalogue import Column, Table

__all__ = ["Draft", "DraftTable", "Unique", "draft", "kind"]

#: an entity is guessed when its table name matches (TABLE_WEIGHT) or at least one of its sign fields does
TABLE_WEIGHT = 3
#: ``unique(schema, table, columns)``: whether no two rows share these columns' values
Unique = Callable[[str | None, str, Sequence[str]], bool]


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
            map_fields(t, model[str(t.entity)], first_of)
    _prefix_shared_entities(tables)
    for t in tables:
        finish(t, model)
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
            matched = pt.first_match(pt.RULES_BY_ENTITY["patient"].tables, t.table.name)
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


_PERSONAL_ID = tuple(
    p for r in pt.RULES_BY_ENTITY["patient"].fields if r.field == "personal_id" and r.sign for p in r.names
)


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
    map_fields(t, entity, {})
    names = {f.field for f in t.fields}
    if "given_name" not in names and "family_name" not in names:
        for c in free_columns(t):
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
                ((p, c) for p in f.names for c in candidates(t, model[rule.entity], f.field) if pt.matches(p, c.name)),
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
