"""Reconciliation by year of the clinical date, by care unit and by patient, and content fingerprints.

The source side is queried again (through :class:`Source`'s snapshot, with the delivery's
cut-off); the other side comes from the run's staging (extracted rows, findings) and its
packages (record files). Years are those of the source's own clinical date, so rows do not
move between years when times are converted to UTC. Per year and care unit the extracted rows
split into archived (flagged and corrected ones included) and disposed of by decision.
Fingerprints are order-independent (a sum of per-record SHA-256 prefixes) over the fields the
mapping carries over unchanged, over every archived row, flagged ones included: on the package
side a flagged value is first read back to the source's (escaped text unescaped, a corrected
value's original), so a fingerprint also proves those transformations reversible. The same
records give the same fingerprint on both sides whatever order they came in.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
from lxml import etree

from decommission import artefacts
from decommission.mapping import flags as qflags
from decommission.model import ENTITIES, QUALITY, Disposition, Reason
from decommission.package.records import ELEMENTS, NS, camel
from decommission.plan.mapping_spec import MappingSpec, TableSpec
from decommission.privacy import keyed_hash
from decommission.reconcile.dispositions import findings_tables
from decommission.reconcile.readback import CODE_ATTRIBUTES
from decommission.reconcile.timecheck import converted_fields, utc_text
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
    findings = _findings(run, partition_ids)
    source = _source_side(run, spec, findings)
    extracted = _staged_side(run, spec, partition_ids, findings)
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


def _text(value: Any, codec: str = "utf-8") -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bytes | bytearray | memoryview):
        # text a driver could not decode: read as the mapping reads it, else the base64 the record holds
        try:
            return bytes(value).decode(codec)
        except UnicodeDecodeError:
            return BASE64_MARK + base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


#: how a value kept as its bytes enters a fingerprint, on both sides
BASE64_MARK = "base64:"


def _year(value: Any, transform: str = "str", tz: str = "UTC") -> str:
    """The year of a clinical date as the source writes it; unix seconds in the spec's time zone."""
    if transform == "epoch_seconds" and value is not None and str(value).lstrip("-").isdigit():
        try:
            return str(dt.datetime.fromtimestamp(int(value), dt.UTC).astimezone(ZoneInfo(tz)).year)
        except (OverflowError, OSError, ValueError):
            return NO_YEAR
    text = _text(value)
    return text[:4] if text and text[:4].isdigit() else NO_YEAR


def _unit_column(table: TableSpec) -> str | None:
    f = table.fields.get("care_unit")
    return f.column if f is not None else None


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


def _columns(table: TableSpec) -> list[str]:
    cols = [table.key, table.patient_key, date_column(table)[0], _unit_column(table), *carried_fields(table).values()]
    cols += converted_fields(table).values()
    return list(dict.fromkeys(c for c in cols if c))


def _tally(out: dict[str, Any], name: str, table: TableSpec, row: dict[str, Any], fate: str | None, zone: str) -> None:
    """Count one row; ``fate`` is its disposition when it has a finding (None: archived as it is)."""
    column, transform = date_column(table)
    year = _year(row.get(column), transform, zone) if column else NO_YEAR
    out["year"][(name, year)] += 1
    unit_col = _unit_column(table)
    unit = _text(row.get(unit_col)) or NO_YEAR if unit_col else None
    if unit_col:
        out["unit"][(name, unit)] += 1
    out["patient"][_text(row.get(table.patient_key)) or ""] += 1
    if fate is not None:
        kind = "disposed" if fate == Disposition.DISPOSE else "flagged"
        out[f"year_{kind}"][(name, year)] += 1
        if unit_col:
            out[f"unit_{kind}"][(name, unit)] += 1
    if fate == Disposition.DISPOSE:
        return
    carried = carried_fields(table)
    fields = {k: t for k, c in carried.items() if (t := _text(row.get(c), table.encodings.get(c, "utf-8"))) is not None}
    # converted times enter as the archive must hold them, converted here value by value (timecheck)
    fields |= {k: t for k, c in converted_fields(table).items() if (t := utc_text(row.get(c), zone)) is not None}
    entity = table.entity
    out["fp"][entity] = (out["fp"][entity] + record_digest(entity, _text(row.get(table.key)) or "", fields)) % _MOD
    out["fp_rows"][entity] += 1


_KINDS = ("year", "unit", "patient", "year_disposed", "unit_disposed", "year_flagged", "unit_flagged", "fp", "fp_rows")


def _empty() -> dict[str, Any]:
    return {k: Counter() for k in _KINDS}


def _findings(run: Run, partition_ids: list[str]) -> dict[tuple[str, str], str]:
    """(table, source key) -> disposition of every row with a finding (the few rows the mapping found something on)."""
    out: dict[tuple[str, str], str] = {}
    for table in findings_tables(run, partition_ids, ["source_table", "source_key", "disposition"]):
        out.update(
            zip(
                zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True),
                table.column(2).to_pylist(),
                strict=True,
            )
        )
    return out


def _source_side(run: Run, spec: MappingSpec, findings: dict[tuple[str, str], str]) -> dict[str, Any]:
    """Re-query every table within the cut-off; a row's fate comes from the run's findings."""
    out = _empty()
    src = Source.for_system(run.system)
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
                    _tally(out, name, table, row, findings.get((name, key)), spec.timezone)
            cur.close()
    return out


def _staged_side(
    run: Run, spec: MappingSpec, partition_ids: list[str], findings: dict[tuple[str, str], str]
) -> dict[str, Any]:
    out = _empty()
    for pid in partition_ids:
        folder = staging.stage_dir(run.system.id, run.milestone.value, "extract", pid)
        for name, table in spec.tables.items():
            cols = _columns(table)
            with staging.open_input(folder / f"{name}.parquet") as fh:
                for batch in pq.ParquetFile(fh).iter_batches(batch_size=10_000, columns=cols):
                    for row in batch.to_pylist():
                        key = _text(row.get(table.key))
                        _tally(out, name, table, row, findings.get((name, key)), spec.timezone)
    return out


def _package_fingerprints(run: Run, spec: MappingSpec, package_ids: list[str]) -> Counter[str]:
    """Fingerprints of the record files in the packages, over the same carried fields."""
    fields_of: dict[str, set[str]] = defaultdict(set)
    converted: set[str] = set()
    for table in spec.tables.values():
        fields_of[table.entity] |= set(carried_fields(table)) | set(converted_fields(table))
        converted |= set(converted_fields(table))
    tags = {f"{{{NS}}}{element}": entity for entity, (_c, element) in ELEMENTS.items()}
    fp: Counter[str] = Counter()
    for pid in package_ids:
        for _key, record in patient_records(artefacts.fetch(run.out("packages") / f"{pid}.tar")):
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
                flags = []
                for child in node:
                    local = etree.QName(child).localname
                    if local in names:
                        found[names[local]] = child.text or ""
                    elif local == QUALITY:
                        flags = [dict(flag.attrib) for flag in child]
                    for attribute, target in CODE_ATTRIBUTES.get(local, {}).items():
                        if target in wanted and child.get(attribute) is not None:
                            found[target] = child.get(attribute)  # a code's system: an attribute of its element
                if entity == "patient" and any(f.get("reason") == Reason.ORPHAN for f in flags):
                    continue  # a placeholder holding orphans' rows: no source row of its own
                found = _as_source(
                    found, flags, names, lambda f, v: utc_text(v, spec.timezone) if f in converted else v
                )
                fp[entity] = (fp[entity] + record_digest(entity, record_id, found)) % _MOD
                if entity != "patient":
                    node.clear(keep_tail=True)
    return fp


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
