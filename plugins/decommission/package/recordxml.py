"""Record files and manifest entries of a chunk of patients, rendered column by column.

Every row of an entity becomes one XML fragment, built for the whole chunk with Arrow kernels
(:mod:`decommission.package.xmltext`); rows are already ordered by patient, so a patient's records are
one contiguous byte range of the fragments' data buffer and a record file is a handful of
slices joined. The output follows ``schemas/record.xsd`` (namespace :data:`records.NS`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from decommission.errors import PackageError
from decommission.mapping import flags as qflags
from decommission.model import CODED, ENTITIES, QUALITY, coded_columns
from decommission.package import xmltext
from decommission.package.records import ELEMENTS, NS, RECORD_ENTITIES, RECORD_VERSION, camel

if TYPE_CHECKING:
    from decommission.package.partition import Chunk

#: columns that reference another record become attributes
_REFERENCES = {"case_id": "caseId", "document_id": "documentId"}
#: columns never written as elements
_SKIPPED = {"patient_key", "content", "__rank", QUALITY}
_RECORD_PATIENT = ("given_name", "family_name", "sex", "birth_date", "death_date", "death_cause")
_MANIFEST_PATIENT = ("given_name", "family_name", "birth_date")
_RESTRICTIONS = ("protected_identity", "blocked", "confidential")
DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"
RECORD_HEAD = (DECLARATION + f'<record xmlns="{NS}" version="{RECORD_VERSION}">').encode()
RECORD_TAIL = b"\n</record>\n"


def _escaped(entity: str, table: pa.Table, column: str, ids: pa.Array, *, attribute: bool = False) -> pa.Array:
    """The column as escaped XML text; a value XML 1.0 cannot hold is an error naming record and column."""
    values = table.column(column).combine_chunks()
    text = xmltext.as_text(values)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return pc.cast(text, pa.large_string())  # rendered dates, times, numbers: nothing to escape
    try:
        return xmltext.escape(text, attribute=attribute)
    except xmltext.IllegalCharacter as exc:
        raise PackageError(
            f"{entity} {ids[exc.index].as_py()!r}: column {column!r} holds a character that XML 1.0 does not allow"
        ) from None


def _ids(entity: str, table: pa.Table) -> pa.Array:
    """The records' keys, escaped for an attribute."""
    key = ENTITIES[entity].key
    ids = table.column(key).combine_chunks()
    refused = PackageError(f"{entity}: a record has an empty or not XML-safe {key}")
    if pc.any(pc.fill_null(pc.equal(pc.utf8_length(ids), 0), True)).as_py():
        raise refused
    try:
        return xmltext.escape(ids, attribute=True)
    except xmltext.IllegalCharacter:
        raise refused from None


#: flag keys -> attribute names of ``<flag>`` (record.xsd), in the order they are written
_FLAG_ATTRIBUTES = {key: camel(key) for key in qflags.KEYS}


def quality_xml(entity: str, quality: pa.Array | pa.ChunkedArray, ids: pa.Array) -> pa.Array | None:
    """The ``<flag .../>`` elements of each record (null where it has none), from the model's JSON flags.

    Python runs for the flagged records only; the rest stay null in one kernel call. None: no record
    of the chunk has a flag (the common case: nothing to render).
    """
    quality = quality.combine_chunks() if isinstance(quality, pa.ChunkedArray) else quality
    if quality.null_count == len(quality):
        return None
    flagged = pc.is_valid(quality)
    rows = np.flatnonzero(flagged.to_numpy(zero_copy_only=False))
    rendered = []
    for row, text in zip(rows, quality.filter(flagged).to_pylist(), strict=True):
        parts = []
        for f in qflags.from_json(text):
            attributes = []
            for key, name in _FLAG_ATTRIBUTES.items():
                value = f.get(key)
                if value in (None, "", []):
                    continue
                if key == "fields":
                    value = " ".join(camel(v) for v in value)
                value = str(value)
                if not xmltext.is_xml_safe(value):
                    raise PackageError(
                        f"{entity} {ids[int(row)].as_py()!r}: a quality flag's {key} holds a character XML 1.0 "
                        "does not allow"
                    )
                attributes.append(f' {name}="{xmltext.attr(value)}"')
            parts.append(f"<flag{''.join(attributes)}/>")
        rendered.append("".join(parts))
    return pc.replace_with_mask(
        pa.nulls(len(quality), pa.large_string()), flagged, pa.array(rendered, pa.large_string())
    )


