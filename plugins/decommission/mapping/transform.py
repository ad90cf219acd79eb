"""The mapping engine: extracted tables of one partition -> archive entities + findings.

Every extracted row ends archived (as it is, flagged, or corrected) or disposed of under a
recorded decision; none is left behind. Rules and transforms run on whole Arrow columns
(:mod:`mapping_rules`, :mod:`mapping_fields`); Python runs only for the rows with a finding
or a correction (their flags, detail and keyed digest). What becomes of a row with a finding
is the spec's ``dispositions`` (per table and reason; :class:`~decommission.model.Disposition`):

* ``keep_flagged`` (default): the row is archived as the source holds it, each finding a flag in
  its record (:mod:`decommission.mapping.flags`). Text XML cannot hold is written escaped
  (``backslash-u``), bytes that do not decode as their base64, an invalid identifier as written.
  A row whose patient is not in the source (``ORPHAN``) goes under a placeholder patient of its
  key, flagged ``ORPHAN`` too, so its patient folder holds it.
* ``correct``: the spec's correction list gives the value (the original stays in the flag).
* ``dispose``: the row leaves the record files; the findings file lists it with its decision.
  A disposed patient takes their rows with them (``PATIENT_DISPOSED``), under the same decision.

A row counts once, under its first reason in :attr:`Reason.ORDER` (the first disposing one when
a decision disposes of it, the correction's when corrected); its flags list every finding.
Journal text is never changed silently: every transformation is flagged and reversible.
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

from decommission.mapping import flags as qflags
from decommission.mapping import localtime
from decommission.mapping.arrow_text import as_array, key_text, mask, py_values
from decommission.mapping.compose import compose
from decommission.mapping.fields import timestamps, transform
from decommission.mapping.rules import RULE_REASON, Finding, check, classify, decode
from decommission.model import DISPOSED_FILE, ENTITIES, FINDINGS_FILE, FINDINGS_SCHEMA, QUALITY, Disposition, Reason
from decommission.plan.mapping_spec import Correction, MappingSpec, TableSpec
from decommission.privacy import keyed_hash
from decommission.source.staged_table import PARQUET_OPTIONS, row_group_rows

#: the patient key of the placeholder that holds rows naming no patient at all (a null key)
NO_PATIENT_KEY = "no-patient-key"
_PLACEHOLDER_DETAIL = "no patient row in the source: this placeholder holds the rows that name its key"


@dataclass
class MapResult:
    """Counts of one partition's mapping; the files are written next to each other.

    ``mapped`` is the rows archived per table (flagged and corrected rows included); ``flagged``,
    ``corrected`` and ``disposed`` count rows per table and reason (each row once);
    ``uncorrected`` the flagged rows whose declared disposition is ``correct`` but which the
    correction list does not name; ``placeholders`` the patients made for orphans' keys.
    """

    extracted: dict[str, int] = field(default_factory=dict)
    mapped: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, dict[str, int]] = field(default_factory=dict)
    corrected: dict[str, dict[str, int]] = field(default_factory=dict)
    disposed: dict[str, dict[str, int]] = field(default_factory=dict)
    uncorrected: dict[str, dict[str, int]] = field(default_factory=dict)
    placeholders: int = 0
    entities: dict[str, int] = field(default_factory=dict)
    adjusted_times: int = 0
    #: the corrections applied (table, keyed hash of the row key, column, reason, who, reference)
    corrections: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "extracted": self.extracted,
            "mapped": self.mapped,
            "flagged": self.flagged,
            "corrected": self.corrected,
            "disposed": self.disposed,
            "uncorrected": self.uncorrected,
            "placeholders": self.placeholders,
            "entities": self.entities,
            "adjusted_times": self.adjusted_times,
        }

    def count(self, kind: str, table: str, reason: str) -> None:
        row = getattr(self, kind).setdefault(table, {})
        row[reason] = row.get(reason, 0) + 1


@dataclass
class _Item:
    """One finding on some rows: the mask, its reason (or one per row), its column and description."""

    hit: np.ndarray
    reason: str | np.ndarray
    column: str
    finding: Finding
    #: how the flagged values of the column are written (flags.BACKSLASH_U, flags.BASE64), and the codec tried
    encoding: str | None = None
    codec: str | None = None


@dataclass
class _Applied:
    """Corrections applied to one slice: row -> (correction, original value as text)."""

    rows: dict[int, list[tuple[Correction, str | None]]] = field(default_factory=dict)


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
    Writes ``<entity>.parquet`` per entity and ``findings.parquet``; ``out_dir`` is a
    :class:`pathlib.Path` or an ``ObjectStoragePath`` (anything with ``/`` and ``open``).

    :param open_output: opens a new file for writing (default: the path's own ``open("wb")``)
    """
    open_output = open_output or (lambda path: path.open("wb"))
    out_dir.mkdir(parents=True, exist_ok=True)
    result = MapResult()
    entities = _Entities(out_dir, open_output)
    findings: list[pa.Table] = []
    disposed_rows: list[pa.Table] = []
    reference_date = dt.date.fromisoformat(spec.id_reference_date)
    ptable = spec.tables[spec.patient_table]
    patients = list(_slices(read(spec.patient_table)))
    all_keys = (
        as_array(pc.drop_null(key_text(pa.concat_tables(patients)[ptable.patient_key])))
        if patients
        else pa.array([], pa.string())
    )
    disposed_patients: dict[str, str] = {}
    placeholders: dict[str, str] = {}  # orphan patient key -> the first table naming it
    try:
        # the patient table first: a disposed patient takes their rows in every other table along
        for name in [spec.patient_table] + [n for n in spec.tables if n != spec.patient_table]:
            table = spec.tables[name]
            is_patient_table = name == spec.patient_table
            result.extracted[name] = result.mapped[name] = 0
            context = _Context(spec, name, table, reference_date, all_keys, dict(disposed_patients))
            for rows in patients if is_patient_table else _slices(read(name)):
                mapped = _map_slice(rows, context, result)
                entities.write(table.entity, mapped.table)
                result.adjusted_times += mapped.adjusted
                result.extracted[name] += rows.num_rows
                result.mapped[name] += mapped.table.num_rows
                if mapped.findings is not None:
                    findings.append(mapped.findings)
                if mapped.disposed_keys is not None:
                    disposed_rows.append(_disposed_table(name, mapped.disposed_keys))
                disposed_patients.update(mapped.disposed_patients)
                for key in mapped.orphan_keys:
                    placeholders.setdefault(key, table.patient_key)
                del rows, mapped  # let this slice's memory go before the next is read
            for kind in ("flagged", "corrected", "disposed", "uncorrected"):
                counts = getattr(result, kind)
                if name in counts:
                    counts[name] = dict(sorted(counts[name].items()))
            pa.default_memory_pool().release_unused()
        if placeholders:
            entities.write("patient", _placeholder_patients(placeholders))
            result.placeholders = len(placeholders)
    finally:
        result.entities = entities.close()
    ftable = pa.concat_tables(findings) if findings else FINDINGS_SCHEMA.empty_table()
    with open_output(out_dir / FINDINGS_FILE) as fh:
        pq.write_table(ftable, fh, **PARQUET_OPTIONS)
    gone = pa.concat_tables(disposed_rows) if disposed_rows else DISPOSED_SCHEMA.empty_table()
    with open_output(out_dir / DISPOSED_FILE) as fh:
        pq.write_table(gone, fh, **PARQUET_OPTIONS)
    return result


