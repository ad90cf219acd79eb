"""Reconciliation by year of the clinical date, by care unit and by patient, and content fingerprints.

The source side is queried again (through :class:`Source`'s snapshot, with the delivery's
cut-off); the other side comes from the run's staging (extracted rows, findings) and its
packages (record files). Years are those of the source's own clinical date, so rows do not
move between years when times are converted to UTC. Per year and care unit the extracted rows
split into archived (flagged and corrected ones included) and disposed of by decision.

Fingerprints are kept per source table, over the fields that table's mapping carries over
unchanged: two tables feeding one entity may carry different fields (one copies a field the
other sets by lookup), so each record is compared over its own table's field set. A record in
a package is attributed to its table by its id (the staged rows say which table made which id).
A fingerprint is order-independent (a sum of per-record SHA-256 prefixes), over every archived
row, flagged ones included: on the package side a flagged value is first read back to the
source's (escaped text unescaped, a corrected value's original), so a fingerprint also proves
those transformations reversible.

Both row sides are read as Arrow batches and counted with whole-column operations; Python
runs per record only for its SHA-256 (and, on the package side, to read its XML).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import logging
import multiprocessing
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from lxml import etree

from decommission import artefacts
from decommission.mapping import flags as qflags
from decommission.mapping.arrow_text import as_array, key_text
from decommission.model import ENTITIES, QUALITY, Disposition, Reason
from decommission.package.records import ELEMENTS, NS, camel
from decommission.plan.mapping_spec import MappingSpec, TableSpec
from decommission.privacy import keyed_hash
from decommission.reconcile.dispositions import findings_tables
from decommission.reconcile.readback import CODE_ATTRIBUTES
from decommission.reconcile.timecheck import converted_fields, utc_text, utc_texts
from decommission.source import staging
from decommission.source.database import Source
from decommission.validate.tarindex import patient_records

if TYPE_CHECKING:
    from decommission.plan.run import Run

log = logging.getLogger(__name__)

#: a coded element (its name in a record file) -> its attributes -> the model columns they carry
_CODE_ELEMENTS = {camel(column): attributes for column, attributes in CODE_ATTRIBUTES.items()}
NO_YEAR = "-"
MAX_LISTED = 1000
_MOD = 2**64
#: rows per batch read from staging
BATCH_ROWS = 65_536


def reconcile_breakdown(run: Run, partition_ids: list[str], package_ids: list[str]) -> dict[str, Any]:
    """Counts per year, care unit and patient on both sides, and fingerprints per source table."""
    spec = run.spec
    fates = _Fates(findings_tables(run, partition_ids, ["source_table", "source_key", "disposition"]))
    columns = {name: _columns(table) for name, table in spec.tables.items()}
    source = _tally_all(spec, Source.for_system(run.system).stream(spec, columns, run.system.agreement.cut_off), fates)
    # the staged side is counted, not fingerprinted: the fingerprints compare the source with the packages
    extracted = _tally_all(spec, _staged(run, spec, partition_ids, columns), fates, ids=True, digests=False)
    years: dict[str, Counter[str]] = defaultdict(Counter)
    units = []
    for side, counts in (("source", source), ("extracted", extracted)):
        for (_table, year), n in counts["year"].items():
            years[year][side] += n
    for kind in ("disposed", "flagged"):
        for (_table, year), n in extracted[f"year_{kind}"].items():
            years[year][kind] += n
    for year in years:
        years[year]["archived"] = years[year]["extracted"] - years[year]["disposed"]
    for table, unit in sorted(set(source["unit"]) | set(extracted["unit"])):
        d = extracted["unit_disposed"].get((table, unit), 0)
        e = extracted["unit"].get((table, unit), 0)
        units.append(
            {
                "table": table,
                "unit": unit,
                "source": source["unit"].get((table, unit), 0),
                "extracted": e,
                "disposed": d,
                "flagged": extracted["unit_flagged"].get((table, unit), 0),
                "archived": e - d,
            }
        )
    differing = [
        {"patient": keyed_hash(p), "source": source["patient"].get(p, 0), "extracted": extracted["patient"].get(p, 0)}
        for p in sorted(set(source["patient"]) | set(extracted["patient"]))
        if source["patient"].get(p, 0) != extracted["patient"].get(p, 0)
    ]
    owners = _owners(spec, extracted["ids"])
    package_fp, package_rows = _package_fingerprints(run, spec, package_ids, owners)
    fingerprints = {
        t: {
            "entity": spec.tables[t].entity if t in spec.tables else "",
            "fields": sorted(compared_fields(spec.tables[t])) if t in spec.tables else [],
            "rows": extracted["fp_rows"].get(t, 0),
            "package_rows": package_rows.get(t, 0),
            "source": f"{source['fp'].get(t, 0):016x}",
            "package": f"{package_fp.get(t, 0):016x}",
        }
        for t in sorted(set(source["fp"]) | set(package_fp))
    }
    return {
        "years": {
            y: {k: years[y][k] for k in ("source", "extracted", "archived", "flagged", "disposed")}
            for y in sorted(years)
        },
        "by_table_year": [
            {"table": t, "year": y, "source": n, "extracted": extracted["year"].get((t, y), 0)}
            for (t, y), n in sorted(source["year"].items())
        ],
        "units": units,
        "patients": {"count": len(source["patient"]), "differing": differing[:MAX_LISTED]},
        "fingerprints": fingerprints,
        "id_collisions": owners.collisions,
    }


def carried_fields(table: TableSpec) -> dict[str, str]:
    """Target field -> source column, for fields the mapping copies as text (no transform, no lookup)."""
    skip = {"patient_key", ENTITIES[table.entity].key}  # the key is the record's id, compared on its own
    return {
        name: f.column
        for name, f in table.fields.items()
        if f.column and f.transform == "str" and f.lookup is None and name not in skip
    }


def id_column(table: TableSpec) -> str:
    """The column that holds what the record's id is made of (the entity's key field; else the row key)."""
    f = table.fields.get(ENTITIES[table.entity].key)
    return f.column if f is not None and f.column else table.row_key


def record_digest(entity: str, record_id: str, fields: dict[str, str]) -> int:
    """A record's digest: over its entity, id and carried fields (sorted), each as ``<length>:<text>``."""
    parts = [entity, record_id, *(f"{k}={v}" for k, v in sorted(fields.items()))]
    return _digest("".join(f"{len(p)}:{p}" for p in parts).encode("utf-8", "surrogatepass"))


