"""The archive's receipts as evidence: kept verbatim, hashed in the ledger, read back by the reconciliation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from decommission.deliver.transport import describe_reasons
from decommission.errors import ArchiveRefusal
from decommission.files import write_atomic
from decommission.plan.run import Run


def keep_receipt(run: Run, package_id: str, kind: str, receipt: Mapping[str, Any]) -> str:
    """Write one receipt verbatim to ``<system>/receipts/`` and record its SHA-256; returns the hash."""
    data = json.dumps(receipt, indent=2, sort_keys=True, ensure_ascii=False).encode()
    digest = hashlib.sha256(data).hexdigest()
    write_atomic(run.out("receipts") / f"{package_id}.{kind}.json", data)
    run.record(f"{kind}_receipt", {"package_id": package_id, "sha256": digest, "status": receipt.get("status")})
    return digest


def keep_ingest_receipts(run: Run, receipts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Keep every ingest receipt; fail with the archive's reasons if any package was rejected.

    The receipts are kept verbatim; in the error, patient folder names in the reasons' paths
    are replaced by their keyed hash, so the task log names no patient.
    """
    rejected = {}
    for package_id, receipt in sorted(receipts.items()):
        keep_receipt(run, package_id, "ingest", receipt)
        if receipt.get("status") != "accepted":
            rejected[package_id] = receipt.get("reasons", [])
    if rejected:
        lines = [f"{pid}: {describe_reasons(rs)}" for pid, rs in rejected.items()]
        raise ArchiveRefusal(f"the archive rejected {len(rejected)} package(s): " + " | ".join(lines))
    return {"accepted": len(receipts)}


def read_receipts(run: Run, package_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The ingest receipts kept for these packages (a package without one is absent)."""
    out = {}
    for pid in package_ids:
        path = run.out("receipts") / f"{pid}.ingest.json"
        if path.exists():
            out[pid] = json.loads(path.read_text(encoding="utf-8"))
    return out
