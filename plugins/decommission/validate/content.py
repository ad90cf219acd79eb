"""The content checks of the validator: PREMIS fixity, the patient manifest and every record file.

PREMIS and the manifest are stream-parsed and schema-validated while parsed; each record file
is parsed and validated against the record schema, one at a time (read whole when small,
stream-parsed when large: see :mod:`~decommission.validate.xmlsafe`).
"""

from __future__ import annotations

import re
import unicodedata

from lxml import etree

from decommission.package import premis, records
from decommission.validate import xmlsafe
from decommission.validate.package_source import Checker

#: the document element and its children in PREMIS: the events of a valid document come at least this often
_PREMIS_UNITS = [f"{{{premis.PREMIS_NS}}}{name}" for name in ("premis", "object", "event", "agent", "rights")]
_OBJECT = f"{{{premis.PREMIS_NS}}}object"


def check_premis(v: Checker, rel: str) -> None:
    """PREMIS schema (while stream-parsing) and every file object's size and SHA-256 against the bytes.

    A file whose size differs from its object's is not hashed (the size is the finding).
    """
    if rel not in v.src.files or not v.xml_size_ok(rel):
        return
    try:
        with v.src.open(rel) as stream:
            for _event, element in v.events(stream, v.premis_schema, events=("end",), tag=_PREMIS_UNITS):
                if element.tag == _OBJECT:
                    _check_object(v, rel, element)
                xmlsafe.free(element)
    except (etree.LxmlError, xmlsafe.Refused) as exc:
        v.xml_error(rel, exc, private=False)
        return
    for path in v.src.files.unmarked("described"):
        if _DATA.match(path):
            v.add("PREMIS", path, f"data file has no object in {rel}")


def _check_object(v: Checker, rel: str, element: etree._Element) -> None:
    for path, size, digests in premis.file_objects(element):
        path = unicodedata.normalize("NFC", path)
        try:
            entry = v.src.files[path]
        except KeyError:
            v.add("PREMIS", path, f"described in {rel} but absent")
            continue
        v.src.files.mark(path, "described")
        if v.need(size == str(entry.size), "PREMIS", path, f"size differs from {rel}"):
            _size, sha = v.digest(path, entry)
            v.need((premis.DIGEST_ALGORITHM, sha) in digests, "PREMIS", path, f"SHA-256 differs from {rel}")


_DATA = re.compile(r"representations/[^/]+/data/")
_RECORD = re.compile(r"representations/[^/]+/data/[^/]+/record\.xml$")
_PATIENT = f"{{{records.NS}}}patient"
#: the manifest's document element and its entries
_MANIFEST_UNITS = [f"{{{records.NS}}}patientManifest", _PATIENT]


def check_records(v: Checker, manifests: list[str]) -> None:
    """The patient manifest and every record file against record.xsd (errors without values)."""
    for rel in manifests:  # stream-parsed: the manifest has an entry per patient
        if rel not in v.src.files or not v.xml_size_ok(rel):
            continue
        try:
            with v.src.open(rel) as stream:
                for _event, patient in v.events(stream, v.record_schema, events=("end",), tag=_MANIFEST_UNITS):
                    if patient.tag != _PATIENT:
                        continue
                    target = unicodedata.normalize("NFC", patient.get("record") or "")
                    if v.need(target in v.src.files, "MANIFEST", rel, f"line {patient.sourceline}: record file absent"):
                        v.src.files.mark(target, "listed")
                    xmlsafe.free(patient)
        except (etree.LxmlError, xmlsafe.Refused) as exc:
            v.xml_error(rel, exc, private=True)
    for rel in v.src.files:
        if not _RECORD.match(rel):
            continue
        v.parse(rel, v.record_schema, private=True, visit=v.read_record)
        listed = not manifests or v.src.files.marked(rel, "listed")
        v.need(listed, "MANIFEST", rel, "record file not in the patient manifest")
