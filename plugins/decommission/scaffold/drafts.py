"""The draft's data: one entry per table of the catalogue with its guesses and their reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from decommission.source.catalogue import Column, Table


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
