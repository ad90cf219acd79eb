"""What a sign-off, the evidence pack and the contract exit may rest on: evidence the ledger vouches for.

XCom is no evidence: any user allowed to edit a DAG run can post an XCom or mark a task
success. So the verdict comes from ``result.json`` on disk whose SHA-256 equals the one
``report_stage`` recorded in the ledger (entry kind ``reconciliation``, ``files["result"]``),
and the approvals from the ledger's ``signoff`` entries, which only
:class:`~decommission.evidence.signoff.SignoffOperator` writes, from Airflow's own HITL
answer (the responder the API server authenticated), never from XCom.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decommission import artefacts, settings
from decommission.errors import DecommissionError
from decommission.plan.programme import same_person

if TYPE_CHECKING:
    from decommission.ledger import Entry
    from decommission.plan.programme import System

ROLES = ("information_owner", "archivist")
APPROVE = "Approve"
#: names of the report files among ``files`` of the ledger's reconciliation entry (report/publish.py)
RESULT_KEY, PDF_KEY = "result", "pdf"
RESULT_FILE, PDF_FILE = "result.json", "report.pdf"


class EvidenceError(DecommissionError):
    """The evidence a sign-off or a contract exit rests on is missing or does not match the ledger."""


def may_be_signed(report: Mapping[str, Any] | None) -> str | None:
    """Return why the result may not be signed off, or None when it may."""
    if not report:
        return "there is no reconciliation report for this run"
    if report.get("verdict") not in ("PASS", "PASS_WITH_WAIVER"):
        return f"the reconciliation verdict is {report.get('verdict')!r}; only PASS (or PASS with waiver) is signed"
    return None


@dataclass(frozen=True)
class VerifiedResult:
    """``result.json`` of one run, read from disk and equal to what the ledger recorded."""

    system_id: str
    run_id: str
    milestone: str
    folder: Path
    data: bytes
    result: dict[str, Any]
    sha256: str
    pdf_sha256: str | None
    #: every report file the ledger recorded: key (``result``, ``html``, ``pdf``, ``annex_*``) -> SHA-256
    files: dict[str, str]
    entry_hash: str

    @property
    def verdict(self) -> str:
        return str(self.result.get("verdict"))


def _ledger() -> Any:
    from decommission.ledger import programme_ledger

    ledger = programme_ledger()
    # a consistent forgery would have to rewrite every entry after the one it changed
    ledger.require_intact()
    return ledger


def run_entries(system_id: str, run_id: str, kind: str) -> list[Entry]:
    """The ledger entries of one kind for one run of a system, oldest first (the chain checked first)."""
    return [e for e in _ledger().entries(system_id=system_id, kind=kind) if e.run_id == run_id]


def sha256_of(path: Path, recorded: str | None = None) -> str | None:
    """The file's SHA-256, or None when there is no such file (fetched first if another worker wrote it).

    :param recorded: the ledger's digest: a local copy that differs is fetched again from the store
    """
    try:
        artefacts.fetch(path, recorded)
    except FileNotFoundError:
        return None
    except ValueError:
        pass  # the store's copy differs too: the caller reports the difference it finds here
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except FileNotFoundError:
        return None


def check_file(path: Path, recorded: str, what: str) -> bytes:
    """The file's bytes, when their SHA-256 is the one the ledger recorded; else an error naming both."""
    try:
        data = artefacts.read_bytes(path, recorded)  # from the artefact store when another worker wrote it
    except FileNotFoundError:
        raise EvidenceError(f"{path}: missing; the ledger recorded SHA-256 {recorded} for {what}") from None
    except ValueError as exc:  # the store's copy is not the recorded one either
        raise EvidenceError(f"{exc}; the ledger recorded SHA-256 {recorded} for {what}") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != recorded:
        raise EvidenceError(
            f"{path}: SHA-256 on disk is {actual}, the ledger recorded {recorded} for {what}; "
            "the file changed after it was recorded"
        )
    return data


