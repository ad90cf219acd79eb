"""Tests of demo.generate: determinism, every kind of dirt, and the dirt report re-derived
independently from the built database (SQL plus identity.classify)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from decommission.mapping.identity import IdType, classify
from decommission.model import Reason
from demo.generate import DIRT_SUFFIX, SYSTEMS, build, main

SENTINEL_DAYS = ("1900-01-01", "9999-12-31")
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
SUSPECT = re.compile(r"[{}|\[\]\\†„”]|Ã")
OTHER_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ufffe\uffff]")  # anything but "\n"
ICD = re.compile(r"[A-Z][0-9]{2}(\.?[0-9A-Z]{1,2})?")
ATC = re.compile(r"[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}")
NPU = re.compile(r"NPU[0-9]{5}")
FIRST, LAST = "1995-01-01", "2024-06-30"

# The reference rules, written independently of the generator: per table, the patient
# column and the checks that find something on a row.
RULES: dict[str, dict[str, dict[str, Any]]] = {
    "vas": {
        "patient": {"key": "pat_id", "id": "personnr"},
        "vardkontakt": {"key": "pat_id"},
        "journalanteckning": {
            "key": "pat_id",
            "deleted": ("makulerad", 1),
            "sentinel": "skriven_tid",
            "xml": "anteckning",
            "encoding": "anteckning",
        },
        "diagnos": {"key": "pat_id", "deleted": ("makulerad", 1), "code": ("icd10", ICD)},
        "lakemedel": {"key": "pat_id", "sentinel": "ordinerad_tid", "code": ("atc", ATC)},
        "labsvar": {"key": "pat_id", "code": ("npu_kod", NPU)},
        "bilaga": {"key": "pat_id", "empty": "innehall"},
        "atkomstlogg": {"key": "pat_id"},
    },
    "lab": {
        "lab_patient": {"key": "lid", "id": "pnr"},
        "remiss": {"key": "lid"},
        "prov": {"key": "lid", "deleted": ("status", "M"), "xml": "resultat", "code": ("npu", NPU)},
    },
    "anestesi": {
        "ana_patient": {"key": "id", "id": "personnummer"},
        "operation": {
            "key": "patient",
            "deleted": ("makulerad", 1),
            "sentinel": "op_datum",
            "encoding": "anteckning",
        },
    },
}
TIME_COLUMNS = {
    "vas": {
        "vardkontakt": ("start_tid", "slut_tid"),
        "journalanteckning": ("skriven_tid",),
        "diagnos": ("diagnos_tid",),
        "lakemedel": ("ordinerad_tid",),
        "labsvar": ("provtid",),
        "atkomstlogg": ("tid",),
    },
    "lab": {"remiss": ("inkom",)},
    "anestesi": {"operation": ("op_datum",)},
}
KINDS = {
    "vas": {
        "invalid_personnummer_checksum",
        "invalid_personnummer_format",
        "orphan_rows",
        "encoding_damage",
        "xml_illegal_chars",
        "sentinel_dates",
        "soft_deleted",
        "empty_attachments",
        "invalid_codes",
    },
    "lab": {
        "invalid_personnummer_checksum",
        "invalid_personnummer_format",
        "orphan_rows",
        "xml_illegal_chars",
        "soft_deleted",
        "invalid_codes",
    },
    "anestesi": {
        "invalid_personnummer_checksum",
        "invalid_personnummer_format",
        "encoding_damage",
        "sentinel_dates",
        "soft_deleted",
    },
}


def rows_of(conn: sqlite3.Connection, table: str) -> list[dict[str, Any]]:
    conn.row_factory = sqlite3.Row
    return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1")]


def reasons_of(conn: sqlite3.Connection, system: str) -> dict[str, dict[int, list[str]]]:
    """Every reason that applies to every row (not only the first), per table and row key."""
    rules = RULES[system]
    patient_table = next(t for t, r in rules.items() if "id" in r)
    patients = rows_of(conn, patient_table)
    pkey, id_col = rules[patient_table]["key"], rules[patient_table]["id"]
    ids = classify(pd.Series([p[id_col] for p in patients], dtype=object))
    keys = {p[pkey] for p in patients}
    out: dict[str, dict[int, list[str]]] = {}
    for table, rule in rules.items():
        found: dict[int, list[str]] = {}
        for i, row in enumerate(rows_of(conn, table)):
            why = []
            if "deleted" in rule and row[rule["deleted"][0]] == rule["deleted"][1]:
                why.append(Reason.SOFT_DELETED)
            if "id" not in rule and row[rule["key"]] not in keys:
                why.append(Reason.ORPHAN)
            if "id" in rule and ids["reason"].iloc[i] is not None:
                why.append(ids["reason"].iloc[i])
            if "sentinel" in rule and str(row[rule["sentinel"]])[:10] in SENTINEL_DAYS:
                why.append(Reason.SENTINEL_DATE)
            if "xml" in rule and XML_ILLEGAL.search(row[rule["xml"]]):
                why.append(Reason.XML_ILLEGAL_CHAR)
            if "encoding" in rule and SUSPECT.search(row[rule["encoding"]]):
                why.append(Reason.ENCODING_SUSPECT)
            if "empty" in rule and len(row[rule["empty"]]) == 0:
                why.append(Reason.EMPTY_ATTACHMENT)
            if "code" in rule and not rule["code"][1].fullmatch(row[rule["code"][0]]):
                why.append(Reason.CODE_INVALID)
            if why:
                found[next(iter(row.values()))] = why
        out[table] = found
    return out


def first_reasons(found: dict[str, dict[int, list[str]]]) -> dict[str, dict[str, int]]:
    out = {}
    for table, rows in found.items():
        counts = Counter(min(why, key=Reason.ORDER.index) for why in rows.values())
        if counts:
            out[table] = {r: counts[r] for r in Reason.ORDER if counts[r]}
    return out


def dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], tuple[Path, dict]]:
    """Each system at 20 patients (seed 7) and at 300 patients (seed 11)."""
    base = tmp_path_factory.mktemp("demo")
    out = {}
    for system in SYSTEMS:
        for patients, seed in ((20, 7), (300, 11)):
            path = base / f"{system}_{patients}.sqlite"
            out[(system, patients)] = (path, build(system, str(path), seed=seed, patients=patients))
    return out


CASES = [pytest.param(s, n, id=f"{s}-{n}") for s in SYSTEMS for n in (20, 300)]


class TestReport:
    @pytest.mark.parametrize("system", SYSTEMS)
    def test_report_has_the_agreed_shape(self, built, system: str) -> None:
        path, report = built[(system, 20)]
        assert list(report) == [
            "system",
            "seed",
            "patients",
            "tables",
            "identities",
            "dirt",
            "expected_findings",
            "corrections",
            "placeholder_patients",
        ]
        assert (report["system"], report["seed"], report["patients"]) == (system, 7, 20)
        assert list(report["identities"]) == ["personnummer", "samordningsnummer", "reservnummer"]
        assert set(report["dirt"]) == KINDS["vas"]
        assert all(n > 0 for row in report["expected_findings"].values() for n in row.values())
        assert report["placeholder_patients"] == report["dirt"].get("orphan_rows", 0)
        assert json.loads(Path(str(path) + DIRT_SUFFIX).read_text(encoding="utf-8")) == report

    @pytest.mark.parametrize("system", SYSTEMS)
    def test_report_every_kind_of_dirt_at_twenty_patients(self, built, system: str) -> None:
        dirt = built[(system, 20)][1]["dirt"]
        assert {k for k, n in dirt.items() if n > 0} == KINDS[system]

    @pytest.mark.parametrize(("system", "patients"), CASES)
    def test_report_table_counts_match_database(self, built, system: str, patients: int) -> None:
        path, report = built[(system, patients)]
        with sqlite3.connect(path) as conn:
            counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in report["tables"]}
        assert counts == report["tables"]
        assert report["tables"][next(iter(RULES[system]))] == patients

    @pytest.mark.parametrize("system", SYSTEMS)
    def test_report_proportions(self, built, system: str) -> None:
        report = built[(system, 300)][1]
        invalid = report["dirt"]["invalid_personnummer_checksum"] + report["dirt"]["invalid_personnummer_format"]
        assert 0.02 <= invalid / 300 <= 0.04
        assert 0.02 <= report["identities"]["samordningsnummer"] / 300 <= 0.04
        assert 0.01 <= report["identities"]["reservnummer"] / 300 <= 0.03
        for table, reasons in report["expected_findings"].items():
            for reason, n in reasons.items():
                if reason not in (Reason.ID_INVALID_CHECKSUM, Reason.ID_INVALID_FORMAT):
                    assert n <= max(3, 0.012 * report["tables"][table]), (table, reason, n)


class TestAgainstDatabase:
    @pytest.mark.parametrize(("system", "patients"), CASES)
    def test_expected_findings_equal_independent_count(self, built, system: str, patients: int) -> None:
        path, report = built[(system, patients)]
        with sqlite3.connect(path) as conn:
            found = reasons_of(conn, system)
        assert first_reasons(found) == report["expected_findings"]

    @pytest.mark.parametrize("patients", [20, 300])
    def test_the_planted_correction_is_the_one_the_repository_lists(self, built, patients: int) -> None:
        """The demo's correction list (include/mappings/corrections/vas.yaml) corrects exactly the planted row."""
        from decommission.plan.mapping_spec import load_spec

        path, report = built[("vas", patients)]
        spec = load_spec(Path(__file__).resolve().parents[2] / "include" / "mappings" / "vas.yaml")
        listed = [(c.table, str(c.key), c.column, c.value, c.reason) for c in spec.correction_list]
        planted = [(c["table"], str(c["key"]), c["column"], c["corrected"], c["reason"]) for c in report["corrections"]]
        assert listed == planted
        with sqlite3.connect(path) as conn:
            (written,) = conn.execute("SELECT icd10 FROM diagnos WHERE diag_id = 1").fetchone()
            found = reasons_of(conn, "vas")
        assert written == report["corrections"][0]["written"] and found["diagnos"][1] == [Reason.CODE_INVALID]

    @pytest.mark.parametrize(("system", "patients"), CASES)
    def test_each_dirty_row_has_one_kind_of_dirt(self, built, system: str, patients: int) -> None:
        path, _ = built[(system, patients)]
        with sqlite3.connect(path) as conn:
            found = reasons_of(conn, system)
        several = {t: {k: w for k, w in rows.items() if len(w) > 1} for t, rows in found.items()}
        assert all(not rows for rows in several.values()), several

    def test_sql_counts_of_vas(self, built) -> None:
        path, report = built[("vas", 300)]
        expected = report["expected_findings"]
        with sqlite3.connect(path) as conn:
            deleted = conn.execute("SELECT COUNT(*) FROM journalanteckning WHERE makulerad = 1").fetchone()[0]
            orphans = conn.execute(
                "SELECT COUNT(*) FROM journalanteckning j LEFT JOIN patient p ON p.pat_id = j.pat_id "
                "WHERE p.pat_id IS NULL"
            ).fetchone()[0]
            sentinels = conn.execute(
                "SELECT COUNT(*) FROM lakemedel WHERE ordinerad_tid IN ('1900-01-01 00:00:00', '9999-12-31 00:00:00')"
            ).fetchone()[0]
            empty = conn.execute("SELECT COUNT(*) FROM bilaga WHERE length(innehall) = 0").fetchone()[0]
        assert deleted == expected["journalanteckning"][Reason.SOFT_DELETED]
        assert orphans == expected["journalanteckning"][Reason.ORPHAN]
        assert sentinels == expected["lakemedel"][Reason.SENTINEL_DATE]
        assert empty == expected["bilaga"][Reason.EMPTY_ATTACHMENT]
        assert "atkomstlogg" not in expected  # an invalid identifier's patient's rows are clean: archived whole

    @pytest.mark.parametrize(("system", "patients"), CASES)
    def test_identities_match_classify(self, built, system: str, patients: int) -> None:
        path, report = built[(system, patients)]
        table = next(iter(RULES[system]))
        with sqlite3.connect(path) as conn:
            values = pd.Series([r[0] for r in conn.execute(f"SELECT {RULES[system][table]['id']} FROM {table}")])
        kinds = Counter(classify(values)["id_type"])
        assert kinds[IdType.TEST_NUMBER.value] == 0
        assert {k: kinds[k] for k in report["identities"]} == report["identities"]
        assert kinds[IdType.INVALID.value] == (
            report["dirt"]["invalid_personnummer_checksum"] + report["dirt"]["invalid_personnummer_format"]
        )
        assert values.is_unique

    @pytest.mark.parametrize(("system", "patients"), CASES)
    def test_times_inside_the_period(self, built, system: str, patients: int) -> None:
        path, _ = built[(system, patients)]
        with sqlite3.connect(path) as conn:
            for table, columns in TIME_COLUMNS[system].items():
                for column in columns:
                    values = [r[0] for r in conn.execute(f"SELECT {column} FROM {table}") if r[0] is not None]
                    inside = [v[:10] for v in values if v[:10] not in SENTINEL_DAYS]
                    assert min(inside) >= FIRST and max(inside) <= LAST, (table, column)
                    assert all(v[11:13] >= "06" for v in values if v[:10] not in SENTINEL_DAYS)
            if system == "lab":
                first, last = conn.execute("SELECT MIN(svarstid), MAX(svarstid) FROM prov").fetchone()
                assert datetime(1995, 1, 1, tzinfo=UTC).timestamp() <= first
                assert last < datetime(2024, 7, 1, tzinfo=UTC).timestamp()

    @pytest.mark.parametrize(("system", "patients"), CASES)
    def test_clean_text_has_no_suspect_characters(self, built, system: str, patients: int) -> None:
        path, _ = built[(system, patients)]
        dirt_columns = {rule.get("xml") for rule in RULES[system].values()} | {
            rule.get("encoding") for rule in RULES[system].values()
        }
        with sqlite3.connect(path) as conn:
            found = reasons_of(conn, system)
            for table in RULES[system]:
                info = conn.execute(f"PRAGMA table_info({table})").fetchall()
                key = info[0][1]
                for column in (c[1] for c in info if c[2] == "TEXT"):
                    for row_key, value in conn.execute(f"SELECT {key}, {column} FROM {table}"):
                        if column in dirt_columns and row_key in found[table]:
                            continue
                        if isinstance(value, str):
                            assert not SUSPECT.search(value), (table, column, row_key)
                            assert not OTHER_CONTROL.search(value), (table, column, row_key)

    def test_vas_references_and_attachments(self, built) -> None:
        path, _ = built[("vas", 300)]
        with sqlite3.connect(path) as conn:
            found = reasons_of(conn, "vas")
            bad_links = conn.execute(
                "SELECT COUNT(*) FROM (SELECT j.pat_id, k.pat_id AS kp FROM journalanteckning j "
                "LEFT JOIN vardkontakt k ON k.kontakt_id = j.kontakt_id WHERE j.kontakt_id IS NOT NULL "
                "UNION ALL SELECT d.pat_id, k.pat_id FROM diagnos d LEFT JOIN vardkontakt k "
                "ON k.kontakt_id = d.kontakt_id WHERE d.kontakt_id IS NOT NULL) WHERE kp IS NULL OR kp != pat_id"
            ).fetchone()[0]
            attachments = conn.execute(
                "SELECT b.pat_id, b.ant_id, j.pat_id, b.mimetyp, b.innehall FROM bilaga b "
                "LEFT JOIN journalanteckning j ON j.ant_id = b.ant_id"
            ).fetchall()
        assert bad_links == 0
        magic = {"application/pdf": b"%PDF-", "image/tiff": b"II*\x00", "image/jpeg": b"\xff\xd8"}
        for pat_id, ant_id, note_pat, mimetype, content in attachments:
            if ant_id is not None:
                assert note_pat == pat_id
                # the note carries no dirt
                assert ant_id not in found["journalanteckning"]
            if content:
                assert content.startswith(magic[mimetype]) and 1024 <= len(content) <= 20 * 1024
        assert {a[3] for a in attachments} == set(magic)

    def test_lab_tests_belong_to_their_referral(self, built) -> None:
        path, _ = built[("lab", 300)]
        with sqlite3.connect(path) as conn:
            mismatched = conn.execute(
                "SELECT COUNT(*) FROM prov p JOIN remiss r ON r.remiss_id = p.remiss_id WHERE r.lid != p.lid"
            ).fetchone()[0]
            unlinked = conn.execute(
                "SELECT COUNT(*) FROM prov p LEFT JOIN remiss r ON r.remiss_id = p.remiss_id "
                "LEFT JOIN lab_patient l ON l.lid = p.lid WHERE r.remiss_id IS NULL AND l.lid IS NOT NULL"
            ).fetchone()[0]
        assert (mismatched, unlinked) == (0, 0)


