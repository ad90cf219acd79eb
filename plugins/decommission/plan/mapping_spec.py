"""The mapping spec (``include/mappings/<system>.yaml``): a typed model and its loader.

A spec says, per source table, which archive entity it feeds, where the keys are, how
each target field is computed and which rules find something on a row; and what becomes
of a row with a finding (``dispositions``: keep it flagged, the default; correct it from
the spec's correction list; or dispose of it under a recorded decision). Loading checks
the spec against the archive model, refuses a dispose without a decision reference and
checks the correction list; :func:`check_against_source` checks it against the live
source schema and names the spec line of every missing table or column.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from decommission.errors import MappingError
from decommission.model import CODED, ENTITIES, Disposition, Reason
from decommission.plan import code_systems as codes_registry
from decommission.plan import identity_schemes as schemes_registry
from decommission.plan.yamlfile import YamlFileError, line_of, read_yaml

MAX_SPEC_BYTES = 1 << 20
#: a correction list may name many rows (a line each), yet is read by every map task
MAX_CORRECTIONS_BYTES = 16 << 20

Transform = Literal[
    "str",  # text as is (integers become their decimal string)
    "bool",  # 0/1, true/false, J/N
    "local_time",  # wall-clock time in the spec's time zone -> UTC
    "utc_time",  # ISO text or timestamp already in UTC
    "epoch_seconds",  # unix seconds (UTC)
    "date",
    "personal_id",  # normalised identifier (see identity.py)
    "id_type",  # the identifier's class (see identity.py)
    "before_comma",  # 'Family, Given' -> 'Family'
    "after_comma",  # 'Family, Given' -> 'Given'
    "bytes",
    "trim",  # text without fixed-width padding (trailing blanks of char(n)); recorded, the source stays as is
    "id_scheme",  # the identifier's scheme (see identity.py and the spec's identity_schemes)
]
RuleName = Literal["soft_deleted", "personal_id", "sentinel_date", "xml_chars", "encoding", "not_empty", "code"]
#: how a column of raw bytes (bytea, BLOB) is to be read as text; text the driver decoded is used as it is
Codec = Literal["utf-8", "cp1252", "latin-1", "cp850"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: the staged column holding a table's row key when the key is composite or prefixed (made at extraction)
ROW_KEY = "_row_key"
#: between the parts of a composite key in the row key
KEY_SEPARATOR = "-"
#: a join's name: what goes before the dot of ``alias.column``
_ALIAS = r"^[A-Za-z_][A-Za-z0-9_]*$"


def qualified_name(schema: str | None, table: str, default: str | None = None) -> str:
    """A source table's name across schemas: ``table`` in the source's own schema, else ``schema.table``.

    The catalogue, the raw representation (SIARD) and the coverage inventory name tables so: two tables of
    one name in two schemas stay apart, and the source's own schema keeps its plain names.
    """
    return table if not schema or schema == default else f"{schema}.{table}"


def split_name(name: str) -> tuple[str | None, str]:
    """(schema, table) of a ``schema.table`` name (a reference table of another schema); (None, name) else."""
    schema, dot, table = name.partition(".")
    return (schema, table) if dot else (None, name)


def template_columns(template: str) -> list[str]:
    """The columns a ``compose`` template names (``"{fornamn} {efternamn}"``), in order; a bad one raises."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"compose template {template!r}: {exc}") from None
    names = []
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if not name or spec or conversion:
            raise ValueError(f"compose template {template!r}: '{{{name}}}' must name a column, nothing else")
        names.append(name)
    if not names:
        raise ValueError(f"compose template {template!r} names no column (a constant is 'value')")
    return list(dict.fromkeys(names))


