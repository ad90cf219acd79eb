"""No patient data outside the packages (issue 17, item 1): every stage fails on rows full of it, nothing leaks.

A PostgreSQL source is built for the test whose every text column holds a personnummer and a
journal sentence (the patient key too, in one case). The real DAG runs with ``dag.test()``,
once per fault, each making another stage fail: preflight (a patient key that is a personnummer),
extraction (the database errors on a value while reading), mapping (a journal sentence in a date
column), packaging (a package over its byte bound) and the archive (a package rejected, so
reconcile and report run). Then everything the programme wrote outside the packages and the
staging is scanned for the identifiers and the sentence in every spelling: task log files under
``AIRFLOW_HOME/logs``, everything printed and logged while the runs ran, XCom rows and the rest of
Airflow's metadata database, the ledger, alerts, receipts, validation and reconciliation reports.
The packages and the staging are scanned too, as the control: the same scan must find the data
there, or it proves nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import stat
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql

from demo.readonly import create_reader, reader_connection, reader_role

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres

#: the patients' personnummer (valid check digits) and the journal sentence every text column carries
PERSONNUMMER = ("19890616-7294", "19750312-1233", "20010101-0015")
SENTENCE = "Ring pat ang. svar på biopsin, orolig för metastaser"


def _spellings(pnr: str) -> list[str]:
    """Every way a personnummer may be written: 12 or 10 digits, with or without the hyphen."""
    digits = pnr.replace("-", "")
    return [pnr, digits, pnr[2:], digits[2:]]


NEEDLES = [s for p in PERSONNUMMER for s in _spellings(p)] + [SENTENCE, "orolig för metastaser", "biopsin"]


def _poisoned(pnr: str) -> str:
    return f"{SENTENCE} ({pnr})"


def _build_source(dsn: str, schema: str, *, keys_are_pnr: bool = False, date_text: bool = False, view: bool = False):
    """The anaesthesia system's two tables, every text column holding a personnummer and the sentence.

    :param keys_are_pnr: the patient key is the personnummer (as a number)
    :param date_text: the operation's date column holds the sentence instead of a date
    :param view: ``operation`` is a view that makes the database fail on a value while it is read
    """
    s = sql.Identifier(schema)
    with psycopg.connect(dsn, autocommit=True) as db:
        # a failed task of an in-process dag.test() run may hold its snapshot until collected: end it
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid()",
            (reader_role(schema),),
        )
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(s))
        db.execute(sql.SQL("CREATE SCHEMA {}").format(s))
        db.execute(
            sql.SQL(
                "CREATE TABLE {}.ana_patient (id bigint PRIMARY KEY, personnummer text, fornamn text, efternamn text)"
            ).format(s)
        )
        db.execute(
            sql.SQL(
                "CREATE TABLE {}.{} (op_id bigint PRIMARY KEY, patient bigint, op_datum text, asa_klass text, "
                "anestesiform text, anteckning text, makulerad integer)"
            ).format(s, sql.Identifier("operation_rows" if view else "operation"))
        )
        for n, pnr in enumerate(PERSONNUMMER, start=1):
            key = int(pnr.replace("-", "")) if keys_are_pnr else n
            db.execute(
                sql.SQL("INSERT INTO {}.ana_patient VALUES (%s, %s, %s, %s)").format(s),
                (key, pnr, _poisoned(pnr), _poisoned(pnr)),
            )
            for k in range(2):
                date = _poisoned(pnr) if date_text else f"2020-0{k + 1}-1{n} 08:30:00"
                db.execute(
                    sql.SQL("INSERT INTO {}.{} VALUES (%s, %s, %s, %s, %s, %s, 0)").format(
                        s, sql.Identifier("operation_rows" if view else "operation")
                    ),
                    (n * 10 + k, key, date, _poisoned(pnr), _poisoned(pnr), _poisoned(pnr)),
                )
        if view:
            # a legacy view whose expression fails on the row's text: PostgreSQL's message quotes the value
            db.execute(
                sql.SQL(
                    "CREATE VIEW {}.operation AS SELECT op_id, patient, op_datum, asa_klass, anestesiform, "
                    "CAST(anteckning AS date)::text AS anteckning, makulerad FROM {}.operation_rows"
                ).format(s, s)
            )
    create_reader(dsn, schema)  # the schema is new: grant its tables to the SELECT-only login again


@pytest.fixture(scope="module")
def airflow_db():
    from airflow.utils import db

    db.resetdb()


@pytest.fixture
def pii_system(tmp_path, monkeypatch, pg_dsn, airflow_db):
    """The demo plan's anaesthesia system alone, on a PostgreSQL schema of this test, read by a SELECT-only role."""
    schema = f"pii_{os.getpid()}"
    _build_source(pg_dsn, schema)
    with reader_connection(pg_dsn, schema) as reader_dsn:
        plan = yaml.safe_load((REPO / "include" / "programme.yaml").read_text(encoding="utf-8"))
        entry = next(s for s in plan["systems"] if s["id"] == "anestesi")
        entry["source"] = {"conn_id": "legacy_pii", "schema": schema, "max_connections": 1}
        entry["partition_patients"] = 2  # two packages: each stage runs more than once
        plan["systems"] = [entry]
        (tmp_path / "mappings").mkdir()
        shutil.copy(REPO / "include" / "mappings" / "anestesi.yaml", tmp_path / "mappings" / "anestesi.yaml")
        (tmp_path / "programme.yaml").write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")

        from decommission.embedded import source_connection

        monkeypatch.setenv("DECOMMISSION_PLAN", str(tmp_path / "programme.yaml"))
        monkeypatch.setenv("AIRFLOW_CONN_LEGACY_PII", source_connection(reader_dsn, schema))
        monkeypatch.setenv(
            "AIRFLOW_CONN_PROGRAMME_LEDGER",
            json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "out" / "ledger.sqlite")}),
        )
        monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "out"))
        yield schema
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _dag():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("decommission_anestesi")
    assert dag is not None, "the test plan builds no DAG for anestesi"
    dag.deadline = None  # Airflow 3.3.2: dag.test() crashes on deadline alerts (see demo/run.py)
    for task in dag.tasks:
        task.retries = 1  # a retry logs the failure again; backoff only slows the test
        task.retry_delay = dt.timedelta(0)
        task.retry_exponential_backoff = 0
    return dag


