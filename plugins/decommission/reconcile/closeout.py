"""The reconciliation of a run: source, extraction, mapping, packages and the archive compared; the verdict."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Mapping
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from decommission import __version__, artefacts
from decommission.deliver.receipts import from_ledger, read_receipts, sent_packages
from decommission.deliver.transport import archive_transport
from decommission.plan.programme import Milestone
from decommission.plan.run import Run
from decommission.privacy import current_key
from decommission.reconcile.checks import (
    FAIL,
    detection_chance,
    draw_sample,
    reconcile,
    sample_justification,
    sample_size_for,
)
from decommission.reconcile.coverage import coverage_of
from decommission.reconcile.dispositions import findings_tables, summarise
from decommission.reconcile.fixity import audit_archive
from decommission.reconcile.raw import raw_check
from decommission.reconcile.readback import check_sample
from decommission.source.database import Source

log = logging.getLogger(__name__)
_FINDING_COLUMNS = ["source_table", "source_key", "reason", "disposition", "decision"]
#: what a mapped partition's task data must say as the ledger does
_MAPPED_KEYS = ("extracted", "mapped", "flagged", "corrected", "disposed", "placeholders")


def reconcile_stage(
    run: Run, mapped: list[Mapping[str, Any] | None], packages: list[Mapping[str, Any] | None]
) -> dict[str, Any]:
    """Compare source, extraction, mapping, packages and the archive's receipts; return the result.

    Runs even when waiting for the archive failed (a rejected package), so the report shows why;
    partitions whose tasks failed have no entry here and show as differences.
    """
    spec = run.spec
    mapped_x = [m for m in mapped if m]
    packages_x = [p for p in packages if p]
    # the ledger, not XCom, says what each stage produced; XCom that differs is itself a reason
    mapped = [{**m, "partition": {"id": pid}} for pid, m in sorted(from_ledger(run, "mapping", "partition").items())]
    sent = sent_packages(run)
    packages = [{"package_id": pid, **p} for pid, p in sorted(sent.items())]
    trust_reasons = _xcom_reasons(mapped_x, packages_x, mapped, sent)
    cut_off = run.system.agreement.cut_off
    source = Source.for_system(run.system).count_rows(spec, cut_off)
    receipts = read_receipts(run, list(sent))
    trust_reasons += _receipt_file_reasons(run, receipts)
    transport = archive_transport()
    with TemporaryDirectory(dir=run.out("reconciliation")) as scratch:
        fixity = audit_archive(transport, run.delivery_id, sent, receipts, Path(scratch))
    # the packages the archive holds with every byte sent: their staging may go (reconcile/cleanup.py)
    run.record(
        "fixity",
        {"milestone": run.milestone.value, "verified": [p["package_id"] for p in fixity["packages"] if p["ok"]]},
    )
    # drawn now, after the archive's receipts exist, so no one could know the sample in advance
    seed = secrets.randbits(63)
    run.record("sample_seed", {"milestone": run.milestone.value, "seed": seed})
    accepted = [p for p in packages if receipts.get(p["package_id"], {}).get("status") == "accepted"]
    population = _patients(run, accepted)
    goal = run.system.sample_goal
    size = max(
        run.system.sample_patients,
        len(accepted),  # at least one patient of every package
        sample_size_for(len(population), goal.share, goal.confidence) if goal else 0,
    )
    drawn = draw_sample(population, size, seed)
    sample = check_sample(
        source=Source.for_system(run.system),
        spec=spec,
        cut_off=cut_off,
        drawn=drawn,
        read_record=transport.read_record,
    )
    result = reconcile(
        table_entity={t: spec.tables[t].entity for t in spec.tables},
        source=source,
        mapped_parts=mapped,
        packages=packages,
        receipts=receipts,
        sample=sample,
        waivers=[w.model_dump(mode="json") for w in run.system.waivers],
    )
    result["reasons"] += trust_reasons + fixity["reasons"]
    result["fixity"] = fixity
    coverage = coverage_of(run.system, spec, Source.for_system(run.system), source)
    result["coverage"] = coverage
    # only the final delivery ends a contract: before it, what the archive would miss is a warning
    if run.milestone is Milestone.FINAL_DELIVERY:
        result["reasons"] += coverage["findings"]
    result["warnings"] = [] if run.milestone is Milestone.FINAL_DELIVERY else list(coverage["findings"])
    result["sample"] |= {
        "seed": seed,
        "size_in_plan": run.system.sample_patients,
        "justification": sample_justification(len(drawn), len(population)),
        "goal": None
        if goal is None
        else {
            "share": goal.share,
            "confidence": goal.confidence,
            "achieved": round(detection_chance(len(drawn), len(population), goal.share), 4),
        },
        "patients": [{k: v for k, v in s.items() if k != "differences"} for s in sample],
    }
    final = run.milestone is Milestone.FINAL_DELIVERY
    dispositions = summarise(
        spec,
        findings_tables(run, [m["partition"]["id"] for m in mapped], _FINDING_COLUMNS),
        result["tables"],
        final=final,
    )
    reference = {t["table"]: t["rows"] for t in coverage["tables"] if t["class"] == "preserved"}
    result["raw"] = raw_check(spec, source, mapped, packages, reference, coverage["schema"])
    result["reasons"] += result["raw"]["reasons"]
    result["dispositions"] = dispositions
    result["reasons"] += dispositions["reasons"]
    result["warnings"] += dispositions["warnings"]
    result["breakdown"] = breakdown(run, mapped, [p["package_id"] for p in packages])
    result["reasons"] += breakdown_reasons(result["breakdown"])
    if result["reasons"]:
        result["verdict"] = FAIL
    result |= {
        "system": {"id": run.system.id, "name": run.system.name, "supplier": run.system.supplier},
        "run_id": run.run_id,
        "milestone": run.milestone.value,
        "record_status": run.record_status,
        "cut_off": cut_off.isoformat(),
        "agreement_id": run.system.agreement.id,
        "snapshot": run.logical_date.isoformat(),
        "software_version": __version__,
        "hash_key": current_key().describe(),
        "partitions": sorted(m["partition"]["id"] for m in mapped),
        "package_manifest": [
            {"package_id": p["package_id"], "sha256": p["sha256"], "size": p["size"]}
            for p in sorted(packages, key=lambda p: p["package_id"])
        ],
        "progress": _progress(run),
    }
    run.record(
        "reconciliation_result",
        {"milestone": run.milestone.value, "verdict": result["verdict"], "waived": len(result["waived"])},
    )
    return result


def _xcom_reasons(
    mapped_x: list[Mapping[str, Any]],
    packages_x: list[Mapping[str, Any]],
    mapped: list[Mapping[str, Any]],
    sent: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    """Task data (XCom) that disagrees with the ledger: someone or something changed it; FAIL."""
    reasons = []
    by_partition = {m["partition"]["id"]: m for m in mapped}
    for m in mapped_x:
        pid = (m.get("partition") or {}).get("id")
        ours = by_partition.get(pid)
        if ours is None or any(m.get(k) != ours.get(k) for k in _MAPPED_KEYS):
            reasons.append(f"the task data (XCom) of mapped partition {pid} differs from the ledger's record")
    for p in packages_x:
        ours = sent.get(p.get("package_id"))
        if ours is None or any(p.get(k) != ours.get(k) for k in ("sha256", "size", "counts")):
            reasons.append(f"the task data (XCom) of package {p.get('package_id')} differs from the ledger's record")
    return reasons


def _receipt_file_reasons(run: Run, receipts: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Kept receipt files whose bytes are not the ones the ledger recorded (edited after they were kept)."""
    recorded = from_ledger(run, "ingest_receipt", "package_id")
    reasons = []
    for pid in sorted(receipts):
        data = artefacts.read_bytes(run.out("receipts") / f"{pid}.ingest.json")
        if pid not in recorded or hashlib.sha256(data).hexdigest() != recorded[pid]["sha256"]:
            reasons.append(f"the kept ingest receipt of package {pid} is not the one the ledger recorded")
    return reasons


