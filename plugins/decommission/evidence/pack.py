"""The evidence pack of a system: one deterministic tar with a manifest, and its own SHA-256.

It holds what an archivist, an auditor or procurement asks for before a contract ends: the
reconciliation report (JSON, HTML, PDF, annexes), every receipt the archive gave, our
validation report of every package, the package manifest (id, SHA-256, size), the dispositions
(every class of rows with a finding: archived flagged, corrected or disposed of, and the decision
covering it; every disposed row by keyed hash and decision), the sign-off answers (from the
ledger), the legacy access-log disposition, and the system's ledger entries. The report files
and the approvals are taken only as the ledger vouches for them
(:mod:`decommission.evidence.verified`), never from XCom. Every member has a fixed time, owner
and mode, and members are sorted, so the same evidence gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decommission import artefacts
from decommission.deliver.transport import archive_transport
from decommission.evidence.verified import (
    RESULT_FILE,
    EvidenceError,
    VerifiedResult,
    may_be_signed,
    verified_approvals,
    verified_result,
)
from decommission.ledger import canonical
from decommission.report.annex import read_annex

if TYPE_CHECKING:
    from decommission.plan.run import Run

MANIFEST = "manifest.json"


def build_evidence_pack(run: Run) -> dict[str, Any]:
    """Write ``evidence/evidence-<system>-<milestone>.tar`` (+ ``.sha256``); record it in the ledger.

    Built from verified evidence only: the report files the ledger recorded (each checked), and
    both approvals from the ledger's sign-off entries. Nothing is taken from XCom.
    """
    from decommission.ledger import programme_ledger as ledger

    verified = verified_result(run.system.id, run.run_id, run.milestone.value)
    problem = may_be_signed(verified.result)
    if problem:
        raise EvidenceError(f"system {run.system.id}: no evidence pack: {problem} ({RESULT_FILE})")
    approvals = verified_approvals(run.system, verified)
    result = verified.result
    files = report_files(verified)
    members: dict[str, bytes] = {f"report/{name}": data for name, data in files.items()}
    for part in ("receipts", "validation"):
        for path in artefacts.names(run.out(part), "*.json"):
            members[f"{part}/{path.name}"] = artefacts.read_bytes(path)
    members["packages.json"] = _json(result.get("package_manifest", []))
    members["dispositions.json"] = _json(disposition_record(run, result, files))
    members["approvals.json"] = _json(approvals)
    members["access-log.json"] = _json(access_log_disposition(run, result))
    entries = ledger().entries(system_id=run.system.id)
    members["ledger.json"] = _json(
        [{"seq": e.seq, "kind": e.kind, "run_id": e.run_id, "entry_hash": e.entry_hash} for e in entries]
    )
    members[MANIFEST] = _json(
        {
            "system": run.system.id,
            "run_id": run.run_id,
            "milestone": run.milestone.value,
            "verdict": verified.verdict,
            "result_sha256": verified.sha256,
            "files": [
                {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                for name, data in sorted(members.items())
            ],
        }
    )
    target = run.out("evidence") / f"evidence-{run.system.id}-{run.milestone.value}.tar"
    mtime = int(run.package_created.timestamp())
    digest, size = write_tar(target, f"evidence-{run.system.id}", members.items(), mtime)
    (target.parent / f"{target.name}.sha256").write_text(f"{digest}  {target.name}\n", encoding="utf-8")
    run.record(
        "evidence_pack",
        {
            "file": target.name,
            "sha256": digest,
            "size": size,
            "members": len(members),
            "result_sha256": verified.sha256,
        },
    )
    # the pack itself goes to the archive, out of reach of anyone who can edit this folder or the ledger
    receipt = archive_transport().submit_evidence(run.system.id, target, digest)
    run.record(
        "evidence_submitted",
        {"file": target.name, "sha256": digest, "size": size, "received_at": receipt.get("received_at")},
    )
    return {"path": str(target), "sha256": digest, "size": size}


def report_files(verified: VerifiedResult) -> dict[str, bytes]:
    """Every file of the report folder, each with a SHA-256 the ledger recorded for this report.

    A file whose hash the ledger does not hold (changed, or left from another report) is an
    error, and so is a recorded file that is not there.
    """
    recorded = verified.files
    found: set[str] = set()
    out: dict[str, bytes] = {}
    for path in artefacts.names(verified.folder):
        if path.name.startswith("."):
            continue
        data = verified.data if path.name == RESULT_FILE else artefacts.read_bytes(path)
        digest = hashlib.sha256(data).hexdigest()
        keys = {key for key, sha in recorded.items() if sha == digest}
        if not keys:
            raise EvidenceError(
                f"{path}: SHA-256 {digest} is not one the ledger recorded for the report of run {verified.run_id}"
            )
        found |= keys
        out[path.name] = data
    missing = sorted(set(recorded) - found)
    if missing:
        raise EvidenceError(
            f"{verified.folder}: the report file '{missing[0]}' the ledger recorded (SHA-256 "
            f"{recorded[missing[0]]}) for run {verified.run_id} is missing or changed"
        )
    return out


def write_tar(target: Path, root: str, members: Iterable[tuple[str, bytes]], mtime: int) -> tuple[str, int]:
    """Write a tar with fixed metadata atomically; return its SHA-256 and size."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in sorted(members):
                info = tarfile.TarInfo(f"{root}/{name}")
                info.size, info.mtime, info.mode = len(data), mtime, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with target.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest(), target.stat().st_size


def disposition_record(run: Run, result: Mapping[str, Any], files: Mapping[str, bytes]) -> dict[str, Any]:
    """What became of every row with a finding, and the decision covering each class; disposed rows by keyed hash.

    Built from the verified result and its verified annex of disposed rows (``annex-disposed.csv``).
    """
    spec_path = run.plan.mapping_path(run.system)
    spec_sha = hashlib.sha256(spec_path.read_bytes()).hexdigest()
    dispositions = result.get("dispositions") or {}
    annex = files.get("annex-disposed.csv", b"")
    disposed = read_annex(annex) if annex else []
    return {
        "mapping_specification": {"file": spec_path.name, "sha256": spec_sha},
        "totals": {
            k: result.get("totals", {}).get(k) for k in ("source", "archived", "flagged", "corrected", "disposed")
        },
        "classes": dispositions.get("classes", []),
        "corrections": dispositions.get("corrections", {}),
        "disposed_rows": disposed,
        "waivers": result.get("waived", []),
    }


def access_log_disposition(run: Run, result: Mapping[str, Any]) -> dict[str, Any]:
    """The legacy access log: archived (its tables and rows in the packages) or the deletion decision."""
    plan = run.system.access_log
    tables = {t: row for t, row in result["tables"].items() if row["entity"] == "access_log"}
    out: dict[str, Any] = {"disposition": plan.disposition, "reference": plan.reference}
    if plan.disposition == "archived":
        out["tables"] = {
            t: {"source": r["source"], "archived": r["archived"], "disposed": r.get("disposed_total", 0)}
            for t, r in tables.items()
        }
        out["archived_rows"] = result["entities"].get("access_log", {}).get("accepted", 0)
        if not tables:
            out["problem"] = "the plan says archived, but the mapping has no table of entity access_log"
        elif any(r["source"] != r["archived"] for r in out["tables"].values()):
            out["problem"] = "the plan says archived, but not every row of the access log is archived"
    return out


def _json(obj: Any) -> bytes:
    return (json.dumps(json.loads(canonical(obj)), indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()
