"""Read a legacy database's live catalogue, draft its mapping, check that the draft loads, write it.

Reads through the programme's own source code (:mod:`decommission.source.catalogue`): names, types, keys
and row counts, and, for a key a table does not declare, whether it is unique (a count). No value of
the source is read into the draft or the inventory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from decommission.errors import DecommissionError, MappingError, SourceError
from decommission.files import write_atomic
from decommission.plan.mapping_spec import load_spec
from decommission.plan.programme import SYSTEM_ID
from decommission.scaffold.drafts import Draft
from decommission.scaffold.guess import draft
from decommission.scaffold.render import render
from decommission.source.catalogue import is_unique, missing_schemas, read_catalogue
from decommission.source.database import Source


class ScaffoldError(DecommissionError):
    """The scaffold cannot draft a mapping: a connection, a schema, an output file or the catalogue says why."""


@dataclass(frozen=True)
class Scaffold:
    draft: Draft
    text: str


def survey(
    conn_id: str,
    schemas: Sequence[str],
    *,
    system: str | None = None,
    patient_table: str | None = None,
    timezone: str = "Europe/Stockholm",
) -> Scaffold:
    """The draft of the source behind ``conn_id`` (its schemas, the first the source's own) and its YAML text.

    :raises SourceError: the source cannot be reached or read
    :raises ScaffoldError: a schema is missing or empty, the system id is not one, or two schemas are named twice
    """
    system = system or default_system(conn_id)
    if not SYSTEM_ID.fullmatch(system):
        raise ScaffoldError(
            f"system id '{system}' must be lower case letters, digits and _ (2-31 chars); give --system"
        )
    if len(set(schemas)) != len(schemas):
        raise ScaffoldError(f"a schema is named twice: {', '.join(schemas)}")
    first = Source(conn_id, schema=schemas[0] if schemas else None)
    postgres = first.dialect == "postgres"  # the connection is looked up here: an unknown id fails now
    if not postgres and len(schemas) > 1:
        raise ScaffoldError(f"source '{conn_id}' is a single database file: it has one schema, not {len(schemas)}")
    wanted = list(schemas) or (["public"] if postgres else [])
    missing = missing_schemas(first, wanted)
    if missing:
        raise ScaffoldError(
            f"source '{conn_id}' has no schema {', '.join(repr(s) for s in missing)} that its login may use "
            "(check the name, and GRANT USAGE on it to the login)"
        )
    catalogues = []
    for schema in wanted if postgres else [schemas[0] if schemas else None]:
        source = Source(conn_id, schema=schema)
        tables = read_catalogue(source)
        if not tables:
            where = f"schema '{schema}'" if postgres else "the database"
            raise ScaffoldError(
                f"source '{conn_id}': {where} has no table the login may read (GRANT SELECT on its tables to it)"
            )
        catalogues.append((schema if postgres else None, tables))
    sources = {schema: Source(conn_id, schema=schema) for schema, _ in catalogues}

    def unique(schema: str | None, table: str, columns: Sequence[str]) -> bool:
        return is_unique(sources[schema], table, columns, schema)

    d = draft(system, conn_id, catalogues, unique=unique, patient_table=patient_table)
    d.schemas = list(schemas) or ([wanted[0]] if postgres else [None])
    return Scaffold(d, render(d, timezone=timezone))


def default_system(conn_id: str) -> str:
    """The system id a connection's name suggests: ``legacy_ris`` -> ``ris``."""
    name = conn_id.lower().removeprefix("legacy_").removeprefix("legacy-")
    return "".join(ch if ch.isalnum() else "_" for ch in name)[:31]


def check_output(out: Path, *, force: bool) -> None:
    """Refuse to overwrite ``out`` unless forced; refuse a folder at all (before the database is read)."""
    if out.is_dir():
        raise ScaffoldError(f"{out} is a folder: --out names the draft's file")
    if out.exists() and not force:
        raise ScaffoldError(f"{out} exists: the draft would overwrite it (give --force to replace it)")


def write_draft(scaffold: Scaffold, out: Path, *, force: bool) -> Path:
    """Check that the draft loads as a mapping spec, then write it to ``out`` (atomically).

    :raises ScaffoldError: no patient table was found, so no spec can load
    :raises MappingError: the draft does not load (a fault of the scaffold: the message names the line)
    """
    if scaffold.draft.problems:
        raise ScaffoldError("; ".join(scaffold.draft.problems))
    check_output(out, force=force)
    with tempfile.TemporaryDirectory(prefix="scaffold-") as folder:
        probe = Path(folder) / out.name
        probe.write_text(scaffold.text, encoding="utf-8")
        try:
            load_spec(probe)
        except MappingError as exc:
            raise MappingError(f"the draft of {out} does not load ({exc}); please report it") from exc
    return write_atomic(out, scaffold.text)


__all__ = ["Scaffold", "ScaffoldError", "SourceError", "check_output", "default_system", "survey", "write_draft"]
