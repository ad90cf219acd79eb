"""The scaffold on every demo source: its draft loads, builds a DAG, and carries a test delivery to valid packages.

Each demo system is built by ``demo.generate`` into a SQLite file and into PostgreSQL (read through a
SELECT-only login, as the README asks), scaffolded with ``python -m decommission scaffold`` as the
onboarding guide writes it, and its draft used as the system's mapping in a one-system plan: the DAG
file builds the system's DAG from it, and the test delivery's stage functions (plan_partitions, then
extract, map, package and validate of every partition) reach valid packages. A new demo system is one
entry of :data:`SOURCES`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from decommission.__main__ import main

REPO = Path(__file__).resolve().parents[2]
#: demo system -> the schemas its PostgreSQL build holds ("{s}": the schema the test gives ``build``); the first is
#: the source's own. A system of several schemas names them all, e.g. ("{s}", "{s}_lab"); SQLite has one.
SOURCES: dict[str, tuple[str, ...]] = {"vas": ("{s}",), "lab": ("{s}",), "anestesi": ("{s}",)}
PATIENTS = 30
LOGICAL_DATE = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)


def _plan(work: Path, system: str, conn_id: str, schema: str, draft: Path) -> Path:
    """A one-system plan: the demo plan's entry for ``system`` (the VAS entry for a system it lacks), on the draft."""
    raw = yaml.safe_load((REPO / "include" / "programme.yaml").read_text(encoding="utf-8"))
    entry = next((s for s in raw["systems"] if s["id"] == system), None)
    if entry is None:
        entry = {**next(s for s in raw["systems"] if s["id"] == "vas"), "id": system, "name": f"{system} (scaffold)"}
    entry = {k: v for k, v in entry.items() if k not in ("exclusions", "waivers")}  # they name the real mapping's
    entry["source"] = {"conn_id": conn_id, "schema": schema, "max_connections": 1}
    entry["mapping"] = f"mappings/{draft.name}"
    raw["systems"] = [entry]
    path = work / "programme.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _source(backend: str, system: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, list[str]]:
    """Build the demo source; return the connection's JSON and the schemas to scaffold."""
    from decommission.embedded import source_connection
    from demo.generate import build

    if backend == "sqlite":
        target = tmp_path / f"{system}.sqlite"
        build(system, str(target), seed=5, patients=PATIENTS)
        return source_connection(str(target), None), []
    from demo.readonly import create_reader, drop_reader

    dsn = request.getfixturevalue("pg_dsn")
    schema = f"scaffold_{system}"
    build(system, dsn, seed=5, patients=PATIENTS, schema=schema)
    schemas = [s.format(s=schema) for s in SOURCES[system]]
    request.addfinalizer(lambda: _drop_schemas(dsn, schemas))  # runs last: after the login is dropped
    role = f"scaffold_{system}_reader"
    url = ""
    for s in schemas:  # one SELECT-only login for every schema of the system
        url = create_reader(dsn, s, name=role)
    request.addfinalizer(lambda: drop_reader(dsn, schemas[0], name=role))
    return source_connection(url, schemas[0]), schemas


def _drop_schemas(dsn: str, schemas: list[str]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as db:
        for s in schemas:
            db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(s)))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize("system", sorted(SOURCES))
