"""Extraction and mapping against a real PostgreSQL source, and preflight against its live schema."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import psycopg
import pytest

from decommission.errors import MappingError
from decommission.mapping.transform import map_partition
from decommission.plan.mapping_spec import load_spec
from decommission.reconcile.checks import sum_counts
from decommission.source.database import Source, make_partitions
from demo.generate import build

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def vas_pg(pg_dsn):
    import psycopg

    schema = f"it_vas_{os.getpid()}"
    dirt = build("vas", pg_dsn, seed=5, patients=60, schema=schema)
    yield pg_dsn, schema, dirt
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module")
def reader_dsn(vas_pg):
    """A login that may only SELECT the schema's tables: how the programme should read a source."""
    from demo.readonly import reader_connection

    dsn, schema, _ = vas_pg
    with reader_connection(dsn, schema) as url:
        yield url


@pytest.fixture
def source(vas_pg, reader_dsn, monkeypatch):
    from decommission.embedded import source_connection

    _, schema, _ = vas_pg
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_PG", source_connection(reader_dsn, schema))
    return Source("legacy_pg", schema=schema)


def test_partitions_extract_and_map_account_for_every_row(source, vas_pg, tmp_path):
    _, _, dirt = vas_pg
    spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
    assert source.dialect == "postgres"
    parts = make_partitions(source.patient_keys(spec), 25)
    assert len(parts) == 3 and parts[0].lo is None and parts[-1].hi is None
    results, extracted = [], []
    for part in parts:
        folder = tmp_path / part.id
        folder.mkdir()
        totals = source.extract_partition(
            spec, part, dt.date(2024, 9, 30), lambda t, f=folder: (f / f"{t}.parquet").open("wb")
        )
        extracted.append({t: v["rows"] for t, v in totals.items()})
        import pyarrow.parquet as pq

        results.append(
            map_partition(
                spec, lambda t, f=folder: pq.read_table(f / f"{t}.parquet").to_pandas(), folder / "mapped"
            ).to_dict()
        )
    assert sum_counts(extracted) == dict(sorted(dirt["tables"].items()))
    assert source.count_rows(spec, dt.date(2024, 9, 30)) == dirt["tables"]
    found: dict[str, dict[str, dict[str, int]]] = {"flagged": {}, "corrected": {}, "disposed": {}}
    for r in results:
        for kind, counts in found.items():
            for table, reasons in r[kind].items():
                counts[table] = sum_counts([counts.get(table, {}), reasons])
    from demo.generate import expected_outcome

    assert found == expected_outcome(dirt, spec)


def test_cut_off_bounds_extraction_and_recount(source):
    spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
    early = source.count_rows(spec, dt.date(2010, 1, 1))
    late = source.count_rows(spec, dt.date(2024, 9, 30))
    assert early["journalanteckning"] < late["journalanteckning"]
    assert early["patient"] == late["patient"]  # patients carry no clinical date


