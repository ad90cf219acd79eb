"""The raw representation: the extracted source rows, as the source holds them, in a SIARD 2.2 file.

SIARD 2.2 (eCH-0165, DILCIS Board) is a ZIP file of XML: ``header/metadata.xml`` (the catalogue:
tables, columns with their SQL:2008 type and the source's own type, primary and foreign keys,
comments, row counts) checked by ``header/metadata.xsd``, and per table
``content/schema<s>/table<n>/table<n>.xml`` with its own generated ``table<n>.xsd`` (``schema0`` the
source's own schema, ``schema1``... the others the mapping reads, each a ``<schema>`` of the metadata
under its own name). Large objects
(the source's ``bytea``/``BLOB`` columns) are files of their own in the table's
``lob<column>/`` folder, named from the table XML with length and SHA-256.

What goes in: every row the extraction read, flagged and corrected ones as the source holds them,
except the rows disposed of by decision; every column except those a plan exclusion leaves out.
Values are written as stored: text escaped the SIARD way (``\\`` and characters XML 1.0 forbids as
``\\uXXXX``), a text column holding bytes that are not UTF-8 as the hex of every value's bytes
(``BINARY VARYING``, its source type kept in ``typeOriginal``), numbers and times in their XML
Schema forms.

Rows are rendered a whole staging row group at a time with pyarrow (:mod:`decommission.package.xmltext`),
in the staging's key order, so memory follows the row group and the same rows give the same bytes.
The ZIP is deterministic: entries in a fixed order, a fixed time stamp, stored (not compressed:
the package is read rarely and written for every partition; SIARD allows "store").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from decommission.errors import PackageError
from decommission.package import xmltext
from decommission.package.records import SCHEMA_DIR

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

VERSION = "2.2"
METADATA_NS = "http://www.bar.admin.ch/xmlns/siard/2/metadata.xsd"
TABLE_NS = "http://www.bar.admin.ch/xmlns/siard/2/table.xsd"
METADATA_XSD = SCHEMA_DIR / "siard2-2-metadata.xsd"
SCHEMA_FOLDER = "schema0"
MIMETYPE = "application/x-siard"
#: the ZIP's time stamp for every entry (ZIP cannot say 1970; the package's own date is in METS)
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_ROWS_PER_WRITE = 16_384
_HEX = np.array([list(f"{i:02x}".encode()) for i in range(256)], dtype=np.uint8)
#: SIARD escapes these in text as \\uXXXX: the backslash itself and what XML 1.0 forbids
_ESCAPED = ["\\", *(chr(c) for c in range(32) if chr(c) not in "\t\n\r"), "\ufffe", "\uffff"]
_ESCAPE_RE2 = r"[\\\x{0}-\x{8}\x{B}\x{C}\x{E}-\x{1F}\x{FFFE}\x{FFFF}]"


@dataclass(frozen=True)
class Column:
    """A source column as the catalogue describes it."""

    name: str
    type: str
    nullable: bool = True
    comment: str = ""


@dataclass(frozen=True)
class RawTable:
    """One source table of the partition: its catalogue entry and its staged rows.

    :param path: the staged Parquet file (every column the SIARD part holds; row groups read in turn)
    :param key: the row's own key column: ``disposed`` holds its values (as text) of the rows left out
    """

    name: str
    columns: tuple[Column, ...]
    path: Path
    key: str
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[dict[str, Any], ...] = ()
    comment: str = ""
    disposed: frozenset[str] = frozenset()
    #: the source schema when it is not the database's own (then ``name`` is ``schema.table``)
    schema: str | None = None

    @property
    def plain_name(self) -> str:
        """The table's name within its schema."""
        return self.name.removeprefix(f"{self.schema}.") if self.schema else self.name


@dataclass(frozen=True)
class Database:
    """What the SIARD header says about the whole database."""

    name: str
    schema: str
    data_owner: str
    origin: str
    archived: dt.date
    producer: str
    product: str = ""
    description: str = ""


@dataclass
class SiardResult:
    """Rows per table written, and how many large-object files."""

    rows: dict[str, int] = field(default_factory=dict)
    lobs: int = 0


