"""Small Arrow helpers the mapping shares: keys as text, values as Python only for the few rows that need it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def as_array(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One contiguous array (a copy only when the column has several chunks)."""
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def key_text(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Keys as text ('17', not '17.0'), whatever type the driver gave."""
    t = col.type
    if pa.types.is_floating(t):
        whole = pc.equal(pc.floor(col), col)
        if pc.all(whole).as_py() in (True, None):
            col = pc.cast(col, pa.int64())
    if pa.types.is_string(col.type):
        return col
    return pc.cast(col, pa.string())


def text(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Any column as text for pattern rules (integers as digits, times ISO)."""
    if pa.types.is_string(col.type):
        return col
    if pa.types.is_large_string(col.type):
        return col
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        return pc.cast(col, pa.large_string(), safe=False)
    return key_text(col)


def true_mask(col: pa.ChunkedArray | pa.Array, values: list[Any]) -> np.ndarray:
    """Rows whose value is one of ``values`` (1, True, '1', 'J', ... compared as text); null is False."""
    wanted = sorted({"true" if v is True else "false" if v is False else str(v) for v in values})
    hit = pc.is_in(text(col), value_set=pa.array(wanted, pa.string()))
    return mask(hit)


def mask(hit: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow result as a numpy mask, null as False."""
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)


def py_values(col: pa.ChunkedArray | pa.Array, rows: np.ndarray) -> list[Any]:
    """The Python values of the given rows only (finding details, digests)."""
    if len(rows) == 0:
        return []
    return col.take(pa.array(rows, pa.int64())).to_pylist()