DISPOSED_SCHEMA = pa.schema([pa.field("table", pa.large_string()), pa.field("key", pa.large_string())])


def _disposed_table(name: str, keys: pa.Array) -> pa.Table:
    return pa.table({"table": pa.array([name] * len(keys), pa.large_string()), "key": keys}, schema=DISPOSED_SCHEMA)


@dataclass(frozen=True)
class _Context:
    """What every slice of one table is mapped with."""

    spec: MappingSpec
    name: str
    table: TableSpec
    reference_date: dt.date
    all_keys: pa.Array
    #: patient key -> decision reference of every disposed patient (their rows go with them)
    disposed_patients: dict[str, str]

    @property
    def is_patient_table(self) -> bool:
        return self.name == self.spec.patient_table


@dataclass
class _Mapped:
    table: pa.Table
    adjusted: int
    findings: pa.Table | None = None
    disposed_patients: dict[str, str] = field(default_factory=dict)
    orphan_keys: list[str] = field(default_factory=list)
    #: the own keys (as text) of the rows disposed of: the raw representation leaves them out too
    disposed_keys: pa.Array | None = None


def _map_slice(rows: pa.Table, ctx: _Context, result: MapResult) -> _Mapped:
    """Corrections, rules (every finding kept, the first reason counts), dispositions, then fields."""
    table, spec = ctx.table, ctx.spec
    n = rows.num_rows
    undecodable: list[_Item] = []
    # declared codecs first, then UTF-8 for a text column that came as bytes (a driver could not
    # decode some values): rules and fields see text; what does not decode is kept as its bytes
    raw = _byte_columns(table)
    implicit = [c for c in rows.column_names if c not in table.encodings and c not in raw and _is_bytes(rows[c])]
    for column, codec in [*table.encodings.items(), *((c, "utf-8") for c in implicit)]:
        source = rows[column]
        text_col, finding = decode(source, codec)
        if finding is not None:
            # the undecodable values are written as the base64 of their bytes (the flag says so)
            rows_hit = np.flatnonzero(finding.hit)
            encoded = [qflags.as_base64(bytes(v)) for v in py_values(source, rows_hit)]
            text_col = pa.chunked_array([_replace(as_array(text_col), finding.hit, encoded)])
            undecodable.append(_Item(finding.hit, finding.reason, column, finding, qflags.BASE64, codec))
        rows = rows.set_column(rows.schema.get_field_index(column), column, text_col)
    rows, applied = _apply_corrections(rows, ctx, undecodable)
    pkey = key_text(rows[table.patient_key])
    ids = _identities(rows, table, ctx.reference_date, spec.schemes())
    times = _local_times(rows, table, spec.timezone, ctx.name)
    items: list[_Item] = []
    scans: dict[str, Any] = {}
    for reason in Reason.ORDER:
        if reason == Reason.ENCODING_SUSPECT:
            items += [u for u in undecodable if u.hit.any()]
        if reason == Reason.ORPHAN and not ctx.is_patient_table:
            orphan = ~mask(pc.is_in(pkey, value_set=ctx.all_keys))
            detail = "no patient row in the source with this key"
            _add(items, orphan, reason, table.patient_key, Finding(orphan, reason, _fixed(detail), None))
        elif reason == Reason.LOCAL_TIME_ADJUSTED:
            for column, (_utc, kind) in sorted(times.items()):
                hit = kind != localtime.NORMAL
                detail = lambda r, k=kind: [_TIME_DETAIL[k[i]] for i in r]  # noqa: E731
                _add(items, hit, reason, column, Finding(hit, reason, detail, None))
        elif reason == Reason.PATIENT_DISPOSED and not ctx.is_patient_table:
            gone = mask(pc.is_in(pkey, value_set=pa.array(list(ctx.disposed_patients), pa.string())))
            detail = "the patient is disposed of by decision"
            _add(items, gone, reason, table.patient_key, Finding(gone, reason, _fixed(detail), None))
        else:
            for rule in (r for r in table.rules if RULE_REASON[r.rule] == reason):
                col = rows[rule.column]
                for finding in check(
                    rule,
                    col,
                    reference_date=ctx.reference_date,
                    ids=ids.get(rule.column),
                    scans=scans,
                    rows=rows,
                    code_system=spec.code_system,
                ):
                    encoding = qflags.BACKSLASH_U if rule.rule == "xml_chars" else None
                    _add(items, finding.hit, finding.reason, rule.column, finding, encoding)
    hit = np.zeros(n, dtype=bool)
    for item in items:
        hit |= item.hit
    if applied.rows:
        hit[list(applied.rows)] = True
    if not hit.any():
        mapped, adjusted = _map_fields(rows, table, spec, ids, ctx.name, times)
        return _Mapped(mapped, adjusted)
    rows = _escape_flagged(rows, items)
    outcome = _dispose_or_flag(ctx, rows, pkey, items, applied, np.flatnonzero(hit), result)
    keep = ~outcome.disposed
    kept = rows.filter(pa.array(keep)) if outcome.disposed.any() else rows
    kept_ids = {c: frame[keep].reset_index(drop=True) for c, frame in ids.items()}
    kept_times = {c: (utc.filter(pa.array(keep)), kind[keep]) for c, (utc, kind) in times.items()}
    mapped, adjusted = _map_fields(kept, table, spec, kept_ids, ctx.name, kept_times)
    quality = pa.array(outcome.quality[keep], pa.string())
    mapped = mapped.set_column(mapped.schema.get_field_index(QUALITY), QUALITY, quality)
    if outcome.orphan_keys and NO_PATIENT_KEY in outcome.orphan_keys:
        # a row naming no patient at all goes under the placeholder of no key
        column = mapped.schema.get_field_index("patient_key")
        mapped = mapped.set_column(column, "patient_key", pc.fill_null(mapped["patient_key"], NO_PATIENT_KEY))
    gone = (
        pc.cast(rows[table.row_key].filter(pa.array(outcome.disposed)), pa.large_string())
        if outcome.disposed.any()
        else None
    )
    return _Mapped(mapped, adjusted, outcome.findings, outcome.disposed_patients, sorted(outcome.orphan_keys), gone)