def _sql_type(kind: pa.DataType, original: str) -> tuple[str, str]:
    """(SIARD SQL:2008 type, XML Schema type of the table XSD) of a staged column."""
    lowered = original.lower()
    if pa.types.is_integer(kind):
        return ("INTEGER", "xs:integer") if lowered in ("integer", "int", "int4") else ("BIGINT", "xs:integer")
    if pa.types.is_floating(kind):
        return "DOUBLE PRECISION", "xs:double"
    if pa.types.is_boolean(kind):
        return "BOOLEAN", "xs:boolean"
    if pa.types.is_timestamp(kind):
        return ("TIMESTAMP WITH TIME ZONE" if kind.tz else "TIMESTAMP"), "dateTimeType"
    if pa.types.is_date(kind):
        return "DATE", "dateType"
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        if _is_lob(lowered):
            return "BLOB", "blobType"
        return "BINARY VARYING", "xs:hexBinary"
    return "CHARACTER VARYING", "xs:string"


def _is_lob(original: str) -> bool:
    return original in ("bytea", "blob", "binary large object", "longblob", "mediumblob", "image", "oid")


def _folder(number: int) -> str:
    return f"table{number}"


def schema_folders(database: Database, tables: Sequence[RawTable]) -> dict[str | None, tuple[str, str]]:
    """(schema name, folder) of each schema the tables are in: the database's own first (``schema0``), then
    the others in the order their first table comes (None stands for the database's own)."""
    out: dict[str | None, tuple[str, str]] = {None: (database.schema, SCHEMA_FOLDER)}
    for table in tables:
        if table.schema and table.schema not in out:
            out[table.schema] = (table.schema, f"schema{len(out)}")
    return out


def escape_text(column: pa.Array) -> pa.Array:
    """SIARD text: ``\\`` and what XML 1.0 forbids as ``\\uXXXX``, then the XML escapes (whole column)."""
    column = pc.cast(column, pa.large_string())
    if isinstance(column, pa.ChunkedArray):  # replace_with_mask takes arrays
        column = column.combine_chunks()
    found = pc.fill_null(pc.match_substring_regex(column, _ESCAPE_RE2), False)
    if pc.any(found).as_py():
        # only the few values that hold one are rewritten (a pass per character over a whole
        # column of journal text would cost more than writing it)
        changed = pc.filter(column, found)
        for char in _ESCAPED:  # the backslash first: the escapes written after it hold one
            changed = pc.replace_substring(changed, char, f"\\u{ord(char):04x}")
        column = pc.replace_with_mask(column, found, changed)
    return xmltext.escape(column)


def hex_text(column: pa.Array) -> pa.Array:
    """Lower-case hex of every value's bytes, a whole column at once (null stays null)."""
    column = pc.cast(column, pa.large_binary())
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int64)[column.offset : column.offset + len(column) + 1]
    data = column.buffers()[2]
    body = np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]] if data is not None else np.empty(0, np.uint8)
    hexed = _HEX[body].reshape(-1)
    new_offsets = (offsets - offsets[0]) * 2
    validity = column.buffers()[0] if column.null_count else None
    if validity is not None and column.offset:
        validity = pc.is_valid(column).buffers()[1]
    return pa.LargeStringArray.from_buffers(
        len(column), pa.py_buffer(new_offsets.astype(np.int64)), pa.py_buffer(hexed), validity, column.null_count
    )


def _render_values(column: pa.Array, xs_type: str) -> pa.Array:
    kind = column.type
    if xs_type == "xs:string":
        return escape_text(_as_string(column))
    if xs_type == "xs:hexBinary":
        return hex_text(column)
    if xs_type == "xs:double":
        text = pc.cast(pc.cast(column, pa.string()), pa.large_string())
        for old, new in (("nan", "NaN"), ("-inf", "-INF"), ("inf", "INF")):
            text = pc.if_else(pc.equal(text, old), new, text)
        return text
    text = pc.cast(xmltext.as_text(column), pa.large_string())
    if pa.types.is_timestamp(kind) and kind.tz is None:
        # a time without zone is written as the source holds it: no "Z" (as_text reads it as UTC)
        text = pc.utf8_slice_codeunits(text, 0, -1)
    return text


