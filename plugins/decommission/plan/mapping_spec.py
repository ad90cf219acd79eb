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
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from decommission.errors import MappingError
from decommission.model import ENTITIES, Disposition, Reason
from decommission.plan import code_systems as codes_registry
from decommission.plan import identity_schemes as schemes_registry
from decommission.plan.yamlfile import YamlFileError, read_yaml

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


class FieldSpec(_Model):
    """How one target field is computed: from a column (with a transform or lookup) or a constant."""

    column: str | None = None
    transform: Transform = "str"
    lookup: dict[str, str] | None = None
    value: Any = None

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        if self.column is None and self.value is None:
            raise ValueError("give either 'column' or 'value'")
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
    entity: str
    table: str | None = Field(default=None, description="source table; defaults to the spec key")
    key: str = Field(description="the row's own key column")
    patient_key: str = Field(description="column holding the internal patient key")
    cutoff_column: str | None = Field(default=None, description="date column bounded by the cut-off")
    encodings: dict[str, Codec] = Field(
        default={}, description="column -> codec of a bytes column; what does not decode is kept as base64, flagged"
    )
    fields: dict[str, FieldSpec]
    rules: list[RuleSpec] = []
    preserved: list[str] = Field(
        default=[],
        description="source columns kept in the raw representation (SIARD) only, with no field of the record model",
    )

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

    def columns(self) -> list[str]:
        """Every source column the spec reads, in a stable order."""
        cols = [self.key, self.patient_key]
        cols += [f.column for f in self.fields.values() if f.column]
        cols += [r.column for r in self.rules]
        cols += [r.system_column for r in self.rules if r.system_column]
        cols += list(self.encodings)
        if self.cutoff_column:
            cols.append(self.cutoff_column)
        return list(dict.fromkeys(cols))


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
        for name, table in self.tables.items():
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
        return self.tables[name].table or name

    @model_validator(mode="after")
    def _reference_tables_apart(self) -> MappingSpec:
        mapped = {self.source_table(n).lower() for n in self.tables}
        for i, name in enumerate(self.reference_tables):
            if name.lower() in mapped:
                raise ValueError(f"reference_tables.{i}: '{name}' is a mapped table (its rows are bound to a patient)")
        return self

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
    try:
        raw = read_yaml(path, max_bytes=MAX_SPEC_BYTES, what="mapping spec")
    except FileNotFoundError as exc:
        raise MappingError(f"{path}: mapping file not found") from exc
    except YamlFileError as exc:
        raise MappingError(str(exc)) from exc
    try:
        spec = MappingSpec.model_validate(raw)
    except ValidationError as exc:
        msgs = [
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise MappingError(f"{path}: " + "; ".join(msgs)) from exc
    spec = spec.model_copy(update={"path": path})
    return spec.model_copy(update={"correction_list": load_corrections(spec)})


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
        if c.column in (table.key, table.patient_key):
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
    """Compare the spec with the live schema (table -> columns); one message per problem."""
    where = spec.path or spec.system
    problems = []
    for i, name in enumerate(spec.reference_tables):
        if name not in live:
            problems.append(f"{where}: reference_tables.{i}: source table '{name}' does not exist")
    for name, table in spec.tables.items():
        source = spec.source_table(name)
        if source not in live:
            problems.append(f"{where}: tables.{name}: source table '{source}' does not exist")
            continue
        have = {c.lower() for c in live[source]}
        for col in table.columns():
            if col.lower() not in have:
                problems.append(
                    f"{where}: tables.{name}: column '{col}' not in source table '{source}' "
                    f"(it has: {', '.join(sorted(live[source]))})"
                )
    return problems