def test_scaffolded_draft_carries_a_test_delivery_to_valid_packages(
    system, backend, tmp_path, monkeypatch, request, capsys
):
    from airflow.dag_processing.dagbag import DagBag

    from decommission.plan.mapping_spec import load_spec
    from decommission.plan.programme import Milestone, load_plan
    from decommission.plan.run import Run
    from decommission.stages import extract, map_stage, package_stage, plan_partitions, validate_stage

    conn, schemas = _source(backend, system, tmp_path, request)
    conn_id = f"legacy_{system}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    )
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DECOMMISSION_STAGING", (tmp_path / "staging").as_uri())
    include = tmp_path / "include"
    draft = include / "mappings" / f"{system}.yaml"
    draft.parent.mkdir(parents=True)

    args = ["scaffold", "--conn-id", conn_id, "--out", str(draft), "--format", "json"]
    assert main([*args, *(a for s in schemas for a in ("--schema", s))]) == 0
    inventory = json.loads(capsys.readouterr().out)
    spec = load_spec(draft)
    assert inventory["totals"]["rows"] > 0 and spec.patient_table == inventory["patient_table"]
    if system in ("vas", "lab", "anestesi"):  # their names say it all; a bigger system may leave some undecided
        assert inventory["totals"]["tables_by_role"]["undecided"] == 0, inventory["tables"]
    # every table and column of the source is in the draft: mapped, read, preserved, a reference table, or named
    # as undecided (or outside the own schema) with its columns for a person to decide
    text = draft.read_text(encoding="utf-8")
    for table in inventory["tables"]:
        label = f"{table['schema']}.{table['table']}" if table["schema"] else table["table"]
        if table["role"] in ("undecided", "unlinked"):
            assert f"{'UNDECIDED' if table['role'] == 'undecided' else 'NOT IN THE DRAFT'} {label}" in text
        else:
            assert table["column_classes"]["undecided"] == 0, table

    plan_path = _plan(include, system, conn_id, schemas[0] if schemas else system, draft)
    monkeypatch.setenv("DECOMMISSION_PLAN", str(plan_path))
    plan = load_plan(plan_path)
    assert not plan.problems, plan.problems
    dagbag = DagBag(dag_folder=str(REPO / "dags"))
    assert dagbag.import_errors == {}, dagbag.import_errors
    assert f"decommission_{system}" in dagbag.dags

    run = Run(plan, plan.system(system), Milestone.TEST_DELIVERY, "scaffold-test", LOGICAL_DATE)
    partitions = plan_partitions(run)
    assert partitions
    extracted = mapped = 0
    for partition in partitions:
        staged = extract(run, partition)
        result = map_stage(run, staged)
        extracted += sum(result["extracted"].values())
        mapped += sum(result["mapped"].values())
        package = package_stage(run, result)
        assert validate_stage(run, package) == package
        report = json.loads((tmp_path / "home" / system / "validation" / f"{package['package_id']}.json").read_text())
        assert report["ok"] is True, report["problems"][:5]
    assert extracted > 0 and mapped > 0


#: a second schema beside the lab system's own: a table bound to its patients by a foreign key across the
#: schemas (with a column no field takes), and a code table bound to no patient; plus a code table in the own schema
EXTRA_SCHEMA = """
CREATE SCHEMA {extra};
CREATE TABLE {extra}.vitalparameter (
    obs_id integer PRIMARY KEY, lid integer NOT NULL REFERENCES {own}.lab_patient (lid),
    varde text, enhet text, matt_tid timestamp, kommentar_intern text);
INSERT INTO {extra}.vitalparameter
    SELECT lid * 10, lid, '37,2', 'Cel', timestamp '2020-01-02 08:00' + lid * interval '1 day', 'intern ' || lid
    FROM {own}.lab_patient;
CREATE TABLE {extra}.enhetskod (kod text PRIMARY KEY, namn text);
INSERT INTO {extra}.enhetskod VALUES ('Cel', 'grader Celsius');
CREATE TABLE {own}.avdelningskod (kod text PRIMARY KEY, namn text);
INSERT INTO {own}.avdelningskod VALUES ('MED', 'Medicinkliniken'), ('KIR', 'Kirurgkliniken');
"""