class FieldSpec(_Model):
    """How one target field is computed: from a column (transform or lookup), a template of columns, or a constant."""

    column: str | None = Field(default=None, min_length=1)
    transform: Transform = "str"
    lookup: dict[str, str] | None = None
    value: Any = None
    #: text made of several columns, e.g. ``"{fornamn} {efternamn}"`` (a null column reads as empty text);
    #: the template travels in the package with the spec, so a reader knows how the value was made
    compose: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        given = [k for k in ("column", "value", "compose") if getattr(self, k) is not None]
        if not given:
            raise ValueError("give 'column', 'compose' or 'value'")
        if len(given) > 1:
            raise ValueError(f"give only one of 'column', 'compose' and 'value' (got {', '.join(given)})")
        if self.compose is not None:
            template_columns(self.compose)
            if self.transform != "str" or self.lookup is not None:
                raise ValueError("'compose' makes text: no 'transform' or 'lookup' with it")
        return self

    def columns(self) -> list[str]:
        """The source columns this field reads."""
        if self.compose is not None:
            return template_columns(self.compose)
        return [self.column] if self.column else []


class JoinSpec(_Model):
    """Another table of the system joined to a spec table's rows: ``alias.column`` then names its columns."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    table: str = Field(min_length=1)
    schema_name: str | None = Field(default=None, alias="schema", min_length=1)
    alias: str | None = Field(default=None, alias="as", pattern=_ALIAS)
    #: left column (of the spec table, or ``alias.column`` of an earlier join) -> column of this table
    on: dict[str, str] = Field(min_length=1)
    type: Literal["left", "inner"] = "left"

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare ``on`` key as the boolean true: it is still the join condition
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        return data

    @property
    def name(self) -> str:
        """The alias its columns go by (default: the table's name)."""
        return self.alias or self.table

    @model_validator(mode="after")
    def _plain_names(self) -> JoinSpec:
        if not re.match(_ALIAS, self.name):
            raise ValueError(f"join of '{self.table}' needs an alias ('as') of letters, digits and _")
        return self


class RuleSpec(_Model):
    rule: RuleName
    column: str
    #: soft_deleted: the values that mark a row deleted (default 1 / true)
    values: list[Any] | None = None
    #: code: which code system the column holds (a name of codes.REGISTRY or of the spec's code_systems)
    system: str | None = None
    #: code: a column naming each row's code system (mixed columns, e.g. ICD-9 and ICD-10 rows) ...
    system_column: str | None = None
    #: ... and its values -> code system names (a value not listed is an invalid code)
    systems: dict[str, str] | None = None
    #: code: a row without a code (null) is no finding (a cause of death only the deceased have, say)
    optional: bool = False

    @model_validator(mode="after")
    def _code_needs_system(self) -> RuleSpec:
        if self.rule != "code":
            return self
        if (self.system is None) == (self.system_column is None):
            raise ValueError("rule 'code' needs either 'system' or 'system_column' with 'systems'")
        if self.system_column is not None and not self.systems:
            raise ValueError("rule 'code' with 'system_column' needs 'systems' (column value -> code system)")
        return self

    def system_names(self) -> list[str]:
        return [self.system] if self.system else sorted(set((self.systems or {}).values()))


class CodeListSpec(_Model):
    """A local code list the mapping declares (a lab's own item ids, a clinic's own codes)."""

    title: str = ""
    codes: list[str] | None = None
    pattern: str | None = None

    @model_validator(mode="after")
    def _something(self) -> CodeListSpec:
        if self.codes is None and self.pattern is None:
            raise ValueError("give 'codes' (the list) or 'pattern' (RE2)")
        return self


class TableSpec(_Model):
    """One source of an entity's rows: a table (optionally with joins, in any schema) or a read-only query.

    The row's key is one column or several (``key: [a, b]``), optionally with a prefix so that the ids
    of two tables feeding one entity do not collide (``key_prefix: "proc-"``): then the row key is the
    prefix and the key columns' text joined by ``-``, made at extraction, and the entity's key field
    defaults to it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    entity: str
    table: str | None = Field(default=None, min_length=1, description="source table; defaults to the spec key")
    schema_name: str | None = Field(
        default=None, alias="schema", min_length=1, description="the table's schema; default: the source's"
    )
    join: tuple[JoinSpec, ...] = Field(default=(), description="other tables joined to the rows (alias.column)")
    query: str | None = Field(
        default=None,
        description="a read-only SELECT whose rows are the table's (the partition and cut-off bounds are ours)",
    )
    reads: tuple[str, ...] = Field(
        default=(),
        description="with query: the source tables it reads (table or schema.table), so coverage inventories them",
    )
    key: str | list[str] = Field(description="the row's own key column, or its columns")
    key_prefix: str = Field(default="", description="put before the row key (two tables into one entity)")
    patient_key: str = Field(min_length=1, description="column holding the internal patient key")
    cutoff_column: str | None = Field(default=None, description="date column bounded by the cut-off")
    encodings: dict[str, Codec] = Field(
        default={}, description="column -> codec of a bytes column; what does not decode is kept as base64, flagged"
    )
    fields: dict[str, FieldSpec]
    #: target field -> constant value, for every row of this table (shorthand of ``{value: ...}``)
    constants: dict[str, Any] = {}
    rules: list[RuleSpec] = []
    preserved: list[str] = Field(
        default=[],
        description="source columns kept in the raw representation (SIARD) only, with no field of the record model",
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        """The entity's key field defaults to the row key; constants become fields."""
        if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
            return data
        fields = dict(data["fields"])
        entity = ENTITIES.get(data.get("entity", ""))
        constants = data.get("constants") or {}
        if isinstance(constants, dict):
            both = sorted(set(constants) & set(fields))
            if both:
                raise ValueError(f"constants: {both} are also in fields: give each field once")
            fields |= {name: {"value": value} for name, value in constants.items()}
        key = data.get("key")
        if entity is not None and entity.key not in fields and key is not None:
            derived = isinstance(key, list) or bool(data.get("key_prefix"))
            fields[entity.key] = {"column": ROW_KEY if derived else key}
        rules = data.get("rules") or []
        implied = _implied_code_rules(data.get("entity", ""), fields, rules) if isinstance(rules, list) else []
        return {**data, "fields": fields, **({"rules": [*rules, *implied]} if implied else {})}

    @model_validator(mode="after")
    def _fields_match_entity(self) -> TableSpec:
        entity = ENTITIES.get(self.entity)
        if entity is None:
            raise ValueError(f"unknown entity '{self.entity}' (known: {', '.join(ENTITIES)})")
        names = set(entity.field_names)  # names only: the parse of the DAG file never needs pyarrow
        unknown = sorted(set(self.fields) - names)
        if unknown:
            raise ValueError(f"fields {unknown} are not fields of entity '{self.entity}'")
        if entity.key not in self.fields or "patient_key" not in self.fields:
            raise ValueError(f"fields must define '{entity.key}' and 'patient_key'")
        return self

    @model_validator(mode="after")
    def _source_shape(self) -> TableSpec:
        keys = self.key_columns
        if not keys or len(set(keys)) != len(keys) or not all(isinstance(k, str) and k for k in keys):
            raise ValueError("key: one column, or a list of different columns")
        if self.query is not None:
            if self.table is not None or self.schema_name is not None or self.join:
                raise ValueError("query: reads the rows itself: no 'table', 'schema' or 'join' with it")
            _check_query(self.query)
            # we do not parse SQL: without the list, a schema only the query reads would be in no inventory
            if not self.reads:
                raise ValueError(
                    "query: name the source tables it reads in 'reads: [table, schema.table, ...]', so the "
                    "coverage inventory reads their schemas and no table of them goes unnoticed"
                )
        elif self.reads:
            raise ValueError("reads: only with a query (a table's own and joined tables are known)")
        aliases = [j.name for j in self.join]
        if len(set(aliases)) != len(aliases):
            raise ValueError(f"join: two joins go by one name ({', '.join(aliases)}); give each an 'as'")
        for i, j in enumerate(self.join):
            earlier = set(aliases[:i])
            for left in j.on:
                if "." in left and left.split(".", 1)[0] in set(aliases) - earlier:
                    raise ValueError(f"join.{i}.on: '{left}' names a later join")
        if not self.derived_key and any(f.column == ROW_KEY for f in self.fields.values()):
            raise ValueError(f"'{ROW_KEY}' is the row key of a composite or prefixed key; this key is neither")
        return self

    def join_of(self, column: str) -> tuple[str | None, str]:
        """(join name, column) of ``alias.column`` when ``alias`` is a join; (None, column) for the table's own."""
        alias, dot, rest = column.partition(".")
        if dot and any(j.name == alias for j in self.join):
            return alias, rest
        return None, column

    @property
    def key_columns(self) -> list[str]:
        return [self.key] if isinstance(self.key, str) else list(self.key)

    @property
    def derived_key(self) -> bool:
        """True when the row key is made at extraction (composite or prefixed), in :data:`ROW_KEY`."""
        return len(self.key_columns) > 1 or bool(self.key_prefix)

    @property
    def row_key(self) -> str:
        """The staged column that holds the row's key."""
        return ROW_KEY if self.derived_key else self.key_columns[0]

    def columns(self) -> list[str]:
        """Every source column the spec reads, in a stable order (the row key it makes is not one)."""
        cols = [*self.key_columns, self.patient_key]
        for f in self.fields.values():
            cols += f.columns()
        cols += [r.column for r in self.rules]
        cols += [r.system_column for r in self.rules if r.system_column]
        cols += list(self.encodings)
        if self.cutoff_column:
            cols.append(self.cutoff_column)
        return [c for c in dict.fromkeys(cols) if c != ROW_KEY]

    def staged_columns(self) -> list[str]:
        """The columns of the table's staging file: what the spec reads, then the row key it makes."""
        return [*self.columns(), ROW_KEY] if self.derived_key else self.columns()


def _implied_code_rules(entity: str, fields: dict[str, Any], rules: list[Any]) -> list[dict[str, Any]]:
    """The code rules a table's coded fields imply: every code is checked against the system the spec names.

    A coded field copied from a column (as it is, or trimmed) whose system field is a constant or a
    lookup of a column is checked like an explicit ``code`` rule on that column; a column an explicit
    ``code`` rule already checks is left to it. A system taken from a column as it is implies nothing
    (the column's values are not known to name systems): declare the rule.
    """
    checked = {r.get("column") for r in rules if isinstance(r, dict) and r.get("rule") == "code"}
    out = []
    for code, (system, _version) in CODED.get(entity, {}).items():
        f, sys = fields.get(code), fields.get(system)
        if not (isinstance(f, dict) and isinstance(sys, dict)):
            continue
        column = f.get("column")
        copied = f.get("lookup") is None and f.get("transform", "str") in ("str", "trim")
        if not isinstance(column, str) or not copied or column in checked:
            continue
        # an implied check judges the codes that are there: a row without one has nothing to check
        if isinstance(sys.get("value"), str) and sys.get("column") is None:
            out.append({"rule": "code", "column": column, "system": sys["value"], "optional": True})
        elif isinstance(sys.get("column"), str) and isinstance(sys.get("lookup"), dict) and sys["lookup"]:
            out.append(
                {
                    "rule": "code",
                    "column": column,
                    "system_column": sys["column"],
                    "systems": sys["lookup"],
                    "optional": True,
                }
            )
        checked.add(column)
    return out


@dataclass(frozen=True)
class Relation:
    """One table (or the query) a spec table reads; ``alias`` None is the table itself, else a join's name."""

    alias: str | None
    schema: str | None
    table: str | None
    query: str | None = None

    @property
    def label(self) -> str:
        """How messages and the live schema name it."""
        if self.query is not None:
            return "(its query)"
        return f"{self.schema}.{self.table}" if self.schema else str(self.table)


def _check_query(query: str) -> None:
    """A single SELECT (or WITH ... SELECT); the read-only transaction it runs in refuses any write anyway."""
    body = query.strip()
    if not re.match(r"(?is)^(select|with)\b", body):
        raise ValueError("query: must be a SELECT (or WITH ... SELECT)")
    if ";" in body.rstrip(";") or body.endswith(";"):
        raise ValueError("query: one statement, without ';'")


#: reasons a spec may give a disposition for (a disposed patient's rows follow the patient's decision)
DECLARABLE_REASONS = tuple(r for r in Reason.ORDER if r != Reason.PATIENT_DISPOSED)


class DispositionSpec(_Model):
    """What becomes of the rows with one finding: in one table, or (no ``table``) in every table."""

    reason: str = Field(description="a finding code (model.Reason)")
    table: str | None = Field(default=None, description="spec table; none: every table")
    disposition: Literal["keep_flagged", "correct", "dispose"]
    decision: str = Field(default="", description="what was decided and why")
    reference: str = Field(default="", description="the decision's number (a gallringsbeslut); dispose needs one")
    decided_by: str = Field(default="", description="who decided (name and role)")
    date: dt.date | None = None

    @model_validator(mode="after")
    def _decided(self) -> DispositionSpec:
        if self.reason not in DECLARABLE_REASONS:
            raise ValueError(f"reason '{self.reason}' is not one of {', '.join(DECLARABLE_REASONS)}")
        # a public authority may destroy records only by a recorded decision: no reference, no dispose
        if self.disposition == Disposition.DISPOSE and not self.reference.strip():
            raise ValueError("'reference' is empty: a dispose needs the reference of its decision (gallringsbeslut)")
        if self.disposition == Disposition.DISPOSE and not self.decided_by.strip():
            raise ValueError("'decided_by' is empty: a dispose needs who decided it")
        return self


class Correction(_Model):
    """One value the mapping replaces: the row (table and its own key), the column, the value, why and who."""

    table: str = Field(description="spec table")
    key: str | int = Field(description="the row's own key in the source")
    column: str = Field(description="the source column corrected")
    value: str | int | float | bool | None = Field(description="the corrected value")
    reason: str = Field(description="the finding the correction answers (model.Reason)")
    decided_by: str = Field(min_length=1, description="who decided (name and role)")
    date: dt.date
    reference: str = Field(default="", description="the decision's number, if any")
    comment: str = ""

    @model_validator(mode="after")
    def _known_reason(self) -> Correction:
        if self.reason not in DECLARABLE_REASONS:
            raise ValueError(f"reason '{self.reason}' is not one of {', '.join(DECLARABLE_REASONS)}")
        return self


def _check_coded_fields(name: str, table: TableSpec, known: list[str]) -> None:
    """Each coded field's system names a known code system, and agrees with the rule that checks its column."""
    for code, (system, _version) in CODED.get(table.entity, {}).items():
        f = table.fields.get(system)
        if f is None:
            continue
        at = f"tables.{name}.fields.{system}"
        named = [f.value] if f.value is not None else sorted(set((f.lookup or {}).values()))
        for value in named:
            if value not in known:
                raise ValueError(f"{at}: unknown code system {value!r} (known: {', '.join(known)})")
        source = table.fields.get(code)
        if f.value is None or source is None or source.column is None:
            continue
        for rule in table.rules:
            if rule.rule == "code" and rule.column == source.column and rule.system not in (None, f.value):
                raise ValueError(
                    f"{at}: says '{f.value}', but the code rule on column '{source.column}' checks "
                    f"'{rule.system}': the record would name another system than the codes were checked against"
                )


class MappingSpec(_Model):
    system: str
    timezone: str = "Europe/Stockholm"
    patient_table: str
    tables: dict[str, TableSpec]
    #: the reference date for two-digit years in identifiers (never the clock)
    id_reference_date: str = "2025-01-01"
    #: local code lists (name -> codes or pattern), usable as a rule's system beside codes.REGISTRY
    code_systems: dict[str, CodeListSpec] = {}
    #: identity schemes the region adds to the built-in ones (identity.SCHEMES), tried after them
    identity_schemes: tuple[schemes_registry.IdentityScheme, ...] = ()
    #: the schemes tried, in order (names of built-in and added schemes); none: every built-in, then the added
    id_schemes: tuple[str, ...] = ()
    #: per table and reason, what becomes of a row with a finding; unlisted: keep_flagged
    dispositions: tuple[DispositionSpec, ...] = ()
    #: the correction list (YAML, a list of :class:`Correction`), a file under the spec's folder
    corrections: str | None = None
    #: source tables not bound to a patient (code tables, units, users): no field of the record model,
    #: kept whole in the raw representation once per delivery (the SIARD part of the first partition's package)
    reference_tables: list[str] = []
    #: the loaded correction list (set by :func:`load_spec`)
    correction_list: tuple[Correction, ...] = Field(default=(), exclude=True)
    path: Path | None = Field(default=None, exclude=True)
    #: the line of every node of the spec file by its path (set by :func:`load_spec`), for messages
    lines: dict[tuple[Any, ...], int] = Field(default={}, exclude=True)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not a known time zone (e.g. Europe/Stockholm)") from None
        return value

    @field_validator("id_reference_date")
    @classmethod
    def _iso_date(cls, value: str) -> str:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a date (YYYY-MM-DD)") from None
        return value

    @model_validator(mode="after")
    def _patient_table_known(self) -> MappingSpec:
        if self.patient_table not in self.tables:
            raise ValueError(f"patient_table '{self.patient_table}' is not one of tables {sorted(self.tables)}")
        if self.tables[self.patient_table].entity != "patient":
            raise ValueError(f"patient_table '{self.patient_table}' must map to entity 'patient'")
        known_systems = [*codes_registry.REGISTRY, *self.code_systems]
        for name, table in self.tables.items():
            _check_coded_fields(name, table, known_systems)
            for i, rule in enumerate(table.rules):
                for system in rule.system_names() if rule.rule == "code" else []:
                    if system not in codes_registry.REGISTRY and system not in self.code_systems:
                        known = ", ".join([*codes_registry.REGISTRY, *self.code_systems])
                        raise ValueError(f"tables.{name}.rules.{i}: unknown code system '{system}' (known: {known})")
        builtin = {s.name for s in schemes_registry.BUILTIN}
        for i, scheme in enumerate(self.identity_schemes):
            if scheme.name in builtin:
                raise ValueError(f"identity_schemes.{i}: '{scheme.name}' is a built-in scheme's name")
        known = builtin | {s.name for s in self.identity_schemes}
        for i, name in enumerate(self.id_schemes):
            if name not in known:
                raise ValueError(
                    f"id_schemes.{i}: unknown identity scheme '{name}' (known: {', '.join(sorted(known))})"
                )
        seen: set[tuple[str | None, str]] = set()
        for i, d in enumerate(self.dispositions):
            if d.table is not None and d.table not in self.tables:
                raise ValueError(f"dispositions.{i}.table: '{d.table}' is not one of tables {sorted(self.tables)}")
            if (d.table, d.reason) in seen:
                raise ValueError(f"dispositions.{i}: a second disposition for {d.table or 'every table'}/{d.reason}")
            seen.add((d.table, d.reason))
        return self

    def code_system(self, name: str) -> codes_registry.CodeSystem:
        """A code system by name: the spec's own code lists first, then the registry."""
        if name in self.code_systems:
            c = self.code_systems[name]
            return codes_registry.local(name, c.title, c.codes, c.pattern)
        return codes_registry.REGISTRY[name]

    def schemes(self) -> tuple[schemes_registry.IdentityScheme, ...]:
        """The identity schemes tried on an identifier that is no personnummer, in order."""
        return schemes_registry.chosen(self.id_schemes, self.identity_schemes)

    def source_table(self, name: str) -> str:
        """The table a spec table reads (its own name by default; for a query, the spec table's name)."""
        return self.tables[name].table or name

    def source_name(self, name: str, default: str | None = None) -> str:
        """Spec table ``name``'s source table across schemas (:func:`qualified_name`; ``default``: the source's)."""
        return qualified_name(self.tables[name].schema_name, self.source_table(name), default)

    def schemas(self, default: str | None = None) -> list[str]:
        """The schemas other than the source's own that the spec reads (tables, joins, queries' tables,
        reference tables)."""
        named = [t.schema_name for t in self.tables.values()]
        named += [j.schema_name for t in self.tables.values() for j in t.join]
        named += [split_name(n)[0] for n in self.reference_tables]
        named += [split_name(n)[0] for t in self.tables.values() for n in t.reads]
        return sorted({s for s in named if s and s != default})

    def reference_relation(self, name: str) -> Relation:
        """What a reference table (``table`` or ``schema.table``) is read as."""
        schema, table = split_name(name)
        return Relation(None, schema, table)

    @model_validator(mode="after")
    def _reference_tables_apart(self) -> MappingSpec:
        # a query reads its tables without binding them: one of them may be kept whole as a reference table
        mapped = {self.source_name(n).lower() for n, t in self.tables.items() if t.query is None}
        for i, name in enumerate(self.reference_tables):
            if name.lower() in mapped:
                raise ValueError(f"reference_tables.{i}: '{name}' is a mapped table (its rows are bound to a patient)")
        return self

    def relations(self, name: str) -> list[Relation]:
        """What spec table ``name`` reads: its table (or query), then its joins."""
        t = self.tables[name]
        if t.query is not None:
            return [Relation(None, None, None, t.query)]
        return [Relation(None, t.schema_name, self.source_table(name))] + [
            Relation(j.name, j.schema_name, j.table) for j in t.join
        ]

    def line(self, *path: Any) -> str:
        """``line N: `` of a place in the spec file (or of its nearest parent there), for messages."""
        found = line_of(self.lines, path)
        return f"line {found}: " if found is not None else ""

    def disposition(self, table: str, reason: str) -> DispositionSpec | None:
        """The declared disposition of ``reason`` in ``table`` (the table's own first); None: keep_flagged."""
        found = None
        for d in self.dispositions:
            if d.reason == reason and d.table == table:
                return d
            if d.reason == reason and d.table is None:
                found = d
        return found

    def corrections_of(self, table: str) -> list[Correction]:
        return [c for c in self.correction_list if c.table == table]

    def corrections_path(self) -> Path | None:
        if self.corrections is None:
            return None
        base = self.path.parent if self.path is not None else Path.cwd()
        return (base / self.corrections).resolve()


def load_spec(path: str | Path) -> MappingSpec:
    """Load and validate a mapping spec; :class:`MappingError` names the file and field."""
    path = Path(path)
    lines: dict[tuple[Any, ...], int] = {}
    try:
        raw = read_yaml(path, max_bytes=MAX_SPEC_BYTES, what="mapping spec", lines=lines)
    except FileNotFoundError as exc:
        raise MappingError(f"{path}: mapping file not found") from exc
    except YamlFileError as exc:
        raise MappingError(str(exc)) from exc
    try:
        spec = MappingSpec.model_validate(raw)
    except ValidationError as exc:
        msgs = []
        for e in exc.errors():
            loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            line = line_of(lines, (*loc, *_named_in(e["msg"])))
            where = f"line {line}: " if line is not None else ""
            msgs.append(f"{where}{'.'.join(str(p) for p in loc) or '(top)'}: {e['msg'].removeprefix('Value error, ')}")
        raise MappingError(f"{path}: " + "; ".join(msgs)) from exc
    spec = spec.model_copy(update={"path": path, "lines": lines})
    return spec.model_copy(update={"correction_list": load_corrections(spec)})


def _named_in(message: str) -> tuple[Any, ...]:
    """The place a validator's message starts with (``"key: ..."``, ``"join.1.on: ..."``), as a path."""
    head = message.removeprefix("Value error, ").split(": ", 1)[0]
    if " " in head or head == message:
        return ()
    return tuple(int(p) if p.isdigit() else p for p in head.split("."))


def load_corrections(spec: MappingSpec) -> tuple[Correction, ...]:
    """The spec's correction list, each entry checked against the spec; errors name file, entry and field."""
    path = spec.corrections_path()
    if path is None:
        return ()
    folder = spec.path.parent.resolve() if spec.path is not None else Path.cwd().resolve()
    if not path.is_relative_to(folder):
        # the list goes into every package beside the spec: it must be one of the region's own mapping files
        raise MappingError(f"{spec.path}: corrections: must name a file under {folder}")
    try:
        raw = read_yaml(path, max_bytes=MAX_CORRECTIONS_BYTES, what="correction list")
    except FileNotFoundError as exc:
        raise MappingError(f"{spec.path}: corrections: file {path} not found") from exc
    except YamlFileError as exc:
        raise MappingError(str(exc)) from exc
    entries = raw.get("corrections") if isinstance(raw, dict) else raw
    if not isinstance(entries, list):
        raise MappingError(f"{path}: expected a list of corrections (or 'corrections: [...]')")
    out: list[Correction] = []
    seen: set[tuple[str, str, str]] = set()
    problems = []
    for i, entry in enumerate(entries):
        try:
            c = Correction.model_validate(entry)
        except ValidationError as exc:
            problems += [
                f"corrections.{i}.{'.'.join(str(p) for p in e['loc']) or '(entry)'}: "
                f"{e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            ]
            continue
        table = spec.tables.get(c.table)
        if table is None:
            problems.append(f"corrections.{i}.table: '{c.table}' is not one of tables {sorted(spec.tables)}")
            continue
        if c.column not in table.columns():
            problems.append(f"corrections.{i}.column: '{c.column}' is not a column the spec reads from '{c.table}'")
            continue
        if c.column in (*table.key_columns, table.patient_key):
            # a key decides where a row lands (its partition, its patient): correcting one is not a value change
            problems.append(f"corrections.{i}.column: '{c.column}' is a key of '{c.table}' and cannot be corrected")
            continue
        ident = (c.table, str(c.key), c.column)
        if ident in seen:
            problems.append(f"corrections.{i}: a second correction of the same row and column of '{c.table}'")
            continue
        seen.add(ident)
        out.append(c)
    if problems:
        raise MappingError(f"{path}: " + "; ".join(problems))
    return tuple(out)


def check_against_source(spec: MappingSpec, live: dict[str, list[str]]) -> list[str]:
    """Compare the spec with the live schema (relation label -> columns; see :meth:`MappingSpec.relations`).

    One message per problem, each naming the spec file and line: a table (or query) that cannot be
    read, a column it does not have, a join's column.
    """
    where = spec.path or spec.system
    problems = []
    for i, name in enumerate(spec.reference_tables):
        if name not in live:
            problems.append(f"{where}: reference_tables.{i}: source table '{name}' does not exist")
    for name, table in spec.tables.items():
        relations = {r.alias: r for r in spec.relations(name)}
        missing = set()
        for r in relations.values():
            if r.label not in live:
                at = ("tables", name, "query") if r.query else ("tables", name, "join") if r.alias else ("tables", name)
                what = "its query cannot be read" if r.query else f"source table '{r.label}' does not exist"
                problems.append(f"{where}: {spec.line(*at)}tables.{name}: {what}")
                missing.add(r.alias)
        wanted = [(c, ("tables", name)) for c in table.columns()]
        wanted += [(c, ("tables", name, "join", i, "on")) for i, j in enumerate(table.join) for c in j.on]
        wanted += [
            (f"{j.name}.{c}", ("tables", name, "join", i, "on"))
            for i, j in enumerate(table.join)
            for c in j.on.values()
        ]
        for col, at in wanted:
            alias, column = table.join_of(col)
            r = relations[alias]
            if alias in missing:
                continue
            have = {c.lower() for c in live[r.label]}
            if column.lower() not in have:
                line = spec.line(*at, *_column_path(table, col)) if at == ("tables", name) else spec.line(*at)
                problems.append(
                    f"{where}: {line}tables.{name}: column '{column}' not in source table '{r.label}' "
                    f"(it has: {', '.join(sorted(live[r.label]))})"
                )
    return problems


def _column_path(table: TableSpec, column: str) -> tuple[Any, ...]:
    """Where in a table's spec a column is first named (for its line), relative to the table."""
    if column in table.key_columns:
        return ("key",)
    for attr in ("patient_key", "cutoff_column"):
        if getattr(table, attr) == column:
            return (attr,)
    for target, f in table.fields.items():
        if column in f.columns():
            return ("fields", target, "compose" if f.compose is not None else "column")
    for i, r in enumerate(table.rules):
        if r.column == column:
            return ("rules", i)
    if column in table.encodings:
        return ("encodings", column)
    return ()