def _digest(body: bytes) -> int:
    return int.from_bytes(hashlib.sha256(body).digest()[:8], "big")


#: how a value kept as its bytes enters a fingerprint, on both sides
BASE64_MARK = "base64:"


def _unit_column(table: TableSpec) -> str | None:
    f = table.fields.get("care_unit")
    return f.column if f is not None else None


def _columns(table: TableSpec) -> list[str]:
    cols = [
        table.row_key,
        id_column(table),
        table.patient_key,
        date_column(table)[0],
        _unit_column(table),
        *carried_fields(table).values(),
        *converted_fields(table).values(),
    ]
    return list(dict.fromkeys(c for c in cols if c))


def date_column(table: TableSpec) -> tuple[str | None, str]:
    """The source column that holds a row's clinical date, and how it is written (the field's transform).

    The cut-off column when the table has one; else the column of the entity's date field (a lab
    result's answer time, say), so a table without a cut-off column still counts under its years.
    """
    date_field = ENTITIES[table.entity].date_field
    spec = table.fields.get(date_field) if date_field else None
    if table.cutoff_column:
        transform = next((f.transform for f in table.fields.values() if f.column == table.cutoff_column), "str")
        return table.cutoff_column, transform
    if spec is not None and spec.column:
        return spec.column, spec.transform
    return None, "str"


def compared_fields(table: TableSpec) -> dict[str, str]:
    """Target field -> source column of every field a fingerprint compares: carried ones and converted times."""
    return carried_fields(table) | converted_fields(table)


# ------------------------------------------------------------------ columns as text, as the records hold them