def _as_string(column: pa.Array) -> pa.Array:
    """Text as it is; another type (decimal text, time, interval, an own type) as Arrow or Python writes it."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column
    try:
        return pc.cast(column, pa.large_string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        # a type without a cast to text (an interval): value by value, the rare column that has one
        return pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.large_string())


class _Lobs:
    """Large objects of one table: each non-null value a file in ``lob<n>/``, named in the table XML.

    The ZIP takes one entry at a time and the table XML is being written, so the objects wait in a
    spool file (not in memory) and become entries of their own once the table XML is complete.
    """

    def __init__(self, folder: str) -> None:
        self._folder = folder
        self._spool: IO[bytes] | None = None
        self._files: list[tuple[str, int, int]] = []  # name, offset in the spool, size

    @property
    def count(self) -> int:
        return len(self._files)

    def render(self, column: pa.Array, index: int, first_row: int) -> pa.Array:
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        out: list[str | None] = [None] * len(column)
        valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
        if self._spool is None and valid.any():
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed in flush())
        for row in np.flatnonzero(valid):  # one file each: a Python step per large object, not per row
            view = memoryview(column[int(row)].as_buffer())
            name = f"lob{index}/record{first_row + int(row)}.bin"
            offset = self._spool.tell()
            self._spool.write(view)
            self._files.append((name, offset, view.nbytes))
            digest = hashlib.sha256(view).hexdigest()
            out[int(row)] = f'<c{index} file="{name}" length="{view.nbytes}" digestType="SHA-256" digest="{digest}"/>'
        return pa.array(out, pa.large_string())

    def flush(self, archive: zipfile.ZipFile) -> None:
        """Write the spooled objects as entries, in the order the table named them."""
        if self._spool is None:
            return
        with self._spool as spool:
            for name, offset, size in self._files:
                spool.seek(offset)
                with archive.open(_info(f"{self._folder}/{name}"), "w", force_zip64=True) as out:
                    left = size
                    while left:
                        chunk = spool.read(min(left, 1 << 20))
                        out.write(chunk)
                        left -= len(chunk)


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = (0o40755 << 16) | 0x10 if name.endswith("/") else 0o100644 << 16
    return info


def _batches(path: Path, columns: list[str]) -> Iterator[pa.Table]:
    parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    if parquet.metadata.num_rows == 0:
        return
    for batch in parquet.iter_batches(batch_size=_ROWS_PER_WRITE, columns=columns, use_threads=False):
        yield pa.Table.from_batches([batch])


def _kept(batch: pa.Table, key: str, disposed: frozenset[str]) -> pa.Table:
    if not disposed:
        return batch
    keys = pc.cast(batch.column(key), pa.large_string())
    gone = pc.is_in(keys, value_set=pa.array(sorted(disposed), pa.large_string()))
    return batch.filter(pc.invert(pc.fill_null(gone, False)))


def _staged_schema(table: RawTable) -> pa.Schema:
    schema = pq.read_schema(table.path)
    missing = [c.name for c in table.columns if c.name not in schema.names]
    if missing:
        raise PackageError(f"raw table {table.name}: the staging lacks columns {', '.join(missing)}")
    return schema


def _write_table(
    archive: zipfile.ZipFile, number: int, table: RawTable, schema_folder: str = SCHEMA_FOLDER
) -> tuple[int, list[tuple[str, str]], int]:
    """Write ``table<n>.xml`` and its lobs; return rows, (SIARD type, XSD type) per column, lob files."""
    folder = f"content/{schema_folder}/{_folder(number)}"
    schema = _staged_schema(table)
    types = [_sql_type(schema.field(c.name).type, c.type) for c in table.columns]
    names = [c.name for c in table.columns]
    lobs = _Lobs(folder)
    rows = 0
    head = (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<table xmlns="{TABLE_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        f' xsi:schemaLocation="{TABLE_NS} {_folder(number)}.xsd" version="{VERSION}">\n'
    )
    with archive.open(_info(f"{folder}/{_folder(number)}.xml"), "w", force_zip64=True) as out:
        out.write(head.encode())
        # the key (a composite key's row key made at extraction) is read for the disposed rows only
        for batch in _batches(table.path, list(dict.fromkeys([*names, table.key]))):
            batch = _kept(batch, table.key, table.disposed)
            if not batch.num_rows:
                continue
            parts = xmltext.Rows().text("<row>")
            for index, (name, (_sql, xs_type)) in enumerate(zip(names, types, strict=True), start=1):
                column = batch.column(name).combine_chunks()
                if xs_type == "blobType":
                    parts.column(pc.fill_null(lobs.render(column, index, rows + 1), xmltext.lit("")))
                else:
                    parts.value(_render_values(column, xs_type), f"<c{index}>", f"</c{index}>")
            text = parts.text("</row>\n").render()
            rows += batch.num_rows
            _write_rendered(out, text)
        out.write(b"</table>\n")
    lobs.flush(archive)
    archive.writestr(_info(f"{folder}/{_folder(number)}.xsd"), table_xsd([t[1] for t in types]).encode())
    return rows, types, lobs.count


def _write_rendered(out: Any, text: pa.Array) -> None:
    """The rendered rows' bytes, straight from the Arrow buffer (no Python string per row)."""
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    text = pc.cast(text, pa.large_string())
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset : text.offset + len(text) + 1]
    out.write(memoryview(text.buffers()[2])[offsets[0] : offsets[-1]])


