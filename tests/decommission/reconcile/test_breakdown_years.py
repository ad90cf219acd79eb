"""Rows per year: each table's clinical date, also where the table has no cut-off column."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from decommission.plan.mapping_spec import load_spec
from decommission.reconcile.breakdown import NO_YEAR, _year, date_column

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
    assert _year(new_year_utc, "epoch_seconds", "Europe/Stockholm") == "2020"
    assert _year(str(new_year_utc), "epoch_seconds", "UTC") == "2019"
    assert _year(None, "epoch_seconds", "Europe/Stockholm") == NO_YEAR
    assert _year("2003-04-05 10:00", "local_time") == "2003"
    assert _year("", "str") == NO_YEAR
