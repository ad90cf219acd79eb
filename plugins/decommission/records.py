"""Patient record XML: the streaming writer, the patient manifest and an independent counter.

One record file per patient holds the patient and every record of the archive model that
belongs to the patient (``schemas/record.xsd``, namespace :data:`NS`). The writer streams
with :class:`lxml.etree.xmlfile`, refuses text that XML 1.0 cannot carry and names the
entity, record id and column, never the value. :func:`count_entities` reads a record file
back on its own, so whoever receives a package can count what it holds.
"""

from __future__ import annotations

import datetime as dt
import re
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from lxml import etree

from decommission.errors import PackageError
from decommission.model import ENTITIES

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

NS = "urn:decommission:record:1"
RECORD_VERSION = "1"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
RECORD_XSD = SCHEMA_DIR / "record.xsd"
RECORD_FILENAME = "record.xml"

#: entity name -> (container element, record element); the patient has no container
ELEMENTS: dict[str, tuple[str | None, str]] = {
    "patient": (None, "patient"),
    "case": ("cases", "case"),
    "document": ("documents", "document"),
    "diagnosis": ("diagnoses", "diagnosis"),
    "medication": ("medications", "medication"),
    "lab_result": ("labResults", "labResult"),
    "attachment": ("attachments", "attachment"),
    "access_log": ("accessLog", "logEntry"),
}
#: the entities below the patient, in the order they appear in a record file
RECORD_ENTITIES: tuple[str, ...] = tuple(name for name in ENTITIES if name != "patient")
#: columns that reference another record become attributes
_REFERENCES = {"case_id": "caseId", "document_id": "documentId"}
#: columns never written as elements
_SKIPPED = {"patient_key", "content"}

_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def is_xml_safe(text: str) -> bool:
    """Return True when ``text`` holds only characters XML 1.0 allows."""
    return _XML_ILLEGAL.search(text) is None


def natural_key(value: str) -> tuple[int, int, str]:
    """Sort key: all-digit strings in numeric order first, then the rest in code-point order."""
    if value.isascii() and value.isdigit():
        return (0, int(value), value)
    return (1, 0, value)


def camel(column: str) -> str:
    """``care_unit`` -> ``careUnit``."""
    head, *rest = column.split("_")
    return head + "".join(part.capitalize() for part in rest)


def format_value(value: Any) -> str | None:
    """Render a Parquet value as XML text (UTC timestamps end in ``Z``); None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


class XmlStream:
    """Indented streaming XML output over :class:`lxml.etree.xmlfile` (one element at a time).

    :param stream: binary file-like object the document is written to
    """

    def __init__(self, stream: BinaryIO, indent: str = "  ") -> None:
        self._stream = stream
        self._indent = indent
        self._stack = ExitStack()
        self._xf = self._stack.enter_context(etree.xmlfile(stream, encoding="UTF-8"))
        self._xf.write_declaration()
        self._open: list[Any] = []

    def __enter__(self) -> XmlStream:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()

    def _newline(self) -> None:
        if self._open:
            self._xf.write("\n" + self._indent * len(self._open))

    def start(self, tag: str, attrib: Mapping[str, str] | None = None, nsmap: dict | None = None) -> None:
        """Open an element; children follow until :meth:`end`."""
        self._newline()
        element = self._xf.element(tag, dict(attrib or {}), nsmap=nsmap)
        element.__enter__()
        self._open.append(element)

    def end(self) -> None:
        """Close the innermost open element."""
        element = self._open.pop()
        self._xf.write("\n" + self._indent * len(self._open))
        element.__exit__(None, None, None)

    def leaf(self, tag: str, attrib: Mapping[str, str] | None = None, text: str | None = None) -> None:
        """Write an element without children."""
        self._newline()
        with self._xf.element(tag, dict(attrib or {})):
            if text:
                self._xf.write(text)

    def close(self) -> None:
        """Close every open element and end the document with a newline."""
        while self._open:
            self.end()
        self._stack.close()
        self._stream.write(b"\n")


@dataclass(frozen=True)
class StoredFile:
    """A file written into a package: path relative to the record file's folder, size, SHA-256."""

    path: str
    size: int
    sha256: str


def _record_id(entity: str, row: Mapping[str, Any]) -> str:
    value = row.get(ENTITIES[entity].key)
    if not isinstance(value, str) or not value or not is_xml_safe(value):
        raise PackageError(f"{entity}: a record has an empty or not XML-safe {ENTITIES[entity].key}")
    return value


def _text(entity: str, record_id: str, column: str, value: Any) -> str | None:
    text = format_value(value)
    if text is not None and not is_xml_safe(text):
        raise PackageError(f"{entity} {record_id!r}: column {column!r} holds a character that XML 1.0 does not allow")
    return text


