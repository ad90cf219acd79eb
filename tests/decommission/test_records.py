"""Tests of the patient record writer, the partition reader and count_entities."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lxml import etree

from decommission import records
from decommission.errors import PackageError
from decommission.model import ENTITIES
from tests.decommission.fixtures import expected_counts, sample_rows, write_mapped

NS = {"r": records.NS}


def patient_rows(key: str = "2") -> dict[str, list[dict]]:
    rows = sample_rows()
    return {name: [r for r in entity_rows if r["patient_key"] == key] for name, entity_rows in rows.items()}


def stored(rows: dict[str, list[dict]]) -> dict[str, records.StoredFile]:
    return {
        r["attachment_id"]: records.StoredFile(f"attachments/{r['attachment_id']}.pdf", 3, "0" * 64)
        for r in rows.get("attachment", [])
    }


def write(rows: dict[str, list[dict]]) -> tuple[bytes, dict[str, int]]:
    out = io.BytesIO()
    counts = records.write_record(out, rows["patient"][0], rows, stored(rows))
    return out.getvalue(), counts


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
            "document": 2,
            "diagnosis": 1,
            "medication": 0,
            "lab_result": 1,
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

    def test_write_record_refuses_attachment_without_stored_file(self):
        rows = patient_rows()
        with pytest.raises(PackageError, match="attachment 'A1' has no stored file"):
            records.write_record(io.BytesIO(), rows["patient"][0], rows, {})


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
    def test_manifest_valid_and_lists_counts(self):
        out = io.BytesIO()
        writer = records.ManifestWriter(
            out, package_id="p", system_id="vas", created=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        )
        rows = patient_rows()
        writer.add(
            rows["patient"][0],
            folder="representations/rep1/data/2",
            record="representations/rep1/data/2/record.xml",
            counts=write(rows)[1],
        )
        writer.close()
        root = etree.fromstring(out.getvalue())
        schema = records.record_schema()
        assert schema.validate(root), schema.error_log
        assert root.findtext("r:patient/r:personalId", namespaces=NS) == "191212121212"
        assert root.find("r:patient/r:count[@entity='attachment']", NS).text == "2"


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
        partition = records.load_partition(mapped)
        assert partition.order == ["1", "2", "3", "10"]
        totals = dict.fromkeys(ENTITIES, 0)
        for rows in partition.patients():
            assert len(rows["patient"]) == 1
            for name, entity_rows in rows.items():
                totals[name] += len(entity_rows)
        assert totals == expected_counts()

    def test_load_partition_missing_file_is_no_rows(self, tmp_path):
        mapped = write_mapped(tmp_path)
        mapped["medication"] = tmp_path / "absent.parquet"
        assert records.load_partition(mapped).tables["medication"].num_rows == 0

    def test_load_partition_refuses_unknown_entity(self, tmp_path):
        with pytest.raises(PackageError, match="unknown entities: surgery"):
            records.load_partition({**write_mapped(tmp_path), "surgery": tmp_path / "x.parquet"})

    def test_load_partition_refuses_wrong_columns(self, tmp_path):
        mapped = write_mapped(tmp_path)
        pq.write_table(pa.table({"case_id": ["C1"], "patient_key": ["2"]}), mapped["case"])
        with pytest.raises(PackageError, match="case: columns"):
            records.load_partition(mapped)

    def test_load_partition_refuses_orphans(self, tmp_path):
        rows = sample_rows()
        rows["case"][0]["patient_key"] = "99"
        with pytest.raises(PackageError, match="case: rows reference 1 patient_key values absent from patient"):
            records.load_partition(write_mapped(tmp_path, rows))

    def test_load_partition_refuses_duplicate_patient(self, tmp_path):
        rows = sample_rows()
        rows["patient"].append(dict(rows["patient"][0]))
        with pytest.raises(PackageError, match="patient: 1 patient_key values occur on more than one row"):
            records.load_partition(write_mapped(tmp_path, rows))

    def test_load_partition_refuses_empty(self, tmp_path):
        with pytest.raises(PackageError, match="no patients"):
            records.load_partition(write_mapped(tmp_path, {"patient": []}))
