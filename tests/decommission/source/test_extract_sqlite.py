"""Extraction through the generic DB-API path (the embedded demo's SQLite) and the mapping after it."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from decommission.mapping.transform import map_partition
from decommission.plan.mapping_spec import load_spec
from decommission.reconcile.checks import sum_counts
from decommission.source.database import Source, make_partitions
from demo.generate import build, expected_outcome

REPO = Path(__file__).resolve().parents[3]
CUT_OFF = dt.date(2024, 9, 30)


@pytest.fixture(scope="module")
def vas_sqlite(tmp_path_factory):
    path = tmp_path_factory.mktemp("vas") / "vas.sqlite"
    dirt = build("vas", str(path), seed=11, patients=80)
    return path, dirt


@pytest.fixture
def source(vas_sqlite, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_VAS", json.dumps({"conn_type": "sqlite", "host": str(vas_sqlite[0])}))
    return Source("legacy_vas", schema="vas")


def _extract_and_map(source, spec, folder: Path, parts):
    extracted, mapped = [], []
    for part in parts:
        stage = folder / part.id
        stage.mkdir(parents=True)
        totals = source.extract_partition(spec, part, CUT_OFF, lambda t, s=stage: (s / f"{t}.parquet").open("wb"))
        extracted.append(totals)
        mapped.append(map_partition(spec, lambda t, s=stage: pq.read_table(s / f"{t}.parquet"), stage / "mapped"))
    return extracted, mapped


def test_every_demo_row_is_archived_or_disposed_per_table(source, vas_sqlite, tmp_path):
    """extracted = archived + disposed per table; flagged, corrected and disposed equal the generator's dirt."""
    _, dirt = vas_sqlite
    spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
    assert source.dialect == "generic"
    parts = make_partitions(source.patient_keys(spec), 30)
    extracted, mapped = _extract_and_map(source, spec, tmp_path, parts)
    assert sum_counts({t: v["rows"] for t, v in e.items()} for e in extracted) == dict(sorted(dirt["tables"].items()))
    for result in mapped:
        for table, n in result.extracted.items():
            assert n == result.mapped[table] + sum(result.disposed.get(table, {}).values()), table
    found: dict[str, dict[str, dict[str, int]]] = {"flagged": {}, "corrected": {}, "disposed": {}}
    for result in mapped:
        for kind, counts in found.items():
            for table, reasons in getattr(result, kind).items():
                counts[table] = sum_counts([counts.get(table, {}), reasons])
    assert found == expected_outcome(dirt, spec)
    assert sum(r.placeholders for r in mapped) == dirt["placeholder_patients"]


def test_the_anaesthesia_operations_become_documents_and_asa_observations_with_exact_figures(tmp_path, monkeypatch):
    """One source table, two spec tables: its dirt counts once per record it becomes, as the generator says."""
    dirt = build("anestesi", str(tmp_path / "anestesi.sqlite"), seed=11, patients=60)
    conn = json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "anestesi.sqlite")})
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_ANESTESI", conn)
    source = Source("legacy_anestesi", schema="anestesi")
    spec = load_spec(REPO / "include" / "mappings" / "anestesi.yaml")
    parts = make_partitions(source.patient_keys(spec), 30)
    extracted, mapped = _extract_and_map(source, spec, tmp_path / "stage", parts)
    rows = sum_counts({t: v["rows"] for t, v in e.items()} for e in extracted)
    assert rows["operation"] == rows["operation_asa"] == dirt["tables"]["operation"]
    found: dict[str, dict[str, dict[str, int]]] = {"flagged": {}, "corrected": {}, "disposed": {}}
    for result in mapped:
        for kind, counts in found.items():
            for table, reasons in getattr(result, kind).items():
                counts[table] = sum_counts([counts.get(table, {}), reasons])
    expected = expected_outcome(dirt, spec)
    assert found == expected
    # the ASA class has no encoding rule: the damaged notes are the document's findings only
    assert "ENCODING_SUSPECT" in expected["flagged"]["operation"]
    assert "ENCODING_SUSPECT" not in expected["flagged"].get("operation_asa", {})
    assert expected["disposed"]["operation_asa"] == expected["disposed"]["operation"]
    observations = [
        r
        for p in parts
        for r in pq.read_table(tmp_path / "stage" / p.id / "mapped" / "observation.parquet").to_pylist()
    ]
    documents = sum(result.mapped["operation"] for result in mapped)
    assert len(observations) == documents > 0
    assert {o["code_system"] for o in observations} == {"asa"} and {o["name"] for o in observations} == {"ASA-klass"}
    assert all(o["code"] == o["value"] and o["code"].startswith("ASA ") for o in observations)


