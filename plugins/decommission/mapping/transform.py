"""The mapping engine: extracted tables of one partition -> archive entities + quarantine.

Every extracted row ends as exactly one mapped record or one quarantine row, with the
first reason of :attr:`Reason.ORDER` that applies. Rules and transforms run on whole
Arrow columns (:mod:`mapping_rules`, :mod:`mapping_fields`); Python runs only for the
quarantined rows (their detail and keyed digest). Journal text is never changed here: a
row whose text cannot go into XML as it is goes to quarantine instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from decommission.mapping.arrow_text import as_array, key_text, mask
from decommission.mapping.fields import transform
from decommission.mapping.rules import RULE_REASON, Finding, check, classify, decode
from decommission.model import ENTITIES, QUARANTINE_SCHEMA, Reason
from decommission.plan.mapping_spec import MappingSpec, TableSpec
from decommission.privacy import keyed_hash
from decommission.source.staged_table import PARQUET_OPTIONS, row_group_rows


@dataclass
class MapResult:
    """Counts of one partition's mapping; the files are written next to each other."""

    extracted: dict[str, int] = field(default_factory=dict)
    mapped: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, dict[str, int]] = field(default_factory=dict)
    entities: dict[str, int] = field(default_factory=dict)
    adjusted_times: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "extracted": self.extracted,
            "mapped": self.mapped,
            "quarantined": self.quarantined,
            "entities": self.entities,
            "adjusted_times": self.adjusted_times,
        }


class _Flags:
    """The reason chosen per row so far; a row keeps the first reason that applies."""

    def __init__(self, n: int) -> None:
        self.hit = np.zeros(n, dtype=bool)
        self.reason = np.full(n, None, dtype=object)
        self.column = np.full(n, None, dtype=object)
        self.detail = np.full(n, None, dtype=object)
        self.raw = np.full(n, None, dtype=object)

    def mark(self, finding: Finding, column: str) -> None:
        new = finding.hit & ~self.hit
        rows = np.flatnonzero(new)
        if not len(rows):
            return
        self.hit[rows] = True
        self.reason[rows] = finding.reason[rows] if isinstance(finding.reason, np.ndarray) else finding.reason
        self.column[rows] = column
        self.detail[rows] = finding.detail(rows)
        if finding.raw is not None:
            self.raw[rows] = finding.raw(rows)


Readable = pa.Table | pd.DataFrame | Iterable[pa.Table | pa.RecordBatch]


def _slices(data: Readable) -> Iterator[pa.Table]:
    """The rows in slices of a staging row group's size at most (zero-copy for a table)."""
    if isinstance(data, pd.DataFrame):
        data = pa.Table.from_pandas(data, preserve_index=False)
    parts = [data] if isinstance(data, pa.Table) else data
    for part in parts:
        part = pa.Table.from_batches([part]) if isinstance(part, pa.RecordBatch) else part
        step = row_group_rows(part)
        for start in range(0, part.num_rows, step):
            yield part.slice(start, step)


class _Entities:
    """One Parquet writer per entity, fed slice by slice in processing order (deterministic)."""

    def __init__(self, out_dir: Any, open_output: Callable[[Any], Any]) -> None:
        self.out_dir = out_dir
        self.open_output = open_output
        self.files: dict[str, Any] = {}
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.rows: dict[str, int] = dict.fromkeys(ENTITIES, 0)

    def write(self, entity: str, table: pa.Table) -> None:
        if entity not in self.writers:
            self.files[entity] = self.open_output(self.out_dir / f"{entity}.parquet")
            self.writers[entity] = pq.ParquetWriter(self.files[entity], ENTITIES[entity].schema, **PARQUET_OPTIONS)
        if table.num_rows:
            self.writers[entity].write_table(table)
        self.rows[entity] += table.num_rows

    def close(self) -> dict[str, int]:
        for entity in ENTITIES:  # an entity no table feeds still gets its (empty) file
            if entity not in self.writers:
                self.write(entity, ENTITIES[entity].schema.empty_table())
        for entity, writer in self.writers.items():
            writer.close()
            self.files[entity].close()
        return dict(self.rows)


