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
from decommission.plan.mapping_spec import check_against_source, load_spec
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
    import re

    found = re.search(
        r"mappings/vas\.yaml: line (\d+): tables\.journalanteckning: column 'anteckningstext' not in", message
    )
    assert found, message
    written = (tmp_path / "mappings" / "vas.yaml").read_text(encoding="utf-8").splitlines()
    assert "anteckningstext" in written[int(found.group(1)) - 1]  # the line that names the column
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
    from decommission.plan.mapping_spec import Relation

    assert evil.live_schema([Relation(None, None, "patient")]) == {}  # preflight then names the table as missing
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


# ------------------------------------------------------------------ a real schema: two schemas, joins, a query


HIS_SPEC = """\
system: his
patient_table: person
tables:
  person:
    entity: patient
    schema: {demo}
    key: person_id
    patient_key: person_id
    join:
      - {{table: namn, schema: {demo}, as: n, on: {{person_id: person_id}}}}
    fields:
      patient_key: {{column: person_id}}
      given_name: {{column: n.fornamn}}
      family_name: {{column: n.efternamn}}
    constants: {{protected_identity: false, blocked: false, confidential: false}}
  diagnos:
    entity: diagnosis
    schema: {klinik}
    key: [vistelse_id, rad]
    key_prefix: "icd10-"
    patient_key: person_id
    cutoff_column: tid
    fields:
      patient_key: {{column: person_id}}
      code: {{column: kod}}
      case_id: {{compose: "vistelse-{{vistelse_id}}"}}
  diagnos9:
    entity: diagnosis
    # a '%' in the query is the query's own (not a bind parameter), on every driver path
    query: >-
      SELECT d.vistelse_id, d.rad, v.person_id, d.kod9, v.tid FROM "{klinik}".diagnos9 d
      JOIN "{klinik}".vistelse v ON v.vistelse_id = d.vistelse_id WHERE d.kod9 NOT LIKE 'E%'
    reads: ["{klinik}.diagnos9", "{klinik}.vistelse"]
    key: [vistelse_id, rad]
    key_prefix: "icd9-"
    patient_key: person_id
    cutoff_column: tid
    fields:
      patient_key: {{column: person_id}}
      code: {{column: kod9}}
"""


@pytest.fixture
def his_pg(pg_dsn, monkeypatch, tmp_path):
    """Two schemas: demographics (person + names) and the clinic (diagnoses, ICD-9 by stay)."""
    from decommission.embedded import source_connection

    demo, klinik = f"it_demo_{os.getpid()}", f"it_klinik_{os.getpid()}"
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        for s in (demo, klinik):
            db.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE; CREATE SCHEMA "{s}"')
        db.execute(f'CREATE TABLE "{demo}".person (person_id int PRIMARY KEY)')
        db.execute(f'CREATE TABLE "{demo}".namn (person_id int, fornamn text, efternamn text)')
        db.execute(f'CREATE TABLE "{klinik}".vistelse (vistelse_id int, person_id int, tid timestamp)')
        db.execute(
            f'CREATE TABLE "{klinik}".diagnos (vistelse_id int, rad int, person_id int, kod char(7), tid timestamp)'
        )
        db.execute(f'CREATE TABLE "{klinik}".diagnos9 (vistelse_id int, rad int, kod9 text)')
        db.execute(f'INSERT INTO "{demo}".person VALUES (1), (2), (3)')
        db.execute(f"INSERT INTO \"{demo}\".namn VALUES (1, 'Anna', 'Berg'), (2, 'Erik', 'Ek'), (3, 'Lo', NULL)")
        db.execute(
            f"INSERT INTO \"{klinik}\".vistelse VALUES (10, 1, '2020-01-02'), (11, 2, '2021-03-04'), "
            "(12, 3, '2030-01-01')"
        )
        # (10, 1) and (11, 1): the row number repeats across stays, only the pair is a key
        db.execute(
            f"INSERT INTO \"{klinik}\".diagnos VALUES (10, 1, 1, 'I10', '2020-01-02'), (10, 2, 1, 'E11', '2020-01-02'),"
            " (11, 1, 2, 'J45', '2021-03-04'), (12, 1, 3, 'K35', '2030-01-01')"
        )
        db.execute(f"INSERT INTO \"{klinik}\".diagnos9 VALUES (10, 1, '401.9'), (11, 1, 'V45'), (11, 2, 'E880')")
    spec_path = tmp_path / "his.yaml"
    spec_path.write_text(HIS_SPEC.format(demo=demo, klinik=klinik), encoding="utf-8")
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_HIS", source_connection(pg_dsn, None))
    yield load_spec(spec_path), pg_dsn, klinik
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        for s in (demo, klinik):
            db.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')