def sort_records(entity: str, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Order one patient's rows of an entity: by the entity's date (nulls last), then by key."""
    spec = ENTITIES[entity]
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)

    def order(row: Mapping[str, Any]) -> tuple:
        when = row.get(spec.date_field) if spec.date_field else None
        return (when is None, when or epoch, natural_key(str(row.get(spec.key) or "")))

    return sorted(rows, key=order)


_RECORD_PATIENT = ("given_name", "family_name", "sex", "birth_date")
_MANIFEST_PATIENT = ("given_name", "family_name", "birth_date")


def _open_patient(
    xs: XmlStream, patient: Mapping[str, Any], columns: Sequence[str], extra: Mapping[str, str] | None = None
) -> None:
    """Write the patient element and its children, leaving the element open."""
    key = _record_id("patient", patient)
    xs.start(_q("patient"), {"key": key, **(extra or {})})
    personal_id = _text("patient", key, "personal_id", patient.get("personal_id"))
    if personal_id is not None:
        id_type = _text("patient", key, "id_type", patient.get("id_type"))
        xs.leaf(_q("personalId"), {"type": id_type} if id_type else None, personal_id)
    for column in columns:
        text = _text("patient", key, column, patient.get(column))
        if text is not None:
            xs.leaf(_q(camel(column)), None, text)
    restrictions = {
        camel(column): format_value(patient.get(column)) or ""
        for column in ("protected_identity", "blocked", "confidential")
        if patient.get(column) is not None
    }
    xs.leaf(_q("accessRestrictions"), restrictions)


def _write_entity_row(xs: XmlStream, entity: str, row: Mapping[str, Any], extra: StoredFile | None) -> None:
    spec = ENTITIES[entity]
    record_id = _record_id(entity, row)
    attrib = {"id": record_id}
    for column, attribute in _REFERENCES.items():
        if column in spec.schema.names and column != spec.key:
            text = _text(entity, record_id, column, row.get(column))
            if text:
                attrib[attribute] = text
    xs.start(_q(ELEMENTS[entity][1]), attrib)
    for column in spec.schema.names:
        if column in _SKIPPED or column == spec.key or column in _REFERENCES:
            continue
        text = _text(entity, record_id, column, row.get(column))
        if text is not None:
            xs.leaf(_q(camel(column)), None, text)
    if extra is not None:
        xs.leaf(_q("path"), None, extra.path)
        xs.leaf(_q("size"), None, str(extra.size))
        xs.leaf(_q("sha256"), None, extra.sha256)
    xs.end()


def write_record(
    stream: BinaryIO,
    patient: Mapping[str, Any],
    records: Mapping[str, Sequence[Mapping[str, Any]]],
    attachment_files: Mapping[str, StoredFile],
) -> dict[str, int]:
    """Write one patient's record file and return the records written per entity.

    :param stream: binary stream the record file is written to
    :param patient: the patient row (columns of the ``patient`` entity)
    :param records: entity name -> that patient's rows; missing entities have no rows
    :param attachment_files: attachment_id -> the stored file of that attachment
    :returns: entity name -> records written (``patient`` is 1)
    :raises PackageError: a text value XML cannot carry, or an attachment without its file
    """
    counts = dict.fromkeys(ENTITIES, 0)
    with XmlStream(stream) as xs:
        xs.start(_q("record"), {"version": RECORD_VERSION}, nsmap={None: NS})
        _open_patient(xs, patient, _RECORD_PATIENT)
        xs.end()
        counts["patient"] = 1
        for entity in RECORD_ENTITIES:
            xs.start(_q(ELEMENTS[entity][0] or entity))
            for row in sort_records(entity, records.get(entity, ())):
                extra = None
                if entity == "attachment":
                    extra = attachment_files.get(_record_id(entity, row))
                    if extra is None:
                        raise PackageError(f"attachment {row['attachment_id']!r} has no stored file")
                _write_entity_row(xs, entity, row, extra)
                counts[entity] += 1
            xs.end()
    return counts


class ManifestWriter:
    """Streams the patient manifest (``metadata/descriptive/patients.xml``), one patient at a time.

    :param stream: binary stream the manifest is written to
    :param package_id: the package's OBJID
    :param system_id: the legacy system the records come from
    :param created: the package creation time (UTC)
    """

    def __init__(self, stream: BinaryIO, *, package_id: str, system_id: str, created: dt.datetime) -> None:
        self._xs = XmlStream(stream)
        attrib = {
            "version": RECORD_VERSION,
            "package": package_id,
            "system": system_id,
            "created": format_value(created) or "",
        }
        self._xs.start(_q("patientManifest"), attrib, nsmap={None: NS})

    def add(self, patient: Mapping[str, Any], *, folder: str, record: str, counts: Mapping[str, int]) -> None:
        """Add a patient with its folder, record file (relative to the package root) and counts."""
        _open_patient(self._xs, patient, _MANIFEST_PATIENT, {"folder": folder, "record": record})
        for entity in RECORD_ENTITIES:
            self._xs.leaf(_q("count"), {"entity": entity}, str(counts.get(entity, 0)))
        self._xs.end()

    def close(self) -> None:
        """End the manifest document."""
        self._xs.close()


def _read_table(name: str, path: Path | None) -> pa.Table:
    """One entity's mapped rows with exactly the model's columns, sorted by patient_key."""
    entity = ENTITIES[name]
    if path is None or not Path(path).exists():
        return entity.schema.empty_table()
    table = pq.read_table(path)
    if sorted(table.column_names) != sorted(entity.schema.names):
        raise PackageError(f"{name}: columns {table.column_names} are not the model's {entity.schema.names}")
    try:
        table = table.select(entity.schema.names).cast(entity.schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise PackageError(f"{name}: column types do not match the model ({type(exc).__name__})") from None
    if table.column("patient_key").null_count:
        raise PackageError(f"{name}: {table.column('patient_key').null_count} rows have no patient_key")
    return table.take(pc.sort_indices(table, sort_keys=[("patient_key", "ascending")]))


def _runs(table: pa.Table) -> dict[str, tuple[int, int]]:
    """patient_key -> (offset, length) of its rows in a table sorted by patient_key."""
    if table.num_rows == 0:
        return {}
    encoded = pc.run_end_encode(table.column("patient_key").combine_chunks())
    ends = encoded.run_ends.to_pylist()
    return {
        key: (start, end - start)
        for key, start, end in zip(encoded.values.to_pylist(), [0, *ends[:-1]], ends, strict=True)
    }


@dataclass(frozen=True)
class Partition:
    """One partition's mapped tables, each sorted by patient_key, and where each patient's rows are."""

    tables: dict[str, pa.Table]
    runs: dict[str, dict[str, tuple[int, int]]]
    order: list[str]

    def __len__(self) -> int:
        return len(self.order)

    def patients(self) -> Iterator[dict[str, list[dict[str, Any]]]]:
        """Yield each patient's rows (entity -> rows; ``patient`` has one) in natural patient_key order."""
        for key in self.order:
            rows = {}
            for name, table in self.tables.items():
                offset, length = self.runs[name].get(key, (0, 0))
                rows[name] = table.slice(offset, length).to_pylist() if length else []
            yield rows


def load_partition(mapped: Mapping[str, Path]) -> Partition:
    """Read a partition's mapped Parquet files once; a missing entity or file has no rows.

    :raises PackageError: unknown entity, wrong columns, rows without or with an unknown patient_key,
        a patient_key on two patient rows, or no patient at all
    """
    unknown = sorted(set(mapped) - set(ENTITIES))
    if unknown:
        raise PackageError(f"mapped names unknown entities: {', '.join(unknown)}")
    tables = {name: _read_table(name, mapped.get(name)) for name in ENTITIES}
    runs = {name: _runs(table) for name, table in tables.items()}
    patients = runs["patient"]
    duplicates = sum(1 for _offset, length in patients.values() if length > 1)
    if duplicates:
        raise PackageError(f"patient: {duplicates} patient_key values occur on more than one row")
    for name, entity_runs in runs.items():
        orphans = len(set(entity_runs) - set(patients))
        if orphans:
            raise PackageError(f"{name}: rows reference {orphans} patient_key values absent from patient")
    if not patients:
        raise PackageError("the partition holds no patients: nothing to package")
    return Partition(tables, runs, sorted(patients, key=natural_key))


def count_entities(record_path: Path | str) -> dict[str, int]:
    """Count the records per entity in a record file, reading it on its own (iterparse).

    :param record_path: a ``record.xml`` written by :func:`write_record`
    :returns: entity name (model.py) -> records found
    :raises PackageError: the file is not a record file
    """
    tags = {_q(element): entity for entity, (_container, element) in ELEMENTS.items()}
    counts = dict.fromkeys(ENTITIES, 0)
    context = etree.iterparse(str(record_path), events=("end",), tag=list(tags), huge_tree=True, resolve_entities=False)
    try:
        for _event, element in context:
            counts[tags[element.tag]] += 1
            element.clear(keep_tail=True)
    except etree.XMLSyntaxError as exc:
        raise PackageError(f"{Path(record_path).name}: not well-formed XML (line {exc.lineno})") from exc
    if context.root is None or context.root.tag != _q("record"):
        raise PackageError(f"{Path(record_path).name}: not a record file")
    return counts


def record_schema() -> etree.XMLSchema:
    """A new validator for record files and the patient manifest (local file, no network).

    Validators are built per use, never shared between threads; building one takes about a millisecond.
    """
    return etree.XMLSchema(etree.parse(str(RECORD_XSD)))
