"""The contract-exit record for procurement (JSON and PDF), written once both respondents approved.

The dates follow from the plan: notice may be given from the sign-off date; the contract ends
``notice_months`` later, but never before the contract's earliest end; access to the legacy
system ends with the contract (or at the plan's ``contract_end`` milestone, if later).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dateutil.relativedelta import relativedelta

from decommission.errors import DecommissionError
from decommission.evidence.signoff import may_be_signed, responder_id
from decommission.files import write_atomic
from decommission.plan.programme import Contract

if TYPE_CHECKING:
    from decommission.plan.run import Run

ROLES = ("information_owner", "archivist")


def exit_dates(contract: Contract, signed: dt.date, contract_end_milestone: dt.date) -> dict[str, str]:
    """Earliest notice date, the end date it gives, and when access to the legacy system ends."""
    end = max(contract.earliest_end, signed + relativedelta(months=contract.notice_months))
    return {
        "earliest_notice_date": signed.isoformat(),
        "contract_end_date": end.isoformat(),
        "notice_deadline_for_end": (end - relativedelta(months=contract.notice_months)).isoformat(),
        "legacy_access_ends": max(contract_end_milestone, end).isoformat(),
    }


def check_approvals(run: Run, approvals: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Both roles approved, each by its assigned respondent; else no contract exit."""
    assigned = {
        "information_owner": run.system.signoff.information_owner.id,
        "archivist": run.system.signoff.archivist.id,
    }
    out = []
    for a in approvals:
        entry = {
            "role": a["role"],
            "by": responder_id(a["responded_by_user"]),
            "at": str(a["responded_at"]),
            "decision": a["chosen_options"][0],
        }
        if entry["decision"] != "Approve" or entry["by"] != assigned[entry["role"]]:
            raise DecommissionError(
                f"system {run.system.id}: the {entry['role']} sign-off is '{entry['decision']}' by '{entry['by']}', "
                f"not an approval by the assigned '{assigned[entry['role']]}'; no contract exit"
            )
        out.append(entry)
    if sorted(a["role"] for a in out) != sorted(ROLES):
        raise DecommissionError(f"system {run.system.id}: the contract exit needs approvals of both {ROLES}")
    return out


def contract_exit(
    run: Run, report: Mapping[str, Any], pack: Mapping[str, Any], approvals: list[Mapping[str, Any]]
) -> dict[str, Any]:
    """Write ``evidence/contract-exit.{json,pdf}``, record them and mark the system decommissioned."""
    problem = may_be_signed(report)
    if problem:
        raise DecommissionError(f"system {run.system.id}: no contract exit: {problem}")
    checked = check_approvals(run, approvals)
    contract = run.system.contract
    signed = run.logical_date.date()
    record = {
        "system": {"id": run.system.id, "name": run.system.name},
        "supplier": run.system.supplier,
        "contract": contract.model_dump(mode="json"),
        "notice_months": contract.notice_months,
        "signed_off": signed.isoformat(),
        **exit_dates(contract, signed, run.system.milestones.contract_end),
        "annual_cost_ending_sek": contract.annual_cost_sek,
        "reconciliation": {
            "verdict": report["verdict"],
            "result_sha256": report["result_sha256"],
            "report_pdf_sha256": report.get("pdf_sha256"),
            "report": report.get("html"),
        },
        "evidence_pack": {"file": pack["path"].rsplit("/", 1)[-1], "sha256": pack["sha256"], "size": pack["size"]},
        "approvals": checked,
        "status": "decommissioned",
    }
    folder = run.out("evidence")
    data = json.dumps(record, indent=2, ensure_ascii=False).encode()
    pdf = render_exit_pdf(record)
    write_atomic(folder / "contract-exit.pdf", pdf)
    path = write_atomic(folder / "contract-exit.json", data)
    digest = hashlib.sha256(data).hexdigest()
    run.record(
        "contract_exit",
        {
            "sha256": digest,
            "pdf_sha256": hashlib.sha256(pdf).hexdigest(),
            "evidence_pack_sha256": pack["sha256"],
            "end": record["contract_end_date"],
        },
    )
    run.record("system_status", {"status": "decommissioned", "contract": contract.id})
    return {"path": str(path), "sha256": digest, "contract_end_date": record["contract_end_date"]}


def render_exit_pdf(record: Mapping[str, Any]) -> bytes:
    """One page for procurement: the contract, the dates, the cost that ends, the evidence and approvals."""
    from fpdf import FPDF

    from decommission.report.pdf import latin1

    doc = FPDF(format="A4")
    doc.set_creation_date(dt.datetime.fromisoformat(record["signed_off"]).replace(tzinfo=dt.UTC))
    doc.set_title(latin1(f"Avtalsavslut / contract exit: {record['system']['name']}"))
    doc.add_page()
    doc.set_font("Helvetica", "B", 15)
    doc.multi_cell(0, 8, latin1(f"Avtalsavslut - contract exit: {record['system']['name']}"))
    doc.ln(3)
    rows = [
        ("System", record["system"]["id"]),
        ("Leverantör / supplier", record["supplier"]),
        ("Avtal / contract", record["contract"]["id"]),
        ("Uppsägningstid / notice", f"{record['notice_months']} mån / months"),
        ("Tidigaste uppsägning / earliest notice", record["earliest_notice_date"]),
        ("Avtalet upphör / contract ends", record["contract_end_date"]),
        ("Åtkomst till systemet upphör / access ends", record["legacy_access_ends"]),
        (
            "Årlig kostnad som upphör / yearly cost ending",
            f"{record['annual_cost_ending_sek']:,} SEK".replace(",", " "),
        ),
        ("Utlåtande / verdict", record["reconciliation"]["verdict"]),
        ("Resultat SHA-256", record["reconciliation"]["result_sha256"]),
        ("Bevispaket / evidence pack", record["evidence_pack"]["file"]),
        ("Bevispaket SHA-256", record["evidence_pack"]["sha256"]),
    ]
    rows += [(f"Godkänt / approved: {a['role']}", f"{a['by']} {a['at']}") for a in record["approvals"]]
    for label, value in rows:
        doc.set_font("Helvetica", "B", 9)
        doc.cell(80, 6, latin1(label))
        doc.set_font("Courier" if len(str(value)) == 64 else "Helvetica", size=7 if len(str(value)) == 64 else 9)
        doc.cell(0, 6, latin1(value), new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())
