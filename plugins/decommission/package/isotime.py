"""ISO 8601 text of whole date and timestamp columns, digit by digit with numpy.

Arrow's own cast to string (and ``strftime``) goes through a formatter per value, about a
microsecond each: with tens of thousands of times per package that was a tenth of packaging.
Here the civil date comes from the day number by integer arithmetic (the proleptic Gregorian
calendar, as XML Schema's ``xs:date`` uses) and the digits are written into a fixed-width byte
matrix that becomes the Arrow string buffer as it is. Years outside 0001-9999 fall back to Arrow.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_US_PER_DAY = 86_400_000_000
#: day number (since 1970-01-01) of 0001-01-01 and of 10000-01-01
_FIRST_DAY, _END_DAY = -719_162, 2_932_897
_DATE = b"0000-00-00"
_TIMESTAMP = b"0000-00-00T00:00:00.000000Z"


def _civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month and day of day numbers since 1970-01-01 (days from civil, inverted)."""
    z = days + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    return yoe + era * 400 + (month <= 2), month, day


def _put(matrix: np.ndarray, column: int, value: np.ndarray, width: int) -> None:
    """Write ``value`` as ``width`` decimal digits into ``matrix`` from ``column`` on."""
    for i in range(width - 1, -1, -1):
        matrix[:, column + i] = 48 + value % 10
        value = value // 10


def _strings(matrix: np.ndarray, source: pa.Array) -> pa.Array:
    """A string array over the rows of ``matrix`` (fixed width), null where ``source`` is null."""
    n, width = matrix.shape
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * width).tobytes())
    text = pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(matrix.tobytes())])
    return pc.if_else(pc.is_null(source), pa.scalar(None, pa.string()), text) if source.null_count else text


def _in_range(days: np.ndarray, valid: np.ndarray) -> bool:
    days = days[valid]
    return not days.size or (days.min() >= _FIRST_DAY and days.max() < _END_DAY)


def dates(column: pa.Array) -> pa.Array:
    """``YYYY-MM-DD`` per value of a date32/date64 column; null stays null."""
    days = pc.cast(column, pa.date32()).cast(pa.int32()).fill_null(0).to_numpy().astype(np.int64)
    if not _in_range(days, pc.is_valid(column).to_numpy(zero_copy_only=False)):
        return pc.cast(column, pa.string())
    year, month, day = _civil(days)
    matrix = np.frombuffer(_DATE * len(days), dtype=np.uint8).reshape(len(days), len(_DATE)).copy()
    _put(matrix, 0, year, 4)
    _put(matrix, 5, month, 2)
    _put(matrix, 8, day, 2)
    return _strings(matrix, column)


def timestamps(column: pa.Array) -> pa.Array:
    """UTC ``YYYY-MM-DDThh:mm:ss[.ffffff]Z`` per value (naive values are taken as UTC); null stays null."""
    if column.type.unit == "ns":  # the schema's lexical form stops at microseconds
        column = pc.floor_temporal(column, unit="microsecond")
    # a zone is metadata on UTC values: relabelling it to UTC changes no value
    micros = pc.cast(column, pa.timestamp("us", tz="UTC"), safe=False).cast(pa.int64()).fill_null(0).to_numpy()
    days = np.floor_divide(micros, _US_PER_DAY)
    if not _in_range(days, pc.is_valid(column).to_numpy(zero_copy_only=False)):
        return _fallback(column)
    year, month, day = _civil(days)
    of_day = micros - days * _US_PER_DAY
    seconds, fraction = np.divmod(of_day, 1_000_000)
    matrix = np.frombuffer(_TIMESTAMP * len(days), dtype=np.uint8).reshape(len(days), len(_TIMESTAMP)).copy()
    for at, value, width in (
        (0, year, 4),
        (5, month, 2),
        (8, day, 2),
        (11, seconds // 3600, 2),
        (14, seconds // 60 % 60, 2),
        (17, seconds % 60, 2),
        (20, fraction, 6),
    ):
        _put(matrix, at, value, width)
    return pc.replace_substring(_strings(matrix, column), pattern=".000000Z", replacement="Z")


def _fallback(column: pa.Array) -> pa.Array:
    utc = pc.cast(column, pa.timestamp("us", tz="UTC"), safe=False)
    text = pc.replace_substring(pc.cast(utc, pa.string()), pattern=" ", replacement="T", max_replacements=1)
    return pc.replace_substring(text, pattern=".000000Z", replacement="Z")