def _texts(col: pa.ChunkedArray | pa.Array, codec: str = "utf-8") -> pa.Array:
    """Values as text (integral floats as integers); bytes decoded by ``codec``, else their base64, marked."""
    arr = as_array(col)
    t = arr.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return pa.array([None if v is None else _decoded(v, codec) for v in arr.to_pylist()], pa.string())
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t) or pa.types.is_floating(t):
        return as_array(key_text(arr)).cast(pa.string())
    if pa.types.is_boolean(t):
        return pc.if_else(arr, "True", "False")
    # times and dates as Python writes them (what str() of the driver's value gave): rare in carried fields
    return pa.array([None if v is None else str(v) for v in arr.to_pylist()], pa.string())


def _decoded(value: bytes, codec: str) -> str:
    try:
        return value.decode(codec)
    except UnicodeDecodeError:
        return BASE64_MARK + base64.b64encode(value).decode("ascii")


def _years(col: pa.ChunkedArray | None, n: int, transform: str = "str", zone: str = "UTC") -> pa.Array:
    """The year of each clinical date: the first four characters of its text when digits, else ``-``;
    unix seconds (``epoch_seconds``) as the year in the spec's time zone."""
    if col is None:
        return pa.repeat(pa.scalar(NO_YEAR), n)
    arr = as_array(col)
    if transform == "epoch_seconds":
        return pa.array([_epoch_year(v, zone) for v in arr.to_pylist()], pa.string())
    temporal = pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type)
    head = pc.utf8_slice_codeunits(arr.cast(pa.string()) if temporal else _texts(arr), 0, 4)
    ok = pc.fill_null(pc.match_substring_regex(head, r"^[0-9]+$"), False)
    return pc.if_else(ok, head, NO_YEAR)


def _epoch_year(value: Any, zone: str) -> str:
    if value is None or not str(value).lstrip("-").isdigit():
        return NO_YEAR
    try:
        return str(dt.datetime.fromtimestamp(int(value), dt.UTC).astimezone(ZoneInfo(zone)).year)
    except (OverflowError, OSError, ValueError):
        return NO_YEAR


class _Fates:
    """The disposition of every row with a finding (the few rows the mapping found something on), per table."""

    def __init__(self, findings: Iterable[pa.Table]) -> None:
        parts: dict[str, tuple[list[Any], list[Any]]] = defaultdict(lambda: ([], []))
        for t in findings:
            for name, key, fate in zip(*(t.column(i).to_pylist() for i in range(3)), strict=True):
                parts[name][0].append(key)
                parts[name][1].append(fate)
        self.by_table = {
            name: (pa.array(keys, pa.string()), pa.array(fates, pa.string())) for name, (keys, fates) in parts.items()
        }

    def of(self, name: str, keys: pa.Array) -> pa.Array:
        """Each row's disposition (null: archived as it is)."""
        found = self.by_table.get(name)
        if found is None:
            return pa.nulls(len(keys), pa.string())
        return pc.take(found[1], pc.index_in(keys, value_set=found[0]))


# ------------------------------------------------------------------ the two row sides


_KINDS = ("year", "unit", "patient", "year_disposed", "unit_disposed", "year_flagged", "unit_flagged", "fp", "fp_rows")


def _tally_all(
    spec: MappingSpec,
    batches: Iterator[tuple[str, pa.Table]],
    fates: _Fates,
    *,
    ids: bool = False,
    digests: bool = True,
) -> dict[str, Any]:
    """Counts of every batch; with ``ids``, also the record ids each table archived (to attribute records);
    with ``digests``, the fingerprints."""
    out: dict[str, Any] = {k: Counter() for k in _KINDS}
    out["ids"] = defaultdict(list)
    keep_ids = _shared_entities(spec) if ids else set()
    for name, batch in batches:
        table = spec.tables[name]
        _tally(out, name, table, batch, fates, table.entity in keep_ids, spec.timezone, digests)
    return out


def _shared_entities(spec: MappingSpec) -> set[str]:
    """Entities that more than one spec table feeds."""
    feeding = Counter(t.entity for t in spec.tables.values())
    return {entity for entity, n in feeding.items() if n > 1}


def _count(counter: Counter, name: str, values: pa.Array) -> None:
    if len(values) == 0:
        return
    counts = pc.value_counts(values)
    for value, n in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True):
        counter[(name, value)] += n


