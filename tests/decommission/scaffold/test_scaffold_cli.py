"""``python -m decommission scaffold`` on a SQLite source: the draft, the inventory, and every broken input."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from decommission.__main__ import main
from decommission.plan.mapping_spec import load_spec
from decommission.scaffold.guess import draft
from decommission.scaffold.render import render
from decommission.scaffold.survey import Scaffold, ScaffoldError, write_draft
from decommission.source.catalogue import Column, Table


@pytest.fixture(scope="module")
def anestesi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from demo.generate import build

    path = tmp_path_factory.mktemp("source") / "anestesi.sqlite"
    build("anestesi", str(path), seed=2, patients=20)
    return path


@pytest.fixture
def conn(anestesi: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_ANESTESI", json.dumps({"conn_type": "sqlite", "host": str(anestesi)}))
    return "legacy_anestesi"


def test_draft_and_inventory_hold_names_and_counts_never_a_value(conn, anestesi, tmp_path, capsys) -> None:
    out = tmp_path / "anestesi.yaml"
    assert main(["scaffold", "--conn-id", conn, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# DRAFT mapping of system 'anestesi'") and "REVIEW IT" in text
    spec = load_spec(out)
    assert spec.system == "anestesi" and spec.patient_table == "ana_patient"
    # with the hospital-shaped model an operation is a procedure: its form and ASA class have no field there
    assert spec.tables["operation"].entity == "procedure"
    assert spec.tables["operation"].preserved == ["anestesiform", "asa_klass"]
    assert "Tabeller: 2 (1 patienttabell, 1 mappade" in printed.out and "draft written to" in printed.err
    with sqlite3.connect(anestesi) as db:
        values = [v for row in db.execute("SELECT personnummer, fornamn, efternamn FROM ana_patient") for v in row]
    values = [v for v in values if isinstance(v, str) and len(v) > 3]
    assert values and not [v for v in values if v in text or v in printed.out or v in printed.err]


def test_the_same_source_gives_the_same_bytes(conn, tmp_path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    summaries = tmp_path / "a.json", tmp_path / "b.json"
    for out, summary in zip((first, second), summaries, strict=True):
        args = ["scaffold", "--conn-id", conn, "--out", str(out), "--summary", str(summary), "--format", "json"]
        assert main(args) == 0
    assert first.read_bytes() == second.read_bytes()
    assert summaries[0].read_bytes() == summaries[1].read_bytes()
    inventory = json.loads(summaries[0].read_text(encoding="utf-8"))
    assert inventory["totals"]["tables"] == 2 and inventory["totals"]["columns_by_class"]["preserved"] == 2


def test_an_existing_draft_is_kept_without_force(conn, tmp_path, capsys) -> None:
    out = tmp_path / "mapping.yaml"
    out.write_text("# reviewed by hand\n", encoding="utf-8")
    assert main(["scaffold", "--conn-id", conn, "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err and out.read_text(encoding="utf-8") == "# reviewed by hand\n"
    assert main(["scaffold", "--conn-id", conn, "--out", str(out), "--force"]) == 0
    assert load_spec(out).system == "anestesi"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--conn-id", "no_such_conn"], "source connection 'no_such_conn'"),
        (["--conn-id", "legacy_anestesi", "--schema", "a", "--schema", "b"], "one schema, not 2"),
        (["--conn-id", "legacy_anestesi", "--system", "Not-An-Id"], "system id 'Not-An-Id'"),
        (["--conn-id", "legacy_anestesi", "--patient-table", "nope"], "'nope' is not a table"),
    ],
    ids=["unknown-connection", "two-schemas-in-a-file", "bad-system-id", "unknown-patient-table"],
)
def test_a_broken_input_exits_1_with_a_sentence_and_writes_nothing(conn, tmp_path, capsys, args, message) -> None:
    out = tmp_path / "draft.yaml"
    assert main(["scaffold", *args, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not out.exists()


def test_a_missing_database_file_exits_1(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_GONE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "x.db")}))
    assert main(["scaffold", "--conn-id", "legacy_gone", "--out", str(tmp_path / "d.yaml")]) == 1
    assert "source connection 'legacy_gone' is not reachable" in capsys.readouterr().err


def test_odd_names_are_quoted_and_the_draft_loads(tmp_path) -> None:
    columns = ("id:integer", "pnr:text", "on:text", "yes:integer", "Födelse datum:date", "namn-x:text", "null:text")
    patient = Table(
        "Patient Register",
        tuple(Column(c.split(":")[0], c.split(":")[1]) for c in columns),
        5,
        ("id",),
    )
    note = Table(
        "journal",
        (Column("ant id", "integer"), Column("id", "integer"), Column("anteckning", "text"), Column("true", "text")),
        7,
        ("ant id",),
        ({"columns": ["id"], "table": "Patient Register", "references": ["id"]},),
    )
    d = draft("odd", "c", [(None, {"Patient Register": patient, "journal": note})], unique=lambda *a: True)
    out = write_draft(Scaffold(d, render(d)), tmp_path / "odd.yaml", force=False)
    spec = load_spec(out)
    assert spec.patient_table == "Patient Register"
    assert spec.tables["Patient Register"].fields["birth_date"].column == "Födelse datum"
    assert set(spec.tables["Patient Register"].preserved) == {"on", "yes", "null"}
    assert spec.tables["Patient Register"].fields["family_name"].column == "namn-x"
    assert spec.tables["journal"].key == "ant id" and "true" in spec.tables["journal"].preserved


def test_no_patient_table_writes_no_draft(tmp_path) -> None:
    d = draft("x", "c", [(None, {"kod": Table("kod", (Column("kod", "text"),), 3)})], unique=lambda *a: True)
    with pytest.raises(ScaffoldError, match="no patient table"):
        write_draft(Scaffold(d, render(d)), tmp_path / "x.yaml", force=False)
    assert not (tmp_path / "x.yaml").exists()