def test_preflight_names_the_missing_column(source, vas_pg, tmp_path, monkeypatch):
    """A mapping that names a column the live source lacks fails preflight with the spec line."""
    import shutil

    import yaml

    from decommission.plan.programme import Milestone, load_plan
    from decommission.stages import Run, preflight

    raw = yaml.safe_load((REPO / "include" / "mappings" / "vas.yaml").read_text(encoding="utf-8"))
    raw["tables"]["journalanteckning"]["fields"]["text"]["column"] = "anteckningstext"
    (tmp_path / "mappings").mkdir()
    shutil.copytree(REPO / "include" / "mappings" / "corrections", tmp_path / "mappings" / "corrections")
    (tmp_path / "mappings" / "vas.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    plan_raw = yaml.safe_load((REPO / "include" / "programme.yaml").read_text(encoding="utf-8"))
    plan_raw["systems"] = [s for s in plan_raw["systems"] if s["id"] == "vas"]
    plan_raw["systems"][0]["source"] = {"conn_id": "legacy_pg", "schema": vas_pg[1]}
    (tmp_path / "programme.yaml").write_text(yaml.safe_dump(plan_raw, allow_unicode=True), encoding="utf-8")
    plan = load_plan(tmp_path / "programme.yaml")
    run = Run(plan, plan.system("vas"), Milestone.TEST_DELIVERY, "r", dt.datetime(2025, 3, 3, tzinfo=dt.UTC))
    with pytest.raises(MappingError) as err:
        preflight(run)
    message = str(err.value)
    assert "mappings/vas.yaml: tables.journalanteckning: column 'anteckningstext' not in source table" in message
    assert json.dumps(message)  # one line, printable; names no patient data


def _extract(source: Source, spec, part, folder: Path) -> dict:
    folder.mkdir(parents=True)
    return source.extract_partition(spec, part, dt.date(2024, 9, 30), lambda t: (folder / f"{t}.parquet").open("wb"))


def test_fast_path_and_generic_path_stage_the_same_bytes(source, vas_pg, tmp_path):
    """ADBC (binary COPY to Arrow) and the psycopg named cursor give identical files and totals."""
    spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
    generic = Source(source.conn_id, schema=source.schema, fast=False)
    assert source._fast_conninfo() is not None and generic._fast_conninfo() is None
    part = make_partitions(source.patient_keys(spec), 25)[1]
    fast_totals = _extract(source, spec, part, tmp_path / "fast")
    generic_totals = _extract(generic, spec, part, tmp_path / "generic")
    assert fast_totals == generic_totals
    assert fast_totals["journalanteckning"]["rows"] > 0
    for table in spec.tables:
        name = f"{table}.parquet"
        assert (tmp_path / "fast" / name).read_bytes() == (tmp_path / "generic" / name).read_bytes(), table


def test_one_snapshot_per_partition(source, vas_pg, tmp_path):
    """Rows committed while a partition is read do not appear in it: every table comes from one snapshot."""
    import psycopg

    dsn, schema, _ = vas_pg
    spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
    part = make_partitions([], 1)[0]
    folder = tmp_path / "snap"
    folder.mkdir()
    opened = []

    def sink(table: str):
        if not opened:  # after the first table is read, another session adds a note and commits
            with psycopg.connect(dsn, autocommit=True) as db:
                db.execute(
                    f'INSERT INTO "{schema}".journalanteckning (ant_id, pat_id, skriven_tid, anteckning, makulerad) '
                    "SELECT max(ant_id) + 1, min(pat_id), '2020-01-01', 'Tillagd under läsning', 0 "
                    f'FROM "{schema}".journalanteckning'
                )
        opened.append(table)
        return (folder / f"{table}.parquet").open("wb")

    try:
        before = source.count_rows(spec, dt.date(2024, 9, 30))
        totals = source.extract_partition(spec, part, dt.date(2024, 9, 30), sink)
        assert opened[0] == "patient"
        assert totals["journalanteckning"]["rows"] == before["journalanteckning"]
        assert source.count_rows(spec, dt.date(2024, 9, 30))["journalanteckning"] == before["journalanteckning"] + 1
    finally:
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute(f"DELETE FROM \"{schema}\".journalanteckning WHERE anteckning = 'Tillagd under läsning'")


def test_a_column_of_the_sources_own_type_is_read_as_text(vas_pg, tmp_path, monkeypatch):
    """The fast path starts with the driver's built-in type catalogue; an enum makes it ask the server."""
    import psycopg

    from decommission.embedded import source_connection

    dsn, schema, _ = vas_pg
    copy = f"{schema}_enum"
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(f'DROP SCHEMA IF EXISTS "{copy}" CASCADE')
        db.execute(f'CREATE SCHEMA "{copy}"')
        for (table,) in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall():
            db.execute(f'CREATE TABLE "{copy}"."{table}" AS TABLE "{schema}"."{table}"')
        db.execute(f"CREATE TYPE \"{copy}\".kon AS ENUM ('M', 'K', 'X')")
        db.execute(f'ALTER TABLE "{copy}".patient ALTER COLUMN kon TYPE "{copy}".kon USING kon::"{copy}".kon')
    try:
        monkeypatch.setenv("AIRFLOW_CONN_LEGACY_ENUM", source_connection(dsn, copy))
        spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
        fast, generic = Source("legacy_enum", schema=copy), Source("legacy_enum", schema=copy, fast=False)
        assert fast._fast_conninfo() is not None
        part = make_partitions(fast.patient_keys(spec), 25)[0]
        assert _extract(fast, spec, part, tmp_path / "fast") == _extract(generic, spec, part, tmp_path / "generic")
        for table in spec.tables:
            name = f"{table}.parquet"
            assert (tmp_path / "fast" / name).read_bytes() == (tmp_path / "generic" / name).read_bytes(), table
    finally:
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute(f'DROP SCHEMA IF EXISTS "{copy}" CASCADE')


def test_catalogue_lists_every_table_column_key_and_row_count(source, vas_pg):
    from decommission.source.catalogue import read_catalogue

    dsn, schema, _ = vas_pg
    catalogue = read_catalogue(source)
    with psycopg.connect(dsn) as db:
        tables = {r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}
        notes = db.execute(f'SELECT COUNT(*) FROM "{schema}".journalanteckning').fetchone()[0]
        columns = [
            r[0]
            for r in db.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
                " ORDER BY ordinal_position",
                (schema, "journalanteckning"),
            )
        ]
    assert set(catalogue) == tables
    note = catalogue["journalanteckning"]
    assert [c.name for c in note.columns] == columns and note.rows == notes
    assert note.primary_key == ("ant_id",)