@pytest.mark.parametrize("fast", [True, False], ids=["arrow", "dbapi"])
def test_joins_schemas_queries_and_composite_keys_extract_and_map(his_pg, tmp_path, fast):
    import pyarrow.parquet as pq

    from decommission.source.database import Partition

    spec, _, _ = his_pg
    source = Source("legacy_his", fast=fast)
    live = source.live_schema([r for t in spec.tables for r in spec.relations(t)])
    assert check_against_source(spec, live) == []
    assert source.patient_keys(spec) == [1, 2, 3]
    cut_off = dt.date(2024, 9, 30)
    assert source.count_rows(spec, cut_off) == {"person": 3, "diagnos": 3, "diagnos9": 2}
    totals = source.extract_partition(
        spec, Partition("p1", None, None), cut_off, lambda t: (tmp_path / f"{t}.parquet").open("wb")
    )
    assert {t: v["rows"] for t, v in totals.items()} == {"person": 3, "diagnos": 3, "diagnos9": 2}
    assert pq.read_table(tmp_path / "diagnos.parquet")["_row_key"].to_pylist() == [
        "icd10-10-1",
        "icd10-10-2",
        "icd10-11-1",
    ]
    result = map_partition(spec, lambda t: pq.read_table(tmp_path / f"{t}.parquet"), tmp_path / "mapped")
    assert result.mapped == {"person": 3, "diagnos": 3, "diagnos9": 2}
    people = pq.read_table(tmp_path / "mapped" / "patient.parquet").to_pylist()
    assert [(p["given_name"], p["family_name"]) for p in people] == [("Anna", "Berg"), ("Erik", "Ek"), ("Lo", None)]
    diagnoses = pq.read_table(tmp_path / "mapped" / "diagnosis.parquet").to_pylist()
    assert [(d["diagnosis_id"], d["case_id"]) for d in diagnoses] == [
        ("icd10-10-1", "vistelse-10"),
        ("icd10-10-2", "vistelse-10"),
        ("icd10-11-1", "vistelse-11"),
        ("icd9-10-1", None),
        ("icd9-11-1", None),
    ]


@pytest.mark.parametrize("fast", [True, False], ids=["arrow", "dbapi"])
def test_a_duplicate_key_fails_extraction_naming_table_and_key_columns(his_pg, tmp_path, fast):
    from decommission.errors import SourceError
    from decommission.privacy import keyed_hash
    from decommission.source.database import Partition

    spec, dsn, klinik = his_pg
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(f"INSERT INTO \"{klinik}\".diagnos VALUES (10, 2, 1, 'E12', '2020-01-02')")
    with pytest.raises(SourceError) as err:
        Source("legacy_his", fast=fast).extract_partition(
            spec, Partition("p1", None, None), dt.date(2024, 9, 30), lambda t: (tmp_path / f"{t}.parquet").open("wb")
        )
    message = str(err.value)
    assert "table 'diagnos': 2 rows share their key with another row (key columns: vistelse_id, rad;" in message
    assert keyed_hash("icd10-10-2") in message and "E12" not in message and "icd10-10-2" not in message


def test_preflight_names_the_spec_line_of_a_missing_join_column(his_pg, tmp_path):
    spec, _, _ = his_pg
    broken = tmp_path / "broken.yaml"
    broken.write_text(spec.path.read_text(encoding="utf-8").replace("n.efternamn", "n.familjenamn"), encoding="utf-8")
    spec = load_spec(broken)
    source = Source("legacy_his")
    problems = check_against_source(spec, source.live_schema([r for t in spec.tables for r in spec.relations(t)]))
    assert len(problems) == 1
    assert f"{broken}: line 14: tables.person: column 'familjenamn' not in source table" in problems[0]


@pytest.mark.parametrize("fast", [True, False], ids=["arrow", "dbapi"])
def test_a_patient_table_from_a_query_keeps_its_percent_signs(his_pg, tmp_path, fast):
    spec, _, _ = his_pg
    text = spec.path.read_text(encoding="utf-8")
    demo = text.split("schema: ", 1)[1].split("\n", 1)[0]
    person = text[text.index("  person:\n") : text.index("  diagnos:\n")]
    query = (
        "  person:\n    entity: patient\n"
        f"    query: SELECT person_id, fornamn FROM \"{demo}\".namn WHERE fornamn LIKE '%n%'\n"
        f"    reads: [{demo}.namn]\n"
        "    key: person_id\n    patient_key: person_id\n"
        "    fields:\n      patient_key: {column: person_id}\n      given_name: {column: fornamn}\n"
        "    constants: {protected_identity: false, blocked: false, confidential: false}\n"
    )
    path = tmp_path / "query.yaml"
    path.write_text(text.replace(person, query), encoding="utf-8")
    source = Source("legacy_his", fast=fast)
    spec = load_spec(path)
    assert source.patient_keys(spec) == [1]  # 'Anna' has an n; 'Erik' and 'Lo' do not
    assert source.count_rows(spec, dt.date(2024, 9, 30))["person"] == 1
