"""The contract-exit record for procurement (JSON and PDF), built only from evidence the ledger vouches for.

Nothing comes from XCom: the verdict from ``result.json`` whose SHA-256 the ledger recorded, the
approvals from the ledger's sign-off entries of this run (both roles, by their assigned and
different users, of that very result), the evidence pack from its ledger entry and its file.

The dates follow from the approval and the contract: notice may be given from the day of the
later approval; the contract ends ``notice_months`` later, but never before the contract's
earliest end; an end after the plan's ``contract_end`` milestone is shown as a deviation. Access
to the legacy system ends with the contract (or at the milestone, if later).

A record is never overwritten: see :mod:`decommission.evidence.records` for versions and withdrawal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dateutil.relativedelta import relativedelta

from decommission import settings
from decommission.deliver.transport import archive_transport
from decommission.evidence.anchors import anchor_head
from decommission.evidence.records import EXIT_KIND, exit_records, next_version, record_name
from decommission.evidence.verified import (
    RESULT_FILE,
    EvidenceError,
    VerifiedResult,
    approval_date,
    check_file,
    may_be_signed,
    run_entries,
    verified_approvals,
    verified_result,
)
from decommission.files import write_atomic
from decommission.ledger import programme_ledger
from decommission.plan.programme import Contract

if TYPE_CHECKING:
    from decommission.plan.run import Run


def exit_dates(contract: Contract, approved: dt.date, contract_end_milestone: dt.date) -> dict[str, Any]:
    """Earliest notice date, the end it gives, the notice deadline for that end, access end, and any deviation."""
    months = relativedelta(months=contract.notice_months)
    end = max(contract.earliest_end, approved + months)
    deviation = None
    if end > contract_end_milestone:
        deviation = {
            "field": "contract_end_date",
            "planned": contract_end_milestone.isoformat(),
            "actual": end.isoformat(),
            "days_after_plan": (end - contract_end_milestone).days,
            "reason": f"approved {approved.isoformat()}, {contract.notice_months} months' notice from then",
        }
    return {
        "earliest_notice_date": approved.isoformat(),
        "contract_end_date": end.isoformat(),
        # never before the approval: month arithmetic at a month's end does not always go back and forth
        "notice_deadline_for_end": max(approved, end - months).isoformat(),
        "legacy_access_ends": max(contract_end_milestone, end).isoformat(),
        "planned_contract_end": contract_end_milestone.isoformat(),
        "deviation": deviation,
    }


def verified_pack(run: Run, verified: VerifiedResult) -> dict[str, Any]:
    """The run's evidence pack as the ledger recorded it, built on the verified result, unchanged on disk."""
    entries = run_entries(run.system.id, run.run_id, "evidence_pack")
    if not entries:
        raise EvidenceError(f"system {run.system.id}: the ledger holds no evidence pack of run {run.run_id}")
    p = entries[-1].payload
    if p.get("result_sha256") != verified.sha256:
        raise EvidenceError(
            f"system {run.system.id}: evidence pack {p.get('file')} was built on {RESULT_FILE} with SHA-256 "
            f"{p.get('result_sha256')}, not on the verified {verified.sha256}"
        )
    path = run.out("evidence") / str(p["file"])
    check_file(path, str(p["sha256"]), f"the evidence pack of run {run.run_id}")
    return {"file": path.name, "sha256": p["sha256"], "size": p["size"]}


def contract_exit(run: Run) -> dict[str, Any]:
    """Write the next version of ``evidence/contract-exit*.{json,pdf}``, record it, mark the system decommissioned."""
    system = run.system
    verified = verified_result(system.id, run.run_id, run.milestone.value)
    problem = may_be_signed(verified.result)
    if problem:
        raise EvidenceError(f"system {system.id}: no contract exit: {problem} ({RESULT_FILE})")
    approvals = verified_approvals(system, verified)
    pack = verified_pack(run, verified)
    approved = approval_date(approvals)
    contract = system.contract
    folder = run.out("evidence")
    previous = exit_records(system.id)
    version = next_version(previous, folder)
    json_path, pdf_path = folder / record_name(version, "json"), folder / record_name(version, "pdf")
    for path in (json_path, pdf_path):
        if path.exists():  # next_version skips every name on disk; this guards the rule, not a case
            raise EvidenceError(f"{path}: a contract-exit record is never overwritten")
    record = {
        "system": {"id": system.id, "name": system.name},
        "version": version,
        "supersedes": previous[-1].reference() if previous else None,
        "supplier": system.supplier,
        "contract": contract.model_dump(mode="json"),
        "notice_months": contract.notice_months,
        "approved_on": approved.isoformat(),
        **exit_dates(contract, approved, system.milestones.contract_end),
        "annual_cost_ending_sek": contract.annual_cost_sek,
        "reconciliation": {
            "run_id": run.run_id,
            "verdict": verified.verdict,
            "result_sha256": verified.sha256,
            "report_pdf_sha256": verified.pdf_sha256,
            # under DECOMMISSION_HOME: the record travels to procurement, a machine's path would not help them
            "report": _home_relative(verified.folder / "report.html"),
        },
        "evidence_pack": pack,
        "archive_content": archive_content(verified.result),
        "approvals": [{k: a[k] for k in ("role", "by", "at", "decision", "ledger_entry")} for a in approvals],
        "status": "decommissioned",
    }
    data = json.dumps(record, indent=2, ensure_ascii=False).encode()
    pdf = render_exit_pdf(record)
    write_atomic(pdf_path, pdf)
    write_atomic(json_path, data)
    digest = hashlib.sha256(data).hexdigest()
    run.record(
        EXIT_KIND,
        {
            "version": version,
            "file": json_path.name,
            "sha256": digest,
            "pdf_file": pdf_path.name,
            "pdf_sha256": hashlib.sha256(pdf).hexdigest(),
            "evidence_pack_sha256": pack["sha256"],
            "result_sha256": verified.sha256,
            "end": record["contract_end_date"],
            "supersedes": record["supersedes"],
        },
    )
    run.record("system_status", {"status": "decommissioned", "contract": contract.id})
    # the exit and the sign-offs before it are the chain's tail: anchored, their deletion is caught
    anchor = anchor_head(archive_transport(), programme_ledger(), run.system.id, f"contract exit {digest}")
    return {
        "anchored_seq": anchor["seq"] if anchor else None,
        "path": _home_relative(json_path),
        "sha256": digest,
        "version": version,
        "contract_end_date": record["contract_end_date"],
    }


