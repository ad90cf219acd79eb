"""Tests of the record file renderer, the partition reader and count_entities."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lxml import etree

from decommission.errors import PackageError
from decommission.model import ENTITIES
from decommission.package import records, recordxml
from decommission.package.partition import CHUNK_PATIENTS, PartitionReader
from tests.decommission.fixtures import expected_counts, sample_rows, write_mapped

NS = {"r": records.NS}


def patient_rows(key: str = "2") -> dict[str, list[dict]]:
    rows = sample_rows()
    return {name: [r for r in entity_rows if r["patient_key"] == key] for name, entity_rows in rows.items()}


def stored(attachments: pa.Table) -> dict[str, pa.Array]:
    n = attachments.num_rows
    return {
        "path": pa.array([f"attachments/{a}.pdf" for a in attachments["attachment_id"].to_pylist()], pa.large_string()),
        "size": pa.array(["3"] * n, pa.large_string()),
        "sha256": pa.array(["0" * 64] * n, pa.large_string()),
    }


def render(rows: dict[str, list[dict]], chunk_patients: int = CHUNK_PATIENTS) -> list[tuple[bytes, dict[str, int]]]:
    """Every patient's record file and counts, in patient order, through the packager's own path."""
    base = Path(tempfile.mkdtemp(prefix="records-test-"))
    try:
        out = []
        reader = PartitionReader(write_mapped(base / "m", rows), base / "s", chunk_patients=chunk_patients)
        for chunk in reader.chunks():
            rendered = recordxml.ChunkRecords(chunk, stored(chunk.tables["attachment"]))
            out += [(b"".join(rendered.record(i)), chunk.counts(i)) for i in range(len(chunk))]
        return out
    finally:
        shutil.rmtree(base)


def write(rows: dict[str, list[dict]]) -> tuple[bytes, dict[str, int]]:
    (only,) = render(rows)
    return only


class TestWriteRecord:
    def test_write_record_valid_against_record_xsd(self):
        data, _ = write(patient_rows())
        schema = records.record_schema()
        assert schema.validate(etree.fromstring(data)), schema.error_log

    def test_write_record_keeps_swedish_text_and_escapes_markup(self):
        root = etree.fromstring(write(patient_rows())[0])
        assert root.findtext("r:patient/r:familyName", namespaces=NS) == "Öberg"
        texts = root.xpath("//r:document/r:text/text()", namespaces=NS)
        assert "Smärta i bröstet <ej hjärta> & trötthet." in texts
        assert "Patienten söker för yrsel.\nÅter om två veckor." in texts

    def test_write_record_orders_by_time_then_id(self):
        root = etree.fromstring(write(patient_rows())[0])
        assert root.xpath("//r:case/@id", namespaces=NS) == ["C1", "C2"]
        assert root.xpath("//r:document/@id", namespaces=NS) == ["D1", "D2"]

    def test_write_record_omits_nulls_and_writes_utc(self):
        root = etree.fromstring(write(patient_rows())[0])
        case2 = root.find("r:cases/r:case[@id='C2']", NS)
        assert case2.find("r:endTime", NS) is None
        assert case2.findtext("r:startTime", namespaces=NS) == "2019-01-03T09:30:00Z"

    def test_write_record_marks_protected_identity(self):
        root = etree.fromstring(write(patient_rows("10"))[0])
        restrictions = root.find("r:patient/r:accessRestrictions", NS)
        assert restrictions.get("protectedIdentity") == "true"
        assert restrictions.get("confidential") == "true"

    def test_write_record_returns_counts_per_entity(self):
        _, counts = write(patient_rows())
        assert counts == {
            "patient": 1,
            "case": 2,
            "transfer": 0,
            "document": 2,
            "diagnosis": 1,
            "procedure": 0,
            "medication": 0,
            "lab_result": 1,
            "observation": 0,
            "order": 0,
            "attachment": 2,
            "access_log": 1,
        }

    @pytest.mark.parametrize(
        ("entity", "column"),
        [("document", "text"), ("case", "care_unit"), ("patient", "family_name"), ("access_log", "user")],
        ids=["document-text", "case-care_unit", "patient-family_name", "access_log-user"],
    )
    def test_write_record_refuses_xml_illegal_char_without_the_value(self, entity, column):
        rows = patient_rows()
        rows[entity][0][column] = "HEMLIG\x01TEXT"
        record_id = rows[entity][0][ENTITIES[entity].key]
        with pytest.raises(PackageError, match=f"{entity} '{record_id}': column '{column}'") as caught:
            write(rows)
        assert "HEMLIG" not in str(caught.value)

    def test_write_record_refuses_illegal_key_without_the_value(self):
        rows = patient_rows()
        rows["document"][0]["document_id"] = "HEMLIG\x00"
        with pytest.raises(PackageError, match="document: a record has an empty or not XML-safe document_id") as c:
            write(rows)
        assert "HEMLIG" not in str(c.value)

    def test_chunked_output_is_identical(self):
        """Many small chunks (spread through files on disk) give the bytes of one chunk in memory."""
        assert render(sample_rows(), chunk_patients=1) == render(sample_rows())


class TestCountEntities:
    def test_count_entities_matches_what_was_written(self, tmp_path):
        for key in ("1", "2", "3", "10"):
            data, counts = write(patient_rows(key))
            path = tmp_path / f"{key}.xml"
            path.write_bytes(data)
            assert records.count_entities(path) == counts

    def test_count_entities_refuses_other_xml(self, tmp_path):
        path = tmp_path / "other.xml"
        path.write_bytes(b"<other/>")
        with pytest.raises(PackageError, match="not a record file"):
            records.count_entities(path)

    def test_count_entities_refuses_broken_xml(self, tmp_path):
        path = tmp_path / "broken.xml"
        path.write_bytes(b"<record><patient>")
        with pytest.raises(PackageError, match="not well-formed"):
            records.count_entities(path)


class TestManifest:
    def test_manifest_valid_and_lists_counts(self, tmp_path):
        reader = PartitionReader(write_mapped(tmp_path / "m"), tmp_path / "s")
        (chunk,) = reader.chunks()
        folders = [f"representations/rep1/data/{k}" for k in ("1", "2", "3", "10")]
        entries = recordxml.manifest_entries(chunk, folders, [f"{f}/record.xml" for f in folders])
        text = recordxml.manifest_head("p", "vas", "2025-01-01T00:00:00Z") + "".join(entries) + recordxml.MANIFEST_TAIL
        root = etree.fromstring(text.encode())
        schema = records.record_schema()
        assert schema.validate(root), schema.error_log
        assert root.xpath("r:patient/@key", namespaces=NS) == ["1", "2", "3", "10"]
        assert root.findtext("r:patient[@key='2']/r:personalId", namespaces=NS) == "191212121212"
        assert root.find("r:patient[@key='2']/r:count[@entity='attachment']", NS).text == "2"


class TestHelpers:
    def test_natural_key_orders_digits_numerically_first(self):
        assert sorted(["10", "b", "2", "a", "1"], key=records.natural_key) == ["1", "2", "10", "a", "b"]

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2020-01-02T03:04:05Z"),
            (
                dt.datetime(2020, 1, 2, 4, 4, 5, 7, tzinfo=dt.timezone(dt.timedelta(hours=1))),
                "2020-01-02T03:04:05.000007Z",
            ),
            (dt.date(2020, 1, 2), "2020-01-02"),
            (True, "true"),
            (None, None),
        ],
        ids=["utc", "offset-micro", "date", "bool", "none"],
    )
    def test_format_value(self, value, text):
        assert records.format_value(value) == text


class TestLoadPartition:
    def test_load_partition_natural_order_and_missing_entity(self, tmp_path):
        mapped = write_mapped(tmp_path)
        assert "medication" not in mapped
        reader = PartitionReader(mapped, tmp_path / "s", chunk_patients=3)
        assert reader.keys.to_pylist() == ["1", "2", "3", "10"]
        totals = dict.fromkeys(ENTITIES, 0)
        for chunk in reader.chunks():
            for i in range(len(chunk)):
                for name, count in chunk.counts(i).items():
                    totals[name] += count
        assert totals == expected_counts()

    def test_load_partition_missing_file_is_no_rows(self, tmp_path):
        mapped = write_mapped(tmp_path)
        mapped["medication"] = tmp_path / "absent.parquet"
        (chunk,) = PartitionReader(mapped, tmp_path / "s").chunks()
        assert chunk.tables["medication"].num_rows == 0

    def test_load_partition_refuses_unknown_entity(self, tmp_path):
        with pytest.raises(PackageError, match="unknown entities: surgery"):
            PartitionReader({**write_mapped(tmp_path), "surgery": tmp_path / "x.parquet"}, tmp_path / "s")

    def test_load_partition_refuses_wrong_columns(self, tmp_path):
        mapped = write_mapped(tmp_path)
        pq.write_table(pa.table({"case_id": ["C1"], "patient_key": ["2"]}), mapped["case"])
        with pytest.raises(PackageError, match="case: columns"):
            PartitionReader(mapped, tmp_path / "s")

    def test_load_partition_refuses_orphans(self, tmp_path):
        rows = sample_rows()
        rows["case"][0]["patient_key"] = "99"
        with pytest.raises(PackageError, match="case: rows reference 1 patient_key values absent from patient"):
            PartitionReader(write_mapped(tmp_path, rows), tmp_path / "s")

    def test_load_partition_refuses_duplicate_patient(self, tmp_path):
        rows = sample_rows()
        rows["patient"].append(dict(rows["patient"][0]))
        with pytest.raises(PackageError, match="patient: 1 patient_key values occur on more than one row"):
            PartitionReader(write_mapped(tmp_path, rows), tmp_path / "s")

    def test_load_partition_refuses_empty(self, tmp_path):
        with pytest.raises(PackageError, match="no patients"):
            PartitionReader(write_mapped(tmp_path, {"patient": []}), tmp_path / "s")


def _expected(rows: dict[str, list[dict]]) -> dict:
    """What the read-back expects of the rows (attachments left out: the helper above stores no files)."""
    from decommission.reconcile.readback import _render

    return {e: {str(r[ENTITIES[e].key]): _render(e, r) for r in rows.get(e, [])} for e in ENTITIES if e != "attachment"}


def _parsed(data: bytes) -> dict:
    from decommission.reconcile.readback import parse_record

    return {e: v for e, v in parse_record(data).items() if e != "attachment"}


class TestQualityFlags:
    """A record the mapping flagged carries its flags (record.xsd ``quality``); clean records carry none."""

    @staticmethod
    def _flagged() -> dict[str, list[dict]]:
        from decommission.mapping import flags

        rows = patient_rows()
        rows["patient"][0]["quality"] = flags.to_json(
            [
                flags.flag(
                    "ID_INVALID_CHECKSUM",
                    column="personnr",
                    fields=["personal_id", "id_type"],
                    disposition="keep_flagged",
                    detail="identifier fails validation",
                )
            ]
        )
        document = rows["document"][0]
        document["text"] = flags.escape("Status: ok\x01 & <klart> \\ slut")
        document["quality"] = flags.to_json(
            [
                flags.flag("SOFT_DELETED", column="makulerad", disposition="keep_flagged", detail='"makulerad" & <1>'),
                flags.flag(
                    "XML_ILLEGAL_CHAR",
                    column="anteckning",
                    fields=["text"],
                    disposition="keep_flagged",
                    detail="character U+0001 at offset 10",
                    encoding="backslash-u",
                ),
                flags.flag(
                    "CODE_INVALID",
                    column="kod",
                    fields=["title"],
                    disposition="correct",
                    original=flags.escape("J18,9\x02"),
                    reference="RN 2025/0418",
                    decided_by="Karin L",
                ),
            ]
        )
        return rows

    def test_flags_are_written_valid_and_read_back_equal(self):
        from decommission.reconcile.readback import compare

        rows = self._flagged()
        data, _ = write(rows)
        schema = records.record_schema()
        assert schema.validate(etree.fromstring(data)), schema.error_log
        root = etree.fromstring(data)
        flags_ = root.findall(".//r:documents/r:document/r:quality/r:flag", NS)
        assert [f.get("reason") for f in flags_] == ["SOFT_DELETED", "XML_ILLEGAL_CHAR", "CODE_INVALID"]
        assert flags_[0].get("detail") == '"makulerad" & <1>' and flags_[1].get("fields") == "text"
        assert flags_[2].get("decidedBy") == "Karin L" and flags_[2].get("original") == "J18,9\\u0002"
        patient_flag = root.find("r:patient/r:quality/r:flag", NS)
        assert patient_flag.get("fields") == "personalId idType"
        assert compare(_expected(rows), _parsed(data)) == []

    def test_a_changed_flag_is_a_difference_of_the_read_back(self):
        from decommission.reconcile.readback import compare

        rows = self._flagged()
        data, _ = write(rows)
        changed = data.replace(b'reason="SOFT_DELETED"', b'reason="CODE_INVALID"')
        assert [(d["entity"], d["field"], d["kind"]) for d in compare(_expected(rows), _parsed(changed))] == [
            ("document", "quality", "differs")
        ]

    def test_clean_records_have_no_quality_element(self):
        data, _ = write(patient_rows())
        assert b"<quality>" not in data

    def test_a_flag_xml_cannot_hold_is_refused_naming_the_record(self):
        from decommission.mapping import flags

        rows = patient_rows()
        rows["document"][0]["quality"] = flags.to_json(
            [flags.flag("CODE_INVALID", disposition="keep_flagged", detail="bad \x01")]
        )
        with pytest.raises(PackageError, match=r"document 'D2'.*quality flag's detail") as err:
            write(rows)
        assert "\x01" not in str(err.value)
