"""Rows per year: each table's clinical date, also where the table has no cut-off column."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from decommission.plan.mapping_spec import load_spec
from decommission.reconcile.breakdown import NO_YEAR, _years, date_column

REPO = Path(__file__).resolve().parents[3]


def test_a_table_without_a_cut_off_column_counts_under_its_date_fields_year():
    lab = load_spec(REPO / "include" / "mappings" / "lab.yaml")
    # the lab results (prov) have no cut-off column: their year is the answer time's, in unix seconds
    assert date_column(lab.tables["prov"]) == ("svarstid", "epoch_seconds")
    assert date_column(lab.tables["remiss"])[0] == "inkom"
    # a patient has no clinical date: it stays "without a date"
    assert date_column(lab.tables["lab_patient"]) == (None, "str")


def test_unix_seconds_give_the_local_year():
    new_year_utc = int(dt.datetime(2019, 12, 31, 23, 30, tzinfo=dt.UTC).timestamp())

    def year(value, transform, zone="UTC"):
        return _years(pa.array([value]), 1, transform, zone).to_pylist()[0]

    assert year(new_year_utc, "epoch_seconds", "Europe/Stockholm") == "2020"
    assert year(str(new_year_utc), "epoch_seconds", "UTC") == "2019"
    assert year(None, "epoch_seconds", "Europe/Stockholm") == NO_YEAR
    assert year("2003-04-05 10:00", "local_time") == "2003"
    assert year("", "str") == NO_YEAR
