"""The mapping engine: extracted tables of one partition -> archive entities + quarantine.

Every extracted row ends as exactly one mapped record or one quarantine row, with the
first reason of :attr:`Reason.ORDER` that applies. Rules and transforms run on whole
columns (pandas), not row by row. Journal text is never changed here: a row whose text
cannot go into XML as it is goes to quarantine instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from decommission import identity
from decommission.mapping_spec import FieldSpec, MappingSpec, RuleSpec, TableSpec
from decommission.model import ENTITIES, QUARANTINE_SCHEMA, Reason
from decommission.privacy import keyed_hash

XML_ILLEGAL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF\ud800-\udfff]"
#: UTF-8 read as Latin-1/CP1252, CP850 read as CP1252, 7-bit Swedish (ISO 646-SE), U+FFFD
ENCODING_SUSPECTS = {
    "utf8_as_latin1": r"Ã[\u0080-\u00BF\u0152\u0153\u0160\u0161\u0178\u017D\u017E"
    r"\u201A-\u201E\u2020-\u2022\u2026\u2030]",
    "cp850_as_cp1252": r"[A-Za-z][†„”Ž™]|[†„”Ž™][A-Za-z]",
    "iso646_se": r"[A-Za-z][{}|\[\]\\]|[{}|\[\]\\][A-Za-z]",
    "replacement_char": "\ufffd",
}
CODE_PATTERNS = {
    "icd10se": r"^[A-Z][0-9]{2}(\.?[0-9A-Z]{1,2})?$",
    "atc": r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$",
    "npu": r"^NPU[0-9]{5}$",
}
SENTINEL_DAYS = ("1900-01-01", "9999-12-31")
TRUE_VALUES = (1, True, "1", "J", "j", "Y", "y", "true", "True", "T")


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


@dataclass
class _Flags:
    """The reason chosen per row so far; a row keeps the first reason that applies."""

    index: pd.Index
    reason: pd.Series = field(init=False)
    column: pd.Series = field(init=False)
    detail: pd.Series = field(init=False)
    raw: pd.Series = field(init=False)

    def __post_init__(self) -> None:
        self.reason = pd.Series(None, index=self.index, dtype=object)
        self.column = pd.Series(None, index=self.index, dtype=object)
        self.detail = pd.Series(None, index=self.index, dtype=object)
        self.raw = pd.Series(None, index=self.index, dtype=object)

    def mark(
        self, hit: pd.Series, reason: str | pd.Series, column: str, detail: str | pd.Series, raw: pd.Series | None
    ) -> None:
        new = hit.fillna(False).astype(bool) & self.reason.isna()
        if not new.any():
            return
        self.reason[new] = reason[new] if isinstance(reason, pd.Series) else reason
        self.column[new] = column
        self.detail[new] = detail[new] if isinstance(detail, pd.Series) else detail
        if raw is not None:
            self.raw[new] = raw[new]


def map_partition(spec: MappingSpec, read: Callable[[str], pd.DataFrame], out_dir: Any) -> MapResult:
    """Map one partition: ``read(table)`` gives the extracted rows; files go to ``out_dir``.

    Writes ``<entity>.parquet`` per entity and ``quarantine.parquet``; ``out_dir`` is a
    :class:`pathlib.Path` or an ``ObjectStoragePath`` (anything with ``/`` and ``open``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    result = MapResult()
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in ENTITIES}
    quarantine: list[pd.DataFrame] = []

    patients = read(spec.patient_table)
    ptable = spec.tables[spec.patient_table]
    all_keys = set(_key_str(patients[ptable.patient_key]).dropna())
    bad_keys: set[str] = set()

    # the patient table first: its quarantined patients cascade to every other table
    order = [spec.patient_table] + [n for n in spec.tables if n != spec.patient_table]
    for name in order:
        table = spec.tables[name]
        rows = read(name) if name != spec.patient_table else patients
        flags = _Flags(rows.index)
        pkey = _key_str(rows[table.patient_key])
        is_patient_table = name == spec.patient_table
        for reason in Reason.ORDER:
            if reason == Reason.ORPHAN and not is_patient_table:
                flags.mark(~pkey.isin(all_keys), reason, table.patient_key, "no such patient", None)
            elif reason == Reason.PATIENT_QUARANTINED and not is_patient_table:
                flags.mark(pkey.isin(bad_keys), reason, table.patient_key, "the patient is in quarantine", None)
            else:
                _apply_rules(flags, rows, table, spec, reason)
        if is_patient_table:
            bad_keys = set(pkey[flags.reason.notna()].dropna())

        kept = rows[flags.reason.isna()]
        mapped, adjusted = _map_fields(kept, table, spec)
        frames[table.entity].append(mapped)
        result.adjusted_times += adjusted
        result.extracted[name] = len(rows)
        result.mapped[name] = len(kept)
        hit = flags.reason.notna()
        if hit.any():
            quarantine.append(_quarantine_rows(name, table, rows[hit], pkey[hit], flags, hit))
            result.quarantined[name] = {
                str(k): int(v) for k, v in flags.reason[hit].value_counts().sort_index().items()
            }

    for entity_name, parts in frames.items():
        entity = ENTITIES[entity_name]
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=entity.schema.names)
        frame = frame.sort_values(entity.key, kind="stable", ignore_index=True) if len(frame) else frame
        table = pa.Table.from_pandas(frame, schema=entity.schema, preserve_index=False)
        _write(table, out_dir / f"{entity_name}.parquet")
        result.entities[entity_name] = table.num_rows
    qframe = pd.concat(quarantine, ignore_index=True) if quarantine else pd.DataFrame(columns=QUARANTINE_SCHEMA.names)
    _write(pa.Table.from_pandas(qframe, schema=QUARANTINE_SCHEMA, preserve_index=False), out_dir / "quarantine.parquet")
    return result


