"""The transforms of a mapping spec, as whole-column Arrow operations.

Each transform takes the source column and returns the target column in the archive
model's type. Text is passed through untouched (never re-encoded or trimmed), except the
name splits, which trim the space after the comma by definition, and ``trim``, which removes
fixed-width padding (trailing blanks of a ``char(n)`` column) where the spec says so: the spec,
which goes into every package's documentation, records it; the source value stays as it is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from decommission.mapping import localtime
from decommission.mapping.arrow_text import as_array, key_text, text, true_mask
from decommission.mapping.rules import TRUE_VALUES, classify, trimmed
from decommission.plan.mapping_spec import FieldSpec

UTC = pa.timestamp("us", tz="UTC")


def transform(
    col: pa.ChunkedArray | None, f: FieldSpec, n: int, *, tz: str, reference_date: dt.date, ids: Any
) -> tuple[pa.Array, int]:
    """The target column for field spec ``f``; the int counts local times that had to be adjusted."""
    if col is None:
        return pa.repeat(pa.scalar(f.value), n), 0
    if f.lookup is not None:
        keys = key_text(col)
        index = pc.index_in(keys, value_set=pa.array(list(f.lookup), pa.string()))
        return pc.take(pa.array(list(f.lookup.values()), pa.string()), index), 0
    match f.transform:
        case "str":
            return key_text(col), 0
        case "bool":
            return pa.array(true_mask(col, TRUE_VALUES)), 0
        case "local_time":
            return local_to_utc(col, tz)
        case "utc_time":
            ts = timestamps(col)
            return (ts.cast(UTC) if ts.type.tz else pc.assume_timezone(ts, "UTC").cast(UTC)), 0
        case "epoch_seconds":
            seconds = pc.cast(as_array(col), pa.int64())
            return pc.cast(pc.multiply(seconds, 1_000_000), pa.int64()).cast(UTC), 0
        case "date":
            return pc.cast(timestamps(col), pa.date32()), 0
        case "personal_id" | "id_type" | "id_scheme":
            ids = ids if ids is not None else classify(col, reference_date)
            column = ids[{"personal_id": "normalised", "id_type": "id_type", "id_scheme": "scheme"}[f.transform]]
            values = pa.array(column.to_numpy(dtype=object), pa.string(), from_pandas=True)
            if f.transform == "personal_id" and values.null_count:
                # an identifier that fails validation is archived as written (its rule flags it), never dropped
                values = pc.coalesce(values, pc.cast(text(as_array(col)), pa.string()))
            return values, 0
        case "before_comma":
            return pc.utf8_trim_whitespace(pc.replace_substring_regex(text(col), r"^([^,]*)(?s:,.*)?$", r"\1")), 0
        case "after_comma":
            after = pc.struct_field(pc.extract_regex(text(col), r"^[^,]*,(?P<a>(?s:.*))$"), [0])
            return pc.utf8_trim_whitespace(after), 0
        case "bytes":
            return pc.cast(as_array(col), pa.large_binary()), 0
        case "trim":
            return trimmed(col), 0
    raise AssertionError(f"unhandled transform {f.transform}")  # pragma: no cover - the spec enum is closed


def timestamps(col: pa.ChunkedArray) -> pa.Array:
    """Timestamps (us) from a timestamp, date or ISO text column; other text is parsed by pandas."""
    arr = as_array(col)
    if pa.types.is_timestamp(arr.type):
        return arr.cast(pa.timestamp("us", tz=arr.type.tz))
    if pa.types.is_date(arr.type):
        return arr.cast(pa.timestamp("us"))
    try:
        return pc.cast(text(arr), pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # not ISO 8601: pandas reads more forms
        parsed = pd.to_datetime(pd.Series(text(arr).to_pylist(), dtype=object))
        return pa.array(parsed.dt.as_unit("us"), from_pandas=True)


def local_to_utc(col: pa.ChunkedArray, tz: str) -> tuple[pa.Array, int]:
    """Wall-clock times to UTC, right for every year (:mod:`decommission.mapping.localtime`). Ambiguous
    (autumn) and missing (spring) hours are read as the later of their two instants; they are counted here
    and flagged by the mapping (``LOCAL_TIME_ADJUSTED``)."""
    ts = timestamps(col)
    if ts.type.tz:
        return ts.cast(UTC), 0
    utc, adjusted = localtime.to_utc(ts, tz)
    return utc, int(adjusted.sum())
