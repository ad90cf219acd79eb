"""Converted times recomputed another way, so that the reconciliation checks the conversion itself.

The mapping converts wall-clock times to UTC on whole columns (numpy over offsets that zoneinfo
gives per year, :func:`decommission.mapping.localtime.to_utc`). Here each value is converted on
its own, with zoneinfo's PEP 495 folds (:func:`~decommission.mapping.localtime.later_reading`),
and rendered the way a record file carries it. The read-back sample and the content fingerprints
compare the archive with these values: a fault in the vectorised conversion (a year without
daylight saving time, a wrong hour at a change) is a difference, not a match with itself.

Whole columns (:func:`utc_texts`) ask zoneinfo per local year instead of per value: at the start
of every week of the year, and where two weeks' offsets differ, second by second (bisection) for the
moment the offset changes (no zone changes its offset twice within a week and back). The rows of
the day of a change and of the days either side, and values that are not plain times, go value by
value. Arrow renders the text, not the packager's formatter.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from decommission.mapping.localtime import later_reading
from decommission.package.records import format_value
from decommission.plan.mapping_spec import TableSpec


def converted_fields(table: TableSpec) -> dict[str, str]:
    """Target field -> source column, for fields the mapping converts from local time to UTC."""
    return {name: f.column for name, f in table.fields.items() if f.column and f.transform == "local_time"}


def utc_text(value: Any, zone: str) -> str | None:
    """A source value (wall-clock time of ``zone``) as the record file writes it in UTC; None stays None."""
    when = _as_datetime(value)
    if when is None:
        return None
    utc = when.astimezone(dt.UTC) if when.tzinfo is not None else later_reading(when, zone)
    return format_value(utc)


def _as_datetime(value: Any) -> dt.datetime | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return pd.Timestamp(text.strip()).to_pydatetime()  # the other forms the mapping reads (dateutil)


_US = 1_000_000
_DAY_US = 86_400 * _US
_EPOCH = dt.datetime(1970, 1, 1)
_DAY_S = 86_400
#: the days :mod:`datetime` can name (years 1-9999)
_FIRST_DAY, _LAST_DAY = (dt.datetime(1, 1, 1) - _EPOCH).days, (dt.datetime(9999, 12, 31) - _EPOCH).days


def utc_texts(column: pa.Array | pa.ChunkedArray, zone: str) -> pa.Array:
    """:func:`utc_text` of every value of a column (a string array; null stays null)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    wall = _walls(column)
    if wall is None:
        return pa.array([utc_text(v, zone) for v in column.to_pylist()], pa.string())
    read = pc.is_valid(wall).to_numpy(zero_copy_only=False)
    micros = pc.cast(wall, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    unique, inverse = np.unique(np.floor_divide(micros, _DAY_US), return_inverse=True)
    offsets, uniform = _day_offsets(unique, zone)
    offset, uniform = offsets[inverse], uniform[inverse]
    # UTC as a naive column: Arrow writes it fast ("YYYY-MM-DD hh:mm:ss.ffffff"; with a zone it looks it up per value)
    utc = pa.array(micros - offset, pa.int64(), mask=~read).cast(pa.timestamp("us"))
    text = pc.replace_substring(pc.cast(utc, pa.string()), pattern=" ", replacement="T", max_replacements=1)
    text = pc.binary_join_element_wise(pc.replace_substring(text, pattern=".000000", replacement=""), "Z", "")
    # each on its own: the values of a day with a change, and those not read as a plain time in years 1-9998
    odd = np.flatnonzero(pc.is_valid(column).to_numpy(zero_copy_only=False) & ~(read & uniform))
    if odd.size:
        singles = pa.array([utc_text(column[int(i)].as_py(), zone) for i in odd], pa.string())
        mask = np.zeros(len(column), dtype=bool)
        mask[odd] = True
        text = pc.replace_with_mask(text, pa.array(mask), singles)
    return text


def _walls(column: pa.Array) -> pa.Array | None:
    """Naive wall-clock ``timestamp[us]`` of each value read as a plain time in years 1-9998, else null;
    None: a column of another type, value by value."""
    kind = column.type
    if pa.types.is_timestamp(kind) and kind.tz is None:
        wall = pc.cast(column, pa.timestamp("us"), safe=False)
    elif pa.types.is_date(kind):
        wall = pc.cast(pc.cast(column, pa.date32()).cast(pa.timestamp("s")), pa.timestamp("us"))
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.utf8_trim_whitespace(column)
        try:
            wall = pc.cast(text, pa.timestamp("us"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # some other form: the common one, the rest alone
            wall = pc.strptime(text, format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True)
    else:  # a zone-aware time is an instant already; other types as utc_text reads them
        return None
    years = pc.year(wall)
    inside = pc.fill_null(pc.and_(pc.greater_equal(years, 1), pc.less_equal(years, 9998)), False)
    return pc.if_else(inside, wall, pa.scalar(None, wall.type))


def _day_offsets(days: np.ndarray, zone: str) -> tuple[np.ndarray, np.ndarray]:
    """Each local day's UTC offset (µs) by :func:`later_reading`, and whether the day has that one offset
    all day (False on and beside the day of a change: its values go one by one)."""
    offsets = np.zeros(len(days), np.int64)
    uniform = np.zeros(len(days), bool)
    years = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    for year in np.unique(years).tolist():
        at = np.flatnonzero(years == year)
        first, year_offsets, year_uniform = _year(year, zone)
        offsets[at] = year_offsets[days[at] - first]
        uniform[at] = year_uniform[days[at] - first]
    return offsets, uniform


@functools.lru_cache(maxsize=4096)
def _year(year: int, zone: str) -> tuple[int, np.ndarray, np.ndarray]:
    """A local year's days: the first day's number (days since 1970-01-01), each day's offset, uniform or not.

    Read from a week before the year to a week after it, so a change at midnight on New Year's Eve
    marks the days either side in both years.
    """
    first = (dt.datetime(year, 1, 1) - _EPOCH).days
    end = (dt.datetime(year + 1, 1, 1) - _EPOCH).days
    lo_day, hi_day = max(first - 7, _FIRST_DAY), min(end + 7, _LAST_DAY)
    offsets = np.zeros(hi_day - lo_day, np.int64)
    uniform = np.ones(hi_day - lo_day, bool)
    starts = [*range(lo_day, hi_day, 7), hi_day]
    found = [_offset(day * _DAY_S, zone) for day in starts]
    for a, b, before, after in zip(starts, starts[1:], found, found[1:], strict=False):
        offsets[a - lo_day : b - lo_day] = before
        if before == after:
            continue
        lo, hi = a * _DAY_S, b * _DAY_S  # the first second of the week whose offset is no longer ``before``
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if _offset(mid, zone) == before else (lo, mid)
        change = hi // _DAY_S
        offsets[change - lo_day : b - lo_day] = after
        uniform[max(change - 1 - lo_day, 0) : change + 2 - lo_day] = False
    inside = slice(first - lo_day, end - lo_day)
    return first, offsets[inside], uniform[inside]


def _offset(second: int, zone: str) -> int:
    """The UTC offset (µs) :func:`later_reading` gives the wall-clock time ``second`` s after 1970-01-01."""
    wall = _EPOCH + dt.timedelta(seconds=second)
    return (wall - later_reading(wall, zone).replace(tzinfo=None)) // dt.timedelta(microseconds=1)