def _write(table: pa.Table, path: Any) -> None:
    with path.open("wb") as fh:
        pq.write_table(table, fh, compression="zstd")


def _key_str(series: pd.Series) -> pd.Series:
    """Keys as strings ('17', not '17.0'), whatever the driver returned."""
    if pd.api.types.is_float_dtype(series):
        series = series.astype("Int64")
    return series.astype(object).where(series.notna()).map(lambda v: v if v is None else str(v))


def _rules_for(table: TableSpec, reason: str) -> list[RuleSpec]:
    wanted = {
        Reason.SOFT_DELETED: "soft_deleted",
        Reason.SENTINEL_DATE: "sentinel_date",
        Reason.XML_ILLEGAL_CHAR: "xml_chars",
        Reason.ENCODING_SUSPECT: "encoding",
        Reason.EMPTY_ATTACHMENT: "not_empty",
        Reason.CODE_INVALID: "code",
        Reason.ID_INVALID_FORMAT: "personal_id",
    }.get(reason)
    return [r for r in table.rules if r.rule == wanted]


def _apply_rules(flags: _Flags, rows: pd.DataFrame, table: TableSpec, spec: MappingSpec, reason: str) -> None:
    for rule in _rules_for(table, reason):
        col = rows[rule.column]
        text = col.astype(object).where(col.notna())
        if rule.rule == "soft_deleted":
            values = rule.values if rule.values is not None else list(TRUE_VALUES)
            flags.mark(col.isin(values), Reason.SOFT_DELETED, rule.column, "marked deleted in the source", None)
        elif rule.rule == "personal_id":
            ids = identity.classify(col, reference_date=dt.date.fromisoformat(spec.id_reference_date))
            flags.mark(ids["reason"].notna(), ids["reason"], rule.column, "identifier fails validation", text)
        elif rule.rule == "sentinel_date":
            day = text.map(lambda v: None if v is None else str(v)[:10])
            flags.mark(
                day.isin(SENTINEL_DAYS), Reason.SENTINEL_DATE, rule.column, "sentinel date " + day.fillna(""), text
            )
        elif rule.rule == "xml_chars":
            parts = text.astype("string").str.extract(f"(?s)^(.*?)({XML_ILLEGAL})")
            found, offset = parts[1], parts[0].str.len()
            detail = (
                "character U+"
                + found.map(lambda c: f"{ord(c):04X}" if isinstance(c, str) else "")
                + " at offset "
                + offset.astype(str)
            )
            flags.mark(found.notna(), Reason.XML_ILLEGAL_CHAR, rule.column, detail.astype(object), text)
        elif rule.rule == "encoding":
            s = text.astype("string")
            for kind, pattern in ENCODING_SUSPECTS.items():
                flags.mark(
                    s.str.contains(pattern, regex=True).fillna(False),
                    Reason.ENCODING_SUSPECT,
                    rule.column,
                    f"pattern {kind}",
                    text,
                )
        elif rule.rule == "not_empty":
            empty = col.map(lambda v: v is None or len(v) == 0)
            flags.mark(empty, Reason.EMPTY_ATTACHMENT, rule.column, "zero bytes", None)
        elif rule.rule == "code":
            ok = text.astype("string").str.fullmatch(CODE_PATTERNS[rule.system]).fillna(False)
            flags.mark(~ok, Reason.CODE_INVALID, rule.column, f"not a valid {rule.system} code", text)


