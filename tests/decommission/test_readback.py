"""The read-back comparison: a record file parsed back equals the mapped rows it was written from."""

from __future__ import annotations

import hashlib
import io

from decommission import records
from decommission.readback import _render, compare, parse_record
from tests.decommission.fixtures import sample_rows


def _patient(key: str = "2") -> dict[str, list[dict]]:
    return {name: [r for r in rows if r["patient_key"] == key] for name, rows in sample_rows().items()}


def _written(rows: dict[str, list[dict]]) -> bytes:
    stored = {
        r["attachment_id"]: records.StoredFile(
            f"attachments/{r['attachment_id']}", len(r["content"]), hashlib.sha256(r["content"]).hexdigest()
        )
        for r in rows.get("attachment", [])
    }
    out = io.BytesIO()
    records.write_record(out, rows["patient"][0], rows, stored)
    return out.getvalue()


def _expected(rows: dict[str, list[dict]]) -> dict:
    from decommission.model import ENTITIES

    return {e: {str(r[ENTITIES[e].key]): _render(e, r) for r in rows.get(e, [])} for e in ENTITIES}


class TestCompare:
    def test_record_written_from_rows_matches_them(self):
        rows = _patient()
        archived = parse_record(_written(rows))
        assert sum(len(v) for v in archived.values()) > 3
        assert compare(_expected(rows), archived) == []

    def test_changed_text_missing_and_extra_records_are_each_named_without_values(self):
        rows = _patient()
        data = _written(rows)
        archived = parse_record(data)
        doc_id = next(iter(archived["document"]))
        archived["document"][doc_id]["text"] = "changed"
        case_id = next(iter(archived["case"]))
        del archived["case"][case_id]
        archived["diagnosis"]["999"] = {"code": "A00"}
        found = compare(_expected(rows), archived)
        kinds = sorted((d["entity"], d["field"], d["kind"]) for d in found)
        assert kinds == [
            ("case", "", "missing in the archive"),
            ("diagnosis", "", "not in the source"),
            ("document", "text", "differs"),
        ]
        assert all(doc_id not in d["record"] and "changed" not in str(d) for d in found)

    def test_attachment_content_is_compared_by_its_hash(self):
        rows = _patient()
        if not rows.get("attachment"):
            rows = next(p for p in (_patient(k) for k in {r["patient_key"] for r in sample_rows()["attachment"]}))
        archived = parse_record(_written(rows))
        aid = next(iter(archived["attachment"]))
        archived["attachment"][aid]["sha256"] = "0" * 64
        assert [(d["entity"], d["field"]) for d in compare(_expected(rows), archived)] == [("attachment", "sha256")]
