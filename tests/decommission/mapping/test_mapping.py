from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from decommission.mapping.identity import make_personnummer
from decommission.mapping.transform import map_partition
from decommission.plan.mapping_spec import check_against_source, load_spec
from decommission.privacy import keyed_hash

REPO = Path(__file__).resolve().parents[3]
GOOD = make_personnummer(__import__("datetime").date(1961, 4, 9), 123)
BAD = GOOD[:-1] + str((int(GOOD[-1]) + 1) % 10)


def _tables() -> dict[str, pd.DataFrame]:
    notes = [
        # ant_id, pat_id, text, makulerad, time
        (1, 1, "Aktuellt: mår bättre.\nStatus: opåverkad.", 0, "2020-03-01 10:00:00"),
        (2, 1, "Aktuellt: m}r b{ttre", 0, "2020-03-02 10:00:00"),  # 7-bit Swedish
        (3, 1, "Status: trÃ¶tt", 0, "2020-03-03 10:00:00"),  # UTF-8 read as Latin-1
        (4, 1, "Bedömning: ok\x01", 0, "2020-03-04 10:00:00"),  # XML-illegal
        (5, 1, "Åtgärd: ingen", 1, "2020-03-05 10:00:00"),  # soft-deleted
        (6, 1, "Åtgärd: ingen", 0, "1900-01-01 00:00:00"),  # sentinel
        (7, 2, "Aktuellt: feber", 0, "2020-03-06 10:00:00"),  # patient with bad id
        (8, 99, "Aktuellt: orphan", 0, "2020-03-07 10:00:00"),  # orphan
        (9, 1, "Åtgärd: ingen", 1, "1900-01-01 00:00:00"),  # deleted AND sentinel: first reason wins
        (10, 1, "Status: tid i höstens dubbla timme", 0, "2020-10-25 02:30:00"),  # ambiguous local hour
    ]
    return {
        "patient": pd.DataFrame(
            {
                "pat_id": [1, 2],
                "personnr": [GOOD, BAD],
                "fornamn": ["Åsa", "Björn"],
                "efternamn": ["Öberg", "Ek"],
                "kon": ["K", "M"],
                "skyddad_id": [1, 0],
                "sparr": [0, 1],
            }
        ),
        "journalanteckning": pd.DataFrame(
            notes, columns=["ant_id", "pat_id", "anteckning", "makulerad", "skriven_tid"]
        ).assign(kontakt_id=None, sokord="Aktuellt", signerad_av="dr X"),
        "vardkontakt": pd.DataFrame(
            columns=["kontakt_id", "pat_id", "vardenhet", "kontakttyp", "start_tid", "slut_tid"]
        ),
        "diagnos": pd.DataFrame(
            {
                "diag_id": [1, 2, 3],
                "pat_id": [1, 1, 1],
                "kontakt_id": [None] * 3,
                "icd10": ["J18.9", "XYZ", "I10"],
                "diagnos_tid": ["2020-01-01 08:00:00"] * 3,
                "makulerad": [0, 0, 0],
            }
        ),
        "lakemedel": pd.DataFrame(columns=["lm_id", "pat_id", "atc", "preparat", "dosering", "ordinerad_tid"]),
        "labsvar": pd.DataFrame(
            columns=["svar_id", "pat_id", "kontakt_id", "npu_kod", "analys", "varde", "enhet", "provtid"]
        ),
        "bilaga": pd.DataFrame(
            {
                "bilaga_id": [1, 2],
                "pat_id": [1, 1],
                "ant_id": [1, 1],
                "filnamn": ["röntgen.pdf", "tom.pdf"],
                "mimetyp": ["application/pdf"] * 2,
                "innehall": [b"%PDF-1.4 x", b""],
            }
        ),
        "atkomstlogg": pd.DataFrame(
            {
                "logg_id": [1, 2],
                "pat_id": [1, 2],
                "anvandare": ["u1", "u2"],
                "handelse": ["Läst journal"] * 2,
                "tid": ["2021-01-01 12:00:00"] * 2,
            }
        ),
    }


@pytest.fixture
def mapped(tmp_path):
    spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
    tables = _tables()
    result = map_partition(spec, lambda t: tables[t].copy(), tmp_path)
    return result, tmp_path


class TestMapPartition:
    def test_every_row_ends_mapped_or_quarantined(self, mapped):
        result, _ = mapped
        for table, n in result.extracted.items():
            assert n == result.mapped[table] + sum(result.quarantined.get(table, {}).values()), table

    def test_reasons_follow_the_precedence(self, mapped):
        result, out = mapped
        assert result.quarantined["patient"] == {"ID_INVALID_CHECKSUM": 1}
        assert result.quarantined["journalanteckning"] == {
            "ENCODING_SUSPECT": 2,
            "ORPHAN": 1,
            "PATIENT_QUARANTINED": 1,
            "SENTINEL_DATE": 1,
            "SOFT_DELETED": 2,
            "XML_ILLEGAL_CHAR": 1,
        }
        assert result.quarantined["diagnos"] == {"CODE_INVALID": 1}
        assert result.quarantined["bilaga"] == {"EMPTY_ATTACHMENT": 1}
        assert result.quarantined["atkomstlogg"] == {"PATIENT_QUARANTINED": 1}
        q = pq.read_table(out / "quarantine.parquet").to_pandas()
        assert q.loc[q.source_key == "9", "rule"].item() == "SOFT_DELETED"

    def test_quarantine_holds_no_patient_data(self, mapped):
        _, out = mapped
        q = pq.read_table(out / "quarantine.parquet").to_pandas()
        text = q.to_csv()
        assert BAD not in text and "m}r" not in text and "feber" not in text
        assert keyed_hash(BAD) in set(q.value_digest)
        assert q.loc[q.rule == "XML_ILLEGAL_CHAR", "detail"].item() == "character U+0001 at offset 13"

    def test_mapped_records_follow_the_model(self, mapped):
        result, out = mapped
        patients = pq.read_table(out / "patient.parquet").to_pandas()
        assert patients.to_dict("records")[0] | {"birth_date": None} == {
            "patient_key": "1",
            "personal_id": GOOD,
            "id_type": "personnummer",
            "given_name": "Åsa",
            "family_name": "Öberg",
            "sex": "female",
            "birth_date": None,
            "protected_identity": True,
            "blocked": False,
            "confidential": False,
        }
        docs = pq.read_table(out / "document.parquet").to_pandas()
        assert list(docs.document_id) == ["1", "10"]
        assert docs.text[0] == "Aktuellt: mår bättre.\nStatus: opåverkad."  # journal text unchanged
        assert str(docs.time[0]) == "2020-03-01 09:00:00+00:00"  # CET wall clock -> UTC
        assert result.adjusted_times == 1  # the ambiguous autumn hour is counted, not hidden


class TestSpecAgainstSource:
    def test_missing_column_names_the_spec_line(self):
        spec = load_spec(REPO / "include" / "mappings" / "vas.yaml")
        live = {spec.source_table(t): spec.tables[t].columns() for t in spec.tables}
        live["journalanteckning"] = [c for c in live["journalanteckning"] if c != "anteckning"]
        del live["bilaga"]
        problems = check_against_source(spec, live)
        assert len(problems) == 2
        assert "tables.journalanteckning: column 'anteckning' not in source table 'journalanteckning'" in problems[0]
        assert "tables.bilaga: source table 'bilaga' does not exist" in problems[1]