def _tally(
    out: dict[str, Any],
    name: str,
    table: TableSpec,
    rows: pa.Table,
    fates: _Fates,
    ids: bool,
    zone: str = "UTC",
    digests: bool = True,
) -> None:
    """Count one batch of rows of table ``name``: years, units, patients, fates and the fingerprint."""
    n = rows.num_rows
    if n == 0:
        return
    fate = fates.of(name, as_array(key_text(rows[table.row_key])).cast(pa.string()))
    disposed = pc.fill_null(pc.equal(fate, Disposition.DISPOSE), False)
    flagged = pc.and_(pc.is_valid(fate), pc.invert(disposed))
    column, transform = date_column(table)
    year = _years(rows[column] if column else None, n, transform, zone)
    _count(out["year"], name, year)
    _count(out["year_disposed"], name, year.filter(disposed))
    _count(out["year_flagged"], name, year.filter(flagged))
    unit_col = _unit_column(table)
    if unit_col:
        unit = _texts(rows[unit_col])
        unit = pc.if_else(pc.fill_null(pc.not_equal(unit, ""), False), unit, NO_YEAR)
        _count(out["unit"], name, unit)
        _count(out["unit_disposed"], name, unit.filter(disposed))
        _count(out["unit_flagged"], name, unit.filter(flagged))
    patients = pc.fill_null(_texts(rows[table.patient_key]), "")
    for (_name, patient), k in _counted(name, patients):
        out["patient"][patient] += k
    kept = rows.filter(pc.invert(disposed))
    if kept.num_rows == 0:
        return
    record_ids = pc.fill_null(_texts(kept[id_column(table)]), "")
    if ids:
        out["ids"][name].append(record_ids)
    out["fp_rows"][name] += kept.num_rows
    if not digests:
        return
    parts: list[Any] = [_netstring(pa.repeat(pa.scalar(table.entity), kept.num_rows)), _netstring(record_ids)]
    converted = converted_fields(table)
    for field, column in sorted(compared_fields(table).items()):
        if field in converted:  # converted here value by value, independently of the mapping (timecheck)
            value = utc_texts(kept[column], zone)
        else:
            value = _texts(kept[column], table.encodings.get(column, "utf-8"))
        parts.append(_netstring(pc.binary_join_element_wise(f"{field}=", value, "", null_handling="emit_null")))
    bodies = pc.binary_join_element_wise(*parts, "", null_handling="skip").cast(pa.binary())
    total = sum(_digest(body) for body in bodies.to_pylist())
    out["fp"][name] = (out["fp"][name] + total) % _MOD


def _netstring(values: pa.Array) -> pa.Array:
    """``<length in characters>:<text>`` of each value (null stays null): parts that cannot run into each other."""
    return pc.binary_join_element_wise(pc.cast(pc.utf8_length(values), pa.string()), ":", values, "")


def _counted(name: str, values: pa.Array) -> Iterator[tuple[tuple[str, Any], int]]:
    counts = pc.value_counts(values)
    for value, n in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True):
        yield (name, value), n


def _staged(
    run: Run, spec: MappingSpec, partition_ids: list[str], columns: dict[str, list[str]]
) -> Iterator[tuple[str, pa.Table]]:
    for pid in partition_ids:
        folder = staging.stage_dir(run.system.id, run.milestone.value, "extract", pid)
        for name in spec.tables:
            with staging.open_input(folder / f"{name}.parquet") as fh:
                for batch in pq.ParquetFile(fh).iter_batches(batch_size=BATCH_ROWS, columns=columns[name]):
                    yield name, pa.Table.from_batches([batch])


# ------------------------------------------------------------------ the package side


class _Owners:
    """Which source table made each record of an entity that several tables feed (by record id)."""

    def __init__(self) -> None:
        self.single: dict[str, str] = {}
        self.by_id: dict[str, dict[str, str]] = {}
        self.collisions: list[dict[str, Any]] = []

    def table(self, entity: str, record_id: str) -> str | None:
        if entity in self.single:
            return self.single[entity]
        return self.by_id.get(entity, {}).get(record_id)


