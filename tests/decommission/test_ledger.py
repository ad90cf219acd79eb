from __future__ import annotations

import sqlite3

import pytest

from decommission.errors import LedgerError
from decommission.ledger import Ledger


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    ledger = Ledger.sqlite(tmp_path / "ledger.sqlite")
    for i in range(5):
        ledger.append(system_id="vas", run_id="r1", kind="extract", payload={"partition": i, "rows": 10 * i})
    return ledger


class TestLedger:
    def test_intact_chain_verifies(self, ledger):
        assert ledger.verify() is None
        entries = ledger.entries(system_id="vas")
        assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
        assert all(b.prev_hash == a.entry_hash for a, b in zip(entries, entries[1:], strict=False))

    def test_changed_payload_is_named(self, ledger, tmp_path):
        with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
            db.execute('UPDATE ledger_entry SET payload = \'{"partition":2,"rows":99}\' WHERE seq = 3')
        broken = ledger.verify()
        assert broken is not None and broken.seq == 3
        with pytest.raises(LedgerError, match="ledger entry 3 \\(extract, vas\\) was changed"):
            ledger.require_intact()

    def test_deleted_entry_breaks_the_chain(self, ledger, tmp_path):
        with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
            db.execute("DELETE FROM ledger_entry WHERE seq = 2")
        assert ledger.verify().seq == 3

    def test_verify_command_names_the_changed_entry(self, ledger, tmp_path):
        import os
        import subprocess
        import sys
        from pathlib import Path

        repo = Path(__file__).resolve().parents[2]
        command = [
            sys.executable,
            "-m",
            "decommission",
            "ledger",
            "verify",
            "--sqlite",
            str(tmp_path / "ledger.sqlite"),
        ]
        env = {**os.environ, "PYTHONPATH": str(repo / "plugins")}
        intact = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert (intact.returncode, intact.stdout.strip()) == (0, "ledger intact: 5 entries")
        with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
            db.execute("UPDATE ledger_entry SET run_id = 'r2' WHERE seq = 4")
        changed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert changed.returncode == 1
        assert changed.stdout.strip() == "ledger entry 4 (extract, system vas, run r2) was changed"

    @pytest.mark.postgres
    def test_postgres_ledger(self, pg_dsn):
        import psycopg

        schema = "evidence_ledger_test"  # a schema of its own: other suites share this database
        with psycopg.connect(pg_dsn, autocommit=True) as db:
            db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            db.execute(f"CREATE SCHEMA {schema}")

        def connect():
            return psycopg.connect(pg_dsn, options=f"-c search_path={schema}")

        ledger = Ledger(connect, dialect="postgres")
        ledger.append(system_id="lab", run_id="r", kind="k", payload={"a": 1})
        ledger.append(system_id="lab", run_id="r", kind="k", payload={"a": 2})
        assert ledger.verify() is None
        for change in (
            "UPDATE ledger_entry SET kind = 'x' WHERE seq = 2",
            "DELETE FROM ledger_entry",
            "TRUNCATE ledger_entry",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="the ledger is append-only"), connect() as db:
                db.execute(change)
        assert len(ledger.entries()) == 2
        # only by switching the database's guard off (a superuser's act) can an entry change: verify names it
        with connect() as db:
            db.execute("ALTER TABLE ledger_entry DISABLE TRIGGER USER")
            db.execute("UPDATE ledger_entry SET kind = 'x' WHERE seq = 2")
        assert ledger.verify().seq == 2
        with psycopg.connect(pg_dsn, autocommit=True) as db:
            db.execute(f"DROP SCHEMA {schema} CASCADE")