def _run(dag, day: dt.date):
    run = dag.test(
        logical_date=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC), run_conf={"milestone": "test_delivery"}
    )
    return run, {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def _found(data: bytes) -> list[str]:
    """The needles in ``data``, read as UTF-8 and as the JSON escapes of non-ASCII text."""
    text = data.decode("utf-8", "replace")
    escaped = data.decode("ascii", "replace")
    return [n for n in NEEDLES if n in text or json.dumps(n)[1:-1] in escaped]


def _scan(paths: list[Path]) -> dict[str, list[str]]:
    hits = {}
    for path in paths:
        if path.is_file():
            found = _found(path.read_bytes())
            if found:
                hits[str(path)] = found
    return hits


def test_no_source_value_leaves_the_packages_whatever_stage_fails(
    pii_system, pg_dsn, tmp_path, monkeypatch, r7sim_factory, capfd, caplog
):
    schema = pii_system
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    failed: dict[str, dict[str, str]] = {}

    # 1. preflight: the patient key is the personnummer
    _build_source(pg_dsn, schema, keys_are_pnr=True)
    server = r7sim_factory.start("--reject", "anestesi-LO-2025-ANE-01-p0002-test")
    monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", server.connection_uri())
    dag = _dag()
    _, failed["preflight"] = _run(dag, dt.date(2025, 5, 5))
    assert failed["preflight"]["preflight"] == "failed", failed["preflight"]

    # 2. extraction: the database fails on a value while it is read
    _build_source(pg_dsn, schema, view=True)
    _, failed["extract"] = _run(dag, dt.date(2025, 5, 6))
    assert failed["extract"]["extract"] == "failed", failed["extract"]

    # 3. mapping: a journal sentence in the date column
    _build_source(pg_dsn, schema, date_text=True)
    _, failed["map"] = _run(dag, dt.date(2025, 5, 7))
    assert failed["map"]["extract"] == "success" and failed["map"]["map_partition"] == "failed", failed["map"]

    # 4. packaging: a package over its byte bound
    _build_source(pg_dsn, schema)
    monkeypatch.setenv("DECOMMISSION_PACKAGE_MAX_BYTES", "4096")
    _, failed["package"] = _run(dag, dt.date(2025, 5, 8))
    assert failed["package"]["map_partition"] == "success" and failed["package"]["package"] == "failed"
    monkeypatch.delenv("DECOMMISSION_PACKAGE_MAX_BYTES")

    # 5. the archive rejects one package: reconcile and report run, the report says FAIL
    _, failed["archive"] = _run(dag, dt.date(2025, 5, 9))
    assert failed["archive"]["await_ingest"] == "failed", failed["archive"]
    assert failed["archive"]["reconcile"] == "success" and failed["archive"]["report"] == "failed"
    report = out / "anestesi" / "reconciliation" / "test_delivery"
    assert (report / "report.html").is_file() and (report / "result.json").is_file()

    # the control: the same scan finds the data where it belongs (packages), so it can find it
    packages = sorted((out / "anestesi" / "packages").glob("*.tar"))
    assert packages and _scan(packages)

    # everything written outside the packages and the staging
    written = [
        p
        for p in out.rglob("*")
        if p.is_file() and "packages" not in p.relative_to(out).parts[:2] and "staging" not in p.parts
    ]
    assert any(p.name == "ledger.sqlite" for p in written) and any(p.suffix == ".html" for p in written)
    home = Path(os.environ["AIRFLOW_HOME"])
    logs = [p for p in (home / "logs").rglob("*") if p.is_file()] if (home / "logs").exists() else []
    leaks = _scan(written + logs)
    assert not leaks, f"patient data found in: {leaks}"

    # XCom rows of these runs (and the whole metadata database, its WAL included)
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        xcoms = [
            json.dumps(x.value, default=str).encode("utf-8")
            for x in session.query(XComModel).filter(XComModel.dag_id == "decommission_anestesi")
        ]
    assert len(xcoms) > 5, "the runs left too few XCom rows to prove anything"
    assert not [x for x in xcoms if _found(x)]
    database = Path(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))
    assert not _scan([database, database.with_name(database.name + "-wal")])

    # what the tasks printed and logged while the runs ran
    printed = capfd.readouterr()
    said = printed.out + printed.err + caplog.text
    # each failure still names the place and the kind of fault
    assert "patient_key column 'id' holds personal identity numbers" in said
    assert "table 'operation': query failed: " in said
    assert "table 'operation', column 'op_datum' (field time, transform local_time): row " in said
    assert "not shown" in said
    assert not _found((printed.out + printed.err).encode("utf-8"))
    assert not _found(caplog.text.encode("utf-8"))
    assert not [r for r in caplog.records if _found(str(r.exc_info and r.exc_info[1] or "").encode("utf-8"))]

    # files readable by the service only: no permission for others on anything written
    with contextlib.suppress(FileNotFoundError):
        world = [str(p) for p in out.rglob("*") if stat.S_IMODE(p.stat().st_mode) & 0o007]
        assert not world, f"readable or writable by others: {world}"


def test_read_back_connection_error_names_no_patient_key(monkeypatch, capfd):
    """The archive does not answer the read-back: the error and the retry log name the request, not the key."""
    import socket

    import tenacity

    from decommission.deliver.archive import ArchiveHook
    from decommission.errors import ArchiveError

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_R7_ARCHIVE",
        json.dumps(
            {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": port,
                "schema": "http",
                "login": "u",
                "password": "p",
                "extra": {"timeout": 2, "allow_insecure_http": True},
            }
        ),
    )
    key = "198906167294"
    hook = ArchiveHook(retry_args={"wait": tenacity.wait_none(), "stop": tenacity.stop_after_attempt(2)})
    with pytest.raises(ArchiveError) as caught:
        hook.read_record("anestesi-p0001", key)
    assert "could not be reached" in str(caught.value) and "<patient key>" in str(caught.value)
    assert key not in str(caught.value)
    logged = capfd.readouterr()
    assert "Tenacity will retry" in logged.out + logged.err and "retrying" in logged.out + logged.err
    assert key not in logged.out + logged.err