def _owners(spec: MappingSpec, ids: dict[str, list[pa.Array]]) -> _Owners:
    owners = _Owners()
    feeding: dict[str, list[str]] = defaultdict(list)
    for name, table in spec.tables.items():
        feeding[table.entity].append(name)
    for entity, names in feeding.items():
        if len(names) == 1:
            owners.single[entity] = names[0]
            continue
        # several tables: an id made by two of them is one record for the archive, two for the source
        found: dict[str, str] = {}
        clash: Counter[tuple[str, str]] = Counter()
        for name in names:
            for chunk in ids.get(name, []):
                for record_id in chunk.to_pylist():
                    other = found.setdefault(record_id, name)
                    if other != name:
                        clash[(other, name)] += 1
        owners.by_id[entity] = found
        owners.collisions += [{"entity": entity, "tables": [a, b], "ids": k} for (a, b), k in sorted(clash.items())]
    return owners


class _RecordReader:
    """Reads the records of record files back into digests per source table (see :func:`_package_fingerprints`)."""

    def __init__(self, spec: MappingSpec, owners: _Owners) -> None:
        self.owners = owners
        self.zone = spec.timezone
        self.fields_of = {name: frozenset(compared_fields(t)) for name, t in spec.tables.items()}
        self.converted = {f for t in spec.tables.values() for f in converted_fields(t)}
        wanted_of: dict[str, set[str]] = defaultdict(set)
        for name, t in spec.tables.items():
            wanted_of[t.entity] |= self.fields_of[name]
        self.tags = {f"{{{NS}}}{element}": entity for entity, (_c, element) in ELEMENTS.items()}
        # per entity, once: the child elements and reference attributes that hold its carried fields
        self.children = {e: {f"{{{NS}}}{camel(f)}": f for f in wanted} for e, wanted in wanted_of.items()}
        self.names = {e: {camel(f): f for f in wanted} for e, wanted in wanted_of.items()}
        self.attributes = {
            e: [(a, f) for f, a in (("case_id", "caseId"), ("document_id", "documentId")) if f in wanted]
            for e, wanted in wanted_of.items()
        }
        self.quality = f"{{{NS}}}{QUALITY}"
        # one field set per entity (each table feeding it carries the same fields): its records are read by
        # a stylesheet (libxslt, in C) into their digest bodies; a flagged record, and the records of an entity
        # whose tables carry different fields, one by one here
        uniform = {
            t.entity
            for t in spec.tables.values()
            if len({self.fields_of[n] for n, u in spec.tables.items() if u.entity == t.entity}) == 1
        }
        self.transform = etree.XSLT(_stylesheet({e: sorted(w) for e, w in wanted_of.items() if e in uniform}))
        self.mixed = [f"<{element}".encode() for e, (_c, element) in ELEMENTS.items() if e not in uniform]
        self.parser = etree.XMLParser(huge_tree=True, resolve_entities=False)
        self.fp: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()

    def _table(self, entity: str, record_id: str) -> str:
        return self.owners.table(entity, record_id) or f"({entity}: no source table made this id)"

    def read(self, record: bytes) -> None:
        if any(m in record for m in self.mixed):
            for _event, node in etree.iterparse(
                io.BytesIO(record), events=("end",), tag=list(self.tags), huge_tree=True, resolve_entities=False
            ):
                self._one(node)
                if self.tags[node.tag] != "patient":
                    node.clear(keep_tail=True)
            return
        doc = etree.fromstring(record, self.parser)
        single = self.owners.single
        for mark, body in _netstrings(str(self.transform(doc))):
            entity = _MARKS[mark]
            table = single.get(entity) or self._table(entity, _head(body)[1])
            self.fp[table] += _digest(body.encode("utf-8"))
            self.rows[table] += 1
        if b"<quality>" in record:  # the stylesheet leaves flagged records out
            for flags in doc.iter(self.quality):
                self._one(flags.getparent())

    def _one(self, node: Any) -> None:
        """One record, field by field: its flagged transformations undone (see :func:`_as_source`)."""
        entity = self.tags[node.tag]
        record_id = node.get("key" if entity == "patient" else "id", "")
        found = {f: v for a, f in self.attributes.get(entity, ()) if (v := node.get(a)) is not None}
        mine = self.children.get(entity, {})
        flags = None
        wanted = self.names.get(entity, {}).values()
        for child in node:
            field = mine.get(child.tag)
            if field is not None:
                found[field] = child.text or ""
            elif child.tag == self.quality:
                flags = [dict(flag.attrib) for flag in child]
            for attribute, target in _CODE_ELEMENTS.get(etree.QName(child).localname, {}).items():
                if target in wanted and child.get(attribute) is not None:
                    found[target] = child.get(attribute)  # a code's system: an attribute of its element
        if flags:
            if entity == "patient" and any(f.get("reason") == Reason.ORPHAN for f in flags):
                return  # a placeholder holding orphans' rows: no source row of its own
            found = _as_source(
                found, flags, self.names[entity], lambda f, v: utc_text(v, self.zone) if f in self.converted else v
            )
        table = self._table(entity, record_id)
        own = self.fields_of.get(table, frozenset())
        if len(own) != len(found) or not own.issuperset(found):
            found = {k: v for k, v in found.items() if k in own}
        self.fp[table] += record_digest(entity, record_id, found)
        self.rows[table] += 1