def map_partition(
    spec: MappingSpec, read: Callable[[str], Readable], out_dir: Any, open_output: Callable[[Any], Any] | None = None
) -> MapResult:
    """Map one partition: ``read(table)`` gives the extracted rows; files go to ``out_dir``.

    ``read`` may return a table (or DataFrame) or an iterable of tables/batches (row groups,
    so memory stays bounded); rows are mapped one row group's worth at a time either way.
    Writes ``<entity>.parquet`` per entity and ``quarantine.parquet``; ``out_dir`` is a
    :class:`pathlib.Path` or an ``ObjectStoragePath`` (anything with ``/`` and ``open``).

    :param open_output: opens a new file for writing (default: the path's own ``open("wb")``)
    """
    open_output = open_output or (lambda path: path.open("wb"))
    out_dir.mkdir(parents=True, exist_ok=True)
    result = MapResult()
    entities = _Entities(out_dir, open_output)
    quarantine: list[pa.Table] = []
    reference_date = dt.date.fromisoformat(spec.id_reference_date)
    ptable = spec.tables[spec.patient_table]
    patients = list(_slices(read(spec.patient_table)))
    all_keys = (
        as_array(pc.drop_null(key_text(pa.concat_tables(patients)[ptable.patient_key])))
        if patients
        else pa.array([], pa.string())
    )
    bad: list[pa.Array] = []
    try:
        # the patient table first: its quarantined patients cascade to every other table
        for name in [spec.patient_table] + [n for n in spec.tables if n != spec.patient_table]:
            table = spec.tables[name]
            is_patient_table = name == spec.patient_table
            bad_keys = pa.concat_arrays(bad) if bad else pa.array([], pa.string())
            counts: dict[str, int] = {}
            result.extracted[name] = result.mapped[name] = 0
            for rows in patients if is_patient_table else _slices(read(name)):
                mapped, flags, pkey = _map_slice(rows, name, table, spec, reference_date, all_keys, bad_keys)
                entities.write(table.entity, mapped.table)
                result.adjusted_times += mapped.adjusted
                result.extracted[name] += rows.num_rows
                result.mapped[name] += mapped.table.num_rows
                hit_rows = np.flatnonzero(flags.hit)
                if len(hit_rows):
                    quarantine.append(_quarantine_rows(name, table, rows, pkey, flags, hit_rows))
                    for reason, n in zip(
                        *np.unique(flags.reason[hit_rows].astype(str), return_counts=True), strict=True
                    ):
                        counts[str(reason)] = counts.get(str(reason), 0) + int(n)
                    if is_patient_table:
                        bad.append(as_array(pc.drop_null(pkey.take(pa.array(hit_rows, pa.int64())))))
                del rows, mapped, flags, pkey  # let this slice's memory go before the next is read
            if counts:
                result.quarantined[name] = dict(sorted(counts.items()))
            pa.default_memory_pool().release_unused()
    finally:
        result.entities = entities.close()
    qtable = pa.concat_tables(quarantine) if quarantine else QUARANTINE_SCHEMA.empty_table()
    with open_output(out_dir / "quarantine.parquet") as fh:
        pq.write_table(qtable, fh, **PARQUET_OPTIONS)
    return result


@dataclass
class _Mapped:
    table: pa.Table
    adjusted: int


