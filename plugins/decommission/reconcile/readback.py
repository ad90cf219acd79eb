"""The read-back sample (*stickprov*): records read from the archive, compared field by field with the source.

For each sampled patient the source is read again (the same extraction the pipeline runs,
for that one patient key, within the delivery's cut-off), mapped with the system's mapping,
and rendered as the record file would carry it; the record the archive returns is parsed
and compared field by field. A mismatch names the entity, a keyed hash of the record id and
the field, never a value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from lxml import etree

from decommission.errors import ArchiveError
from decommission.mapping import flags as qflags
from decommission.mapping.transform import map_partition
from decommission.model import CODED, ENTITIES, QUALITY
from decommission.package.records import ELEMENTS, NS, camel, format_value
from decommission.plan.mapping_spec import MappingSpec
from decommission.privacy import keyed_hash
from decommission.reconcile.timecheck import converted_fields, utc_text
from decommission.source import staging
from decommission.source.database import Partition, Source

#: columns of the record model that are not written as elements of their record
_NOT_IN_XML = {"patient_key", "content", QUALITY}
_REFERENCES = {"case_id": "caseId", "document_id": "documentId"}
_RESTRICTIONS = ("protected_identity", "blocked", "confidential")

#: coded column -> attribute of its element -> the model column it carries (model.CODED, as recordxml writes it)
CODE_ATTRIBUTES: dict[str, dict[str, str]] = {
    column: {"codeSystem": system, "codeSystemVersion": version}
    for coded in CODED.values()
    for column, (system, version) in coded.items()
}

#: fields of one record: name -> text as the record file carries it (absent fields are missing)
Fields = dict[str, str]
#: entity -> record id -> fields
Records = dict[str, dict[str, Fields]]


def expected_records(source: Source, spec: MappingSpec, cut_off: dt.date, patient_key: str) -> Records:
    """Read one patient from the source and map it: the records its record file must hold."""
    key = int(patient_key)
    with tempfile.TemporaryDirectory(prefix="readback-") as tmp:
        work = Path(tmp)
        (work / "extract").mkdir()
        source.extract_partition(
            spec,
            Partition("readback", key, key + 1),
            cut_off,
            lambda table: staging.open_output(work / "extract" / f"{table}.parquet"),
        )
        map_partition(
            spec, lambda t: staging.read_table(work / "extract" / f"{t}.parquet"), work / "mapped", staging.open_output
        )
        mapped = {
            entity: {
                str(r[ENTITIES[entity].key]): r
                for r in pq.read_table(work / "mapped" / f"{entity}.parquet").to_pylist()
            }
            for entity in ENTITIES
        }
        _times_converted_independently(spec, work / "extract", mapped)
        out: Records = {entity: {rid: _render(entity, r) for rid, r in rows.items()} for entity, rows in mapped.items()}
    return out


def _times_converted_independently(spec: MappingSpec, extract: Path, mapped: dict[str, dict[str, dict]]) -> None:
    """Replace each converted time of the mapped rows by the source value converted value by value.

    The mapping's own output is not what the archive is checked against for these fields: a fault in
    its vectorised conversion would otherwise agree with itself (:mod:`decommission.reconcile.timecheck`).
    A value the correction list replaced keeps the mapping's value (the source holds the uncorrected one).
    """
    for name, table in spec.tables.items():
        converted = converted_fields(table)
        if not converted:
            continue
        # the row key: a composite or prefixed key's is made at extraction, as the record's id is
        columns = list(dict.fromkeys([table.row_key, *converted.values()]))
        records = mapped[table.entity]
        for row in pq.read_table(extract / f"{name}.parquet", columns=columns).to_pylist():
            record = records.get(_key_text(row[table.row_key]))
            if record is None:
                continue  # disposed of by decision: not in the archive
            corrected = {
                f.get("column") for f in qflags.from_json(record.get(QUALITY)) if f.get("disposition") == "correct"
            }
            for target, column in converted.items():
                if column not in corrected:
                    text = utc_text(row[column], spec.timezone)
                    record[target] = None if text is None else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _key_text(value: Any) -> str:
    """A source key as the mapping writes it ('17', not '17.0')."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _render(entity: str, row: Mapping[str, Any]) -> Fields:
    """The fields of one mapped row as text, the way the record writer renders them."""
    spec = ENTITIES[entity]
    fields: Fields = {}
    for column in spec.schema.names:
        if column in _NOT_IN_XML or column == spec.key:
            continue
        text = format_value(row.get(column))
        if text is None or (column in _REFERENCES and not text):
            continue  # the writer leaves out nulls, and references that are empty
        fields[column] = text
    if entity == "patient" and "personal_id" not in fields:
        fields.pop("id_type", None)  # the type and scheme are attributes of the identifier
        fields.pop("id_scheme", None)
    for column, attributes in CODE_ATTRIBUTES.items():
        if column in spec.schema.names and column not in fields:
            for target in attributes.values():  # a code's system and version are attributes of its element
                fields.pop(target, None)
    if entity == "attachment" and row.get("content") is not None:
        fields["sha256"] = hashlib.sha256(bytes(row["content"])).hexdigest()
    if row.get(QUALITY):
        # the quality flags are content too: the archive must hold what the mapping found
        fields[QUALITY] = qflags.canonical(qflags.from_json(row[QUALITY]))
    return fields