def table_xsd(xs_types: Sequence[str]) -> str:
    """The XML schema of one table's rows: ``c<n>`` per column, each optional (a null leaves it out)."""
    elements = "".join(
        f'\n      <xs:element minOccurs="0" name="c{i}" type="{t}"/>' for i, t in enumerate(xs_types, start=1)
    )
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="{TABLE_NS}" targetNamespace="{TABLE_NS}"
  elementFormDefault="qualified" attributeFormDefault="unqualified">
  <xs:element name="table">
    <xs:complexType>
      <xs:sequence>
        <xs:element minOccurs="0" maxOccurs="unbounded" name="row" type="rowType"/>
      </xs:sequence>
      <xs:attribute name="version" type="versionType" use="required"/>
    </xs:complexType>
  </xs:element>
  <xs:complexType name="rowType">
    <xs:sequence>{elements}
    </xs:sequence>
  </xs:complexType>
  <xs:simpleType name="versionType">
    <xs:restriction base="xs:string">
      <xs:whiteSpace value="collapse"/>
      <xs:enumeration value="{VERSION}"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:complexType name="blobType">
    <xs:simpleContent>
      <xs:extension base="xs:hexBinary">
        <xs:attribute name="file" type="xs:anyURI"/>
        <xs:attribute name="length" type="xs:integer"/>
        <xs:attribute name="digestType" type="digestTypeType"/>
        <xs:attribute name="digest" type="xs:string"/>
      </xs:extension>
    </xs:simpleContent>
  </xs:complexType>
  <xs:simpleType name="digestTypeType">
    <xs:restriction base="xs:string">
      <xs:whiteSpace value="collapse"/>
      <xs:enumeration value="MD5"/>
      <xs:enumeration value="SHA-1"/>
      <xs:enumeration value="SHA-256"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="dateType">
    <xs:restriction base="xs:date">
      <xs:pattern value="\\d{{4}}-\\d{{2}}-\\d{{2}}Z?"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="dateTimeType">
    <xs:restriction base="xs:dateTime">
      <xs:pattern value="\\d{{4}}-\\d{{2}}-\\d{{2}}T\\d{{2}}:\\d{{2}}:\\d{{2}}(\\.\\d+)?Z?"/>
    </xs:restriction>
  </xs:simpleType>
