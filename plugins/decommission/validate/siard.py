"""The raw representation's SIARD files: their metadata, their tables and their large objects.

Each ``representations/<rep>/data/*.siard`` is opened as the ZIP it is (read through its central
directory, straight from the package) and checked against SIARD 2.2: ``header/metadata.xml``
against the SIARD 2.2 metadata schema (ours, in ``package/schemas``, never the one inside the
file), every table's XML against the table schema the file carries, stream-parsed, its rows
counted against the row count the metadata gives, and every large object it names present with
the length and SHA-256 the table gives. Messages name files, tables by folder and lines, never a
value.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from typing import TYPE_CHECKING

from lxml import etree

from decommission.package import siard
from decommission.validate import xmlsafe

if TYPE_CHECKING:
    from decommission.validate.package_source import Checker

SIARD_FILE = re.compile(r"representations/[^/]+/data/[^/]+\.siard$")
_MD = f"{{{siard.METADATA_NS}}}"
_ROW = f"{{{siard.TABLE_NS}}}row"
_TABLE = f"{{{siard.TABLE_NS}}}table"


def metadata_schema() -> etree.XMLSchema:
    """The SIARD 2.2 metadata schema (local file)."""
    return etree.XMLSchema(etree.parse(str(siard.METADATA_XSD), xmlsafe.parser()))


def check_siard_files(v: Checker) -> dict[str, dict[str, int]]:
    """Check every SIARD file of the package; returns rows per table per SIARD file (as counted)."""
    counted = {}
    for rel in [r for r in v.src.files if SIARD_FILE.match(r)]:
        counted[rel] = check_siard(v, rel)
    return counted


def check_siard(v: Checker, rel: str) -> dict[str, int]:
    """One SIARD file; returns the rows counted per table name."""
    counted: dict[str, int] = {}
    try:
        with v.src.open(rel) as stream, zipfile.ZipFile(stream) as archive:
            names = set(archive.namelist())
            if not v.need("header/metadata.xml" in names, "SIARD", rel, "no header/metadata.xml"):
                return counted
            v.need(f"header/siardversion/{siard.VERSION}/" in names, "SIARD", rel, "no header/siardversion/2.2/")
            tables = _metadata(v, rel, archive)
            for name, folder, rows in tables:
                found = _table(v, rel, archive, names, folder)
                if found is None:
                    continue
                counted[name] = found
                v.need(
                    found == rows,
                    "SIARD-ROWS",
                    rel,
                    f"{folder}: {found} rows in the table file, {rows} in header/metadata.xml",
                )
    except zipfile.BadZipFile:
        v.add("SIARD", rel, "not a ZIP file")
    except (etree.LxmlError, xmlsafe.Refused) as exc:
        v.xml_error(rel, exc, private=True)
    return counted


def _metadata(v: Checker, rel: str, archive: zipfile.ZipFile) -> list[tuple[str, str, int]]:
    """header/metadata.xml against the schema; (table name, folder path, rows) of each table."""
    where = f"{rel}!header/metadata.xml"
    tables: list[tuple[str, str, int]] = []
    with archive.open("header/metadata.xml") as stream:
        first = True
        for _event, element in v.events(stream, metadata_schema(), events=("end",)):
            if element.tag == f"{_MD}schema":
                schema_folder = element.findtext(f"{_MD}folder") or ""
                # the first schema is the source's own; a table of another goes by schema.table (as the build counts it)
                prefix = "" if first else f"{element.findtext(f'{_MD}name') or ''}."
                first = False
                for table in element.iterfind(f"{_MD}tables/{_MD}table"):
                    folder = f"content/{schema_folder}/{table.findtext(f'{_MD}folder')}"
                    name = prefix + (table.findtext(f"{_MD}name") or "")
                    tables.append((name, folder, int(table.findtext(f"{_MD}rows") or 0)))
                xmlsafe.free(element)
    v.need(tables, "SIARD", where, "names no table")
    return tables


_XS = {"xs": "http://www.w3.org/2001/XMLSchema"}


def may_name_files(tree: etree._ElementTree) -> bool:
    """Whether a table schema lets a cell carry a ``file`` attribute (a large object in a file of its own).

    True when a column's element has a type that declares one, directly or by derivation, and
    whenever the schema could allow it less visibly (any attribute, attribute groups or references,
    an element's own anonymous type): then every cell is looked at.
    """
    if tree.xpath("//xs:anyAttribute | //xs:attributeGroup | //xs:attribute[@ref]", namespaces=_XS):
        return True
    if tree.xpath("//xs:element/xs:complexType", namespaces=_XS) and tree.xpath(
        "//xs:element/xs:complexType//xs:attribute[@name='file']", namespaces=_XS
    ):
        return True
    named = {t.get("name") for t in tree.xpath("//xs:complexType[.//xs:attribute[@name='file']]", namespaces=_XS)}
    while True:  # types derived from one that has it have it too
        derived = {
            t.get("name")
            for t in tree.xpath("//xs:complexType[@name]", namespaces=_XS)
            for base in t.xpath(".//xs:extension/@base | .//xs:restriction/@base", namespaces=_XS)
            if str(base).rpartition(":")[2] in named
        }
        if derived <= named:
            break
        named |= derived
    return any(str(t).rpartition(":")[2] in named for t in tree.xpath("//xs:element/@type", namespaces=_XS))


def _table(v: Checker, rel: str, archive: zipfile.ZipFile, names: set[str], folder: str) -> int | None:
    """A table's XML against its own schema; its rows, or None when it could not be read."""
    base = folder.rsplit("/", 1)[-1]
    xml, xsd = f"{folder}/{base}.xml", f"{folder}/{base}.xsd"
    if not v.need(xml in names and xsd in names, "SIARD", rel, f"{folder}: table file or its schema missing"):
        return None
    where = f"{rel}!{xml}"
    tree = xmlsafe.parse_whole(archive.read(xsd), xmlsafe.parser())
    schema = etree.XMLSchema(tree)
    has_lobs = may_name_files(tree)
    rows = 0
    lobs: list[tuple[str, int, str, int]] = []
    try:
        with archive.open(xml) as stream:
            for _event, element in v.events(stream, schema, events=("end",), tag=[_ROW, _TABLE]):
                if element.tag == _ROW:
                    rows += 1
                    if has_lobs:
                        for cell in element:
                            if cell.get("file") is not None:
                                lobs.append(
                                    (cell.get("file"), int(cell.get("length") or -1), cell.get("digest") or "", rows)
                                )
                    # emptied at once, dropped from the tree a thousand at a time (bounded either way)
                    element.clear(keep_tail=True)
                    if rows % 1024 == 0:
                        xmlsafe.free(element)
    except (etree.LxmlError, xmlsafe.Refused) as exc:
        v.xml_error(where, exc, private=True)
        return None
    for file, length, digest, row in lobs:
        path = f"{folder}/{file}"
        if not v.need(path in names, "SIARD-LOB", where, f"row {row}: its large object file is missing"):
            continue
        sha, size = hashlib.sha256(), 0
        with archive.open(path) as lob:
            while chunk := lob.read(1 << 20):
                sha.update(chunk)
                size += len(chunk)
        v.need(size == length, "SIARD-LOB", where, f"row {row}: the large object's length differs")
        v.need(sha.hexdigest() == digest, "SIARD-LOB", where, f"row {row}: the large object's SHA-256 differs")
    return rows