def _flags(node: Any, entity: str) -> str:
    """A record's ``<quality>`` element as the same canonical text :func:`_render` makes of the JSON flags."""
    snake = {camel(c): c for c in ENTITIES[entity].schema.names}
    attribute = {camel(k): k for k in qflags.KEYS}
    found = []
    for flag in node:
        f: dict[str, Any] = {}
        for name, value in flag.attrib.items():
            key = attribute.get(name, name)
            f[key] = [snake.get(v, v) for v in value.split()] if key == "fields" else value
        found.append(f)
    return qflags.canonical(found)


def parse_record(data: bytes) -> Records:
    """Parse a record file into the same shape as :func:`expected_records`."""
    root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, huge_tree=True))
    out: Records = {entity: {} for entity in ENTITIES}
    for entity, (container, element) in ELEMENTS.items():
        spec = ENTITIES[entity]
        names = {camel(c): c for c in spec.schema.names}
        path = f"{{{NS}}}{element}" if container is None else f"{{{NS}}}{container}/{{{NS}}}{element}"
        for node in root.iterfind(path):
            fields: Fields = {}
            if entity == "patient":
                record_id = node.get("key", "")
                for child in node:
                    local = etree.QName(child).localname
                    if local == "personalId":
                        fields["personal_id"] = child.text or ""
                        if child.get("type") is not None:
                            fields["id_type"] = child.get("type")
                        if child.get("scheme") is not None:
                            fields["id_scheme"] = child.get("scheme")
                    elif local == "accessRestrictions":
                        for column in _RESTRICTIONS:
                            if child.get(camel(column)) is not None:
                                fields[column] = child.get(camel(column))
                    elif local == QUALITY:
                        fields[QUALITY] = _flags(child, entity)
                    else:
                        column = names.get(local, local)
                        fields[column] = child.text or ""
                        _code_system(child, column, fields)
            else:
                record_id = node.get("id", "")
                for column, attribute in _REFERENCES.items():
                    if node.get(attribute) is not None and column != spec.key:
                        fields[column] = node.get(attribute)
                for child in node:
                    local = etree.QName(child).localname
                    if local in ("path", "size"):
                        continue  # where the file lies in the package, not source content
                    if local == QUALITY:
                        fields[QUALITY] = _flags(child, entity)
                        continue
                    column = names.get(local, local)
                    fields[column] = child.text or ""
                    _code_system(child, column, fields)
            out[entity][record_id] = fields
    return out


def _code_system(child: Any, column: str, fields: Fields) -> None:
    """A code's system and version, attributes of its element, as the model columns they carry."""
    for attribute, target in CODE_ATTRIBUTES.get(column, {}).items():
        if child.get(attribute) is not None:
            fields[target] = child.get(attribute)


def compare(expected: Records, archived: Records) -> list[dict[str, str]]:
    """Every difference between two records: entity, hashed record id, field and kind (no values)."""
    out: list[dict[str, str]] = []
    for entity in ENTITIES:
        want, got = expected.get(entity, {}), archived.get(entity, {})
        for record_id in sorted(set(want) | set(got)):
            rid = keyed_hash(record_id)
            if record_id not in got:
                out.append({"entity": entity, "record": rid, "field": "", "kind": "missing in the archive"})
            elif record_id not in want:
                out.append({"entity": entity, "record": rid, "field": "", "kind": "not in the source"})
            else:
                a, b = want[record_id], got[record_id]
                for field in sorted(set(a) | set(b)):
                    if field not in b:
                        kind = "missing in the archive"
                    elif field not in a:
                        kind = "not in the source"
                    elif a[field] != b[field]:
                        kind = "differs"
                    else:
                        continue
                    out.append({"entity": entity, "record": rid, "field": field, "kind": kind})
    return out


def check_sample(
    *,
    source: Source,
    spec: MappingSpec,
    cut_off: dt.date,
    drawn: Iterable[tuple[str, str]],
    read_record: Any,
) -> list[dict[str, Any]]:
    """Compare each drawn (package_id, patient_key) with the archive; ``read_record(pid, key) -> bytes``."""
    checked = []
    for package_id, patient in drawn:
        try:
            archived = read_record(package_id, patient)
            parsed = parse_record(archived)
        except (ArchiveError, etree.XMLSyntaxError, ValueError) as exc:
            # an unreadable record is a difference the report shows, not a crash of the reconciliation
            what = str(exc) if isinstance(exc, ArchiveError) else f"not a readable record ({type(exc).__name__})"
            checked.append(
                {
                    "package_id": package_id,
                    "patient": keyed_hash(patient),
                    "records": 0,
                    "archived_sha256": None,
                    "match": False,
                    "differences": [{"entity": "record", "record": "", "field": "", "kind": "unreadable"}],
                    "error": what,
                }
            )
            continue
        differences = compare(expected_records(source, spec, cut_off, patient), parsed)
        checked.append(
            {
                "package_id": package_id,
                "patient": keyed_hash(patient),
                "records": sum(len(v) for v in parsed.values()),
                "archived_sha256": hashlib.sha256(archived).hexdigest(),
                "match": not differences,
                "differences": differences,
            }
        )
    return checked
