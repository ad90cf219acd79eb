"""The content checks of the validator: PREMIS fixity, the patient manifest and every record file.

PREMIS is stream-parsed and schema-validated while parsed; each record file is read whole,
parsed and then validated against the record schema, one at a time.
"""

from __future__ import annotations

import re
import unicodedata

from lxml import etree

from decommission.package import premis, records
from decommission.validate.package_source import Checker, free, stream_parse


def check_premis(v: Checker, rel: str) -> None:
    """PREMIS schema (while stream-parsing) and every file object's size and SHA-256 against the bytes."""
    if rel not in v.src.files:
        return
    tag = f"{{{premis.PREMIS_NS}}}object"
    try:
        with v.src.open(rel) as stream:
            events = stream_parse(stream, v.premis_schema, events=("end",), tag=tag)
            for _event, element in events:
                for path, size, digests in premis.file_objects(element):
                    path = unicodedata.normalize("NFC", path)
                    if v.need(path in v.src.files, "PREMIS", path, f"described in {rel} but absent"):
                        v.src.files.mark(path, "described")
                        actual_size, sha = v.digest(path)
                        v.need(size == str(actual_size), "PREMIS", path, f"size differs from {rel}")
                        v.need((premis.DIGEST_ALGORITHM, sha) in digests, "PREMIS", path, f"SHA-256 differs from {rel}")
                free(element)
    except etree.XMLSyntaxError as exc:
        v.syntax_error(rel, exc, private=False)
        return
    for path in v.src.files.unmarked("described"):
        if _DATA.match(path):
            v.add("PREMIS", path, f"data file has no object in {rel}")


_DATA = re.compile(r"representations/[^/]+/data/")
_RECORD = re.compile(r"representations/[^/]+/data/[^/]+/record\.xml$")


def check_records(v: Checker, manifests: list[str]) -> None:
    """The patient manifest and every record file against record.xsd (errors without values)."""
    tag = f"{{{records.NS}}}patient"
    for rel in manifests:  # stream-parsed: the manifest has an entry per patient
        if rel not in v.src.files:
            continue
        try:
            with v.src.open(rel) as stream:
                events = stream_parse(stream, v.record_schema, events=("end",), tag=tag)
                for _event, patient in events:
                    target = unicodedata.normalize("NFC", patient.get("record") or "")
                    if v.need(target in v.src.files, "MANIFEST", rel, f"line {patient.sourceline}: record file absent"):
                        v.src.files.mark(target, "listed")
                    free(patient)
        except etree.XMLSyntaxError as exc:
            v.syntax_error(rel, exc, private=True)
    for rel in v.src.files:
        if not _RECORD.match(rel):
            continue
        v.parse(rel, v.record_schema, private=True)  # one read and a tree, then the schema
        listed = not manifests or v.src.files.marked(rel, "listed")
        v.need(listed, "MANIFEST", rel, "record file not in the patient manifest")