def _map_fields(rows: pd.DataFrame, table: TableSpec, spec: MappingSpec) -> tuple[pd.DataFrame, int]:
    entity = ENTITIES[table.entity]
    out: dict[str, Any] = {}
    adjusted = 0
    for name in entity.schema.names:
        fspec = table.fields.get(name)
        if fspec is None:
            out[name] = pd.Series(None, index=rows.index, dtype=object)
            continue
        values, n = _transform(rows, fspec, spec)
        out[name] = values
        adjusted += n
    return pd.DataFrame(out, index=rows.index).reset_index(drop=True), adjusted


def _transform(rows: pd.DataFrame, f: FieldSpec, spec: MappingSpec) -> tuple[pd.Series, int]:
    if f.column is None:
        return pd.Series([f.value] * len(rows), index=rows.index, dtype=object), 0
    col = rows[f.column]
    if f.lookup is not None:
        return _key_str(col).map(f.lookup), 0
    match f.transform:
        case "str":
            return _key_str(col), 0
        case "bool":
            return col.isin(TRUE_VALUES), 0
        case "local_time":
            return _local_to_utc(col, spec.timezone)
        case "utc_time":
            return pd.to_datetime(col, utc=True), 0
        case "epoch_seconds":
            return pd.to_datetime(col, unit="s", utc=True), 0
        case "date":
            return pd.to_datetime(col).dt.date, 0
        case "personal_id" | "id_type":
            ids = identity.classify(col, reference_date=dt.date.fromisoformat(spec.id_reference_date))
            return ids["normalised" if f.transform == "personal_id" else "id_type"].astype(object), 0
        case "before_comma" | "after_comma":
            parts = col.astype("string").str.split(",", n=1, expand=True)
            part = parts[0] if f.transform == "before_comma" else parts.get(1, pd.Series(None, index=col.index))
            return part.str.strip().astype(object), 0
        case "bytes":
            return col.map(lambda v: None if v is None else bytes(v)), 0
    raise AssertionError(f"unhandled transform {f.transform}")  # pragma: no cover - the spec enum is closed


def _local_to_utc(col: pd.Series, tz: str) -> tuple[pd.Series, int]:
    """Wall-clock times to UTC. Ambiguous (autumn) hours are read as standard time, missing
    (spring) hours shifted forward; the count of such adjustments is reported."""
    naive = pd.to_datetime(col)
    if naive.dt.tz is not None:
        return naive.dt.tz_convert("UTC"), 0
    strict = naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    local = naive.dt.tz_localize(tz, ambiguous=False, nonexistent="shift_forward")
    adjusted = int((strict.isna() & naive.notna()).sum())
    return local.dt.tz_convert("UTC"), adjusted


def _quarantine_rows(
    name: str, table: TableSpec, rows: pd.DataFrame, pkey: pd.Series, flags: _Flags, hit: pd.Series
) -> pd.DataFrame:
    raw = flags.raw[hit]
    return pd.DataFrame(
        {
            "source_table": name,
            "entity": table.entity,
            "source_key": _key_str(rows[table.key]),
            "patient_key": pkey,
            "rule": flags.reason[hit],
            "column": flags.column[hit],
            "detail": flags.detail[hit],
            "value_digest": raw.map(lambda v: "" if v is None else keyed_hash(str(v))),
        }
    ).reset_index(drop=True)