def _add(
    items: list[_Item],
    hit: np.ndarray,
    reason: str | np.ndarray,
    column: str,
    finding: Finding,
    encoding: str | None = None,
) -> None:
    if hit.any():
        items.append(_Item(hit, reason, column, finding, encoding))


def _fixed(detail: str) -> Callable[[np.ndarray], list[str]]:
    return lambda rows: [detail] * len(rows)


_TIME_DETAIL = {
    localtime.AMBIGUOUS: "ambiguous local time (the repeated autumn hour): read as standard time",
    localtime.MISSING: "nonexistent local time (the spring gap): read with the offset before the change",
}


def _local_times(rows: pa.Table, table: TableSpec, zone: str, name: str = "") -> dict[str, tuple[pa.Array, np.ndarray]]:
    """Each source column of wall-clock times converted once: (UTC column, adjustment per row), for the
    flags (``LOCAL_TIME_ADJUSTED``) and the fields alike. Columns that already hold instants are left out."""
    out = {}
    fields = {f.column: (target, f) for target, f in table.fields.items() if f.transform == "local_time" and f.column}
    for column in sorted(fields):
        try:
            ts = timestamps(rows[column])
        except _VALUE_FAULTS as exc:
            # the libraries' messages quote the value: name the place, the row's keyed hash and the kind
            target, fspec = fields[column]
            raise _field_error(rows, table, name, target, fspec, exc, lambda c, n: (timestamps(c), 0)) from None
        if not ts.type.tz:
            out[column] = localtime.convert(ts, zone)
    return out


