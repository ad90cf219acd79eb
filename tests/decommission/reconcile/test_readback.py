"""The read-back comparison: a record file parsed back equals the mapped rows it was written from."""

from __future__ import annotations

import re
import tarfile

import pytest

from decommission.errors import ArchiveError
from decommission.model import ENTITIES
from decommission.package import sip
from decommission.reconcile.readback import _render, compare, parse_record
from tests.decommission.fixtures import make_context, sample_rows, write_mapped


@pytest.fixture(scope="module")
def package_records(tmp_path_factory) -> dict[str, bytes]:
    """Every patient's record file, from a package the packager builds (read from its tar, as the archive does)."""
    base = tmp_path_factory.mktemp("readback")
    result = sip.build_package(
        mapped=write_mapped(base / "mapped"), context=make_context(base / "docs"), partition_id="p0001", out_dir=base
    )
    out = {}
    with tarfile.open(result.container) as tar:
        for member in tar.getmembers():
            match = re.search(r"representations/rep1/data/([^/]+)/record\.xml$", member.name)
            if match:
                out[match.group(1)] = tar.extractfile(member).read()
    return out


def _patient(key: str) -> dict[str, list[dict]]:
    return {name: [r for r in rows if r["patient_key"] == key] for name, rows in sample_rows().items()}


def _expected(rows: dict[str, list[dict]]) -> dict:
    return {e: {str(r[ENTITIES[e].key]): _render(e, r) for r in rows.get(e, [])} for e in ENTITIES}


class TestCompare:
    def test_every_packaged_record_matches_its_rows(self, package_records):
        assert len(package_records) >= 2
        for key, data in package_records.items():
            archived = parse_record(data)
            assert sum(len(v) for v in archived.values()) >= 1
            assert compare(_expected(_patient(key)), archived) == [], key

    def test_changed_text_missing_and_extra_records_are_each_named_without_values(self, package_records):
        key = next(k for k, d in package_records.items() if parse_record(d)["document"] and parse_record(d)["case"])
        rows = _patient(key)
        archived = parse_record(package_records[key])
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

    def test_attachment_content_is_compared_by_its_hash(self, package_records):
        key = next(k for k, d in package_records.items() if parse_record(d)["attachment"])
        rows = _patient(key)
        archived = parse_record(package_records[key])
        aid = next(iter(archived["attachment"]))
        archived["attachment"][aid]["sha256"] = "0" * 64
        assert [(d["entity"], d["field"]) for d in compare(_expected(rows), archived)] == [("attachment", "sha256")]


class TestUnreadableRecord:
    """A record the archive cannot return, or returns cut short, is a difference in the report, not a crash."""

    @pytest.mark.parametrize(
        ("answer", "says"),
        [
            (ArchiveError("read record of package p: the archive could not be reached"), "could not be reached"),
            (b"<record xmlns='urn:x'><patient key='1'><familyName>Ande", "not a readable record (XMLSyntaxError)"),
        ],
        ids=["archive-error", "truncated-xml"],
    )
    def test_unreadable_record_is_a_mismatch(self, answer, says) -> None:
        import datetime as dt

        from decommission.reconcile.readback import check_sample

        def read_record(package_id: str, patient: str) -> bytes:
            if isinstance(answer, Exception):
                raise answer
            return answer

        (checked,) = check_sample(
            source=None, spec=None, cut_off=dt.date(2024, 9, 30), drawn=[("p", "4711")], read_record=read_record
        )
        assert checked["match"] is False and says in checked["error"]
        assert checked["differences"] == [{"entity": "record", "record": "", "field": "", "kind": "unreadable"}]
        assert "4711" not in str(checked)