def test_several_schemas_on_postgres_reach_the_packages_and_their_raw_part(pg_dsn, tmp_path, monkeypatch, capsys):
    import tarfile

    import psycopg

    from decommission.embedded import source_connection
    from decommission.plan.mapping_spec import load_spec
    from decommission.plan.programme import Milestone, load_plan
    from decommission.plan.run import Run
    from decommission.stages import extract, map_stage, package_stage, plan_partitions, validate_stage
    from demo.generate import build
    from demo.readonly import create_reader, drop_reader
    from tests.siard_reader import read_siard

    own, extra, role = "scaffold_ms", "scaffold_ms_extra", "scaffold_ms_reader"
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        db.execute(f"DROP SCHEMA IF EXISTS {extra} CASCADE")
    build("lab", pg_dsn, seed=5, patients=PATIENTS, schema=own)
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        db.execute(EXTRA_SCHEMA.format(own=own, extra=extra))
    create_reader(pg_dsn, own, name=role)
    url = create_reader(pg_dsn, extra, name=role)
    try:
        monkeypatch.setenv("AIRFLOW_CONN_LEGACY_LAB", source_connection(url, own))
        monkeypatch.setenv(
            "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "l.sqlite")})
        )
        monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("DECOMMISSION_STAGING", (tmp_path / "staging").as_uri())
        draft = tmp_path / "include" / "mappings" / "lab.yaml"
        draft.parent.mkdir(parents=True)
        args = ["scaffold", "--conn-id", "legacy_lab", "--schema", own, "--schema", extra, "--out", str(draft)]
        assert main([*args, "--format", "json"]) == 0
        inventory = json.loads(capsys.readouterr().out)
        roles = {(t["schema"], t["table"]): (t["role"], t["entity"]) for t in inventory["tables"]}
        assert roles[(extra, "vitalparameter")][0] == "entity"
        assert roles[(own, "avdelningskod")] == ("reference", None)
        assert roles[(extra, "enhetskod")] == ("unlinked", None)  # reference_tables reads the own schema only
        assert inventory["totals"]["foreign_keys"] == 1
        spec = load_spec(draft)
        vital = spec.tables["vitalparameter"]
        assert vital.schema_name == extra and vital.patient_key == "lid" and "kommentar_intern" in vital.preserved
        assert spec.reference_tables == ["avdelningskod"]
        assert "NOT IN THE DRAFT scaffold_ms_extra.enhetskod" in draft.read_text(encoding="utf-8")

        plan_path = _plan(tmp_path / "include", "lab", "legacy_lab", own, draft)
        plan = load_plan(plan_path)
        run = Run(plan, plan.system("lab"), Milestone.TEST_DELIVERY, "scaffold-ms", LOGICAL_DATE)
        raw_rows: dict[str, int] = {}
        for partition in plan_partitions(run):
            package = validate_stage(run, package_stage(run, map_stage(run, extract(run, partition))))
            with tarfile.open(tmp_path / "home" / package["container"]) as tar:
                member = next(m for m in tar.getmembers() if m.name.endswith(".siard"))
                for name, table in read_siard(tar.extractfile(member).read()).items():
                    raw_rows[name] = raw_rows.get(name, 0) + len(table.rows)
                    if name == f"{extra}.vitalparameter":  # the other schema's table, its preserved column too
                        assert "kommentar_intern" in {c.name for c in table.columns}
        # the other schema's table is a schema of its own in the SIARD part, named schema.table when read
        assert raw_rows[f"{extra}.vitalparameter"] == PATIENTS and raw_rows["avdelningskod"] == 2

        # the coverage inventory reads every schema the mapping names: the other schema's tables too
        from decommission.reconcile.coverage import coverage_of
        from decommission.source.database import Source

        source = Source.for_system(run.system)
        coverage = coverage_of(run.system, run.spec, source, source.count_rows(run.spec, run.system.agreement.cut_off))
        tables = {t["table"]: t for t in coverage["tables"]}
        assert coverage["schemas"] == [own, extra]
        assert tables[f"{extra}.vitalparameter"]["class"] == "mapped"
        classes = {c["name"]: c["class"] for c in tables[f"{extra}.vitalparameter"]["columns"]}
        assert classes["kommentar_intern"] == "preserved" and classes["lid"] == "mapped"
        assert tables["avdelningskod"]["class"] == "preserved" and tables["prov"]["class"] == "mapped"
        # the code table of the other schema is what the draft named for a decision: unclassified until then
        assert coverage["findings"] == [f"table {extra}.enhetskod (1 rows) is in no mapping and no exclusion"]
    finally:
        drop_reader(pg_dsn, own, name=role)
        _drop_schemas(pg_dsn, [own, extra])


