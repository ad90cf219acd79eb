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
A fingerprint is order-independent (a sum of per-record SHA-256 prefixes, :mod:`.digest`), over
every archived row, flagged ones included; the package side is read by :mod:`.package_digests`,
at the validation gate as a rule (the ledger keeps its digests beside the SHA-256 it validated).

Both row sides are read as Arrow batches and counted with whole-column operations; Python
runs per record only for its SHA-256 (and, on the package side, to read its XML).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from decommission import artefacts
from decommission.deliver.receipts import from_ledger
from decommission.ledger import programme_ledger
from decommission.mapping.arrow_text import as_array, key_text
from decommission.model import ENTITIES, Disposition
from decommission.plan.mapping_spec import MappingSpec, TableSpec
from decommission.privacy import keyed_hash
from decommission.reconcile.digest import BASE64_MARK, MOD, carried_fields, compared_fields, digest_sum, id_column
from decommission.reconcile.dispositions import findings_tables
from decommission.reconcile.package_digests import Owners, owners_of, read_all
from decommission.reconcile.timecheck import converted_fields, utc_texts
from decommission.source import staging
from decommission.source.database import Partition, Source

if TYPE_CHECKING:
    from decommission.plan.run import Run

log = logging.getLogger(__name__)

NO_YEAR = "-"
MAX_LISTED = 1000
#: rows per batch read from staging
BATCH_ROWS = 65_536
_FATE_COLUMNS = ["source_table", "source_key", "disposition"]


