"""A record's digest and the fields it covers: the one definition both sides of a fingerprint use.

A fingerprint is order-independent: the sum (modulo 2**64) of per-record SHA-256 prefixes, each
over the record's entity, id and the fields its source table carries over unchanged.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from decommission.model import ENTITIES
from decommission.plan.mapping_spec import TableSpec
from decommission.reconcile.timecheck import converted_fields

#: fingerprints are sums modulo this
MOD = 2**64
#: how a value kept as its bytes enters a fingerprint, on both sides
BASE64_MARK = "base64:"


def carried_fields(table: TableSpec) -> dict[str, str]:
    """Target field -> source column, for fields the mapping copies as text (no transform, no lookup)."""
    skip = {"patient_key", ENTITIES[table.entity].key}  # the key is the record's id, compared on its own
    return {
        name: f.column
        for name, f in table.fields.items()
        if f.column and f.transform == "str" and f.lookup is None and name not in skip
    }


def id_column(table: TableSpec) -> str:
    """The column that holds what the record's id is made of (the entity's key field; else the row key)."""
    f = table.fields.get(ENTITIES[table.entity].key)
    return f.column if f is not None and f.column else table.row_key


def record_digest(entity: str, record_id: str, fields: dict[str, str]) -> int:
    """A record's digest: over its entity, id and carried fields (sorted), each as ``<length>:<text>``."""
    parts = [entity, record_id, *(f"{k}={v}" for k, v in sorted(fields.items()))]
    return digest("".join(f"{len(p)}:{p}" for p in parts).encode("utf-8", "surrogatepass"))


def digest(body: bytes) -> int:
    return int.from_bytes(hashlib.sha256(body).digest()[:8], "big")


def compared_fields(table: TableSpec) -> dict[str, str]:
    """Target field -> source column of every field a fingerprint compares: carried ones and converted times."""
    return carried_fields(table) | converted_fields(table)


def digest_sum(bodies: pa.Array) -> int:
    """The sum of :func:`digest` over a string or binary array's values (nulls skipped), read straight from
    its buffers: no Python object per value."""
    bodies = bodies.cast(pa.large_binary())
    if len(bodies) == 0:
        return 0
    _validity, offsets, data = bodies.buffers()
    ends = np.frombuffer(offsets, np.int64)[bodies.offset : bodies.offset + len(bodies) + 1].tolist()
    view = memoryview(data) if data is not None else memoryview(b"")
    valid = bodies.is_valid().to_numpy(zero_copy_only=False).tolist() if bodies.null_count else None
    sha256 = hashlib.sha256
    total = 0
    for i in range(len(ends) - 1):
        if valid is None or valid[i]:
            total += int.from_bytes(sha256(view[ends[i] : ends[i + 1]]).digest()[:8], "big")
    return total % MOD