def _replace(values: pa.Array, hit: np.ndarray, new: list[Any]) -> pa.Array:
    """``values`` with the hit rows replaced by ``new`` (in row order); one kernel call, no per-row Python."""
    replacement = pa.array(new, values.type) if new else pa.array([], values.type)
    return pc.replace_with_mask(values, pa.array(hit), replacement)


def _apply_corrections(rows: pa.Table, ctx: _Context, undecodable: list[_Item]) -> tuple[pa.Table, _Applied]:
    """Replace the values the correction list names (before the rules: they check the corrected value)."""
    applied = _Applied()
    corrections = ctx.spec.corrections_of(ctx.name)
    if not corrections or not rows.num_rows:
        return rows, applied
    keys = key_text(rows[ctx.table.row_key])
    by_column: dict[str, list[Correction]] = {}
    for c in corrections:
        by_column.setdefault(c.column, []).append(c)
    for column, listed in by_column.items():
        wanted = pa.array([str(c.key) for c in listed], pa.string())
        position = pc.fill_null(pc.index_in(keys, value_set=wanted), -1).to_numpy(zero_copy_only=False)
        found = position >= 0
        values = as_array(rows[column])
        textual = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        rows_hit = np.flatnonzero(found)
        # a row that already holds the corrected value needs no correction (and gets no flag)
        for r, original in zip(rows_hit, py_values(values, rows_hit), strict=True):
            if _as_text(original) == _as_text(listed[int(position[r])].value):
                found[r] = False
        rows_hit = np.flatnonzero(found)
        if not len(rows_hit):
            continue
        originals = py_values(values, rows_hit)
        chosen = [listed[int(position[r])] for r in rows_hit]
        try:
            new = _replace(values, found, [_as_text(c.value) if textual else c.value for c in chosen])
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
            raise _correction_error(ctx, column, exc) from None
        rows = rows.set_column(rows.schema.get_field_index(column), column, new)
        for r, c, original in zip(rows_hit, chosen, originals, strict=True):
            text = None if original is None else str(original)
            applied.rows.setdefault(int(r), []).append((c, text))
        for u in undecodable:  # a corrected value is no longer the undecodable one
            if u.column == column:
                u.hit = u.hit & ~found
    return rows, applied