def reconcile_breakdown(
    run: Run, partition_ids: list[str], package_ids: list[str], tallies: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Counts per year, care unit and patient on both sides, and fingerprints per source table.

    :param tallies: partition id -> its :func:`partition_tally`, counted by the ``reconcile_partition``
        tasks side by side; a partition without one is counted here. Key ranges that no given partition
        covers (a partition that failed before its extraction) are read on the source side here, so
        their rows show as differences.
    """
    spec = run.spec
    ranges = extracted_partitions(run)
    unknown = sorted(set(partition_ids) - set(ranges))
    if unknown:  # a mapped partition has an extraction in the ledger: this is a ledger that was changed
        raise RuntimeError(f"partitions {', '.join(unknown)} have no extraction in the ledger of run {run.run_id}")
    kept = {pid: t for pid, t in (tallies or {}).items() if pid in partition_ids}
    parts = [kept[pid] if pid in kept else partition_tally(run, ranges[pid]) for pid in partition_ids]
    gaps = _gaps([ranges[pid] for pid in partition_ids])
    parts += [partition_tally(run, gap, staged=False) for gap in gaps]
    source = _merged([_counters(p["source"]) for p in parts])
    extracted = _merged([_counters(p["extracted"]) for p in parts])
    collisions: Counter[tuple[str, str, str]] = Counter()
    for p in parts:
        for c in p["id_collisions"]:
            collisions[(c["entity"], *c["tables"])] += c["ids"]
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
    package_fp, package_rows, read = _package_fingerprints(run, spec, package_ids)
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
        "id_collisions": [
            {"entity": entity, "tables": [a, b], "ids": n} for (entity, a, b), n in sorted(collisions.items())
        ],
        "package_digests": read,
        # how the partitions were counted: by their own tasks, here, and key ranges outside every partition
        "partition_tallies": {"kept": len(kept), "counted_here": len(partition_ids) - len(kept), "gaps": len(gaps)},
    }


def partition_tally(run: Run, part: Partition, *, staged: bool = True) -> dict[str, Any]:
    """One partition's two row sides counted: its source rows read again within its key range and the
    cut-off, and its staged rows (without ``staged``: the source side only, for a range nothing extracted).

    Plain data (JSON), which the reconcile task adds up: counts per table and year, care unit and
    patient, the source's fingerprints, and record ids two tables of one entity both made.
    """
    spec = run.spec
    fates = _Fates(findings_tables(run, [part.id], _FATE_COLUMNS) if staged else [])
    columns = {name: _columns(table) for name, table in spec.tables.items()}
    cut_off = run.system.agreement.cut_off
    source = _tally_all(spec, Source.for_system(run.system).stream(spec, columns, cut_off, part), fates)
    extracted = _staged_side(run, part.id, fates) if staged else _tally_all(spec, iter(()), fates)
    return {
        "partition": part.id,
        "source": _plain(source),
        "extracted": _plain(extracted),
        "id_collisions": owners_of(spec, extracted["ids"]).collisions,
    }


def tally_path(run: Run, partition_id: str) -> Path:
    """Where a partition's tally is kept (shared with every worker; not in the report's folder, whose
    every file the ledger vouches for as the report's)."""
    return run.out("tallies") / run.milestone.value / f"{partition_id}.json"


def kept_tallies(run: Run, partition_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The tallies the ``reconcile_partition`` tasks kept, each only if its file is the one whose SHA-256
    the ledger recorded (a missing or changed file: that partition is counted again by the caller)."""
    recorded = from_ledger(run, "reconcile_partition", "partition")
    out = {}
    for pid in partition_ids:
        sha = recorded.get(pid, {}).get("sha256")
        if sha is None:
            continue
        try:
            data = artefacts.fetch(tally_path(run, pid), sha).read_bytes()
        except (OSError, ValueError):
            data = b""
        if hashlib.sha256(data).hexdigest() != sha:
            log.warning("the tally of partition %s is not the one the ledger recorded: counted again", pid)
            continue
        out[pid] = json.loads(data)
    return out


def extracted_partitions(run: Run) -> dict[str, Partition]:
    """The key range of every partition this run extracted, as the ledger recorded it (not task data)."""
    entries = programme_ledger().entries(system_id=run.system.id, kind="extract")
    return {
        e.payload["partition"]["id"]: Partition.from_dict(e.payload["partition"])
        for e in entries
        if e.run_id == run.run_id
    }


def _gaps(parts: list[Partition]) -> list[Partition]:
    """The patient-key ranges none of ``parts`` covers (a run's partitions are contiguous ranges, open
    at both ends, so what is missing lies between or beyond them)."""
    if not parts:
        return [Partition("rest-1", None, None)]
    ordered = sorted(parts, key=lambda p: (p.lo is not None, p.lo or 0))
    bounds = [(None, ordered[0].lo)] if ordered[0].lo is not None else []
    bounds += [(a.hi, b.lo) for a, b in zip(ordered, ordered[1:], strict=False) if a.hi != b.lo]
    if ordered[-1].hi is not None:
        bounds.append((ordered[-1].hi, None))
    return [Partition(f"rest-{i + 1}", lo, hi) for i, (lo, hi) in enumerate(bounds)]


def _plain(counts: dict[str, Any]) -> dict[str, list[list[Any]]]:
    """A side's counters as JSON lists: ``[*key, count]`` (a key is a table, a patient or a (table, value))."""
    return {
        kind: [[*(k if isinstance(k, tuple) else (k,)), n] for k, n in sorted(counts[kind].items())] for kind in _KINDS
    }


def _counters(plain: Mapping[str, list[list[Any]]]) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for kind in _KINDS:
        counter: Counter = Counter()
        for *key, n in plain[kind]:
            counter[tuple(key) if len(key) > 1 else key[0]] += n
        out[kind] = counter
    return out


def _merged(sides: list[dict[str, Counter]]) -> dict[str, Counter]:
    out: dict[str, Counter] = {kind: Counter() for kind in _KINDS}
    for side in sides:
        for kind in _KINDS:
            out[kind].update(side[kind])
    out["fp"] = Counter({t: v % MOD for t, v in out["fp"].items()})
    return out


def _unit_column(table: TableSpec) -> str | None:
    f = table.fields.get("care_unit")
    return f.column if f is not None else None


def _columns(table: TableSpec, *, compared: bool = True) -> list[str]:
    """The columns a side reads: keys, date and unit, and (``compared``) the fingerprint's fields."""
    cols = [table.row_key, id_column(table), table.patient_key, date_column(table)[0], _unit_column(table)]
    if compared:
        cols += [*carried_fields(table).values(), *converted_fields(table).values()]
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


# ------------------------------------------------------------------ columns as text, as the records hold them


def _texts(col: pa.ChunkedArray | pa.Array, codec: str = "utf-8") -> pa.Array:
    """Values as text (integral floats as integers); bytes decoded by ``codec``, else their base64, marked."""
    arr = as_array(col)
    t = arr.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return pa.array([None if v is None else _decoded(v, codec) for v in arr.to_pylist()], pa.string())
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return arr.cast(pa.large_string())  # the text as it is (no copy of it)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return as_array(key_text(arr)).cast(pa.large_string())
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
    previous = None
    for name, batch in batches:
        if name != previous:  # a table done: give the allocator's freed pages back before the next
            pa.default_memory_pool().release_unused()
            previous = name
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
    any_disposed = fate.null_count < n and pc.any(disposed).as_py()
    column, transform = date_column(table)
    year = _years(rows[column] if column else None, n, transform, zone)
    _count(out["year"], name, year)
    if fate.null_count < n:  # only a table with findings in this batch has rows flagged or disposed
        _count(out["year_disposed"], name, year.filter(disposed))
        _count(out["year_flagged"], name, year.filter(flagged))
    unit_col = _unit_column(table)
    if unit_col:
        unit = _texts(rows[unit_col])
        unit = pc.if_else(pc.fill_null(pc.not_equal(unit, ""), False), unit, NO_YEAR)
        _count(out["unit"], name, unit)
        if fate.null_count < n:
            _count(out["unit_disposed"], name, unit.filter(disposed))
            _count(out["unit_flagged"], name, unit.filter(flagged))
    patients = pc.fill_null(_texts(rows[table.patient_key]), "")
    for (_name, patient), k in _counted(name, patients):
        out["patient"][patient] += k
    kept = rows.filter(pc.invert(disposed)) if any_disposed else rows
    if kept.num_rows == 0:
        return
    record_ids = pc.fill_null(_texts(kept[id_column(table)]), "")
    if ids:
        out["ids"][name].append(record_ids)
    out["fp_rows"][name] += kept.num_rows
    if not digests:
        return
    parts: list[Any] = [pa.scalar(f"{len(table.entity)}:{table.entity}", pa.large_string()), *_netstring(record_ids)]
    converted = converted_fields(table)
    for field, column in sorted(compared_fields(table).items()):
        if field in converted:  # converted here value by value, independently of the mapping (timecheck)
            value = utc_texts(kept[column], zone)
        else:
            value = _texts(kept[column], table.encodings.get(column, "utf-8"))
        parts += _netstring(value, f"{field}=")
    # one join: each text is copied once (a null value's prefix is null too, so the field is left out)
    bodies = pc.binary_join_element_wise(*parts, pa.scalar("", pa.large_string()), null_handling="skip")
    out["fp"][name] = (out["fp"][name] + digest_sum(bodies)) % MOD


def _netstring(values: pa.Array, label: str = "") -> tuple[pa.Array, pa.Array]:
    """``<length in characters>:<label>`` and the text of each value (a null value's prefix is null): joined,
    parts that cannot run into each other."""
    values = values.cast(pa.large_string())
    length = pc.utf8_length(values)
    if label:
        length = pc.add(length, len(label))
    text = pa.large_string()
    return pc.binary_join_element_wise(length.cast(text), pa.scalar(f":{label}", text), pa.scalar("", text)), values


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


def partition_owners(run: Run, partition_id: str) -> Owners:
    """Which source table made each record of one partition (read from its staged rows only when an
    entity has several tables): what the validation gate needs to digest the partition's package."""
    spec = run.spec
    if not _shared_entities(spec):
        return owners_of(spec, {})
    return owners_of(
        spec, _staged_side(run, partition_id, _Fates(findings_tables(run, [partition_id], _FATE_COLUMNS)))["ids"]
    )


def _staged_side(run: Run, partition_id: str, fates: _Fates) -> dict[str, Any]:
    """A partition's staged rows counted, with the record ids of the entities several tables feed; not
    fingerprinted (the fingerprints compare the source with the packages), so only keys, dates and units
    are read."""
    spec = run.spec
    counted = {name: _columns(table, compared=False) for name, table in spec.tables.items()}
    return _tally_all(spec, _staged(run, spec, [partition_id], counted), fates, ids=True, digests=False)


def _package_fingerprints(
    run: Run, spec: MappingSpec, package_ids: list[str]
) -> tuple[Counter[str], Counter[str], dict[str, int]]:
    """Fingerprints of the record files in the packages, per source table over that table's carried fields.

    The validation gate digested every record file as it parsed it, and the ledger keeps those digests
    beside the SHA-256 it validated: a package the ledger says was built with that same SHA-256 (the
    bytes sent; the fixity audit proves the archive holds them) is taken from there, never from XCom.
    Any other package (validated by an earlier version, say) is read back here, in reader processes
    (:func:`package_digests.read_all`). Returns the fingerprints, the records per table and how many
    packages came from each way.
    """
    built = from_ledger(run, "package", "package_id")
    validated = from_ledger(run, "validation", "package_id")
    fp: Counter[str] = Counter()
    rows: Counter[str] = Counter()
    known, rest = [], []
    for pid in package_ids:
        entry = validated.get(pid, {})
        sha = built.get(pid, {}).get("sha256")
        if entry.get("valid") and sha is not None and entry.get("sha256") == sha and "digests" in entry:
            known.append(pid)
            for table, value in entry["digests"]["fingerprints"].items():
                fp[table] += int(value, 16)
            rows.update(entry["digests"]["rows"])
        else:
            rest.append(pid)
    # fetched here: a reader process has no connection to the object storage
    work = [
        (
            artefacts.fetch(run.out("packages") / f"{pid}.tar", built.get(pid, {}).get("sha256")),
            package_owners(run, built.get(pid, {}).get("partition")) or owners_of(spec, {}),
        )
        for pid in rest
    ]
    for part_fp, part_rows in read_all(spec, work) if work else []:
        fp.update(part_fp)
        rows.update(part_rows)
    return Counter({t: v % MOD for t, v in fp.items()}), rows, {"from_validation": len(known), "read_back": len(rest)}


def package_owners(run: Run, partition_id: str | None) -> Owners | None:
    """:func:`partition_owners` of the partition a package was built from; None without its staged rows
    (no partition named, or its staging gone): records of an entity two tables feed cannot be attributed."""
    try:
        return partition_owners(run, partition_id) if partition_id else None
    except OSError:
        return None