def _home_relative(path: Path) -> str:
    """``path`` relative to the outputs' root (``DECOMMISSION_HOME``), in POSIX form."""
    return path.resolve().relative_to(settings.home().resolve()).as_posix()


_KIND_TEXT = {
    "default": "kept and flagged (the default)",
    "correction_list": "corrected from the correction list",
    "patient": "the patient's decision",
}


def archive_content(result: Mapping[str, Any]) -> dict[str, Any]:
    """What the archive holds of the source, from the verified result: rows archived as they are, flagged,
    corrected, disposed of by decision (with the decision of each class), and the coverage of the columns."""
    totals = result.get("totals", {})
    classes = (result.get("dispositions") or {}).get("classes") or []
    return {
        **{k: totals.get(k) for k in ("source", "archived", "flagged", "corrected", "disposed")},
        "coverage": (result.get("coverage") or {}).get("coverage"),
        "classes": [
            {
                "table": c["table"],
                "reason": c["reason"],
                "class": c["class"],
                "rows": c["rows"],
                "decision": c.get("decision") or _KIND_TEXT.get(c.get("decision_kind", ""), ""),
                "reference": c.get("reference") or ", ".join(c.get("references") or []),
                "decided_by": c.get("decided_by", ""),
            }
            for c in classes
        ],
    }


def render_exit_pdf(record: Mapping[str, Any]) -> bytes:
    """One page for procurement: the contract, the dates, the cost that ends, the evidence and approvals."""
    from fpdf import FPDF

    from decommission.report.pdf import latin1

    doc = FPDF(format="A4")
    doc.set_creation_date(dt.datetime.fromisoformat(record["approved_on"]).replace(tzinfo=dt.UTC))
    doc.set_title(latin1(f"Avtalsavslut / contract exit: {record['system']['name']}"))
    doc.add_page()
    doc.set_font("Helvetica", "B", 15)
    doc.multi_cell(0, 8, latin1(f"Avtalsavslut - contract exit: {record['system']['name']}"))
    doc.ln(3)
    superseded = record.get("supersedes")
    deviation = record.get("deviation")
    rows = [
        ("System", record["system"]["id"]),
        ("Version", str(record["version"])),
        (
            "Ersätter / supersedes",
            f"{superseded['file']} (SHA-256 {superseded['sha256'][:16]}...)" if superseded else "-",
        ),
        ("Leverantör / supplier", record["supplier"]),
        ("Avtal / contract", record["contract"]["id"]),
        ("Uppsägningstid / notice", f"{record['notice_months']} mån / months"),
        ("Godkänt / approved on", record["approved_on"]),
        ("Tidigaste uppsägning / earliest notice", record["earliest_notice_date"]),
        ("Avtalet upphör / contract ends", record["contract_end_date"]),
        ("Planerat avtalsslut / planned end", record["planned_contract_end"]),
        (
            "Avvikelse / deviation",
            f"{deviation['days_after_plan']} dagar / days after the plan ({deviation['reason']})" if deviation else "-",
        ),
        ("Åtkomst till systemet upphör / access ends", record["legacy_access_ends"]),
        (
            "Årlig kostnad som upphör / yearly cost ending",
            f"{record['annual_cost_ending_sek']:,} SEK".replace(",", " "),
        ),
        ("Utlåtande / verdict", record["reconciliation"]["verdict"]),
        *_content_rows(record.get("archive_content") or {}),
        ("Resultat SHA-256", record["reconciliation"]["result_sha256"]),
        ("Bevispaket / evidence pack", record["evidence_pack"]["file"]),
        ("Bevispaket SHA-256", record["evidence_pack"]["sha256"]),
    ]
    rows += [(f"Godkänt / approved: {a['role']}", f"{a['by']} {a['at']}") for a in record["approvals"]]
    for label, value in rows:
        doc.set_font("Helvetica", "B", 9)
        doc.cell(80, 6, latin1(label))
        doc.set_font("Courier" if len(str(value)) == 64 else "Helvetica", size=7 if len(str(value)) == 64 else 9)
        doc.multi_cell(0, 6, latin1(value), new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def _content_rows(content: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The archive's content in the record: rows archived, flagged, corrected, disposed, and each class's decision."""
    if not content:
        return []
    figures = (
        f"{content.get('source')} / {content.get('archived')} / {content.get('flagged')} / "
        f"{content.get('corrected')} / {content.get('disposed')}"
    )
    rows = [("Källa/arkiverat/flaggat/rättat/gallrat", figures)]
    if content.get("coverage") is not None:
        rows.append(("Täckning / coverage (kolumner)", f"{content['coverage'] * 100:.1f} %"))
    for c in content.get("classes", []):
        label = f"{c['table']} {c['reason']}"
        rows.append((label, f"{c['rows']} {c['class']}: {c['decision']} {c['reference']}".strip()))
    return rows