def _map_slice(
    rows: pa.Table,
    name: str,
    table: TableSpec,
    spec: MappingSpec,
    reference_date: dt.date,
    all_keys: pa.Array,
    bad_keys: pa.Array,
) -> tuple[_Mapped, _Flags, pa.Array]:
    """Rules (first reason wins) then fields, on one slice of one table."""
    is_patient_table = name == spec.patient_table
    undecodable = []
    # declared codecs first, then UTF-8 for a text column that came as bytes (a driver could not
    # decode some values): rules and fields see text, undecodable rows go to quarantine
    raw = _byte_columns(table)
    implicit = [c for c in rows.column_names if c not in table.encodings and c not in raw and _is_bytes(rows[c])]
    for column, codec in [*table.encodings.items(), *((c, "utf-8") for c in implicit)]:
        text_col, finding = decode(rows[column], codec)
        rows = rows.set_column(rows.schema.get_field_index(column), column, text_col)
        if finding is not None:
            undecodable.append((column, finding))
    pkey = key_text(rows[table.patient_key])
    ids = _identities(rows, table, reference_date)
    flags = _Flags(rows.num_rows)
    scans: dict[str, Any] = {}
    for reason in Reason.ORDER:
        if reason == Reason.ENCODING_SUSPECT:
            for column, finding in undecodable:
                flags.mark(finding, column)
        if reason == Reason.ORPHAN and not is_patient_table:
            orphan = ~mask(pc.is_in(pkey, value_set=all_keys))
            flags.mark(Finding(orphan, reason, lambda r: ["no such patient"] * len(r), None), table.patient_key)
        elif reason == Reason.PATIENT_QUARANTINED and not is_patient_table:
            cascade = mask(pc.is_in(pkey, value_set=bad_keys))
            detail = "the patient is in quarantine"
            flags.mark(Finding(cascade, reason, lambda r, d=detail: [d] * len(r), None), table.patient_key)
        else:
            for rule in (r for r in table.rules if RULE_REASON[r.rule] == reason):
                col = rows[rule.column]
                for finding in check(rule, col, reference_date=reference_date, ids=ids.get(rule.column), scans=scans):
                    flags.mark(finding, rule.column)
    hit = flags.hit
    kept = rows.filter(pa.array(~hit)) if hit.any() else rows
    kept_ids = {c: frame[~hit].reset_index(drop=True) for c, frame in ids.items()}
    mapped, adjusted = _map_fields(kept, table, spec, kept_ids)
    return _Mapped(mapped, adjusted), flags, pkey


def _is_bytes(col: pa.ChunkedArray | pa.Field) -> bool:
    return pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)


def _byte_columns(table: TableSpec) -> set[str]:
    """Source columns that are bytes on purpose: read raw, or mapped to a bytes field (attachments)."""
    schema = ENTITIES[table.entity].schema
    return {
        f.column
        for name, f in table.fields.items()
        if f.column and (f.transform == "bytes" or _is_bytes(schema.field(name)))
    }


def _identities(rows: pa.Table, table: TableSpec, reference_date: dt.date) -> dict[str, pd.DataFrame]:
    """identity.classify once per identifier column (used by the rule and by two fields)."""
    columns = {r.column for r in table.rules if r.rule == "personal_id"}
    columns |= {f.column for f in table.fields.values() if f.transform in ("personal_id", "id_type") and f.column}
    return {c: classify(rows[c], reference_date) for c in columns}


def _map_fields(rows: pa.Table, table: TableSpec, spec: MappingSpec, ids: dict[str, Any]) -> tuple[pa.Table, int]:
    entity = ENTITIES[table.entity]
    reference_date = dt.date.fromisoformat(spec.id_reference_date)
    columns, adjusted = [], 0
    for target in entity.schema:
        fspec = table.fields.get(target.name)
        if fspec is None:
            columns.append(pa.nulls(rows.num_rows, target.type))
            continue
        col = rows[fspec.column] if fspec.column is not None else None
        values, n = transform(
            col, fspec, rows.num_rows, tz=spec.timezone, reference_date=reference_date, ids=ids.get(fspec.column)
        )
        columns.append(values.cast(target.type) if values.type != target.type else values)
        adjusted += n
    return pa.Table.from_arrays(columns, schema=entity.schema), adjusted


def _quarantine_rows(
    name: str, table: TableSpec, rows: pa.Table, pkey: pa.Array, flags: _Flags, hit_rows: np.ndarray
) -> pa.Table:
    index = pa.array(hit_rows, pa.int64())
    n = len(hit_rows)
    return pa.Table.from_arrays(
        [
            pa.repeat(pa.scalar(name), n),
            pa.repeat(pa.scalar(table.entity), n),
            key_text(rows[table.key]).take(index),
            pkey.take(index),
            pa.array(flags.reason[hit_rows], pa.string()),
            pa.array(flags.column[hit_rows], pa.string()),
            pa.array(flags.detail[hit_rows], pa.string()),
            pa.array(["" if v is None else keyed_hash(v) for v in flags.raw[hit_rows]], pa.string()),
        ],
        schema=QUARANTINE_SCHEMA,
    )