def test_control_totals_do_not_depend_on_the_partitioning(source, tmp_path):
    """The same rows give the same digests whether read as one partition or several."""
    spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
    whole, _ = _extract_and_map(source, spec, tmp_path / "one", make_partitions([], 1))
    again, _ = _extract_and_map(source, spec, tmp_path / "again", make_partitions([], 1))
    assert whole == again
    assert (tmp_path / "one/p0001/journalanteckning.parquet").read_bytes() == (
        tmp_path / "again/p0001/journalanteckning.parquet"
    ).read_bytes()
    totals = whole[0]["journalanteckning"]
    assert totals["rows"] == totals["keys"] > 0
    assert len(totals["sha256"]) == 64 and len(totals["keys_sha256"]) == 64


def test_text_that_is_not_utf8_is_kept_as_its_bytes_not_a_crash(vas_sqlite, tmp_path, monkeypatch):
    """SQLite keeps any bytes in a TEXT column: the row is staged and archived as its bytes, flagged, never altered."""
    import shutil
    import sqlite3

    copy = tmp_path / "broken.sqlite"
    shutil.copyfile(vas_sqlite[0], copy)
    with sqlite3.connect(copy) as db:
        note = db.execute("SELECT ant_id, pat_id FROM journalanteckning WHERE makulerad = 0 LIMIT 1").fetchone()
        # Latin-1 bytes written as TEXT (a legacy client did this): not UTF-8, secret to the log
        db.execute(
            "UPDATE journalanteckning SET anteckning = CAST(X'48656A7361E57661' AS TEXT) WHERE ant_id = ?", note[:1]
        )
    monkeypatch.setenv("AIRFLOW_CONN_LEGACY_BROKEN", json.dumps({"conn_type": "sqlite", "host": str(copy)}))
    source = Source("legacy_broken", schema="vas")
    spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
    parts = make_partitions(source.patient_keys(spec), 1000)
    extracted, mapped = _extract_and_map(source, spec, tmp_path / "stage", parts)
    (totals,), (result,) = extracted, mapped
    assert totals["journalanteckning"]["coerced_to_bytes"] == ["anteckning"]
    assert result.extracted["journalanteckning"] == totals["journalanteckning"]["rows"]
    disposed = result.disposed.get("journalanteckning", {})
    assert result.mapped["journalanteckning"] + sum(disposed.values()) == result.extracted["journalanteckning"]
    rows = pq.read_table(tmp_path / "stage" / parts[0].id / "mapped" / "findings.parquet").to_pylist()
    hit = [r for r in rows if r["source_key"] == str(note[0]) and "ENCODING_SUSPECT" in r["reasons"]]
    assert len(hit) == 1 and hit[0]["detail"] == "bytes not utf-8 at offset 5", hit
    assert "Hejs" not in json.dumps(rows, default=str)  # the detail names the offset, not the text
    docs = pq.read_table(tmp_path / "stage" / parts[0].id / "mapped" / "document.parquet").to_pylist()
    (doc,) = [d for d in docs if d["document_id"] == str(note[0])]
    assert base64.b64decode(doc["text"]) == bytes.fromhex("48656A7361E57661")  # the bytes, exactly
    assert {"reason": "ENCODING_SUSPECT", "encoding": "base64", "codec": "utf-8"}.items() <= json.loads(doc["quality"])[
        -1
    ].items()
    # and in the raw representation: the column holds bytes, so every value is its bytes (hex in SIARD)
    from decommission.package import siard
    from decommission.source.catalogue import read_catalogue
    from tests.siard_reader import read_siard

    entry = read_catalogue(source, count=False)["journalanteckning"]
    staged = tmp_path / "stage" / parts[0].id / "journalanteckning.parquet"
    columns = tuple(
        siard.Column(c.name, c.type, c.nullable) for c in entry.columns if c.name in pq.read_schema(staged).names
    )
    target = tmp_path / "raw.siard"
    database = siard.Database("VAS", "vas", "Region", "-2024-09-30", dt.date(2025, 1, 1), "test")
    siard.write_siard(target, database, [siard.RawTable("journalanteckning", columns, staged, "ant_id")])
    table = read_siard(target.read_bytes())["journalanteckning"]
    by_key = {row["ant_id"]: row for row in table.rows}
    assert by_key[note[0]]["anteckning"] == bytes.fromhex("48656A7361E57661")
    assert {c.name: (c.type, c.original) for c in table.columns}["anteckning"] == ("BINARY VARYING", "TEXT")
    other = next(row for key, row in by_key.items() if key != note[0] and row["anteckning"])
    assert other["anteckning"].decode("utf-8")  # the rest: their UTF-8 bytes, as the source holds them
