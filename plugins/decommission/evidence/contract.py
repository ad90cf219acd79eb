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
from decommission.plan.programme import Contract, same_person
from decommission.words import REASONS, ROLES, VERDICTS, number, percent, word

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
        "approvals": [
            {**{k: a[k] for k in ("role", "by", "at", "decision", "ledger_entry")}, "name": signer_name(system, a)}
            for a in approvals
        ],
        "status": "decommissioned",
    }
    data = json.dumps(record, indent=2, ensure_ascii=False).encode()
    pdf = render_exit_pdf(record, system.report_language)
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


#: the record keeps the English words of a class without a declared decision; the Swedish PDF shows these
_KIND_TEXT_SV = {
    "kept and flagged (the default)": "behålls och flaggas (standard)",
    "corrected from the correction list": "rättade enligt rättelselistan",
    "the patient's decision": "patientens gallringsbeslut",
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


def signer_name(system: Any, approval: Mapping[str, Any]) -> str:
    """The plan's name and title of the person who approved (their Airflow user name when the plan has another)."""
    respondent = getattr(system.signoff, str(approval.get("role")), None)
    if respondent is not None and same_person(respondent.id, str(approval.get("by"))):
        return str(respondent.name)
    return str(approval.get("by"))


EXIT_WORDS = {
    "sv": {
        "title": "Avtalsavslut",
        "system": "System",
        "version": "Version",
        "supersedes": "Ersätter",
        "supplier": "Leverantör",
        "contract": "Avtal",
        "notice": "Uppsägningstid",
        "months": "månader",
        "approved_on": "Godkänt",
        "earliest_notice": "Uppsägning kan ske från",
        "contract_end": "Avtalet upphör",
        "planned_end": "Planerat avtalsslut",
        "deviation": "Avvikelse från planen",
        "deviation_text": "{days} dagar efter planen (godkänt {approved}, {months} månaders uppsägningstid)",
        "access_ends": "Åtkomsten till systemet upphör",
        "cost": "Årskostnad som upphör",
        "verdict": "Utlåtande för slutleveransen",
        "result_sha": "Avstämningsresultatets SHA-256",
        "pack": "Bevispaket",
        "pack_sha": "Bevispaketets SHA-256",
        "approved_by": "Godkänt av {role}",
        "content": "Källa / arkiverat / flaggat / rättat / gallrat (rader)",
        "coverage": "Täckning av källans kolumner",
        "rows": "rader",
        "classes": {"flagged": "arkiverade, flaggade", "corrected": "arkiverade, rättade", "disposed": "gallrade"},
    },
    "en": {
        "title": "Contract exit",
        "system": "System",
        "version": "Version",
        "supersedes": "Supersedes",
        "supplier": "Supplier",
        "contract": "Contract",
        "notice": "Notice",
        "months": "months",
        "approved_on": "Approved on",
        "earliest_notice": "Notice can be given from",
        "contract_end": "The contract ends",
        "planned_end": "Planned contract end",
        "deviation": "Deviation from the plan",
        "deviation_text": "{days} days after the plan (approved {approved}, {months} months' notice)",
        "access_ends": "Access to the system ends",
        "cost": "Yearly cost that ends",
        "verdict": "Verdict on the final delivery",
        "result_sha": "SHA-256 of the reconciliation result",
        "pack": "Evidence pack",
        "pack_sha": "SHA-256 of the evidence pack",
        "approved_by": "Approved by the {role}",
        "content": "Source / archived / flagged / corrected / disposed (rows)",
        "coverage": "Coverage of the source's columns",
        "rows": "rows",
        "classes": {"flagged": "archived, flagged", "corrected": "archived, corrected", "disposed": "disposed"},
    },
}


def render_exit_pdf(record: Mapping[str, Any], language: str = "sv") -> bytes:
    """One page for procurement: the contract, the dates, the cost that ends, the evidence and approvals."""
    from fpdf import FPDF

    from decommission.report.pdf import latin1

    w = EXIT_WORDS.get(language, EXIT_WORDS["sv"])
    doc = FPDF(format="A4")
    doc.set_creation_date(dt.datetime.fromisoformat(record["approved_on"]).replace(tzinfo=dt.UTC))
    doc.set_title(latin1(f"{w['title']}: {record['system']['name']}"))
    doc.add_page()
    doc.set_font("Helvetica", "B", 15)
    doc.multi_cell(0, 8, latin1(f"{w['title']}: {record['system']['name']}"))
    doc.ln(3)
    superseded = record.get("supersedes")
    deviation = record.get("deviation")
    verdict = record["reconciliation"]["verdict"]
    rows = [
        (w["system"], f"{record['system']['name']} ({record['system']['id']})"),
        (w["version"], str(record["version"])),
        (w["supersedes"], f"{superseded['file']} (SHA-256 {superseded['sha256'][:16]}...)" if superseded else "-"),
        (w["supplier"], record["supplier"]),
        (w["contract"], record["contract"]["id"]),
        (w["notice"], f"{record['notice_months']} {w['months']}"),
        (w["approved_on"], record["approved_on"]),
        (w["earliest_notice"], record["earliest_notice_date"]),
        (w["contract_end"], record["contract_end_date"]),
        (w["planned_end"], record["planned_contract_end"]),
        (
            w["deviation"],
            w["deviation_text"].format(
                days=deviation["days_after_plan"], approved=record["approved_on"], months=record["notice_months"]
            )
            if deviation
            else "-",
        ),
        (w["access_ends"], record["legacy_access_ends"]),
        (w["cost"], f"{number(record['annual_cost_ending_sek'], language)} {'kr' if language == 'sv' else 'SEK'}"),
        (w["verdict"], word(VERDICTS, verdict, language)),
        *_content_rows(record.get("archive_content") or {}, w, language),
        (w["result_sha"], record["reconciliation"]["result_sha256"]),
        (w["pack"], record["evidence_pack"]["file"]),
        (w["pack_sha"], record["evidence_pack"]["sha256"]),
    ]
    rows += [
        (
            w["approved_by"].format(role=word(ROLES, a["role"], language)),
            f"{a.get('name') or a['by']}, {str(a['at'])[:16].replace('T', ' ')} (UTC)",
        )
        for a in record["approvals"]
    ]
    for label, value in rows:
        doc.set_font("Helvetica", "B", 9)
        doc.cell(80, 6, latin1(label))
        doc.set_font("Courier" if len(str(value)) == 64 else "Helvetica", size=7 if len(str(value)) == 64 else 9)
        doc.multi_cell(0, 6, latin1(value), new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def _content_rows(content: Mapping[str, Any], w: Mapping[str, Any], language: str) -> list[tuple[str, str]]:
    """The archive's content in the record: rows archived, flagged, corrected, disposed, and each class's decision."""
    if not content:
        return []
    figures = " / ".join(
        number(content.get(k), language) for k in ("source", "archived", "flagged", "corrected", "disposed")
    )
    rows = [(w["content"], figures)]
    if content.get("coverage") is not None:
        rows.append((w["coverage"], percent(content["coverage"], language)))
    for c in content.get("classes", []):
        label = f"{c['table']}, {word(REASONS, c['reason'], language)}"
        what = f"{number(c['rows'], language)} {w['rows']} {w['classes'].get(c['class'], c['class'])}"
        decision = _KIND_TEXT_SV.get(c["decision"], c["decision"]) if language == "sv" else c["decision"]
        rows.append((label, f"{what}: {decision} {c['reference']}".strip()))
    return rows