</xs:schema>
"""


def _e(tag: str, value: str, depth: int) -> str:
    return f"\n{'  ' * depth}<{tag}>{xmltext.text(value)}</{tag}>"


def metadata_xml(database: Database, tables: Sequence[RawTable], written: Sequence[tuple[int, list]]) -> str:
    """``header/metadata.xml``: the database, its tables, columns, keys and row counts."""
    out = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        f'\n<siardArchive xmlns="{METADATA_NS}" version="{VERSION}">',
        _e("dbname", database.name, 1),
    ]
    if database.description:
        out.append(_e("description", database.description, 1))
    out += [
        _e("dataOwner", database.data_owner, 1),
        _e("dataOriginTimespan", database.origin, 1),
        _e("producerApplication", database.producer, 1),
        _e("archivalDate", database.archived.isoformat(), 1),
    ]
    if database.product:
        out.append(_e("databaseProduct", database.product, 1))
    out.append("\n  <schemas>")
    numbered = list(enumerate(zip(tables, written, strict=True)))
    for key, (name, folder) in schema_folders(database, tables).items():
        mine = [(number, table, w) for number, (table, w) in numbered if table.schema == key]
        if key is not None and not mine:
            continue
        out += ["\n    <schema>", _e("name", name, 3), _e("folder", folder, 3)]
        if mine:
            out.append("\n      <tables>")
            for number, table, (rows, types) in mine:
                out += ["\n        <table>", _e("name", table.plain_name, 5), _e("folder", _folder(number), 5)]
                if table.comment:
                    out.append(_e("description", table.comment, 5))
                out.append("\n          <columns>")
                for index, (column, (sql, xs_type)) in enumerate(zip(table.columns, types, strict=True), start=1):
                    out += ["\n            <column>", _e("name", column.name, 7)]
                    if xs_type == "blobType":
                        out.append(_e("lobFolder", f"lob{index}", 7))
                    out += [_e("type", sql, 7), _e("typeOriginal", column.type or "unknown", 7)]
                    out.append(_e("nullable", "true" if column.nullable else "false", 7))
                    if column.comment:
                        out.append(_e("description", column.comment, 7))
                    out.append("\n            </column>")
                out.append("\n          </columns>")
                if table.primary_key:
                    out += ["\n          <primaryKey>", _e("name", f"pk_{table.plain_name}", 6)]
                    out += [_e("column", c, 6) for c in table.primary_key]
                    out.append("\n          </primaryKey>")
                if table.foreign_keys:
                    out.append("\n          <foreignKeys>")
                    for i, fk in enumerate(table.foreign_keys, start=1):
                        fk_name = fk.get("name") or f"fk_{table.plain_name}_{i}"
                        out += ["\n            <foreignKey>", _e("name", fk_name, 7)]
                        to_schema, _dot, to_table = fk["table"].rpartition(".")
                        out.append(_e("referencedSchema", to_schema or database.schema, 7))
                        out.append(_e("referencedTable", to_table, 7))
                        for col, ref in zip(fk["columns"], fk["references"], strict=False):
                            out += ["\n              <reference>", _e("column", col, 8), _e("referenced", ref, 8)]
                            out.append("\n              </reference>")
                        out.append("\n            </foreignKey>")
                    out.append("\n          </foreignKeys>")
                out += [_e("rows", str(rows), 5), "\n        </table>"]
            out.append("\n      </tables>")
        out.append("\n    </schema>")
    out += ["\n  </schemas>\n  <users/>\n</siardArchive>\n"]
    return "".join(out)


def write_siard(target: Path, database: Database, tables: Sequence[RawTable]) -> SiardResult:
    """Write the SIARD 2.2 file ``target`` (created; a seekable local file) from the staged tables.

    :raises PackageError: a table's staging lacks a column its catalogue entry names
    """
    result = SiardResult()
    written = []
    with zipfile.ZipFile(target, "x", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for folder in ("header/", "header/siardversion/", f"header/siardversion/{VERSION}/"):
            archive.writestr(_info(folder), b"")
        folders = schema_folders(database, tables)
        for number, table in enumerate(tables):
            rows, types, lobs = _write_table(archive, number, table, folders[table.schema][1])
            result.rows[table.name] = rows
            result.lobs += lobs
            written.append((rows, types))
        archive.writestr(_info("header/metadata.xml"), metadata_xml(database, tables, written).encode())
        archive.writestr(_info("header/metadata.xsd"), METADATA_XSD.read_bytes())
    return result


@dataclass(frozen=True)
class RawPart:
    """The SIARD part of one package: the database it comes from and the partition's tables."""

    database: Database
    tables: tuple[RawTable, ...]