def test_a_schema_name_with_a_quote_stays_a_name(vas_pg, monkeypatch):
    """A name from configuration is quoted as an identifier: an embedded quote cannot end it (no SQL through it)."""
    from decommission.embedded import source_connection
    from decommission.source.catalogue import read_catalogue

    dsn, schema, _ = vas_pg
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_EVIL", source_connection(dsn, schema))
    evil = Source("legacy_evil", schema=f'{schema}"; DROP TABLE "{schema}".patient; --')
    assert read_catalogue(evil) == {}  # no such schema: nothing listed, nothing run
    assert evil.live_schema(["patient"]) == {}  # preflight then names the table as missing
    with psycopg.connect(dsn) as db:
        assert db.execute(f'SELECT COUNT(*) FROM "{schema}".patient').fetchone()[0] > 0


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)


def _escape_read_only(cur) -> None:
    """What an injected statement can do: end the read-only transaction and make the next one read-write."""
    cur.execute("COMMIT")
    cur.execute("SET TRANSACTION READ WRITE")  # allowed before the new transaction's first query


def test_the_reader_login_cannot_write_even_out_of_its_read_only_transaction(source, vas_pg, monkeypatch):
    """A read-only transaction is undone by SQL (shown with the owner's login, rolled back); a reader's is not."""
    from decommission.embedded import source_connection

    dsn, schema, _ = vas_pg
    with psycopg.connect(dsn) as db:
        before = db.execute(f'SELECT COUNT(*) FROM "{schema}".patient').fetchone()[0]
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_OWNER", source_connection(dsn, schema))
    with Source("legacy_owner", schema=schema).snapshot() as conn:
        cur = conn.cursor()
        _escape_read_only(cur)
        cur.execute(f'DELETE FROM "{schema}".patient')  # the setting did not hold: only the rollback saves it
        assert cur.rowcount == before
        conn.rollback()

    assert source.write_access() == []
    with source.snapshot() as conn:
        cur = conn.cursor()
        _escape_read_only(cur)
        with pytest.raises(Exception) as denied:
            cur.execute(f'DELETE FROM "{schema}".patient')
        assert _sqlstate(denied.value) == "42501", denied.value  # insufficient_privilege
        conn.rollback()
        cur = conn.cursor()
        _escape_read_only(cur)
        with pytest.raises(Exception) as denied:
            cur.execute(f'CREATE TABLE "{schema}".planted (x int)')
        assert _sqlstate(denied.value) == "42501", denied.value
    with psycopg.connect(dsn) as db:
        assert db.execute(f'SELECT COUNT(*) FROM "{schema}".patient').fetchone()[0] == before


