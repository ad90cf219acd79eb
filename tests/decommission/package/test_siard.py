"""The SIARD 2.2 writer: values as stored, read back by a reader that is not ours, valid, deterministic."""

from __future__ import annotations

import datetime as dt
import io
import math
import tarfile
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lxml import etree

from decommission.package import siard, sip
from decommission.validate.validator import validate_package
from tests.decommission.fixtures import make_context, write_mapped
from tests.siard_reader import read_siard

NOTES = [
    "Pat. mår bra.",
    "C:\\temp\\remiss \\u00e5 (a backslash and what looks like an escape)",
    "kontrolltecken \x01 och \x1f, vagnretur \r\n och <&> i texten",
    None,
    "Åsa Öberg, ärende",
    "  inledande och avslutande blanktecken  ",
]
RAW = [b"\xe5ngest", b"plain", None, b"\xff\xfe\x00", b"", b"ok"]  # text that does not decode kept as bytes
LOBS = [b"%PDF-1.4\n%%EOF\n", None, b"", bytes(range(256)) * 40, b"x", None]
KEYS = [1, 2, 3, 4, 5, 6]
DISPOSED = frozenset({"5"})


def _staged(path: Path) -> Path:
    table = pa.table(
        {
            "id": pa.array(KEYS, pa.int64()),
            "note": pa.array(NOTES, pa.large_string()),
            "raw_text": pa.array(RAW, pa.large_binary()),
            "content": pa.array(LOBS, pa.large_binary()),
            "written": pa.array(
                [
                    dt.datetime(2019, 1, 2, 3, 4, 5, 678901),
                    None,
                    dt.datetime(1900, 1, 1),
                    *[dt.datetime(2020, 2, 29)] * 3,
                ],
                pa.timestamp("us"),
            ),
            "signed": pa.array([dt.datetime(2019, 1, 2, tzinfo=dt.UTC)] * 6, pa.timestamp("us", tz="UTC")),
            "day": pa.array([dt.date(2019, 1, 2), None, dt.date(1, 1, 1), dt.date(9999, 12, 31), None, None]),
            "dose": pa.array([1.5, float("nan"), None, -0.0, 1e300, float("inf")]),
            "deleted": pa.array([True, False, None, False, True, False]),
        }
    )
    pq.write_table(table, path, row_group_size=2)  # several row groups: written in turn
    return path


def _raw_table(path: Path) -> siard.RawTable:
    columns = (
        siard.Column("id", "integer", False, "the note's own key"),
        siard.Column("note", "text"),
        siard.Column("raw_text", "TEXT"),
        siard.Column("content", "bytea", comment="the attachment's bytes"),
        siard.Column("written", "timestamp without time zone"),
        siard.Column("signed", "timestamp with time zone"),
        siard.Column("day", "date"),
        siard.Column("dose", "double precision"),
        siard.Column("deleted", "boolean"),
    )
    return siard.RawTable(
        name="journalanteckning",
        columns=columns,
        path=path,
        key="id",
        primary_key=("id",),
        foreign_keys=({"columns": ["id"], "table": "journalanteckning", "references": ["id"]},),
        comment="journal notes",
        disposed=DISPOSED,
    )


DATABASE = siard.Database(
    name="VAS",
    schema="vas",
    data_owner="Region Norrbotten",
    origin="-2024-09-30",
    archived=dt.date(2025, 3, 1),
    producer="decommission test",
)


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, siard.SiardResult]:
    target = tmp_path / "raw.siard"
    result = siard.write_siard(target, DATABASE, [_raw_table(_staged(tmp_path / "note.parquet"))])
    return target, result


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def test_every_value_reads_back_as_stored_through_an_independent_reader(written):
    target, result = written
    tables = read_siard(target.read_bytes())
    table = tables["journalanteckning"]
    kept = [i for i, key in enumerate(KEYS) if str(key) not in DISPOSED]
    assert result.rows == {"journalanteckning": len(kept)} and table.rows_declared == len(kept)
    assert [row["id"] for row in table.rows] == [KEYS[i] for i in kept]  # the disposed row is absent
    staged = pq.read_table(target.parent / "note.parquet").to_pylist()
    for row in table.rows:
        source = staged[KEYS.index(row["id"])]
        for name, value in source.items():
            expected = value
            if name == "written" and value is not None:
                expected = value  # no zone: read back as written, without one
            if name == "signed":
                expected = value.astimezone(dt.UTC)
            assert _same(row[name], expected), (row["id"], name)
    assert table.primary_key == ["id"]
    assert {c.name: (c.type, c.original) for c in table.columns}["raw_text"] == ("BINARY VARYING", "TEXT")
    assert {c.name: c.type for c in table.columns}["content"] == "BLOB"