def patient_fragments(
    patients: pa.Table, columns: tuple[str, ...], indent: str, extra: list[str] | None = None, quality: bool = False
) -> list[str]:
    """The opening ``<patient ...>`` element and its children, one string per patient (left open).

    :param extra: per patient, more attributes (already escaped, with a leading space)
    :param quality: also the patient's quality flags (the record file has them, the manifest not)
    """
    ids = _ids("patient", patients)
    keys = patients.column("patient_key").combine_chunks()
    inner = indent + "  "
    rows = xmltext.Rows().text(f'\n{indent}<patient key="').column(ids).text('"')
    if extra is not None:
        rows.column(pa.array(extra, pa.large_string()))
    rows.text(">")
    id_type = _escaped("patient", patients, "id_type", keys, attribute=True)
    scheme = _escaped("patient", patients, "id_scheme", keys, attribute=True)
    personal = _escaped("patient", patients, "personal_id", keys)
    typed = xmltext.wrap(id_type, ' type="', '"')
    schemed = xmltext.wrap(scheme, ' scheme="', '"')
    rows.value(
        pc.binary_join_element_wise(typed, schemed, xmltext.lit(">"), personal, xmltext.lit("")),
        f"\n{inner}<personalId",
        "</personalId>",
    )
    coded = CODED["patient"]
    for column in columns:
        tag = camel(column)
        value = _escaped("patient", patients, column, keys)
        if column in coded:
            value = _with_code_system("patient", patients, coded[column], keys, value)
            rows.value(value, f"\n{inner}<{tag}", f"</{tag}>")
            continue
        rows.value(value, f"\n{inner}<{tag}>", f"</{tag}>")
    rows.text(f"\n{inner}<accessRestrictions")
    for column in _RESTRICTIONS:
        rows.value(_escaped("patient", patients, column, keys, attribute=True), f' {camel(column)}="', '"')
    rows.text("/>")
    flags = quality_xml("patient", patients.column(QUALITY), keys) if quality else None
    if flags is not None:
        rows.value(flags, f"\n{inner}<quality>", "</quality>")
    return rows.render().to_pylist()


def entity_fragments(entity: str, table: pa.Table, extra: dict[str, pa.Array] | None = None) -> pa.Array:
    """One ``<case ...>...</case>`` (etc.) string per row, in the table's order.

    :param extra: more child elements after the model's columns: element name -> escaped text
    """
    spec = ENTITIES[entity]
    tag = ELEMENTS[entity][1]
    ids = _ids(entity, table)
    keys = table.column(spec.key).combine_chunks()
    columns = [c for c in spec.schema.names if c not in _SKIPPED and c != spec.key]
    rows = xmltext.Rows().text(f'\n    <{tag} id="').column(ids).text('"')
    for column, name in _REFERENCES.items():
        if column in columns:
            rows.value(_escaped(entity, table, column, keys, attribute=True), f' {name}="', '"')
    rows.text(">")
    coded = coded_columns(columns)
    for column in columns:
        if column in _REFERENCES or any(column in c for c in coded.values()):
            continue
        element = camel(column)
        value = _escaped(entity, table, column, keys)
        if column in coded:
            value = _with_code_system(entity, table, coded[column], keys, value)
            rows.value(value, f"\n      <{element}", f"</{element}>")
            continue
        rows.value(value, f"\n      <{element}>", f"</{element}>")
    for name, values in (extra or {}).items():
        rows.value(values, f"\n      <{name}>", f"</{name}>")
    flags = quality_xml(entity, table.column(QUALITY), keys)
    if flags is not None:
        rows.value(flags, "\n      <quality>", "</quality>")
    return rows.text(f"\n    </{tag}>").render()