def _patients(run: Run, packages: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(package_id, patient_key) of every patient folder in the packages (keys are the folder names)."""
    from decommission.validate.tarindex import patient_folders

    population = []
    for p in packages:
        population += [
            (p["package_id"], key)
            for key in patient_folders(artefacts.fetch(run.out("packages") / f"{p['package_id']}.tar", p["sha256"]))
            # the placeholder of rows naming no patient has no key range to read again: the counts cover it
            if key.isdigit()
        ]
    return population


def breakdown(run: Run, mapped: list[Mapping[str, Any]], package_ids: list[str]) -> dict[str, Any]:
    """Per year, care unit and patient, and fingerprints (see :mod:`decommission.reconcile.breakdown`)."""
    from decommission.reconcile.breakdown import kept_tallies, reconcile_breakdown

    partition_ids = [m["partition"]["id"] for m in mapped]
    return reconcile_breakdown(run, partition_ids, package_ids, kept_tallies(run, partition_ids))


def breakdown_reasons(b: Mapping[str, Any]) -> list[str]:
    """FAIL reasons from the breakdown: a year, care unit or patient whose counts differ; a changed fingerprint."""
    reasons = [
        f"source = extracted fails for year {year}: {v['source']} against {v['extracted']}"
        for year, v in b["years"].items()
        if v["source"] != v["extracted"]
    ]
    reasons += [
        f"source = extracted fails for care unit {u['unit']!r} of {u['table']}: {u['source']} against {u['extracted']}"
        for u in b["units"]
        if u["source"] != u["extracted"]
    ]
    if b["patients"]["differing"]:
        reasons.append(f"{len(b['patients']['differing'])} patients have other row counts extracted than in the source")
    reasons += [
        f"content fingerprint of table {table} ({f.get('entity') or 'no entity'}, fields "
        f"{', '.join(f.get('fields', [])) or 'none beyond the id'}) differs: source {f['source']} "
        f"against packages {f['package']} ({f['rows']} rows archived, {f.get('package_rows', 0)} records found)"
        for table, f in b["fingerprints"].items()
        if f["source"] != f["package"]
    ]
    reasons += [
        f"{c['ids']} record ids of {c['entity']} are made by both table {c['tables'][0]} and table "
        f"{c['tables'][1]}: one record id, two source rows; give the tables a key_prefix"
        for c in b.get("id_collisions", [])
    ]
    return reasons


def _progress(run: Run) -> list[dict[str, Any]]:
    """Archived rows at each earlier milestone of this system (for the progress chart)."""
    out = []
    for m in Milestone:
        if not m.runs_dag or m is run.milestone:
            continue
        path = artefacts.find(run.out("reconciliation") / m.value / "result.json")
        if path is not None:
            earlier = json.loads(path.read_text(encoding="utf-8"))
            out.append({"milestone": m.value, **earlier["totals"]})
    return out