def test_a_missing_schema_exits_1_naming_it_and_writes_nothing(pg_dsn, tmp_path, monkeypatch, capsys):
    from decommission.embedded import source_connection

    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_NONE", source_connection(pg_dsn, None))
    out = tmp_path / "none.yaml"
    args = ["scaffold", "--conn-id", "legacy_none", "--schema", "public", "--schema", "scaffold_no_such_schema"]
    assert main([*args, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "has no schema 'scaffold_no_such_schema' that its login may use" in err and "Traceback" not in err
    assert not out.exists()


HOSPITAL_SQLITE = """
CREATE TABLE patient (pat_id INTEGER PRIMARY KEY, personnr TEXT, fornamn TEXT, efternamn TEXT);
CREATE TABLE vardtillfalle (vtf_id INTEGER PRIMARY KEY, pat_id INTEGER REFERENCES patient (pat_id),
    avdelning TEXT, inskriven TEXT, utskriven TEXT);
CREATE TABLE diagnos (diag_id INTEGER PRIMARY KEY, vtf_id INTEGER REFERENCES vardtillfalle (vtf_id),
    icd10 TEXT, satt_tid TEXT);
"""


def test_a_table_bound_to_its_patient_through_another_is_joined(tmp_path, monkeypatch, capsys):
    """Diagnoses that name only their care episode reach their patient through a left join to it."""
    import sqlite3

    from decommission.plan.mapping_spec import load_spec
    from decommission.plan.programme import Milestone, load_plan
    from decommission.plan.run import Run
    from decommission.stages import extract, map_stage, package_stage, plan_partitions, validate_stage

    db_path = tmp_path / "hospital.sqlite"
    with sqlite3.connect(db_path) as db:
        db.executescript(HOSPITAL_SQLITE)
        for p in range(1, 21):
            db.execute("INSERT INTO patient VALUES (?, ?, 'Test', 'Testsson')", (p, f"19121212{p:04d}"))
            db.execute("INSERT INTO vardtillfalle VALUES (?, ?, 'MED', '2020-01-02 08:00', NULL)", (p * 10, p))
            db.execute("INSERT INTO diagnos VALUES (?, ?, 'J18.9', '2020-01-02 09:00')", (p * 100, p * 10))
        db.execute("INSERT INTO diagnos VALUES (9999, NULL, 'I10', '2020-01-03 09:00')")  # no episode: no patient
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_SJUKHUS", json.dumps({"conn_type": "sqlite", "host": str(db_path)}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "l.sqlite")})
    )
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DECOMMISSION_STAGING", (tmp_path / "staging").as_uri())
    draft = tmp_path / "include" / "mappings" / "sjukhus.yaml"
    draft.parent.mkdir(parents=True)
    assert main(["scaffold", "--conn-id", "legacy_sjukhus", "--out", str(draft)]) == 0
    capsys.readouterr()
    diagnos = load_spec(draft).tables["diagnos"]
    assert diagnos.entity == "diagnosis" and diagnos.patient_key == "vardtillfalle.pat_id"
    assert [(j.table, dict(j.on), j.type) for j in diagnos.join] == [("vardtillfalle", {"vtf_id": "vtf_id"}, "left")]
    assert diagnos.fields["case_id"].column == "vtf_id" and diagnos.preserved == []

    plan = load_plan(_plan(tmp_path / "include", "sjukhus", "legacy_sjukhus", "sjukhus", draft))
    run = Run(plan, plan.system("sjukhus"), Milestone.TEST_DELIVERY, "scaffold-join", LOGICAL_DATE)
    partitions = plan_partitions(run)
    assert len(partitions) == 1
    mapped = map_stage(run, extract(run, partitions[0]))
    assert validate_stage(run, package_stage(run, mapped))["package_id"]
    # the row without an episode has no patient: archived under a placeholder patient, flagged ORPHAN
    assert mapped["extracted"]["diagnos"] == 21 and mapped["flagged"]["diagnos"] == {"ORPHAN": 1}
