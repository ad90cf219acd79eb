"""A system's contract-exit records as the ledger knows them: versions, supersession, withdrawal.

A record is never overwritten or edited. Version 1 is ``contract-exit.json`` (+ ``.pdf``), the
name procurement and the demo have always used; a rerun writes ``contract-exit-v2.json``,
``-v3`` ... which names the record it supersedes (file and SHA-256). A sign-off rejected after
a record was written withdraws it: a ``<record>.withdrawn.json`` file beside it and a ledger
entry ``contract_exit_withdrawn``; the record itself stays as it was.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decommission import artefacts, settings
from decommission.files import write_atomic

EXIT_KIND = "contract_exit"
WITHDRAWN_KIND = "contract_exit_withdrawn"
_NAME = re.compile(r"^contract-exit(?:-v(\d+))?\.(?:json|pdf)$")


def record_name(version: int, suffix: str) -> str:
    """``contract-exit.<suffix>`` for version 1, ``contract-exit-v<N>.<suffix>`` after it."""
    return f"contract-exit.{suffix}" if version == 1 else f"contract-exit-v{version}.{suffix}"


def withdrawal_name(record_file: str) -> str:
    return f"{record_file.removesuffix('.json')}.withdrawn.json"


@dataclass(frozen=True)
class ExitRecord:
    """One contract-exit record the ledger holds."""

    version: int
    file: str
    sha256: str
    run_id: str
    withdrawn: bool

    def reference(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "file": self.file,
            "sha256": self.sha256,
            "run_id": self.run_id,
            "withdrawn": self.withdrawn,
        }


def exit_records(system_id: str) -> list[ExitRecord]:
    """Every contract-exit record of the system in the order written, each marked if withdrawn."""
    from decommission.ledger import programme_ledger

    entries = programme_ledger().entries(system_id=system_id)
    withdrawn = {e.payload.get("sha256") for e in entries if e.kind == WITHDRAWN_KIND}
    out = []
    for e in entries:
        if e.kind == EXIT_KIND:
            version = int(e.payload.get("version", 1))  # records from before versions were version 1
            sha = str(e.payload["sha256"])
            file = e.payload.get("file", record_name(version, "json"))
            out.append(ExitRecord(version, file, sha, e.run_id, sha in withdrawn))
    return out


def next_version(records: list[ExitRecord], folder: Path) -> int:
    """One past every version recorded or on disk: a file a crashed attempt left is not reused either."""
    on_disk = [int(m.group(1) or 1) for p in artefacts.names(folder) if (m := _NAME.match(p.name))]
    return max([0, *(r.version for r in records), *on_disk]) + 1


def withdraw_latest(system_id: str, run_id: str, *, role: str, by: str, at: str) -> ExitRecord | None:
    """After a rejected sign-off: mark the system's latest record withdrawn (if any and not yet withdrawn)."""
    from decommission.ledger import programme_ledger

    records = exit_records(system_id)
    if not records or records[-1].withdrawn:
        return None
    latest = records[-1]
    folder = settings.system_dir(system_id, "evidence")
    notice = {
        "status": "withdrawn",
        "withdraws": latest.reference() | {"withdrawn": True},
        "reason": f"the {role} rejected the sign-off of run {run_id}",
        "rejected_by": {"role": role, "by": by, "at": at},
        "run_id": run_id,
    }
    data = json.dumps(notice, indent=2, ensure_ascii=False).encode()
    path = write_atomic(folder / withdrawal_name(latest.file), data)
    ledger = programme_ledger()
    ledger.append(
        system_id=system_id,
        run_id=run_id,
        kind=WITHDRAWN_KIND,
        payload={
            "file": latest.file,
            "sha256": latest.sha256,
            "version": latest.version,
            "withdrawal_file": path.name,
            "withdrawal_sha256": hashlib.sha256(data).hexdigest(),
            "role": role,
            "by": by,
        },
    )
    ledger.append(
        system_id=system_id, run_id=run_id, kind="system_status", payload={"status": "contract exit withdrawn"}
    )
    return latest


def decommissioned_on_disk(system_id: str) -> dict[str, Any] | None:
    """The latest contract-exit record in the system's evidence folder, unless withdrawn (files only).

    For the DAG's documentation, built where no database may be asked (the DAG file's parse); the
    ledger, not this, decides whether a delivery run is refused (plan/run.py).
    """
    folder = settings.home() / system_id / "evidence"
    try:
        names = [p.name for p in folder.iterdir()]
    except OSError:
        return None
    records = sorted(
        ((int(m.group(1) or 1), name) for name in names if name.endswith(".json") and (m := _NAME.match(name))),
    )
    if not records:
        return None
    latest = records[-1][1]
    if withdrawal_name(latest) in names:
        return None
    try:
        return json.loads((folder / latest).read_bytes())
    except (OSError, ValueError):
        return None