class TestDeterminism:
    def test_same_seed_same_content(self, tmp_path: Path) -> None:
        first = build("vas", str(tmp_path / "a.sqlite"), seed=3, patients=30)
        second = build("vas", str(tmp_path / "b.sqlite"), seed=3, patients=30)
        assert first == second
        assert dump(tmp_path / "a.sqlite") == dump(tmp_path / "b.sqlite")

    @pytest.mark.parametrize("system", ["lab", "anestesi"])
    def test_same_seed_same_content_other_systems(self, tmp_path: Path, system: str) -> None:
        build(system, str(tmp_path / "a.sqlite"), seed=3, patients=25)
        build(system, str(tmp_path / "b.sqlite"), seed=3, patients=25)
        assert dump(tmp_path / "a.sqlite") == dump(tmp_path / "b.sqlite")

    def test_other_seed_other_content(self, tmp_path: Path) -> None:
        build("vas", str(tmp_path / "a.sqlite"), seed=3, patients=30)
        build("vas", str(tmp_path / "b.sqlite"), seed=4, patients=30)
        assert dump(tmp_path / "a.sqlite") != dump(tmp_path / "b.sqlite")


class TestTarget:
    def test_build_replaces_file_atomically(self, tmp_path: Path) -> None:
        target = tmp_path / "sources" / "vas.sqlite"
        target.parent.mkdir()
        target.write_bytes(b"old")
        Path(str(target) + ".tmp").write_bytes(b"left over by a crashed run")
        build("vas", str(target), patients=12)
        assert sorted(p.name for p in target.parent.iterdir()) == ["vas.sqlite", "vas.sqlite.dirt.json"]
        assert dump(target)

    def test_build_removes_tmp_on_failure(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import demo.generate as generate

        def boom(g: Any) -> None:
            raise RuntimeError("stop")

        monkeypatch.setattr(generate, "_check_identities", boom)
        with pytest.raises(RuntimeError, match="stop"):
            build("anestesi", str(tmp_path / "a.sqlite"), patients=12)
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            pytest.param({"system": "cosmic"}, "system must be one of vas, lab, anestesi", id="system"),
            pytest.param({"patients": 9}, "patients must be an integer of at least 10", id="too-few"),
            pytest.param({"patients": True}, "patients must be an integer", id="bool"),
            pytest.param(
                {"target": "postgresql://nobody@127.0.0.1:1/x", "schema": "public"}, "schema must be", id="public"
            ),
            pytest.param({"target": "postgresql://nobody@127.0.0.1:1/x", "schema": "A;B"}, "schema must be", id="name"),
        ],
    )
    def test_build_rejects_bad_arguments(self, tmp_path: Path, kwargs: dict, match: str) -> None:
        args = {"system": "vas", "target": str(tmp_path / "x.sqlite"), **kwargs}
        with pytest.raises(ValueError, match=match):
            build(args.pop("system"), args.pop("target"), **args)
        assert list(tmp_path.iterdir()) == []

    def test_cli_prints_the_report(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        target = tmp_path / "lab.sqlite"
        assert main(["--system", "lab", "--target", str(target), "--seed", "5", "--patients", "15"]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed == json.loads(Path(str(target) + DIRT_SUFFIX).read_text(encoding="utf-8"))
        assert printed["patients"] == 15


@pytest.mark.postgres
class TestPostgres:
    @pytest.mark.parametrize("system", SYSTEMS)
    def test_postgres_build_matches_sqlite(self, pg_dsn: str, tmp_path: Path, system: str) -> None:
        import psycopg

        schema = f"demo_test_{system}_{os.getpid()}"
        sqlite_path = tmp_path / f"{system}.sqlite"
        lite = build(system, str(sqlite_path), seed=9, patients=40)
        try:
            pg = build(system, pg_dsn, seed=9, patients=40, schema=schema)
            with psycopg.connect(pg_dsn) as conn:
                counts = {t: conn.execute(f"SELECT COUNT(*) FROM {schema}.{t}").fetchone()[0] for t in pg["tables"]}
                text_sql = {
                    "vas": "SELECT ant_id, anteckning FROM {}journalanteckning ORDER BY ant_id",
                    "lab": "SELECT prov_id, resultat FROM {}prov ORDER BY prov_id",
                    "anestesi": "SELECT op_id, anteckning FROM {}operation ORDER BY op_id",
                }[system]
                pg_texts = [tuple(r) for r in conn.execute(text_sql.format(schema + "."))]
                blobs = (
                    [bytes(r[0]) for r in conn.execute(f"SELECT innehall FROM {schema}.bilaga ORDER BY bilaga_id")]
                    if system == "vas"
                    else []
                )
        finally:
            with psycopg.connect(pg_dsn, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        assert pg == lite
        assert counts == lite["tables"]
        with sqlite3.connect(sqlite_path) as conn:
            lite_texts = [tuple(r) for r in conn.execute(text_sql.format(""))]
            lite_blobs = [r[0] for r in conn.execute("SELECT innehall FROM bilaga ORDER BY bilaga_id")] if blobs else []
        assert pg_texts == lite_texts  # control characters, backslashes and å/ä/ö survive COPY
        assert blobs == lite_blobs
