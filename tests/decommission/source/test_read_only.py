"""The extraction session cannot write to a SQLite source, whatever statement it runs (issue 17, item 3)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from decommission.source.database import Source
from decommission.source.privileges import describe


@pytest.fixture
def source(tmp_path, monkeypatch):
    path = tmp_path / "legacy.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE patient (id INTEGER PRIMARY KEY, namn TEXT)")
        db.execute("INSERT INTO patient VALUES (1, 'Anna')")
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_RO", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return Source("legacy_ro"), path


def test_an_injected_write_fails_even_after_leaving_the_transaction(source):
    src, path = source
    with src.snapshot() as conn:
        cur = conn.cursor()
        cur.execute("COMMIT")  # what an injected statement would do first
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            cur.execute("DELETE FROM patient")
        with pytest.raises(sqlite3.OperationalError):  # nor can it open the same file again for writing
            cur.execute(f"ATTACH DATABASE 'file:{path}?mode=rw' AS again")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM patient").fetchone()[0] == 1
    assert src.write_access() == []


def test_privileges_are_told_per_role_and_table():
    rows = [
        ("legacy_owner", "CREATE", "vas"),
        ("legacy_owner", "DELETE", "patient"),
        ("legacy_owner", "INSERT", "patient"),
        ("postgres", "SUPERUSER", None),
    ]
    assert describe(rows[:3], "vas") == [
        "role 'legacy_owner' may CREATE objects in schema 'vas'",
        "role 'legacy_owner' may INSERT, DELETE on vas.patient",
    ]
    assert describe(rows, "vas") == ["role 'postgres' is a superuser: it may change anything"]


def test_a_failed_read_names_the_table_and_the_class_never_the_value():
    from decommission.source.database import _query_failed

    class InvalidDatetimeFormat(Exception):
        sqlstate = "22007"

    class ConnectionLost(Exception):
        sqlstate = "08006"

    value = 'invalid input syntax for type date: "Ring pat 19890616-7294"'
    bad_value = _query_failed("legacy_vas", "journalanteckning", InvalidDatetimeFormat(value))
    assert str(bad_value) == (
        "source 'legacy_vas', table 'journalanteckning': query failed: InvalidDatetimeFormat (22007)"
    )
    assert not bad_value.retryable  # no retry mends a value
    assert _query_failed("legacy_vas", "patient", ConnectionLost(value)).retryable  # the database may be back
