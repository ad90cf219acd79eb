"""One extracted table of one partition: canonical Arrow types, key order, control totals, Parquet.

Both extraction paths (PostgreSQL's Arrow-native reader and the generic DB-API cursor)
end here, so the same partition gives the same staging file and the same control totals
whichever path read it, and whatever order the database returned the rows in:

* types are made canonical (every integer ``int64``, text ``large_string``, bytes
  ``large_binary``, zoned times UTC, an all-null column text);
* rows are sorted by the table's key, ties by every other column;
* the digest is SHA-256 over the sorted rows' canonical column buffers (validity, then
  values; text as lengths + bytes), so it does not depend on the database's row order,
  the driver, the batch size or the library versions.

A partition's table is held in memory once (its size is set by the plan's partition size,
not by the volume of the system).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: rows per Parquet row group at most, and bytes (attachments are large): a function of the
#: rows alone, so the same rows always give the same file; readers hold one group at a time
ROW_GROUP_ROWS = 16_384
ROW_GROUP_BYTES = 16 * 2**20


def row_group_rows(table: pa.Table) -> int:
    """Rows per row group for ``table``: :data:`ROW_GROUP_ROWS`, fewer when rows are large."""
    if table.num_rows == 0:
        return ROW_GROUP_ROWS
    per_row = max(1, table.nbytes // table.num_rows)
    return max(1, min(ROW_GROUP_ROWS, ROW_GROUP_BYTES // per_row))


def canonical_type(t: pa.DataType) -> pa.DataType:
    """The staging type of a column the driver gave as ``t``."""
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t):
        return pa.float64()
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t) or pa.types.is_decimal(t):
        return pa.large_string()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.large_binary()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz="UTC" if t.tz else None)
    return t


def canonical(table: pa.Table) -> pa.Table:
    """Cast every column to its :func:`canonical_type` and drop driver metadata."""
    fields = [pa.field(f.name, canonical_type(f.type)) for f in table.schema]
    return table.cast(pa.schema(fields)) if table.schema != pa.schema(fields) else table.replace_schema_metadata()


def from_rows(rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> tuple[pa.Table, list[str]]:
    """Arrow table of one batch of DB-API rows; returns the columns whose values had mixed types.

    A column mixing types (SQLite keeps whatever was written) is staged as text, each
    value by ``str()``; one mixing text and bytes (text the driver could not decode, see
    :func:`decommission.source.database.text_or_bytes`) as bytes, text encoded as UTF-8, so no value
    is altered and the mapping can flag what does not decode. The caller reports such
    columns in the control totals.
    """
    arrays, coerced = [], []
    for name, values in zip(columns, zip(*rows, strict=True) if rows else [()] * len(columns), strict=True):
        try:
            array = pa.array(values)
            arrays.append(array)
            if pa.types.is_binary(array.type) and any(isinstance(v, str) for v in values):
                coerced.append(name)  # Arrow took the text as its UTF-8 bytes
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            kinds = {type(v) for v in values if v is not None}
            if kinds == {str, bytes}:
                as_bytes = [v.encode("utf-8") if isinstance(v, str) else v for v in values]
                arrays.append(pa.array(as_bytes, type=pa.large_binary()))
            else:
                arrays.append(pa.array([None if v is None else str(v) for v in values], type=pa.large_string()))
            coerced.append(name)
    return pa.Table.from_arrays(arrays, names=list(columns)), coerced


def concat(parts: Iterable[pa.Table], columns: Sequence[str]) -> tuple[pa.Table, list[str]]:
    """Concatenate batches into one canonical table; a column whose batches disagree becomes text."""
    parts = [canonical(p) for p in parts]
    if not parts:
        return pa.table({c: pa.array([], pa.large_string()) for c in columns}), []
    coerced = []
    fields = []
    for i, name in enumerate(columns):
        types = {p.schema.field(i).type for p in parts if p.column(i).null_count < p.num_rows}
        if len(types) > 1:
            coerced.append(name)
            text_and_bytes = types == {pa.large_string(), pa.large_binary()}
            fields.append(pa.field(name, pa.large_binary() if text_and_bytes else pa.large_string()))
        else:
            fields.append(pa.field(name, types.pop() if types else pa.large_string()))
    schema = pa.schema(fields)
    cast = [_cast_batch(p, schema) for p in parts]
    return pa.concat_tables(cast), coerced


def _cast_batch(part: pa.Table, schema: pa.Schema) -> pa.Table:
    if part.schema == schema:
        return part
    columns = []
    for col, field in zip(part.columns, schema, strict=True):
        if col.type == field.type:
            columns.append(col)
        elif col.null_count == len(col):
            columns.append(pa.nulls(len(col), field.type))
        elif field.type == pa.large_binary() and col.type == pa.large_string():
            columns.append(col.cast(pa.large_binary()))  # text beside undecodable bytes: its UTF-8
        else:  # mixed types across batches: text, as in from_rows
            columns.append(pa.array([None if v is None else str(v) for v in col.to_pylist()], pa.large_string()))
    return pa.Table.from_arrays(columns, schema=schema)


def with_row_key(table: pa.Table, columns: Sequence[str], prefix: str, name: str, separator: str = "-") -> pa.Table:
    """``table`` with column ``name``: ``prefix`` and the text of ``columns`` joined by ``separator``.

    A null in any key column gives a null row key (the row has no whole key).
    """
    parts = [pc.cast(table[c], pa.large_string()) for c in columns]
    if table.num_rows == 0:
        joined: Any = pa.array([], pa.large_string())
    else:
        joined = pc.binary_join_element_wise(*parts, pa.scalar(separator, pa.large_string()), null_handling="emit_null")
        if prefix:
            joined = pc.binary_join_element_wise(
                pa.scalar(prefix, pa.large_string()), joined, pa.scalar("", pa.large_string())
            )
    return table.append_column(pa.field(name, pa.large_string()), joined)


def duplicate_keys(table: pa.Table, key: str) -> tuple[int, list[str]]:
    """Rows whose (non-null) key another row has too, and the first few such keys as text (for keyed hashes)."""
    col = table[key]
    if table.num_rows < 2 or _strictly_increasing(col):
        return 0, []
    counts = pc.value_counts(pc.drop_null(col))
    values, n = counts.field("values"), counts.field("counts")
    repeated = pc.greater(n, 1)
    if not pc.any(repeated).as_py():
        return 0, []
    rows = pc.sum(pc.filter(n, repeated)).as_py()
    first = pc.filter(values, repeated)[:5].cast(pa.large_string()).to_pylist()
    return int(rows), [str(v) for v in first]


def in_key_order(table: pa.Table, key: str) -> pa.Table:
    """Rows sorted by ``key``; duplicate keys are ordered by every other column, so the order is total."""
    if table.num_rows < 2 or _strictly_increasing(table[key]):
        return table  # the usual case: the database returned the rows in key order
    keys = [(key, "ascending", "at_end")]
    if pc.count_distinct(table[key], mode="all").as_py() < table.num_rows:
        keys += [(c, "ascending", "at_end") for c in table.column_names if c != key]
    order = pc.sort_indices(table, sort_keys=keys)
    return table.take(order)


def _strictly_increasing(col: pa.ChunkedArray) -> bool:
    if col.null_count:
        return False
    col = col.combine_chunks()
    return bool(pc.all(pc.greater(col[1:], col[:-1])).as_py())


def digest(table: pa.Table, columns: Sequence[str] | None = None) -> str:
    """SHA-256 over the canonical buffers of ``columns`` (default all), in the table's row order."""
    h = hashlib.sha256()
    for name in columns or table.column_names:
        col = table[name].combine_chunks() if table.num_rows else pa.array([], table.schema.field(name).type)
        h.update(f"{name}:{col.type}:{len(col)}\n".encode())
        h.update(pc.is_valid(col).to_numpy(zero_copy_only=False).astype(np.uint8).tobytes())
        for chunk in _value_bytes(col):
            h.update(chunk)
    return h.hexdigest()