def _as_text(value: Any) -> str | None:
    """A corrected value for a text column: YAML may have read ``12`` or ``true``; the column holds text."""
    if value is None or isinstance(value, str):
        return value
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _correction_error(ctx: _Context, column: str, exc: Exception) -> Exception:
    from decommission.errors import MappingError

    return MappingError(
        f"{ctx.spec.path or ctx.spec.system}: corrections of {ctx.name}.{column}: a corrected value does not fit "
        f"the column's type ({type(exc).__name__})"
    )


def _escape_flagged(rows: pa.Table, items: list[_Item]) -> pa.Table:
    """Text with characters XML 1.0 forbids, escaped reversibly (``backslash-u``) where a rule found it."""
    for item in items:
        if item.encoding != qflags.BACKSLASH_U:
            continue
        column = item.column
        values = as_array(rows[column])
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            continue
        rows_hit = np.flatnonzero(item.hit)
        escaped = [None if v is None else qflags.escape(v) for v in py_values(values, rows_hit)]
        rows = rows.set_column(rows.schema.get_field_index(column), column, _replace(values, item.hit, escaped))
    return rows


@dataclass
class _Outcome:
    disposed: np.ndarray
    quality: np.ndarray
    findings: pa.Table
    orphan_keys: set[str]
    #: patient key -> the decision reference, of the patients this slice of the patient table disposed of
    disposed_patients: dict[str, str]


