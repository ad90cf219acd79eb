"""The staging of a partition removed once the archive holds its package, verified.

Staging holds the raw source rows (``extract/``) and the mapped rows (``mapped/``) of each
partition: patient data outside the packages. Once the archive has accepted a partition's
package and the reconciliation has read it back whole with the SHA-256 it was built with
(``reconcile/fixity.py``), the package is the copy that counts and the staging goes. Each
removal is a ledger entry (which partition, which package, which folders, by keyed names only:
partition ids and stage names, never a row); a rerun finds nothing left and records nothing.
A task that needs a removed staging again extracts it again (``stages.restore_staging``).
"""

from __future__ import annotations

import logging
from typing import Any

from decommission.deliver.receipts import from_ledger
from decommission.plan.run import Run
from decommission.source import staging

log = logging.getLogger(__name__)

#: the stages whose staging holds rows (the package is built from ``mapped``)
STAGES = ("extract", "mapped")


def verified_packages(run: Run) -> dict[str, str]:
    """Partition id -> package id of this run's packages the archive accepted and the fixity audit verified."""
    built = from_ledger(run, "package", "package_id")
    receipts = from_ledger(run, "ingest_receipt", "package_id")
    audits = [e.payload for e in _entries(run, "fixity")]
    verified = set(audits[-1]["verified"]) if audits else set()  # the latest audit of this run decides
    return {
        p["partition"]: pid
        for pid, p in built.items()
        if "partition" in p and pid in verified and receipts.get(pid, {}).get("status") == "accepted"
    }


def remove_verified_staging(run: Run) -> dict[str, Any]:
    """Remove the staging of every partition whose package the archive holds verified; record each removal."""
    removed = []
    for partition, package_id in sorted(verified_packages(run).items()):
        folders = [
            f"{stage}/{partition}"
            for stage in STAGES
            if _remove(staging.stage_slot(run.system.id, run.milestone.value, stage, partition))
        ]
        if not folders:
            continue  # already removed by an earlier attempt: nothing to record twice
        run.record(
            "staging_removed",
            {"milestone": run.milestone.value, "partition": partition, "package_id": package_id, "removed": folders},
        )
        removed.append(partition)
        log.info("staging of partition %s removed (package %s held by the archive, verified)", partition, package_id)
    return {"removed": removed, "kept": _kept(run)}


def _remove(folder: Any) -> bool:
    if not folder.exists():
        return False
    folder.rmdir(recursive=True)
    return True


def _kept(run: Run) -> list[str]:
    """Partitions of this run whose staging is still there (their packages are not verified in the archive)."""
    root = staging.stage_slot(run.system.id, run.milestone.value, "extract", "x").parent
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


def _entries(run: Run, kind: str) -> list[Any]:
    from decommission.ledger import programme_ledger

    return [e for e in programme_ledger().entries(system_id=run.system.id, kind=kind) if e.run_id == run.run_id]
