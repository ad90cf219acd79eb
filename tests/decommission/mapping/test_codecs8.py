"""Single-byte codecs decoded column-wise give exactly what Python's own codecs give, value by value."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from decommission.mapping import codecs8
from decommission.mapping.rules import decode


def _values(seed: int) -> list[bytes | None]:
    rng = random.Random(seed)
    values: list[bytes | None] = [b"", None, "Målgång på Öland".encode("cp1252"), bytes(range(256))]
    values += [bytes(rng.randrange(256) for _ in range(rng.randrange(40))) for _ in range(2000)]
    return values + [None, b"\x81 undefined in cp1252 first", b"ok then \x9d"]


def _python(values: list[bytes | None], codec: str) -> tuple[list[str | None], dict[int, int]]:
    out, failed = [], {}
    for i, raw in enumerate(values):
        try:
            out.append(None if raw is None else raw.decode(codec))
        except UnicodeDecodeError as exc:
            out.append(None)
            failed[i] = exc.start
    return out, failed


@pytest.mark.parametrize("codec", codecs8.SINGLE_BYTE)
def test_matches_python_value_by_value(codec):
    values = _values(3)
    text, failed = codecs8.decode(pa.array(values, pa.binary()), codec)
    assert (text.to_pylist(), failed) == _python(values, codec)
    assert codec != "cp1252" or failed  # the column holds bytes CP1252 leaves undefined


def test_a_slice_and_empty_columns_decode_too():
    values = _values(4)
    sliced = pa.array(values, pa.large_binary()).slice(7, 500)
    text, failed = codecs8.decode(sliced, "cp850")
    assert (text.to_pylist(), failed) == _python(values[7:507], "cp850")
    assert codecs8.decode(pa.array([], pa.binary()), "cp1252") == (pa.array([], pa.large_string()), {})
    assert codecs8.decode(pa.array([None, None], pa.binary()), "latin-1")[0].to_pylist() == [None, None]


def test_the_rows_that_do_not_decode_are_a_finding():
    column = pa.chunked_array([pa.array([b"gr\xf6t", b"\x90bad", None], pa.binary())])
    text, finding = decode(column, "cp1252")
    assert text.to_pylist() == ["gröt", None, None]
    assert finding is not None and finding.hit.tolist() == [False, True, False]
    assert finding.detail([1]) == ["bytes not cp1252 at offset 0"]
