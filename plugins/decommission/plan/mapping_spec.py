"""The mapping spec (``include/mappings/<system>.yaml``): a typed model and its loader.

A spec says, per source table, which archive entity it feeds, where the keys are, how
each target field is computed and which rules put a row in quarantine. Loading checks
the spec against the archive model; :func:`check_against_source` checks it against the
live source schema and names the spec line of every missing table or column.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from decommission.errors import MappingError
from decommission.model import ENTITIES
from decommission.plan.yamlfile import YamlFileError, read_yaml

MAX_SPEC_BYTES = 1 << 20

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
]
RuleName = Literal["soft_deleted", "personal_id", "sentinel_date", "xml_chars", "encoding", "not_empty", "code"]
CodeSystem = Literal["icd10se", "atc", "npu"]
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
    #: code: which code system the column holds
    system: CodeSystem | None = None

    @model_validator(mode="after")
    def _code_needs_system(self) -> RuleSpec:
        if self.rule == "code" and self.system is None:
            raise ValueError("rule 'code' needs 'system' (icd10se, atc or npu)")
        return self


class TableSpec(_Model):
    entity: str
    table: str | None = Field(default=None, description="source table; defaults to the spec key")
    key: str = Field(description="the row's own key column")
    patient_key: str = Field(description="column holding the internal patient key")
    cutoff_column: str | None = Field(default=None, description="date column bounded by the cut-off")
    encodings: dict[str, Codec] = Field(
        default={}, description="column -> codec of a bytes column; bytes that do not decode go to quarantine"
    )
    fields: dict[str, FieldSpec]
    rules: list[RuleSpec] = []

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
        cols += list(self.encodings)
        if self.cutoff_column:
            cols.append(self.cutoff_column)
        return list(dict.fromkeys(cols))


class MappingSpec(_Model):
    system: str
    timezone: str = "Europe/Stockholm"
    patient_table: str
    tables: dict[str, TableSpec]
    #: the reference date for two-digit years in identifiers (never the clock)
    id_reference_date: str = "2025-01-01"
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
        return self

    def source_table(self, name: str) -> str:
        return self.tables[name].table or name


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
    return spec.model_copy(update={"path": path})


def check_against_source(spec: MappingSpec, live: dict[str, list[str]]) -> list[str]:
    """Compare the spec with the live schema (table -> columns); one message per problem."""
    where = spec.path or spec.system
    problems = []
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