def verified_result(system_id: str, run_id: str, milestone: str | None = None) -> VerifiedResult:
    """The run's ``result.json`` whose SHA-256 equals the latest reconciliation the ledger recorded for the run."""
    entries = run_entries(system_id, run_id, "reconciliation")
    if milestone is not None:
        entries = [e for e in entries if e.payload.get("milestone") == milestone]
    if not entries:
        raise EvidenceError(
            f"system {system_id}: the ledger holds no reconciliation of run {run_id}"
            + (f" for {milestone}" if milestone else "")
        )
    entry = entries[-1]  # a rerun of report records again; the newest is what is on disk
    files = dict(entry.payload.get("files") or {})
    folder = settings.system_dir(system_id, "reconciliation") / str(entry.payload.get("milestone"))
    what = f"run {run_id} (ledger entry {entry.seq})"
    if RESULT_KEY not in files:
        raise EvidenceError(f"system {system_id}: the reconciliation of {what} records no SHA-256 of {RESULT_FILE}")
    data = check_file(folder / RESULT_FILE, files[RESULT_KEY], what)
    result = json.loads(data)
    if result.get("verdict") != entry.payload.get("verdict"):
        raise EvidenceError(
            f"{folder / RESULT_FILE}: verdict {result.get('verdict')!r}, "
            f"the ledger recorded {entry.payload.get('verdict')!r} for {what}"
        )
    if PDF_KEY in files:  # the PDF is what the respondents read
        check_file(folder / PDF_FILE, files[PDF_KEY], what)
    return VerifiedResult(
        system_id=system_id,
        run_id=run_id,
        milestone=str(entry.payload.get("milestone")),
        folder=folder,
        data=data,
        result=result,
        sha256=files[RESULT_KEY],
        pdf_sha256=files.get(PDF_KEY),
        files=files,
        entry_hash=entry.entry_hash,
    )


def check_two_people(system: System) -> None:
    """The run-time half of the plan check: owner and archivist are different users."""
    owner, archivist = system.signoff.information_owner.id, system.signoff.archivist.id
    if same_person(owner, archivist):
        raise EvidenceError(
            f"system {system.id}: the information owner and the archivist are the same user '{archivist}'; "
            "two different people must sign off; no contract exit"
        )


def verified_approvals(system: System, verified: VerifiedResult) -> list[dict[str, Any]]:
    """Both roles' latest ledger sign-offs of the run: Approve, by the assigned user, of the verified result.

    An answer XCom, a task marked success or an answer by another user leaves no such entry.
    """
    check_two_people(system)
    assigned = {"information_owner": system.signoff.information_owner.id, "archivist": system.signoff.archivist.id}
    entries = run_entries(system.id, verified.run_id, "signoff")
    out = []
    for role in ROLES:
        mine = [e for e in entries if e.payload.get("role") == role]
        where = f"system {system.id}, run {verified.run_id}"
        if not mine:
            raise EvidenceError(
                f"{where}: the ledger holds no {role} sign-off (an answer XCom or a task marked success "
                "is not a sign-off); no contract exit"
            )
        entry = mine[-1]  # a later answer (a rerun sign-off) replaces an earlier one
        p = entry.payload
        if p.get("decision") != APPROVE:
            raise EvidenceError(f"{where}: the {role} sign-off is '{p.get('decision')}' by '{p.get('by')}'")
        if p.get("by") != assigned[role]:
            raise EvidenceError(
                f"{where}: the {role} sign-off was given by '{p.get('by')}', not by the assigned '{assigned[role]}'"
            )
        if p.get("result_sha256") != verified.sha256:
            raise EvidenceError(
                f"{where}: the {role} approved {RESULT_FILE} with SHA-256 {p.get('result_sha256')}, "
                f"but the ledger-verified {RESULT_FILE} has {verified.sha256}"
            )
        out.append(
            {
                "role": role,
                "by": p["by"],
                "at": p["at"],
                "decision": p["decision"],
                "result_sha256": p["result_sha256"],
                "pdf_sha256": p.get("pdf_sha256"),
                "ledger_entry": entry.entry_hash,
            }
        )
    return out


def approval_date(approvals: list[Mapping[str, Any]]) -> dt.date:
    """The day the later of the approvals was given (UTC): the contract's notice may not be given before it."""
    times = [dt.datetime.fromisoformat(str(a["at"])) for a in approvals]
    return max(t if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in times).astimezone(dt.UTC).date()