def test_large_objects_are_files_in_the_lob_folder(written):
    target, result = written
    names = zipfile.ZipFile(target).namelist()
    lobs = [n for n in names if n.startswith("content/schema0/table0/lob4/")]
    present = [b for b, key in zip(LOBS, KEYS, strict=True) if b is not None and str(key) not in DISPOSED]
    assert len(lobs) == result.lobs == len(present)


def test_metadata_and_table_validate_against_the_siard_schemas(written):
    target, _ = written
    archive = zipfile.ZipFile(target)
    metadata_schema = etree.XMLSchema(etree.parse(str(siard.METADATA_XSD)))
    metadata_schema.assertValid(etree.fromstring(archive.read("header/metadata.xml")))
    assert archive.read("header/metadata.xsd") == siard.METADATA_XSD.read_bytes()
    table_schema = etree.XMLSchema(etree.fromstring(archive.read("content/schema0/table0/table0.xsd")))
    table_schema.assertValid(etree.fromstring(archive.read("content/schema0/table0/table0.xml")))
    assert "header/siardversion/2.2/" in archive.namelist()


def test_two_writes_give_the_same_bytes(tmp_path, written):
    target, _ = written
    again = tmp_path / "again.siard"
    siard.write_siard(again, DATABASE, [_raw_table(tmp_path / "note.parquet")])
    assert again.read_bytes() == target.read_bytes()


def test_a_package_holds_its_raw_representation_and_validates(tmp_path):
    raw = siard.RawPart(DATABASE, (_raw_table(_staged(tmp_path / "note.parquet")),))
    built = [
        sip.build_package(
            mapped=write_mapped(tmp_path / "mapped"),
            context=make_context(tmp_path / "docs"),
            partition_id="3",
            out_dir=tmp_path / out,
            directory=False,
            raw=raw,
        )
        for out in ("one", "two")
    ]
    assert built[0].container.read_bytes() == built[1].container.read_bytes()  # deterministic, SIARD included
    assert built[0].raw_rows == {"journalanteckning": 5}
    report = validate_package(built[0].container)
    assert report.ok, report.to_text()
    assert report.raw_rows == {"journalanteckning": 5}
    with tarfile.open(built[0].container) as tar:
        names = tar.getnames()
        member = f"{built[0].package_id}/representations/rep2/data/{built[0].package_id}.siard"
        assert member in names and f"{built[0].package_id}/representations/rep2/METS.xml" in names
        root = etree.parse(io.BytesIO(tar.extractfile(f"{built[0].package_id}/METS.xml").read()))
        data = tar.extractfile(member).read()
    assert read_siard(data)["journalanteckning"].rows_declared == 5
    hrefs = root.xpath(
        "//mets:mptr/@xlink:href",
        namespaces={"mets": "http://www.loc.gov/METS/", "xlink": "http://www.w3.org/1999/xlink"},
    )
    assert "representations/rep2/METS.xml" in hrefs


def _package_with_raw(tmp_path: Path) -> tuple[Path, Path]:
    raw = siard.RawPart(DATABASE, (_raw_table(_staged(tmp_path / "note.parquet")),))
    built = sip.build_package(
        mapped=write_mapped(tmp_path / "mapped"),
        context=make_context(tmp_path / "docs"),
        partition_id="3",
        out_dir=tmp_path / "out",
        directory=True,
        raw=raw,
    )
    return built.directory, built.directory / "representations" / "rep2" / "data" / f"{built.package_id}.siard"


def test_the_validator_finds_a_row_count_that_differs(tmp_path):
    # the SIARD file's metadata altered to claim one row more (in the folder: its hashes checked separately)
    folder, path = _package_with_raw(tmp_path)
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, body in entries:
            if info.filename == "header/metadata.xml":
                body = body.replace(b"<rows>5</rows>", b"<rows>6</rows>")
            archive.writestr(info, body)
    report = validate_package(folder)
    assert any(p.requirement == "SIARD-ROWS" for p in report.problems), report.to_text()


def test_a_type_without_a_siard_form_is_kept_as_its_text(tmp_path):
    staged = tmp_path / "odd.parquet"
    pq.write_table(
        pa.table(
            {
                "id": pa.array([1, 2], pa.int64()),
                "at": pa.array([dt.time(8, 30), None], pa.time64("us")),
                "codes": pa.array([[1, 2], None], pa.list_(pa.int64())),  # a PostgreSQL array, as ADBC gives it
            }
        ),
        staged,
    )
    columns = (siard.Column("id", "integer"), siard.Column("at", "time"), siard.Column("codes", "ARRAY"))
    target = tmp_path / "odd.siard"
    siard.write_siard(target, DATABASE, [siard.RawTable("odd", columns, staged, "id")])
    rows = read_siard(target.read_bytes())["odd"].rows
    assert rows[0]["at"] == "08:30:00.000000" and rows[0]["codes"] == "[1, 2]" and rows[1]["codes"] is None
    archive = zipfile.ZipFile(target)
    schema = etree.XMLSchema(etree.fromstring(archive.read("content/schema0/table0/table0.xsd")))
    schema.assertValid(etree.fromstring(archive.read("content/schema0/table0/table0.xml")))