def _with_code_system(
    entity: str, table: pa.Table, system_columns: tuple[str, str], keys: pa.Array, value: pa.Array
) -> pa.Array:
    """`` codeSystem=".." codeSystemVersion="..">value`` of a coded column: the code's system and version are
    attributes of its element (each absent where null); null where the code is null (no element)."""
    system, version = (_escaped(entity, table, c, keys, attribute=True) for c in system_columns)
    return pc.binary_join_element_wise(
        xmltext.wrap(system, ' codeSystem="', '"'),
        xmltext.wrap(version, ' codeSystemVersion="', '"'),
        xmltext.lit(">"),
        value,
        xmltext.lit(""),
    )


class _Slices:
    """Byte ranges of a large_string array's values, without copying them."""

    def __init__(self, fragments: pa.Array) -> None:
        fragments = fragments.combine_chunks() if isinstance(fragments, pa.ChunkedArray) else fragments
        _validity, offsets, data = fragments.buffers()
        start = fragments.offset
        self._offsets = np.frombuffer(offsets, dtype=np.int64)[start : start + len(fragments) + 1]
        self._data = memoryview(data) if data is not None else memoryview(b"")

    def get(self, first: int, end: int) -> memoryview:
        return self._data[self._offsets[first] : self._offsets[end]]


class ChunkRecords:
    """The record files of one chunk of patients.

    :param chunk: the chunk's rows
    :param attachment_files: per attachment row of the chunk (in its order): path relative to the
        patient's folder, size and SHA-256 of the stored file
    """

    def __init__(self, chunk: Chunk, attachment_files: dict[str, pa.Array]) -> None:
        self._chunk = chunk
        self._patients = patient_fragments(chunk.patients, _RECORD_PATIENT, "  ", quality=True)
        self._slices = {}
        for entity in RECORD_ENTITIES:
            extra = attachment_files if entity == "attachment" else None
            self._slices[entity] = _Slices(entity_fragments(entity, chunk.tables[entity], extra))

    def record(self, i: int) -> list[bytes | memoryview]:
        """The parts of patient ``i``'s record file (join them, or write them in order)."""
        parts: list[bytes | memoryview] = [RECORD_HEAD, self._patients[i].encode(), b"\n  </patient>"]
        for entity in RECORD_ENTITIES:
            container = ELEMENTS[entity][0]
            bounds = self._chunk.bounds[entity]
            parts.append(f"\n  <{container}>".encode())
            parts.append(self._slices[entity].get(bounds[i], bounds[i + 1]))
            parts.append(f"\n  </{container}>".encode())
        parts.append(RECORD_TAIL)
        return parts


def manifest_entries(chunk: Chunk, folders: list[str], records: list[str]) -> list[str]:
    """The patient manifest's ``<patient>`` elements of a chunk (folder and record relative to the package)."""
    extra = [f' folder="{xmltext.attr(f)}" record="{xmltext.attr(r)}"' for f, r in zip(folders, records, strict=True)]
    heads = patient_fragments(chunk.patients, _MANIFEST_PATIENT, "  ", extra)
    out = []
    for i, head in enumerate(heads):
        counts = chunk.counts(i)
        lines = "".join(f'\n    <count entity="{e}">{counts[e]}</count>' for e in RECORD_ENTITIES)
        out.append(f"{head}{lines}\n  </patient>")
    return out


def manifest_head(package_id: str, system_id: str, created: str) -> str:
    return (
        f'{DECLARATION}<patientManifest xmlns="{NS}" version="{RECORD_VERSION}" package="{xmltext.attr(package_id)}"'
        f' system="{xmltext.attr(system_id)}" created="{created}">'
    )


MANIFEST_TAIL = "\n</patientManifest>\n"
