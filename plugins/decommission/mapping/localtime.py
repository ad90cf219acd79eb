"""Wall-clock times of a time zone to UTC, right for every year, on whole columns.

Arrow's own ``assume_timezone`` reads the zone's transitions from the TZif files, whose explicit
list ends in 2037: after that it applies no daylight saving time at all (a Boston 2180-08-07
06:15 came out 11:15Z, not 10:15Z). Python's :mod:`zoneinfo` follows the zone's POSIX rule
for far years. Here zoneinfo is asked once per year present in the column for that year's
transitions (a scan of the year in six-hour steps, each change narrowed to the second); the
rows are then converted with numpy (one ``searchsorted``), no Python per row.

Policy for the two kinds of wall-clock time that do not name one instant, both counted and
flagged by the mapping, never dropped: a time of the repeated autumn hour (*ambiguous*) and a
time in the spring gap (*nonexistent*) are read as the later of their two possible instants.
The autumn hour is read as standard time (02:30 on the last Sunday of October in Stockholm is
01:30Z); a gap time with the offset before the change, as if the clock had not yet been put
forward (02:30 on the last Sunday of March is 01:30Z, 03:30 summer time). It is the same as
the later of ``datetime.replace(fold=0)`` and ``replace(fold=1)`` (PEP 495), which the
reconciliation uses as its independent check (:func:`later_reading`).
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_US = 1_000_000
_STEP = 6 * 3600  # seconds between samples: no zone changes its offset twice within six hours
_MARGIN = 2 * 86_400  # a year's scan reaches two days into its neighbours (offsets up to +-26 h)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: the instants a scan may reach (datetime's range is years 1-9999; offsets are at most a day)
_MIN_T = int((dt.datetime(1, 1, 3, tzinfo=dt.UTC) - _EPOCH).total_seconds())
_MAX_T = int((dt.datetime(9999, 12, 30, tzinfo=dt.UTC) - _EPOCH).total_seconds())


#: what :func:`convert` says of a row's wall-clock time
NORMAL, AMBIGUOUS, MISSING = 0, 1, 2


def to_utc(local: pa.Array, zone: str) -> tuple[pa.Array, np.ndarray]:
    """Naive wall-clock timestamps (``timestamp[us]``) of ``zone`` -> UTC instants (``timestamp[us, UTC]``).

    :returns: the UTC column (null stays null) and a bool mask of the rows whose wall-clock time
        was ambiguous or did not exist (read by the policy above).
    """
    utc, kind = convert(local, zone)
    return utc, kind != NORMAL


def convert(local: pa.Array, zone: str) -> tuple[pa.Array, np.ndarray]:
    """:func:`to_utc`, with per row :data:`NORMAL`, :data:`AMBIGUOUS` or :data:`MISSING` (int8)."""
    local = local.cast(pa.timestamp("us"))
    n = len(local)
    valid = pc.is_valid(local).to_numpy(zero_copy_only=False)
    wall = local.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    if not valid.any():
        return pa.nulls(n, pa.timestamp("us", tz="UTC")), np.zeros(n, dtype=np.int8)
    years = pc.unique(pc.drop_null(pc.year(local))).to_pylist()
    lo, hi, before, after = _table(zone, tuple(sorted(years)))
    wall_s = np.floor_divide(wall, _US)
    idx = np.searchsorted(lo, wall_s, side="right") - 1
    idx = np.clip(idx, 0, len(lo) - 1)
    in_window = valid & (wall_s >= lo[idx]) & (wall_s < hi[idx])
    # in the window of a change both readings are the same instant's neighbours: take the later one
    offset = np.where(in_window, np.minimum(before[idx], after[idx]), after[idx])
    utc = wall - offset * _US
    out = pa.array(utc, pa.int64(), mask=~valid).cast(pa.timestamp("us", tz="UTC"))
    kind = np.where(in_window, np.where(after[idx] < before[idx], AMBIGUOUS, MISSING), NORMAL).astype(np.int8)
    return out, kind


def _table(zone: str, years: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Offset changes of ``zone`` over the given years, as local windows (seconds since the epoch).

    Each row is one change (or the state at the start of a scanned year, a change from an offset
    to itself): its window ``[lo, hi)`` of wall-clock times that are ambiguous or missing, and
    the offsets before and after. Between windows the offset ``after`` holds.
    """
    rows: dict[int, tuple[int, int]] = {}
    for year in years:
        rows.update(_year(zone, year))
    instants = np.array(sorted(rows), dtype=np.int64)
    before = np.array([rows[t][0] for t in sorted(rows)], dtype=np.int64)
    after = np.array([rows[t][1] for t in sorted(rows)], dtype=np.int64)
    lo = instants + np.minimum(before, after)
    hi = instants + np.maximum(before, after)
    order = np.argsort(lo, kind="stable")
    return lo[order], hi[order], before[order], after[order]


@functools.lru_cache(maxsize=4096)
def _year(zone: str, year: int) -> dict[int, tuple[int, int]]:
    """UTC instant -> (offset before, offset after) of every change in one year (and its start)."""
    tz = ZoneInfo(zone)
    start = max(_MIN_T, _year_start(year) - _MARGIN)
    end = min(_MAX_T, _year_start(year + 1) + _MARGIN if year < 9999 else _MAX_T)
    first = _offset(tz, start)
    rows = {start: (first, first)}
    previous = first
    for t in [*range(start + _STEP, end, _STEP), end]:
        current = _offset(tz, t)
        if current != previous:
            rows[_narrow(tz, t - _STEP, t, previous)] = (previous, current)
        previous = current
    return rows


def _year_start(year: int) -> int:
    return int((dt.datetime(year, 1, 1, tzinfo=dt.UTC) - _EPOCH).total_seconds())


def _offset(tz: ZoneInfo, t: int) -> int:
    """The zone's UTC offset in seconds at the UTC instant ``t`` (seconds since the epoch)."""
    return int((_EPOCH + dt.timedelta(seconds=t)).astimezone(tz).utcoffset().total_seconds())


def _narrow(tz: ZoneInfo, lo: int, hi: int, old: int) -> int:
    """The first second in ``(lo, hi]`` at which the offset is no longer ``old`` (bisection)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(tz, mid) == old:
            lo = mid
        else:
            hi = mid
    return hi


def later_reading(wall: dt.datetime, zone: str) -> dt.datetime:
    """One wall-clock time to UTC the plain way (zoneinfo, PEP 495 folds), by the same policy.

    Independent of :func:`to_utc` on purpose: the reconciliation recomputes converted times with
    it, so a fault in the vectorised conversion shows as a difference.
    """
    tz = ZoneInfo(zone)
    naive = wall.replace(tzinfo=None)
    readings = [naive.replace(tzinfo=tz, fold=fold).astimezone(dt.UTC) for fold in (0, 1)]
    return max(readings)
