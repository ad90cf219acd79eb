"""A small SIARD 2.x reader written from the specification (eCH-0165 / SIARD 2.2), not from our writer.

It imports nothing of ``decommission``: the tests read our SIARD parts back with it and compare
them with the source, so a mistake the writer makes is not repeated here. What it knows of the
format: a ZIP with ``header/metadata.xml`` (namespace .../siard/2/metadata.xsd) naming schemas,
tables (folder, columns with SQL:2008 type, rows); ``content/<schema>/<table>/<table>.xml``
(namespace .../siard/2/table.xsd) with a ``row`` per row and ``c<n>`` per non-null column value;
text with ``\\uXXXX`` escapes; binary values in hex; large objects either inline or as a file
named by the cell's ``file`` attribute (relative to the table folder), with ``length`` and a digest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

_MD = "{http://www.bar.admin.ch/xmlns/siard/2/metadata.xsd}"
_TB = "{http://www.bar.admin.ch/xmlns/siard/2/table.xsd}"
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


@dataclass
class ReadColumn:
    name: str
    type: str
    original: str


@dataclass
class ReadTable:
    name: str
    folder: str
    rows_declared: int
    columns: list[ReadColumn]
    primary_key: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


def _value(cell: etree._Element, column: ReadColumn, archive: zipfile.ZipFile, folder: str) -> Any:
    kind = column.type.upper()
    text = cell.text or ""
    if kind in ("INTEGER", "INT", "SMALLINT", "BIGINT"):
        return int(text)
    if kind in ("DOUBLE PRECISION", "REAL") or kind.startswith("FLOAT"):
        return float(text)
    if kind == "BOOLEAN":
        return text == "true"
    if kind == "DATE":
        return dt.date.fromisoformat(text.rstrip("Z"))
    if kind.startswith("TIMESTAMP"):
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value
    if kind in ("BLOB", "BINARY LARGE OBJECT", "BINARY VARYING", "VARBINARY") or kind.startswith("BINARY"):
        name = cell.get("file")
        if name is None:
            return bytes.fromhex(text)
        data = archive.read(f"{folder}/{name}")
        if cell.get("length") is not None:
            assert len(data) == int(cell.get("length")), "a large object's length differs from its cell"
        if cell.get("digestType") == "SHA-256":
            assert hashlib.sha256(data).hexdigest() == cell.get("digest"), "a large object's digest differs"
        return data
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def read_siard(data: bytes) -> dict[str, ReadTable]:
    """Every table of a SIARD file (given as its bytes): metadata and rows, values as Python objects."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    metadata = etree.fromstring(archive.read("header/metadata.xml"))
    assert metadata.tag == f"{_MD}siardArchive"
    tables: dict[str, ReadTable] = {}
    for index, schema in enumerate(metadata.iterfind(f"{_MD}schemas/{_MD}schema")):
        schema_folder = schema.findtext(f"{_MD}folder")
        # the first schema is the source's own: its tables by their names; another's as schema.table
        prefix = "" if index == 0 else f"{schema.findtext(f'{_MD}name')}."
        for table in schema.iterfind(f"{_MD}tables/{_MD}table"):
            columns = [
                ReadColumn(c.findtext(f"{_MD}name"), c.findtext(f"{_MD}type"), c.findtext(f"{_MD}typeOriginal") or "")
                for c in table.iterfind(f"{_MD}columns/{_MD}column")
            ]
            folder = f"content/{schema_folder}/{table.findtext(f'{_MD}folder')}"
            read = ReadTable(
                prefix + table.findtext(f"{_MD}name"),
                folder,
                int(table.findtext(f"{_MD}rows")),
                columns,
                [c.text for c in table.iterfind(f"{_MD}primaryKey/{_MD}column")],
            )
            base = folder.rsplit("/", 1)[-1]
            with archive.open(f"{folder}/{base}.xml") as stream:
                for _event, row in etree.iterparse(stream, events=("end",), tag=f"{_TB}row"):
                    values: dict[str, Any] = {c.name: None for c in columns}
                    for cell in row:
                        index = int(etree.QName(cell).localname[1:]) - 1
                        values[columns[index].name] = _value(cell, columns[index], archive, folder)
                    read.rows.append(values)
                    row.clear()
            tables[read.name] = read
    return tables