def test_a_table_of_another_schema_is_a_schema_of_its_own_and_counts_as_schema_table(tmp_path):
    """Two schemas of the source (a SQLite file and the one it attaches, or two PostgreSQL schemas): the other
    schema's tables go into ``schema1`` under their own names; the build, our validator and the independent
    reader all count them as ``schema.table``, so a table of the same name in each stays apart."""
    import dataclasses

    own = _raw_table(_staged(tmp_path / "note.parquet"))
    other = dataclasses.replace(
        own,
        name="klinik.journalanteckning",
        schema="klinik",
        foreign_keys=({"columns": ["id"], "table": "klinik.journalanteckning", "references": ["id"]},),
        disposed=frozenset(),
    )
    target = tmp_path / "two.siard"
    result = siard.write_siard(target, DATABASE, [own, other])
    assert result.rows == {"journalanteckning": 5, "klinik.journalanteckning": 6}
    archive = zipfile.ZipFile(target)
    metadata = etree.fromstring(archive.read("header/metadata.xml"))
    etree.XMLSchema(etree.parse(str(siard.METADATA_XSD))).assertValid(metadata)
    ns = {"m": siard.METADATA_NS}
    schemas = [
        (
            s.findtext("m:name", namespaces=ns),
            s.findtext("m:folder", namespaces=ns),
            s.findtext("m:tables/m:table/m:name", namespaces=ns),
        )
        for s in metadata.iterfind("m:schemas/m:schema", ns)
    ]
    assert schemas == [(DATABASE.schema, "schema0", "journalanteckning"), ("klinik", "schema1", "journalanteckning")]
    reference = metadata.find("m:schemas/m:schema[2]/m:tables/m:table/m:foreignKeys/m:foreignKey", ns)
    assert reference.findtext("m:referencedSchema", namespaces=ns) == "klinik"
    assert reference.findtext("m:referencedTable", namespaces=ns) == "journalanteckning"
    assert "content/schema1/table1/table1.xml" in archive.namelist()
    read = read_siard(target.read_bytes())
    assert {name: t.rows_declared for name, t in read.items()} == result.rows
    raw = siard.RawPart(DATABASE, (own, other))
    built = sip.build_package(
        mapped=write_mapped(tmp_path / "mapped"),
        context=make_context(tmp_path / "docs"),
        partition_id="3",
        out_dir=tmp_path / "pkg",
        directory=False,
        raw=raw,
    )
    report = validate_package(built.container)
    assert report.ok, report.to_text()
    assert report.raw_rows == built.raw_rows == result.rows


def test_the_validator_finds_a_large_object_file_missing(tmp_path):
    folder, path = _package_with_raw(tmp_path)
    with zipfile.ZipFile(path) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    gone = next(info.filename for info, _body in entries if "/lob4/" in info.filename)
    with zipfile.ZipFile(path, "w") as archive:
        for info, body in entries:
            if info.filename != gone:
                archive.writestr(info, body)
    report = validate_package(folder)
    assert any(p.requirement == "SIARD-LOB" for p in report.problems), report.to_text()


XS = "http://www.w3.org/2001/XMLSchema"


def _schema(body: str) -> etree._ElementTree:
    return etree.ElementTree(etree.fromstring(f'<xs:schema xmlns:xs="{XS}">{body}</xs:schema>'))


_FILE_TYPE = '<xs:complexType name="blobType"><xs:attribute name="file"/></xs:complexType>'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_FILE_TYPE + '<xs:element name="c1" type="xs:string"/>', False),  # declared, used by no column
        (_FILE_TYPE + '<xs:element name="c1" type="blobType"/>', True),
        (
            _FILE_TYPE + '<xs:complexType name="mine"><xs:complexContent><xs:extension base="blobType"/>'
            '</xs:complexContent></xs:complexType><xs:element name="c1" type="mine"/>',
            True,
        ),
        ('<xs:element name="c1"><xs:complexType><xs:attribute name="file"/></xs:complexType></xs:element>', True),
        ('<xs:complexType name="t"><xs:anyAttribute/></xs:complexType><xs:element name="c1" type="t"/>', True),
        ('<xs:attributeGroup name="g"><xs:attribute name="file"/></xs:attributeGroup>', True),
    ],
)
def test_the_validator_looks_at_cells_whenever_a_schema_could_let_one_name_a_file(body, expected):
    from decommission.validate.siard import may_name_files

    assert may_name_files(_schema(body)) is expected
