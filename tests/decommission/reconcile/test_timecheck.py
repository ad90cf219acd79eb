"""Converted times are checked against a conversion made another way: a broken conversion is caught."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from decommission.mapping import localtime
from decommission.mapping.transform import map_partition
from decommission.model import ENTITIES
from decommission.plan.mapping_spec import MappingSpec
from decommission.privacy import keyed_hash
from decommission.reconcile import timecheck
from decommission.reconcile.readback import _render, _times_converted_independently, compare

SPEC = MappingSpec.model_validate(
    {
        "system": "boston",
        "timezone": "America/New_York",
        "patient_table": "pat",
        "tables": {
            "pat": {
                "entity": "patient",
                "key": "id",
                "patient_key": "id",
                "fields": {"patient_key": {"column": "id"}},
            },
            "note": {
                "entity": "document",
                "key": "id",
                "patient_key": "pat",
                "fields": {
                    "document_id": {"column": "id"},
                    "patient_key": {"column": "pat"},
                    "time": {"column": "t", "transform": "local_time"},
                },
            },
        },
    }
)
TIMES = [dt.datetime(2180, 8, 7, 6, 15), dt.datetime(2025, 11, 2, 1, 30), dt.datetime(2025, 3, 9, 2, 30), None]


def _arrow_only(local: pa.Array, zone: str):
    """The conversion before this fix: Arrow's own rules, which stop applying DST after 2037."""
    utc = pc.assume_timezone(local.cast(pa.timestamp("us")), zone, ambiguous="latest", nonexistent="latest")
    return utc.cast(pa.timestamp("us", tz="UTC")), np.zeros(len(local), dtype=np.int8)


def _differences(tmp_path) -> list[dict[str, str]]:
    """Map the source, then compare the mapped records with the same records with times converted independently."""
    extract = tmp_path / "extract"
    extract.mkdir()
    tables = {
        "pat": pa.table({"id": [1]}),
        "note": pa.table({"id": [1, 2, 3, 4], "pat": [1] * 4, "t": pa.array(TIMES, pa.timestamp("us"))}),
    }
    for name, table in tables.items():
        pq.write_table(table, extract / f"{name}.parquet")
    map_partition(SPEC, lambda t: pq.read_table(extract / f"{t}.parquet"), tmp_path / "mapped")
    rows = pq.read_table(tmp_path / "mapped" / "document.parquet").to_pylist()
    archived = {"document": {r["document_id"]: _render("document", r) for r in rows}}
    mapped = {e: {} for e in ENTITIES} | {"document": {r["document_id"]: dict(r) for r in rows}}
    _times_converted_independently(SPEC, extract, mapped)
    expected = {"document": {k: _render("document", r) for k, r in mapped["document"].items()}}
    return compare(expected, archived)


def test_the_conversion_agrees_with_the_independent_one(tmp_path):
    assert _differences(tmp_path) == []


def test_a_broken_conversion_is_caught(tmp_path, monkeypatch):
    monkeypatch.setattr(localtime, "convert", _arrow_only)
    found = _differences(tmp_path)
    # the 2180 summer time (no DST in Arrow's rules) and the spring-gap time (read another way) differ
    assert [(d["entity"], d["record"], d["field"], d["kind"]) for d in found] == [
        ("document", keyed_hash("1"), "time", "differs"),
        ("document", keyed_hash("3"), "time", "differs"),
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (dt.datetime(2180, 8, 7, 6, 15), "2180-08-07T10:15:00Z"),
        ("2180-08-07 06:15:00.250000", "2180-08-07T10:15:00.250000Z"),
        (dt.date(2025, 11, 2), "2025-11-02T04:00:00Z"),
        (dt.datetime(2025, 11, 2, 1, 30), "2025-11-02T06:30:00Z"),  # ambiguous: standard time, the later
        (dt.datetime(2025, 3, 9, 2, 30), "2025-03-09T07:30:00Z"),  # missing: the offset before the change
        (dt.datetime(2180, 8, 7, 10, 15, tzinfo=dt.UTC), "2180-08-07T10:15:00Z"),
        (None, None),
    ],
)
def test_utc_text_renders_as_the_record_file(value, text):
    assert timecheck.utc_text(value, "America/New_York") == text


def _walls_around_changes() -> list[dt.datetime | None]:
    """Every quarter hour of the change days of 2025 and of 2180 (New York and Stockholm), a summer day, a null."""
    days = [dt.date(y, m, d) for y in (2025, 2180) for m, d in ((3, 9), (3, 30), (11, 2), (10, 26), (7, 1))]
    days += [dt.date(2180, 3, 10), dt.date(2180, 11, 3), dt.date(2180, 3, 31), dt.date(2180, 10, 27)]
    walls: list[dt.datetime | None] = [
        dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=15 * i, microseconds=7 * (i % 3))
        for day in days
        for i in range(96)
    ]
    return [*walls, None]


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Stockholm", "Australia/Lord_Howe"])
@pytest.mark.parametrize("written", ["timestamp", "text", "date"])
def test_a_whole_column_is_converted_as_each_value_on_its_own(zone, written):
    walls = _walls_around_changes()
    if written == "timestamp":
        column = pa.array(walls, pa.timestamp("us"))
    elif written == "date":
        column = pa.array([w and w.date() for w in walls], pa.date32())
    else:
        column = pa.array([w and w.isoformat(sep=" ") for w in walls], pa.string())
    one_by_one = [timecheck.utc_text(v, zone) for v in column.to_pylist()]
    assert timecheck.utc_texts(column, zone).to_pylist() == one_by_one
    assert one_by_one[-1] is None and one_by_one[0].endswith("Z")


def test_a_column_of_other_forms_goes_value_by_value():
    column = pa.array(["2025-03-09T02:30:00", "9 March 2025 01:00", None])
    assert timecheck.utc_texts(column, "America/New_York").to_pylist() == [
        "2025-03-09T07:30:00Z",
        "2025-03-09T06:00:00Z",
        None,
    ]


def test_values_outside_the_plain_form_go_alone_the_rest_together():
    column = pa.array(
        ["2025-07-01 10:00:00", "9999-12-31 00:00:00", "1 July 2025 10:00", " 2025-07-01 10:00:00.5 ", None]
    )
    assert timecheck.utc_texts(column, "Europe/Stockholm").to_pylist() == [
        timecheck.utc_text(v, "Europe/Stockholm") for v in column.to_pylist()
    ]


@pytest.mark.parametrize(
    ("zone", "years"),
    [
        ("America/Sao_Paulo", (2017, 2018)),  # changes at midnight (a day starting in its gap)
        ("Europe/Stockholm", (1979, 1980, 2037, 2038)),  # no summer time before 1980; pyarrow's rules end in 2037
        ("Australia/Lord_Howe", (2179, 2180)),  # half-hour changes, the year turning in summer time
        ("America/New_York", (1918, 1945)),  # war time: one change in a year
    ],
)
def test_every_day_of_whole_years_agrees_with_the_values_one_by_one(zone, years):
    start = dt.datetime(min(years), 1, 1)
    hours = (dt.datetime(max(years) + 1, 1, 1) - start) // dt.timedelta(hours=1)
    walls = [start + dt.timedelta(hours=h, minutes=7 * (h % 9)) for h in range(0, hours, 5)]
    column = pa.array(walls, pa.timestamp("us"))
    assert timecheck.utc_texts(column, zone).to_pylist() == [timecheck.utc_text(w, zone) for w in walls]
