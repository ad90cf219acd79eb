"""The archive's receipts as evidence: kept verbatim, hashed in the ledger, read back by the reconciliation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from decommission import artefacts
from decommission.deliver.transport import describe_reasons
from decommission.errors import ArchiveRefusal
from decommission.files import write_atomic
from decommission.ledger import programme_ledger
from decommission.plan.run import Run


def keep_receipt(run: Run, package_id: str, kind: str, receipt: Mapping[str, Any]) -> str:
    """Write one receipt verbatim to ``<system>/receipts/`` and record its SHA-256; returns the hash."""
    data = json.dumps(receipt, indent=2, sort_keys=True, ensure_ascii=False).encode()
    digest = hashlib.sha256(data).hexdigest()
    write_atomic(run.out("receipts") / f"{package_id}.{kind}.json", data)
    run.record(
        f"{kind}_receipt",
        {
            "package_id": package_id,
            "delivery_id": receipt.get("delivery_id"),
            "sha256": digest,
            "status": receipt.get("status"),
        },
    )
    return digest


def from_ledger(run: Run, kind: str, key: str) -> dict[str, dict[str, Any]]:
    """This run's ledger entries of one kind by ``payload[key]``, the last one winning (a retried task appends)."""
    entries = programme_ledger().entries(system_id=run.system.id, kind=kind)
    return {str(e.payload[key]): e.payload for e in entries if e.run_id == run.run_id}


def sent_packages(run: Run) -> dict[str, dict[str, Any]]:
    """What this run built and handed over, as the ledger recorded it (never XCom): id -> sha256, size, counts."""
    return from_ledger(run, "package", "package_id")


def receipt_problems(receipt: Mapping[str, Any], sent: Mapping[str, Any], delivery_id: str) -> list[str]:
    """How an ingest receipt differs from what was sent: each difference with the archive's and our value."""
    pid = sent["package_id"]
    problems = [
        f"the archive's ingest receipt of package {pid} gives {name} {receipt.get(name)!r}, sent: {expected!r}"
        for name, expected in (
            ("receipt_type", "ingest"),
            ("package_id", pid),
            ("delivery_id", delivery_id),
            ("sha256", sent["sha256"]),
        )
        if receipt.get(name) != expected
    ]
    if receipt.get("status") == "accepted":
        counts = receipt.get("counts") or {}
        for entity in sorted(set(counts) | set(sent.get("counts", {}))):
            archived, packaged = counts.get(entity, 0), sent.get("counts", {}).get(entity, 0)
            if archived != packaged:
                problems.append(
                    f"the archive's ingest receipt of package {pid} counts {archived} {entity} records, "
                    f"sent: {packaged}"
                )
    return problems


def keep_ingest_receipts(run: Run, receipts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Keep every ingest receipt; fail with the archive's reasons if any package was rejected.

    The receipts are kept verbatim; in the error, patient folder names in the reasons' paths
    are replaced by their keyed hash, so the task log names no patient.
    """
    sent = sent_packages(run)
    rejected, untrue = {}, []
    for package_id, receipt in sorted(receipts.items()):
        keep_receipt(run, package_id, "ingest", receipt)
        if receipt.get("status") != "accepted":
            rejected[package_id] = receipt.get("reasons", [])
        elif package_id not in sent:
            untrue.append(f"package {package_id} has an ingest receipt but this run's ledger records no such package")
        else:
            untrue += receipt_problems(receipt, sent[package_id], run.delivery_id)
    if rejected:
        lines = [f"{pid}: {describe_reasons(rs)}" for pid, rs in rejected.items()]
        raise ArchiveRefusal(f"the archive rejected {len(rejected)} package(s): " + " | ".join(lines))
    if untrue:
        raise ArchiveRefusal("the archive's ingest receipts do not confirm what was sent: " + "; ".join(untrue))
    return {"accepted": len(receipts)}


def read_receipts(run: Run, package_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The ingest receipts kept for these packages (a package without one is absent)."""
    out = {}
    for pid in package_ids:
        path = artefacts.find(run.out("receipts") / f"{pid}.ingest.json")
        if path is not None:
            out[pid] = json.loads(path.read_text(encoding="utf-8"))
    return out