def _preflight_run(tmp_path: Path, schema: str, conn_id: str, milestone):
    import shutil

    import yaml

    from decommission.plan.programme import load_plan
    from decommission.stages import Run

    (tmp_path / "mappings").mkdir(exist_ok=True)
    shutil.copy(REPO / "include" / "mappings" / "vas.yaml", tmp_path / "mappings" / "vas.yaml")
    shutil.copytree(
        REPO / "include" / "mappings" / "corrections", tmp_path / "mappings" / "corrections", dirs_exist_ok=True
    )
    plan_raw = yaml.safe_load((REPO / "include" / "programme.yaml").read_text(encoding="utf-8"))
    plan_raw["systems"] = [s for s in plan_raw["systems"] if s["id"] == "vas"]
    plan_raw["systems"][0]["source"] = {"conn_id": conn_id, "schema": schema}
    (tmp_path / "programme.yaml").write_text(yaml.safe_dump(plan_raw, allow_unicode=True), encoding="utf-8")
    plan = load_plan(tmp_path / "programme.yaml")
    return Run(plan, plan.system("vas"), milestone, "r", dt.datetime(2025, 3, 3, tzinfo=dt.UTC))


def test_preflight_names_a_login_that_could_write(vas_pg, tmp_path, monkeypatch, caplog):
    """A login with INSERT on one table, a superuser: refused before a delivery that counts, warned before a test."""
    from psycopg import sql

    from decommission.embedded import source_connection
    from decommission.errors import SourceWritable
    from decommission.ledger import programme_ledger
    from decommission.plan.programme import Milestone
    from decommission.stages import preflight
    from demo.readonly import create_reader, drop_reader

    dsn, schema, _ = vas_pg
    writer = f"{schema}_writer"
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "out"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    )
    url = create_reader(dsn, schema, name=writer)  # a SELECT-only role, then given INSERT on one table
    try:
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute(
                sql.SQL("GRANT INSERT ON {}.patient TO {}").format(sql.Identifier(schema), sql.Identifier(writer))
            )
        monkeypatch.setenv("AIRFLOW_CONN_LEGACY_W", source_connection(url, schema))
        assert Source("legacy_w", schema=schema).write_access() == [f"role '{writer}' may INSERT on {schema}.patient"]
        with pytest.raises(SourceWritable) as refused:
            preflight(_preflight_run(tmp_path, schema, "legacy_w", Milestone.FINAL_DELIVERY))
        assert f"may INSERT on {schema}.patient" in str(refused.value) and "SELECT" in str(refused.value)
        assert not refused.value.retryable
    finally:
        drop_reader(dsn, schema, name=writer)

    # the tests' own login is a superuser: named, and only a test delivery goes ahead
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_OWNER", source_connection(dsn, schema))
    assert "is a superuser" in Source("legacy_owner", schema=schema).write_access()[0]
    result = preflight(_preflight_run(tmp_path, schema, "legacy_owner", Milestone.TEST_DELIVERY))
    assert result["milestone"] == "test_delivery"
    assert "the login could change the legacy database" in caplog.text
    access = programme_ledger().entries(system_id="vas", kind="source_access")
    assert [e.payload["read_only"] for e in access] == [False, False]
    with pytest.raises(SourceWritable):
        preflight(_preflight_run(tmp_path, schema, "legacy_owner", Milestone.PRODUCTION_DELIVERY))