def _dispose_or_flag(
    ctx: _Context,
    rows: pa.Table,
    pkey: pa.Array,
    items: list[_Item],
    applied: _Applied,
    hit_rows: np.ndarray,
    result: MapResult,
) -> _Outcome:
    """For the rows with a finding or a correction (a few per cent at most): what becomes of each, its flags."""
    table, name = ctx.table, ctx.name
    n = rows.num_rows
    fields_of = _fields_of(table)
    per_row: dict[int, list[tuple[str, str, str, Any, _Item]]] = {int(r): [] for r in hit_rows}
    for item in items:
        rows_i = np.flatnonzero(item.hit)
        if not len(rows_i):
            continue
        reasons = item.reason[rows_i] if isinstance(item.reason, np.ndarray) else [item.reason] * len(rows_i)
        details = item.finding.detail(rows_i)
        raws = item.finding.raw(rows_i) if item.finding.raw is not None else [None] * len(rows_i)
        for r, reason, detail, raw in zip(rows_i, reasons, details, raws, strict=True):
            per_row[int(r)].append((str(reason), item.column, detail, raw, item))
    source_keys = key_text(rows[table.row_key]).take(pa.array(hit_rows, pa.int64())).to_pylist()
    patient_keys = pkey.take(pa.array(hit_rows, pa.int64())).to_pylist()
    disposed = np.zeros(n, dtype=bool)
    quality = np.full(n, None, dtype=object)
    out: dict[str, list[Any]] = {f.name: [] for f in FINDINGS_SCHEMA}
    orphan_keys: set[str] = set()
    gone: dict[str, str] = {}
    for r, source_key, patient_key in zip(hit_rows, source_keys, patient_keys, strict=True):
        found = per_row[int(r)]
        corrections = applied.rows.get(int(r), [])
        decided = [(f, _declared(ctx, f[0], patient_key)) for f in found]
        disposing = [(f, d) for f, d in decided if d is not None and d[0] == Disposition.DISPOSE]
        if disposing:
            (reason, column, detail, raw, _item), (disposition, reference) = disposing[0]
            disposed[r] = True
            if ctx.is_patient_table and patient_key is not None:
                gone[patient_key] = reference  # their rows in the other tables go under the same decision
        elif corrections:
            correction, original = corrections[0]
            reason, column, raw = correction.reason, correction.column, original
            detail = "corrected by the correction list"
            disposition, reference = Disposition.CORRECT, correction.reference
        else:
            reason, column, detail, raw, _item = found[0]
            declared = decided[0][1]
            # a keep_flagged the spec declares may cite its decision too; the default needs none
            keep = declared is not None and declared[0] == Disposition.KEEP_FLAGGED
            disposition, reference = Disposition.KEEP_FLAGGED, declared[1] if keep else ""
            if declared is not None and declared[0] == Disposition.CORRECT:
                result.count("uncorrected", name, reason)
        result.count(Disposition.CLASS[disposition], name, reason)
        if disposition != Disposition.DISPOSE:
            row_flags = [
                qflags.flag(
                    c.reason,
                    column=c.column,
                    fields=fields_of.get(c.column, []),
                    disposition=Disposition.CORRECT,
                    detail="corrected by the correction list" + (f": {c.comment}" if c.comment else ""),
                    original=None if original is None else qflags.escape(original),
                    reference=c.reference,
                    decided_by=c.decided_by,
                )
                for c, original in corrections
            ]
            row_flags += [
                qflags.flag(
                    f_reason,
                    column=f_column,
                    fields=fields_of.get(f_column, []),
                    disposition=Disposition.KEEP_FLAGGED,
                    detail=f_detail,
                    encoding=f_item.encoding,
                    codec=f_item.codec,
                )
                for f_reason, f_column, f_detail, _raw, f_item in found
            ]
            quality[r] = qflags.to_json(row_flags)
            for c, _original in corrections:
                result.corrections.append(
                    {
                        "table": name,
                        "row": keyed_hash(source_key),
                        "column": c.column,
                        "reason": c.reason,
                        "decided_by": c.decided_by,
                        "reference": c.reference,
                    }
                )
            if any(f[0] == Reason.ORPHAN for f in found):
                orphan_keys.add(patient_key if patient_key is not None else NO_PATIENT_KEY)
        out["source_table"].append(name)
        out["entity"].append(table.entity)
        out["source_key"].append(source_key)
        out["patient_key"].append(patient_key)
        out["reason"].append(reason)
        out["reasons"].append(" ".join(dict.fromkeys([*(c.reason for c, _o in corrections), *(f[0] for f in found)])))
        out["column"].append(column)
        out["detail"].append(detail)
        out["value_digest"].append("" if raw is None else keyed_hash(raw if isinstance(raw, str) else str(raw)))
        out["disposition"].append(disposition)
        out["decision"].append(reference)
    findings = pa.Table.from_pydict(out, schema=FINDINGS_SCHEMA)
    return _Outcome(disposed, quality, findings, orphan_keys, gone)


def _declared(ctx: _Context, reason: str, patient_key: str | None) -> tuple[str, str] | None:
    """(disposition, decision reference) the spec declares for a finding; None: keep_flagged by default."""
    if reason == Reason.PATIENT_DISPOSED:
        return Disposition.DISPOSE, ctx.disposed_patients.get(patient_key or "", "")
    d = ctx.spec.disposition(ctx.name, reason)
    return None if d is None else (d.disposition, d.reference)


def _fields_of(table: TableSpec) -> dict[str, list[str]]:
    """Source column -> the model fields it feeds (a flag names them where the model holds the value)."""
    out: dict[str, list[str]] = {}
    for target, f in table.fields.items():
        if f.column:
            out.setdefault(f.column, []).append(target)
    return out