def _package_fingerprints(
    run: Run, spec: MappingSpec, package_ids: list[str], owners: _Owners
) -> tuple[Counter[str], Counter[str]]:
    """Fingerprints of the record files in the packages, per source table over that table's carried fields.

    Reading the records back is most of a reconciliation's work (their XML parsed, a stylesheet, a
    SHA-256 each, with the GIL held): the packages are read in processes of their own, at most
    :func:`readers` (the sums are added up here, so the result is the same in any order).
    """
    # fetched here: a worker process has no connection to the object storage
    tars = [artefacts.fetch(run.out("packages") / f"{pid}.tar") for pid in package_ids]
    parts = _read_all(spec, owners, tars)
    fp: Counter[str] = Counter()
    rows: Counter[str] = Counter()
    for part_fp, part_rows in parts:
        fp.update(part_fp)
        rows.update(part_rows)
    return Counter({t: v % _MOD for t, v in fp.items()}), rows


def readers() -> int:
    """Processes that read packages back: ``DECOMMISSION_RECONCILE_PROCESSES``, else the CPUs (at most 4)."""
    setting = os.environ.get("DECOMMISSION_RECONCILE_PROCESSES", "").strip()
    return max(1, int(setting)) if setting.isdigit() else max(1, min(4, os.cpu_count() or 1))


def _read_all(spec: MappingSpec, owners: _Owners, tars: list[Any]) -> list[tuple[Counter[str], Counter[str]]]:
    workers = min(len(tars), readers())
    if workers <= 1:
        _start_reader(spec, owners)
        return [_read_package(tar) for tar in tars]
    context = multiprocessing.get_context("spawn")  # no fork of a task process that may hold threads
    try:
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_reader, initargs=(spec, owners)
        ) as pool:
            return list(pool.map(_read_package, tars))
    except (BrokenProcessPool, AssertionError, RuntimeError) as exc:
        # a process that may not start others (a daemon, a script without a main guard): slower, not wrong
        log.warning("packages read back in this process: no reader processes (%s)", type(exc).__name__)
        _start_reader(spec, owners)
        return [_read_package(tar) for tar in tars]


_READER: _RecordReader | None = None


def _start_reader(spec: MappingSpec, owners: _Owners) -> None:
    global _READER
    _READER = _RecordReader(spec, owners)


def _read_package(tar: Any) -> tuple[Counter[str], Counter[str]]:
    """One package's digests and records per source table (in a reader process, or in this one)."""
    assert _READER is not None
    _READER.fp, _READER.rows = Counter(), Counter()
    for _key, record in patient_records(tar):
        _READER.read(record)
    return _READER.fp, _READER.rows


