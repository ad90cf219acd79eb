"""The mapping engine: extracted tables of one partition -> archive entities + quarantine.

Every extracted row ends as exactly one mapped record or one quarantine row, with the
first reason of :attr:`Reason.ORDER` that applies. Rules and transforms run on whole
Arrow columns (:mod:`mapping_rules`, :mod:`mapping_fields`); Python runs only for the
quarantined rows (their detail and keyed digest). Journal text is never changed here: a
row whose text cannot go into XML as it is goes to quarantine instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from decommission.arrow_text import key_text, mask
from decommission.mapping_fields import transform
from decommission.mapping_rules import RULE_REASON, Finding, check, classify
from decommission.mapping_spec import MappingSpec, TableSpec
from decommission.model import ENTITIES, QUARANTINE_SCHEMA, Reason
from decommission.privacy import keyed_hash


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


def _as_table(frame: pa.Table | pd.DataFrame) -> pa.Table:
    return frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)


def map_partition(spec: MappingSpec, read: Callable[[str], pa.Table | pd.DataFrame], out_dir: Any) -> MapResult:
    """Map one partition: ``read(table)`` gives the extracted rows; files go to ``out_dir``.

    Writes ``<entity>.parquet`` per entity and ``quarantine.parquet``; ``out_dir`` is a
    :class:`pathlib.Path` or an ``ObjectStoragePath`` (anything with ``/`` and ``open``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    result = MapResult()
    frames: dict[str, list[pa.Table]] = {name: [] for name in ENTITIES}
    quarantine: list[pa.Table] = []
    reference_date = dt.date.fromisoformat(spec.id_reference_date)

    patients = _as_table(read(spec.patient_table))
    all_keys = pc.drop_null(key_text(patients[spec.tables[spec.patient_table].patient_key]))
    bad_keys = pa.array([], pa.string())

    # the patient table first: its quarantined patients cascade to every other table
    order = [spec.patient_table] + [n for n in spec.tables if n != spec.patient_table]
    for name in order:
        table = spec.tables[name]
        rows = patients if name == spec.patient_table else _as_table(read(name))
        is_patient_table = name == spec.patient_table
        pkey = key_text(rows[table.patient_key])
        ids = _identities(rows, table, reference_date)
        flags = _Flags(rows.num_rows)
        scans: dict[str, Any] = {}
        for reason in Reason.ORDER:
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
                    for finding in check(
                        rule, col, reference_date=reference_date, ids=ids.get(rule.column), scans=scans
                    ):
                        flags.mark(finding, rule.column)
        hit = flags.hit
        if is_patient_table:
            bad_keys = pc.drop_null(pc.filter(pkey, pa.array(hit)))

        kept = rows.filter(pa.array(~hit)) if hit.any() else rows
        kept_ids = {c: frame[~hit].reset_index(drop=True) for c, frame in ids.items()}
        mapped, adjusted = _map_fields(kept, table, spec, kept_ids)
        frames[table.entity].append(mapped)
        result.adjusted_times += adjusted
        result.extracted[name] = rows.num_rows
        result.mapped[name] = kept.num_rows
        if hit.any():
            quarantine.append(_quarantine_rows(name, table, rows, pkey, flags, np.flatnonzero(hit)))
            reasons, counts = np.unique(flags.reason[hit].astype(str), return_counts=True)
            result.quarantined[name] = {str(k): int(v) for k, v in zip(reasons, counts, strict=True)}

    for entity_name, parts in frames.items():
        entity = ENTITIES[entity_name]
        # rows stay in staging order (source key order, tables in spec order): deterministic, no sort
        out = pa.concat_tables(parts) if parts else entity.schema.empty_table()
        _write(out, out_dir / f"{entity_name}.parquet")
        result.entities[entity_name] = out.num_rows
    qtable = pa.concat_tables(quarantine) if quarantine else QUARANTINE_SCHEMA.empty_table()
    _write(qtable, out_dir / "quarantine.parquet")
    return result


def _identities(rows: pa.Table, table: TableSpec, reference_date: dt.date) -> dict[str, pd.DataFrame]:
    """identity.classify once per identifier column (used by the rule and by two fields)."""
    columns = {r.column for r in table.rules if r.rule == "personal_id"}
    columns |= {f.column for f in table.fields.values() if f.transform in ("personal_id", "id_type") and f.column}
    return {c: classify(rows[c], reference_date) for c in columns}


def _write(table: pa.Table, path: Any) -> None:
    with path.open("wb") as fh:
        pq.write_table(table, fh, compression="lz4", use_dictionary=False)


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