def _placeholder_patients(keys: dict[str, str]) -> pa.Table:
    """One patient per orphan key: no data of their own, flagged ORPHAN, so the orphans have a folder."""
    schema = ENTITIES["patient"].schema
    ordered = sorted(keys)
    keep = Disposition.KEEP_FLAGGED
    quality = [
        qflags.to_json([qflags.flag(Reason.ORPHAN, column=keys[k], disposition=keep, detail=_PLACEHOLDER_DETAIL)])
        for k in ordered
    ]
    columns = {"patient_key": pa.array(ordered, pa.string()), QUALITY: pa.array(quality, pa.string())}
    return pa.Table.from_arrays([columns.get(f.name, pa.nulls(len(ordered), f.type)) for f in schema], schema=schema)


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


def _identities(
    rows: pa.Table, table: TableSpec, reference_date: dt.date, schemes: tuple[Any, ...]
) -> dict[str, pd.DataFrame]:
    """identity.classify once per identifier column (used by the rule and by the identity fields)."""
    columns = {r.column for r in table.rules if r.rule == "personal_id"}
    kinds = ("personal_id", "id_type", "id_scheme")
    columns |= {f.column for f in table.fields.values() if f.transform in kinds and f.column}
    return {c: classify(rows[c], reference_date, schemes) for c in columns}


def _map_fields(
    rows: pa.Table,
    table: TableSpec,
    spec: MappingSpec,
    ids: dict[str, Any],
    name: str,
    times: dict[str, Any] | None = None,
) -> tuple[pa.Table, int]:
    entity = ENTITIES[table.entity]
    reference_date = dt.date.fromisoformat(spec.id_reference_date)
    columns, adjusted = [], 0
    for target in entity.schema:
        fspec = table.fields.get(target.name)
        if fspec is None:
            columns.append(pa.nulls(rows.num_rows, target.type))
            continue
        if fspec.compose is not None:
            columns.append(compose(fspec.compose, rows).cast(target.type))
            continue
        col = rows[fspec.column] if fspec.column is not None else None

        def one(
            c: pa.ChunkedArray | None, n: int, f: Any = fspec, t: pa.Field = target, whole: Any = col
        ) -> tuple[pa.Array, int]:
            # the identities classified for the whole column fit only the whole column
            known = ids.get(f.column) if c is whole else None
            values, adjusted = transform(c, f, n, tz=spec.timezone, reference_date=reference_date, ids=known)
            return (values.cast(t.type) if values.type != t.type else values), adjusted

        if fspec.transform == "local_time" and times and fspec.column in times:
            utc, kind = times[fspec.column]  # converted once for the flags already
            columns.append(utc.cast(target.type) if utc.type != target.type else utc)
            adjusted += int((kind != localtime.NORMAL).sum())
            continue
        try:
            values, n = one(col, rows.num_rows)
        except _VALUE_FAULTS as exc:
            # the libraries' messages quote the value they choked on: name the place and the kind instead
            raise _field_error(rows, table, name, target.name, fspec, exc, one) from None
        columns.append(values)
        adjusted += n
    return pa.Table.from_arrays(columns, schema=entity.schema), adjusted


#: what a transform raises on a value it cannot read (pyarrow, pandas and dateutil errors are ValueErrors)
_VALUE_FAULTS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError, TypeError, OverflowError)
#: rows tried one at a time to name the first that fails (only on the error path)
_LOCATE_ROWS = 100_000


def _field_error(
    rows: pa.Table, table: TableSpec, name: str, target: str, fspec: Any, exc: Exception, one: Callable[..., Any]
) -> Exception:
    """A :class:`MappingError` naming table, column, field, the first failing row's keyed hash and the fault's kind."""
    from decommission.errors import MappingError

    col = rows[fspec.column]
    row = "a row"
    for i in range(min(rows.num_rows, _LOCATE_ROWS)):
        try:
            one(col.slice(i, 1), 1)
        except _VALUE_FAULTS:
            key = rows[table.row_key][i].as_py() if table.row_key in rows.column_names else None
            what = ", ".join(table.key_columns)
            row = f"row {keyed_hash(None if key is None else str(key))} (keyed hash of its {what})"
            break
    return MappingError(
        f"table '{name}', column '{fspec.column}' (field {target}, transform {fspec.transform or 'none'}): "
        f"{row} holds a value that cannot be read as the field's type ({type(exc).__name__}); "
        "the value is not shown: correct it in the source, or declare a correction or another transform"
    )
