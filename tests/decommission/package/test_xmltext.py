"""Column-wise XML text: ISO dates and times, escaping, row templates; checked against Python's own."""

from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa
import pytest

from decommission.package import isotime, xmltext

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
FIRST, LAST = dt.datetime(1, 1, 1, tzinfo=dt.UTC), dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)


def _micros(rng: random.Random, n: int) -> list[int]:
    lo, hi = (FIRST - EPOCH) // dt.timedelta(microseconds=1), (LAST - EPOCH) // dt.timedelta(microseconds=1)
    edges = [lo, hi, 0, -1, 1, 951_782_400_000_000, 951_868_799_999_999]  # and 2000-02-29 (a leap day)
    whole = [rng.randint(lo, hi) // 1_000_000 * 1_000_000 for _ in range(n // 2)]
    return edges + whole + [rng.randint(lo, hi) for _ in range(n // 2)]


def _expected(micros: int) -> str:
    value = EPOCH + dt.timedelta(microseconds=micros)
    fraction = f".{value.microsecond:06d}" if value.microsecond else ""
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value:%H:%M:%S}{fraction}Z"


@pytest.mark.parametrize("zone", ["UTC", None, "Europe/Stockholm"])
def test_timestamps_match_pythons_iso_form_in_utc(zone):
    micros = _micros(random.Random(7), 4000)
    column = pa.array([*micros, None], pa.timestamp("us", tz=zone))
    assert isotime.timestamps(column).to_pylist() == [*map(_expected, micros), None]
    assert xmltext.as_text(column).to_pylist() == [*map(_expected, micros), None]


def test_nanosecond_timestamps_are_cut_to_microseconds():
    column = pa.array([1_500_000_000_123_456_789, -1], pa.timestamp("ns", tz="UTC"))
    assert isotime.timestamps(column).to_pylist() == ["2017-07-14T02:40:00.123456Z", "1969-12-31T23:59:59.999999Z"]


def test_years_beyond_9999_take_arrows_own_form():
    after = pa.array([253_402_300_800_000_001, 0, None], pa.timestamp("us", tz="UTC"))  # 10000-01-01 and later
    assert isotime.timestamps(after).to_pylist() == ["10000-01-01T00:00:00.000001Z", "1970-01-01T00:00:00Z", None]
    days = pa.array([2_932_897, None], pa.int32()).cast(pa.date32())
    assert isotime.dates(days).to_pylist() == ["10000-01-01", None]


def test_dates_match_pythons_iso_form():
    rng = random.Random(11)
    days = [-719_162, 2_932_896, 0, -1, 11_016, *(rng.randint(-719_162, 2_932_896) for _ in range(4000))]
    column = pa.array([*days, None], pa.int32()).cast(pa.date32())
    expected = [(dt.date(1970, 1, 1) + dt.timedelta(days=d)).isoformat() for d in days]
    assert isotime.dates(column).to_pylist() == [*expected, None]


def test_escape_rewrites_only_what_needs_it_and_keeps_nulls():
    column = pa.array(["plain", 'a & b < c > "d"\r\n\te', None, "åäö ✓ 𝄞"])
    assert xmltext.escape(column).to_pylist() == [
        "plain",
        'a &amp; b &lt; c &gt; "d"&#13;\n\te',
        None,
        "åäö ✓ 𝄞",
    ]
    assert xmltext.escape(column, attribute=True).to_pylist()[1] == "a &amp; b &lt; c &gt; &quot;d&quot;&#13;&#10;&#9;e"


@pytest.mark.parametrize("bad", ["\x00", "\x0b", "\ufffe", "\uffff", "\x1f"])
def test_a_forbidden_character_names_its_row_not_its_value(bad):
    column = pa.array(["ok", "a & b", f"secret{bad}", "also ok"])
    with pytest.raises(xmltext.IllegalCharacter) as caught:
        xmltext.escape(column)
    assert caught.value.index == 2
    assert "secret" not in str(caught.value)


def test_rows_drop_the_element_of_a_null_value():
    ids = pa.array(["1", "2"], pa.large_string())
    title = pa.array(["Anteckning", None], pa.large_string())
    rows = xmltext.Rows().text("<doc id=").column(ids).value(title, "<title>", "</title>").text("</doc>")
    assert rows.render().to_pylist() == ["<doc id=1<title>Anteckning</title></doc>", "<doc id=2</doc>"]
