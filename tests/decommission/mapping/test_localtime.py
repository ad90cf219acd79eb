"""Wall-clock times to UTC for every year: DST changes of 2025 and after 2037, ambiguous and missing hours."""

from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa
import pytest

from decommission.mapping import localtime
from decommission.mapping.fields import local_to_utc


def _utc(values: list[dt.datetime | None], zone: str) -> tuple[list[dt.datetime | None], list[bool]]:
    out, adjusted = localtime.to_utc(pa.array(values, pa.timestamp("us")), zone)
    return [None if v is None else v.replace(tzinfo=dt.UTC) for v in out.to_pylist()], adjusted.tolist()


def _sunday(year: int, month: int, nth: int) -> int:
    """The day of the month of its nth Sunday (-1: the last)."""
    days = [d for d in range(1, 32) if _valid(year, month, d) and dt.date(year, month, d).weekday() == 6]
    return days[nth if nth < 0 else nth - 1]


def _valid(year: int, month: int, day: int) -> bool:
    try:
        dt.date(year, month, day)
    except ValueError:
        return False
    return True


def U(*parts: int) -> dt.datetime:  # noqa: N802 - reads like a constructor
    return dt.datetime(*parts, tzinfo=dt.UTC)


def test_a_boston_wall_clock_after_2037_keeps_its_daylight_saving_time():
    # the case: pyarrow's rules stop in 2037 and made this 11:15Z
    assert _utc([dt.datetime(2180, 8, 7, 6, 15)], "America/New_York")[0] == [U(2180, 8, 7, 10, 15)]


@pytest.mark.parametrize("year", [2025, 2180])
def test_stockholm_around_both_changes_of_the_year(year):
    spring, autumn = _sunday(year, 3, -1), _sunday(year, 10, -1)
    times, adjusted = _utc(
        [
            dt.datetime(year, 3, spring, 1, 59),
            dt.datetime(year, 3, spring, 2, 30),  # missing: clocks go from 02:00 to 03:00
            dt.datetime(year, 3, spring, 3, 0),
            dt.datetime(year, 7, 1, 12, 0),
            dt.datetime(year, 10, autumn, 1, 59),
            dt.datetime(year, 10, autumn, 2, 30),  # ambiguous: 02:00-03:00 happens twice
            dt.datetime(year, 10, autumn, 3, 0),
            dt.datetime(year, 12, 1, 12, 0),
        ],
        "Europe/Stockholm",
    )
    assert times == [
        U(year, 3, spring, 0, 59),
        U(year, 3, spring, 1, 30),  # read with the offset before the change (+01:00)
        U(year, 3, spring, 1, 0),
        U(year, 7, 1, 10, 0),
        U(year, 10, autumn - 1, 23, 59),  # still summer time (+02:00)
        U(year, 10, autumn, 1, 30),  # read as standard time (+01:00), the later instant
        U(year, 10, autumn, 2, 0),
        U(year, 12, 1, 11, 0),
    ]
    assert adjusted == [False, True, False, False, False, True, False, False]


@pytest.mark.parametrize("year", [2025, 2180])
def test_new_york_around_both_changes_of_the_year(year):
    spring, autumn = _sunday(year, 3, 2), _sunday(year, 11, 1)
    times, adjusted = _utc(
        [
            dt.datetime(year, 3, spring, 2, 30),  # missing
            dt.datetime(year, 3, spring, 3, 30),
            dt.datetime(year, 11, autumn, 1, 30),  # ambiguous
            dt.datetime(year, 11, autumn, 2, 30),
        ],
        "America/New_York",
    )
    assert times == [
        U(year, 3, spring, 7, 30),
        U(year, 3, spring, 7, 30),
        U(year, 11, autumn, 6, 30),
        U(year, 11, autumn, 7, 30),
    ]
    assert adjusted == [True, False, True, False]


def test_nulls_stay_null_and_every_row_agrees_with_zoneinfo_value_by_value():
    rnd = random.Random(11)
    years = (1850, 1916, 1942, 1980, 1996, 2025, 2037, 2038, 2100, 2180, 2300)
    values = [
        dt.datetime(rnd.choice(years), 1, 1) + dt.timedelta(minutes=rnd.randrange(365 * 24 * 60)) for _ in range(5000)
    ]
    values[17] = None
    for zone in ("Europe/Stockholm", "America/New_York", "Australia/Lord_Howe"):
        times, _ = _utc(values, zone)
        assert times[17] is None
        expected = [None if v is None else localtime.later_reading(v, zone) for v in values]
        assert times == expected, zone


def test_local_to_utc_counts_the_adjusted_rows_and_leaves_aware_times_alone():
    gap = dt.datetime(2180, 3, _sunday(2180, 3, -1), 2, 30)
    naive = pa.chunked_array([pa.array([gap, dt.datetime(2025, 10, 26, 2, 30), dt.datetime(2180, 6, 1)])])
    values, adjusted = local_to_utc(naive, "Europe/Stockholm")
    assert adjusted == 2
    assert values.to_pylist()[2] == U(2180, 5, 31, 22, 0)
    aware = pa.chunked_array([pa.array([U(2180, 8, 7, 10, 15)], pa.timestamp("us", tz="UTC"))])
    assert local_to_utc(aware, "America/New_York")[0].to_pylist()[0] == U(2180, 8, 7, 10, 15)
