"""Tests of the hospital-shaped demo system's generator (demo.sjukhus): its shape, its determinism, and
its dirt report re-derived independently from the two built SQLite files (SQL, zoneinfo, own patterns)."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from decommission.plan.mapping_spec import load_spec
from demo import sjukhus_vocab as vocab
from demo.generate import build
from demo.sjukhus import KLINIK, klinik_path

REPO = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("Europe/Stockholm")
#: every wall-clock column of the hospital system: (table, column)
TIMES = (
    ("encounter", "admit_time"),
    ("encounter", "discharge_time"),
    ("transfer", "in_time"),
    ("transfer", "out_time"),
    ("access_log", "logged_at"),
    ("diagnos", "reg_tid"),
    ("atgard", "start_tid"),
    ("atgard", "slut_tid"),
    ("provtagning", "provtid"),
    ("labsvar", "svarstid"),
    ("vitalparameter", "mattid"),
    ("ordination", "start_tid"),
    ("ordination", "stopp_tid"),
    ("administrering", "given_tid"),
    ("bestallning", "bestalld_tid"),
    ("bestallning", "klar_tid"),
    ("remiss", "skickad_tid"),
    ("remiss", "besvarad_tid"),
    ("anteckning", "skriven_tid"),
)
ICD10 = re.compile(r"[A-Z][0-9]{2}(\.[0-9][0-9A-Z]?)?")
ICD9 = re.compile(r"([0-9]{3}(\.[0-9]{1,2})?|V[0-9]{2}(\.[0-9]{1,2})?|E[0-9]{3}(\.[0-9])?)")
KVA = re.compile(r"[A-Z]{3}[0-9]{2}|[A-Z]{2}[0-9]{3}")
ICD9_PROC = re.compile(r"[0-9]{2}\.[0-9]{1,2}")
ATC = re.compile(r"[ABCDGHJLMNPRSV]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = {}
    for patients in (20, 300):
        target = tmp_path_factory.mktemp(f"sjukhus{patients}") / "sjukhus.sqlite"
        out[patients] = (build("sjukhus", str(target), seed=7, patients=patients), target)
    return out


def _db(target: Path) -> sqlite3.Connection:
    db = sqlite3.connect(target)
    db.execute("ATTACH DATABASE ? AS klinik", (str(klinik_path(target)),))
    return db


def _odd_hour(text: str | None) -> bool:
    """A wall-clock time in the spring gap or the repeated autumn hour, by zoneinfo (PEP 495)."""
    if text is None or text.startswith(("1900-", "9999-")):
        return False
    naive = datetime.fromisoformat(text)
    early, late = naive.replace(tzinfo=ZONE, fold=0), naive.replace(tzinfo=ZONE, fold=1)
    if early.utcoffset() != late.utcoffset():
        return True  # ambiguous, or missing (zoneinfo gives the two offsets around the gap)
    return (early.astimezone(ZONE).replace(tzinfo=None)) != naive


@pytest.mark.parametrize("patients", [20, 300])
def test_two_schemas_and_twenty_one_tables_as_the_report_counts_them(built, patients):
    report, target = built[patients]
    assert [len(t) for t in report["schemas"].values()] == [7, 14]
    with _db(target) as db:
        for schema, tables in report["schemas"].items():
            within = f"{KLINIK}." if schema == KLINIK else ""
            for table in tables:
                assert db.execute(f"SELECT COUNT(*) FROM {within}{table}").fetchone()[0] == report["tables"][table]
        # composite keys: the pair is unique, the first column alone is not
        assert db.execute("SELECT COUNT(*) - COUNT(DISTINCT vtf_id) FROM klinik.diagnos").fetchone()[0] > 0
        assert db.execute("SELECT name FROM klinik.sqlite_master WHERE name = 'patient'").fetchone() is None


@pytest.mark.parametrize("patients", [20, 300])
def test_every_kind_of_dirt_is_there_and_counted_independently(built, patients):
    report, target = built[patients]
    expected = report["expected_findings"]
    found: dict[str, Counter[str]] = {}
    with _db(target) as db:
        patients_known = {r[0] for r in db.execute("SELECT patient_id FROM patient")}

        def count(table: str, reason: str, n: int) -> None:
            if n:
                found.setdefault(table, Counter())[reason] += n

        for table in ("anteckning", "access_log"):
            rows = [r[0] for r in db.execute(f"SELECT patient_id FROM {table}")]
            count(table, "ORPHAN", sum(1 for p in rows if p not in patients_known))
        count(
            "anteckning",
            "SOFT_DELETED",
            db.execute("SELECT COUNT(*) FROM anteckning WHERE makulerad = 1").fetchone()[0],
        )
        count("labsvar", "SOFT_DELETED", db.execute("SELECT COUNT(*) FROM labsvar WHERE status = 'M'").fetchone()[0])
        sentinels = "substr(skriven_tid, 1, 10) IN ('1900-01-01', '9999-12-31')"
        count(
            "anteckning",
            "SENTINEL_DATE",
            db.execute(f"SELECT COUNT(*) FROM anteckning WHERE {sentinels}").fetchone()[0],
        )
        texts = [r[0] for r in db.execute("SELECT text FROM anteckning WHERE makulerad = 0")]
        count(
            "anteckning",
            "XML_ILLEGAL_CHAR",
            sum(1 for t in texts if re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe]", t)),
        )
        count("anteckning", "ENCODING_SUSPECT", sum(1 for t in texts if "Ã" in t))
        # the odd hours: only where the generator planted them, in every time column of the system
        for table, column in TIMES:
            rows = db.execute(f"SELECT {column} FROM {table}").fetchall()
            odd = sum(1 for (t,) in rows if _odd_hour(t))
            if table not in ("transfer", "vitalparameter", "anteckning"):
                assert odd == 0, (table, column)
            count(table, "LOCAL_TIME_ADJUSTED", odd)
        systems = {"ICD10": ICD10, "ICD9": ICD9}
        bad = sum(
            1
            for code, system in db.execute("SELECT kod, kodverk FROM klinik.diagnos")
            if system not in systems
            or not systems[system].fullmatch(code.rstrip(" "))
            or (system == "ICD10" and re.fullmatch(r"[EV][0-9]{2}\.?[0-9]{2}|E[0-9]{3}\..*", code.rstrip(" ")))
        )
        count("diagnos", "CODE_INVALID", bad)
        procedures = {"KVA": KVA, "ICD9PROC": ICD9_PROC}
        count(
            "atgard",
            "CODE_INVALID",
            sum(
                1
                for c, s in db.execute("SELECT kod, kodverk FROM klinik.atgard")
                if not procedures[s].fullmatch(c.rstrip())
            ),
        )
        items = {i[0] for i in vocab.LAB_ITEMS}
        count(
            "labsvar",
            "CODE_INVALID",
            sum(1 for i, s in db.execute("SELECT analys_id, status FROM labsvar") if i not in items and s != "M"),
        )
        count(
            "ordination",
            "CODE_INVALID",
            sum(1 for (c,) in db.execute("SELECT atc FROM klinik.ordination") if not ATC.fullmatch(c.rstrip())),
        )
        given = "SELECT o.atc FROM klinik.administrering a JOIN klinik.ordination o ON o.ord_id = a.ord_id"
        count("administrering", "CODE_INVALID", sum(1 for (c,) in db.execute(given) if not ATC.fullmatch(c.rstrip())))
    reasons = {t: {r: n for r, n in c.items()} for t, c in found.items()}
    patient = expected.pop("patient")
    assert reasons == expected
    assert sum(patient.values()) == sum(
        report["dirt"][k]
        for k in ("invalid_personnummer_checksum", "invalid_personnummer_format", "invalid_reservnummer_checksum")
    )
    assert report["dirt"]["invalid_reservnummer_checksum"] >= 1 and report["placeholder_patients"] >= 2


def test_codes_are_padded_icd9_and_icd10_mixed_and_times_fall_on_clock_change_days(built):
    report, target = built[300]
    hard = report["clean_but_hard"]
    assert hard["padded_codes"] > 500 and hard["icd9_diagnoses"] > 10 and hard["rows_on_clock_change_days"] > 100
    assert hard["deaths"] > 0
    with _db(target) as db:
        assert db.execute("SELECT COUNT(*) FROM klinik.diagnos WHERE kod LIKE '% '").fetchone()[0] > 0
        assert {r[0] for r in db.execute("SELECT DISTINCT kodverk FROM klinik.diagnos")} >= {"ICD9", "ICD10"}
        dead = db.execute("SELECT COUNT(*) FROM patient WHERE death_date IS NOT NULL").fetchone()[0]
        assert dead == hard["deaths"]
        # a stay's transfers follow each other in time: each unit's out_time is the next one's in_time
        for (encounter,) in db.execute("SELECT encounter_id FROM encounter LIMIT 50").fetchall():
            rows = db.execute(
                "SELECT in_time, out_time FROM transfer WHERE encounter_id = ? AND event != 'discharge' "
                "ORDER BY transfer_id",
                (encounter,),
            ).fetchall()
            for (_, out), (into, _) in zip(rows, rows[1:], strict=False):
                if not _odd_hour(into):
                    assert out == into
    assert max(t for t in _all_times(target) if not t.startswith("9999")) < "2024-10-01"


def _all_times(target: Path) -> list[str]:
    with _db(target) as db:
        return [t for table, column in TIMES for (t,) in db.execute(f"SELECT {column} FROM {table}") if t]


def test_the_mapping_lists_the_lab_dictionary_and_the_vital_signs(built):
    spec = load_spec(REPO / "include" / "mappings" / "sjukhus.yaml")
    assert spec.code_systems["sjukhus_lab"].codes == [i[0] for i in vocab.LAB_ITEMS]
    assert spec.code_systems["vitalparametrar"].codes == [v[0] for v in vocab.VITALS]
    _, target = built[20]
    with _db(target) as db:
        assert sorted(r[0] for r in db.execute("SELECT analys_id FROM klinik.labanalys")) == sorted(
            spec.code_systems["sjukhus_lab"].codes
        )


def test_same_seed_same_content_other_seed_other_content(tmp_path):
    dumps = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        target = tmp_path / name / "sjukhus.sqlite"
        build("sjukhus", str(target), seed=seed, patients=15)
        with _db(target) as db:
            dumps.append(
                [
                    db.execute(f"SELECT * FROM {s}.{t} ORDER BY 1, 2").fetchall()
                    for s, t in (("main", "patient"), ("klinik", "diagnos"), ("klinik", "anteckning"))
                ]
            )
    assert dumps[0] == dumps[1] and dumps[0] != dumps[2]


def test_postgres_build_matches_sqlite(pg_dsn, tmp_path):
    import psycopg

    schemas = ("hospital_gen_adt", "hospital_gen_klinik")
    try:
        pg = build("sjukhus", pg_dsn, seed=7, patients=20, schema=schemas[0], klinik_schema=schemas[1])
        lite = build("sjukhus", str(tmp_path / "sjukhus.sqlite"), seed=7, patients=20)
        assert pg["tables"] == lite["tables"] and pg["expected_findings"] == lite["expected_findings"]
        assert list(pg["schemas"]) == list(schemas)
        with psycopg.connect(pg_dsn) as conn:
            padded = conn.execute(f"SELECT kod FROM {schemas[1]}.diagnos ORDER BY vtf_id, radnr LIMIT 1").fetchone()[0]
        with _db(tmp_path / "sjukhus.sqlite") as db:
            assert padded == db.execute("SELECT kod FROM klinik.diagnos ORDER BY vtf_id, radnr LIMIT 1").fetchone()[0]
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            for s in schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")


def test_a_clock_change_day_is_found_by_zoneinfo_too():
    from demo.generate import _DAYS
    from demo.sjukhus_values import dst_days

    spring, autumn = dst_days()
    for index in (*spring, *autumn):
        day = datetime.fromisoformat(_DAYS[index])
        before = (day + timedelta(hours=1)).replace(tzinfo=ZONE).utcoffset()
        after = (day + timedelta(hours=4)).replace(tzinfo=ZONE).utcoffset()
        assert before != after
    # 1995-2024 in spring; 1995-2023 in autumn, 1995's on the last Sunday of September (EU rule until 1995)
    assert len(spring) == len(autumn) + 1 == 30
    assert _DAYS[autumn[0]] == "1995-09-24"