def _value_bytes(col: pa.Array) -> list[bytes | memoryview]:
    t = col.type
    if pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        filled = pc.fill_null(col, pa.scalar(b"" if pa.types.is_large_binary(t) else "", t))
        offsets = np.frombuffer(filled.buffers()[1], dtype=np.int64)[filled.offset : filled.offset + len(filled) + 1]
        data = filled.buffers()[2]
        body = memoryview(data)[offsets[0] : offsets[-1]] if data is not None else b""
        return [np.diff(offsets).astype("<i8").tobytes(), body]
    if pa.types.is_boolean(t):
        return [pc.fill_null(col, False).to_numpy(zero_copy_only=False).astype(np.uint8).tobytes()]
    if pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t):
        col = col.cast(pa.int64() if t.bit_width == 64 else pa.int32())
    filled = pc.fill_null(col, pa.scalar(0, col.type))
    return [filled.to_numpy(zero_copy_only=False).astype(filled.type.to_pandas_dtype()).tobytes()]


def control_totals(table: pa.Table, key: str, coerced: Sequence[str] = ()) -> dict[str, Any]:
    """Rows, distinct keys and digests of a key-ordered canonical table (no patient data)."""
    totals: dict[str, Any] = {
        "rows": table.num_rows,
        "keys": _distinct(table[key]),
        "keys_sha256": digest(table, [key]),
        "sha256": digest(table),
    }
    to_bytes = sorted(c for c in coerced if table.schema.field(c).type == pa.large_binary())
    to_text = sorted(c for c in coerced if c not in to_bytes)
    if to_text:
        totals["coerced_to_text"] = to_text
    if to_bytes:
        totals["coerced_to_bytes"] = to_bytes
    return totals


def _distinct(col: pa.ChunkedArray) -> int:
    if len(col) == 0:
        return 0
    if _strictly_increasing(col):
        return len(col)
    return pc.count_distinct(col, mode="only_valid").as_py()


#: how staging writes Parquet (extracted and mapped files): read once, soon after, by the next
#: task, so writing and reading fast matters more than size. LZ4 without dictionaries (half the
#: time of zstd, files 14 % of the Arrow size); no column statistics, which nothing reads (min and
#: max of journal text cost a fifth of a write)
PARQUET_OPTIONS: dict[str, Any] = {"compression": "lz4", "use_dictionary": False, "write_statistics": False}


def write(table: pa.Table, key: str, fh: Any, coerced: Sequence[str] = ()) -> dict[str, Any]:
    """Sort, write as Parquet to ``fh`` and return the control totals."""
    table = in_key_order(table, key)
    pq.write_table(table, fh, row_group_size=row_group_rows(table), **PARQUET_OPTIONS)
    return control_totals(table, key, coerced)