def _stylesheet(fields: dict[str, list[str]]) -> etree._Element:
    """XSLT writing each record of a record file as ``<mark><length>:<body>``, the body as
    :func:`record_digest` makes it.

    The mark is a letter naming the entity (:data:`_MARKS`); a body's parts start with digits.

    ``fields``: per entity, its carried fields in sorted order. Lengths are in characters, as XPath's
    ``string-length`` and Python's ``len`` count them.
    """
    xsl = "http://www.w3.org/1999/XSL/Transform"
    templates = []
    for entity, (_container, element) in ELEMENTS.items():
        key = "@key" if entity == "patient" else "@id"
        # constant text written as it is; a value as its length (plus its constant prefix), ':' and itself
        body = [
            f"{len(entity)}:{entity}",
            f'<xsl:value-of select="string-length({key})"/>:<xsl:value-of select="{key}"/>',
        ]
        for field in fields.get(entity, []):
            attribute = {"case_id": "caseId", "document_id": "documentId"}.get(field)
            coded = next(
                (f"r:{el}/@{a}" for el, attrs in _CODE_ELEMENTS.items() for a, t in attrs.items() if t == field), None
            )
            node = f"@{attribute}" if attribute else coded or f"r:{camel(field)}"
            body.append(
                f'<xsl:for-each select="{node}"><xsl:value-of select="string-length(.) + {len(field) + 1}"/>'
                f':{field}=<xsl:value-of select="."/></xsl:for-each>'
            )
        mark = _MARK_OF[entity]
        # the body's length first, so Python splits the output record by record, not part by part
        templates.append(
            f'<xsl:template match="r:{element}"><xsl:variable name="b">{"".join(body)}</xsl:variable>'
            f'{mark}<xsl:value-of select="string-length($b)"/>:<xsl:value-of select="$b"/></xsl:template>'
        )
        templates.append(f'<xsl:template match="r:{element}[r:{QUALITY}]" priority="2"/>')
    text = (
        f'<xsl:stylesheet version="1.0" xmlns:xsl="{xsl}" xmlns:r="{NS}">'
        '<xsl:output method="text" encoding="utf-8"/>'
        # the patient, and the records in each container: no search of the whole tree per entity
        '<xsl:template match="/"><xsl:apply-templates select="r:record/r:patient | r:record/*/*"/></xsl:template>'
        '<xsl:template match="*"/>'
        f"{''.join(templates)}</xsl:stylesheet>"
    )
    return etree.XML(text)


#: the letter that starts an entity's record in the stylesheet's output
_MARK_OF = {entity: chr(ord("a") + i) for i, entity in enumerate(ELEMENTS)}
_MARKS = {mark: entity for entity, mark in _MARK_OF.items()}


def _netstrings(text: str) -> Iterator[tuple[str, str]]:
    """(mark, body) of ``<mark><length>:<body><mark><length>:<body>...`` (lengths in characters)."""
    pos, end = 0, len(text)
    while pos < end:
        colon = text.index(":", pos + 1)
        start = colon + 1
        stop = start + int(text[pos + 1 : colon])
        yield text[pos], text[start:stop]
        pos = stop


def _head(body: str) -> tuple[str, str]:
    """The entity and record id a digest body starts with."""
    colon = body.index(":")
    entity_end = colon + 1 + int(body[:colon])
    second = body.index(":", entity_end)
    return body[colon + 1 : entity_end], body[second + 1 : second + 1 + int(body[entity_end:second])]


def _as_source(
    found: dict[str, str], flags: list[dict[str, str]], names: dict[str, str], convert: Any = None
) -> dict[str, str]:
    """The carried fields as the source holds them: flagged transformations undone by what each flag says.

    :param convert: (field, source text) -> the text the field holds for it (a corrected time's original
        is converted as the source side converts it); None: the text as it is
    """
    if not flags:
        return found
    out = dict(found)
    for flag in flags:
        targets = [names[f] for f in flag.get("fields", "").split() if f in names]
        for target in targets:
            if flag.get("encoding") == qflags.BACKSLASH_U and target in out:
                out[target] = qflags.unescape(out[target])
            elif flag.get("encoding") == qflags.BASE64 and target in out:
                out[target] = BASE64_MARK + out[target]
            if flag.get("disposition") == Disposition.CORRECT:
                original = flag.get("original")
                if original is None:
                    out.pop(target, None)
                else:
                    out[target] = qflags.unescape(original)
                    if convert is not None:
                        out[target] = convert(target, out[target])
    return out
