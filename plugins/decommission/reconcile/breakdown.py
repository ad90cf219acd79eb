"""Reconciliation by year of the clinical date, by care unit and by patient, and content fingerprints.

The source side is queried again (through :class:`Source`'s snapshot, with the delivery's
cut-off); the other side comes from the run's staging (extracted rows, quarantine) and its
packages (record files). Years are those of the source's own clinical date, so rows do not
move between years when times are converted to UTC. Fingerprints are order-independent
(a sum of per-record SHA-256 prefixes) over the fields the mapping carries over unchanged;
the same records give the same fingerprint on both sides whatever order they came in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
from lxml import etree

from decommission.model import ENTITIES
from decommission.package.records import ELEMENTS, NS, camel
from decommission.plan.mapping_spec import MappingSpec, TableSpec
from decommission.privacy import keyed_hash
from decommission.source import staging
from decommission.source.database import FAR_FUTURE, Source
from decommission.validate.tarindex import patient_records

if TYPE_CHECKING:
    from decommission.plan.run import Run

NO_YEAR = "-"
MAX_LISTED = 1000
_MOD = 2**64


def reconcile_breakdown(run: Run, partition_ids: list[str], package_ids: list[str]) -> dict[str, Any]:
    """Counts per year, care unit and patient on both sides, and fingerprints per entity."""
    spec = run.spec
    source = _source_side(run, spec)
    extracted = _staged_side(run, spec, partition_ids)
    years: dict[str, Counter[str]] = defaultdict(Counter)
    units = []
    for side, counts in (("source", source), ("extracted", extracted)):
        for (_table, year), n in counts["year"].items():
            years[year][side] += n
    for (_table, year), n in extracted["year_quarantined"].items():
        years[year]["quarantined"] += n
    for year in years:
        years[year]["archived"] = years[year]["extracted"] - years[year]["quarantined"]
    for table, unit in sorted(set(source["unit"]) | set(extracted["unit"])):
        q = extracted["unit_quarantined"].get((table, unit), 0)
        e = extracted["unit"].get((table, unit), 0)
        units.append(
            {
                "table": table,
                "unit": unit,
                "source": source["unit"].get((table, unit), 0),
                "extracted": e,
                "quarantined": q,
                "archived": e - q,
            }
        )
    differing = [
        {"patient": keyed_hash(p), "source": source["patient"].get(p, 0), "extracted": extracted["patient"].get(p, 0)}
        for p in sorted(set(source["patient"]) | set(extracted["patient"]))
        if source["patient"].get(p, 0) != extracted["patient"].get(p, 0)
    ]
    package_fp = _package_fingerprints(run, spec, package_ids)
    fingerprints = {
        e: {
            "rows": extracted["fp_rows"].get(e, 0),
            "source": f"{source['fp'].get(e, 0):016x}",
            "package": f"{package_fp.get(e, 0):016x}",
        }
        for e in sorted(set(source["fp"]) | set(package_fp))
    }
    return {
        "years": {
            y: {k: years[y][k] for k in ("source", "extracted", "quarantined", "archived")} for y in sorted(years)
        },
        "by_table_year": [
            {"table": t, "year": y, "source": n, "extracted": extracted["year"].get((t, y), 0)}
            for (t, y), n in sorted(source["year"].items())
        ],
        "units": units,
        "patients": {"count": len(source["patient"]), "differing": differing[:MAX_LISTED]},
        "fingerprints": fingerprints,
    }


def carried_fields(table: TableSpec) -> dict[str, str]:
    """Target field -> source column, for fields the mapping copies as text (no transform, no lookup)."""
    skip = {"patient_key", ENTITIES[table.entity].key}  # the key is the record's id, compared on its own
    return {
        name: f.column
        for name, f in table.fields.items()
        if f.column and f.transform == "str" and f.lookup is None and name not in skip
    }


def record_digest(entity: str, record_id: str, fields: dict[str, str]) -> int:
    body = "\x1f".join([entity, record_id, *(f"{k}={v}" for k, v in sorted(fields.items()))])
    return int(hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()[:16], 16)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _year(value: Any) -> str:
    text = _text(value)
    return text[:4] if text and text[:4].isdigit() else NO_YEAR


def _unit_column(table: TableSpec) -> str | None:
    f = table.fields.get("care_unit")
    return f.column if f is not None else None


def _columns(table: TableSpec) -> list[str]:
    cols = [table.key, table.patient_key, table.cutoff_column, _unit_column(table), *carried_fields(table).values()]
    return list(dict.fromkeys(c for c in cols if c))


def _tally(out: dict[str, Any], name: str, table: TableSpec, row: dict[str, Any], quarantined: bool) -> None:
    year = _year(row.get(table.cutoff_column)) if table.cutoff_column else NO_YEAR
    out["year"][(name, year)] += 1
    unit_col = _unit_column(table)
    if unit_col:
        out["unit"][(name, _text(row.get(unit_col)) or NO_YEAR)] += 1
    out["patient"][_text(row.get(table.patient_key)) or ""] += 1
    if quarantined:
        out["year_quarantined"][(name, year)] += 1
        if unit_col:
            out["unit_quarantined"][(name, _text(row.get(unit_col)) or NO_YEAR)] += 1
        return
    carried = carried_fields(table)
    fields = {k: t for k, c in carried.items() if (t := _text(row.get(c))) is not None}
    entity = table.entity
    out["fp"][entity] = (out["fp"][entity] + record_digest(entity, _text(row.get(table.key)) or "", fields)) % _MOD
    out["fp_rows"][entity] += 1


def _empty() -> dict[str, Any]:
    return {k: Counter() for k in ("year", "unit", "patient", "year_quarantined", "unit_quarantined", "fp", "fp_rows")}


def _source_side(run: Run, spec: MappingSpec) -> dict[str, Any]:
    """Re-query every table within the cut-off; the source side keeps every row (quarantine is ours)."""
    out = _empty()
    src = Source.for_system(run.system)
    quarantined = _quarantined_keys(run, spec, None)
    bound = (run.system.agreement.cut_off + dt.timedelta(days=1)).isoformat()
    with src.snapshot() as conn:
        for name, table in spec.tables.items():
            cols = _columns(table)
            quoted = ", ".join(f'"{c}"' for c in cols)
            sql = f"SELECT {quoted} FROM {src.qualified(spec.source_table(name))}"
            params: list[Any] = []
            if table.cutoff_column:
                c, p = f'"{table.cutoff_column}"', src.placeholder
                sql += f" WHERE ({c} IS NULL OR {c} < {p} OR {c} >= {p})"
                params = [bound, FAR_FUTURE]
            cur = conn.cursor()
            cur.execute(sql, params)
            while batch := cur.fetchmany(10_000):
                for values in batch:
                    row = dict(zip(cols, values, strict=True))
                    key = _text(row.get(table.key))
                    _tally(out, name, table, row, (name, key) in quarantined)
            cur.close()
    return out


def _quarantined_keys(run: Run, spec: MappingSpec, partition_ids: list[str] | None) -> set[tuple[str, str]]:
    base = staging.stage_dir(run.system.id, run.milestone.value, "mapped", "x").parent
    keys: set[tuple[str, str]] = set()
    if not base.exists():
        return keys
    for part in sorted(base.iterdir(), key=str):
        if part.name.startswith(".") or (partition_ids is not None and part.name not in partition_ids):
            continue
        qfile = part / "quarantine.parquet"
        if qfile.exists():
            table = staging.read_frame(qfile)
            keys |= set(zip(table["source_table"], table["source_key"].astype(str), strict=True))
    return keys


def _staged_side(run: Run, spec: MappingSpec, partition_ids: list[str]) -> dict[str, Any]:
    out = _empty()
    quarantined = _quarantined_keys(run, spec, partition_ids)
    for pid in partition_ids:
        folder = staging.stage_dir(run.system.id, run.milestone.value, "extract", pid)
        for name, table in spec.tables.items():
            cols = _columns(table)
            with staging.open_input(folder / f"{name}.parquet") as fh:
                for batch in pq.ParquetFile(fh).iter_batches(batch_size=10_000, columns=cols):
                    for row in batch.to_pylist():
                        key = _text(row.get(table.key))
                        _tally(out, name, table, row, (name, key) in quarantined)
    return out


def _package_fingerprints(run: Run, spec: MappingSpec, package_ids: list[str]) -> Counter[str]:
    """Fingerprints of the record files in the packages, over the same carried fields."""
    fields_of: dict[str, set[str]] = defaultdict(set)
    for table in spec.tables.values():
        fields_of[table.entity] |= set(carried_fields(table))
    tags = {f"{{{NS}}}{element}": entity for entity, (_c, element) in ELEMENTS.items()}
    fp: Counter[str] = Counter()
    for pid in package_ids:
        for _key, record in patient_records(run.out("packages") / f"{pid}.tar"):
            events = etree.iterparse(io.BytesIO(record), events=("end",), tag=list(tags), huge_tree=True)
            for _event, node in events:
                entity = tags[node.tag]
                wanted = fields_of.get(entity, set())
                names = {camel(f): f for f in wanted}
                record_id = node.get("key" if entity == "patient" else "id", "")
                found = {}
                for f in wanted:
                    attr = {"case_id": "caseId", "document_id": "documentId"}.get(f)
                    if attr and node.get(attr) is not None:
                        found[f] = node.get(attr)
                for child in node:
                    local = etree.QName(child).localname
                    if local in names:
                        found[names[local]] = child.text or ""
                fp[entity] = (fp[entity] + record_digest(entity, record_id, found)) % _MOD
                if entity != "patient":
                    node.clear(keep_tail=True)
    return fp
