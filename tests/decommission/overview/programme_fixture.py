"""A programme in mid-flight, written as the stages would leave it: report files and their ledger entries.

The demo plan's three systems: ``vas`` decommissioned (three passing milestones, both signed,
a contract-exit record), ``lab`` waiting for its archivist after a passing final delivery,
``anestesi`` with a failed test delivery. Synthetic counts only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from decommission.ledger import Ledger, canonical

REPO = Path(__file__).resolve().parents[3]
PLAN = REPO / "include" / "programme.yaml"
TOTALS = {
    "vas": {"source": 3092, "archived": 2990, "disposed": 102},
    "lab": {"source": 1500, "archived": 1449, "disposed": 51},
    "anestesi": {"source": 400, "archived": 380, "disposed": 20},
}


def write_report(home: Path, ledger: Ledger, system: str, milestone: str, run_id: str, verdict: str) -> dict:
    """A reconciliation as report_stage leaves it: result.json, report.html, report.pdf and the ledger entry."""
    folder = home / system / "reconciliation" / milestone
    folder.mkdir(parents=True, exist_ok=True)
    result = {
        "system": {"id": system, "name": system},
        "milestone": milestone,
        "run_id": run_id,
        "verdict": verdict,
        "totals": TOTALS[system],
        "packages": {"count": 3, "accepted": 3},
        "sample": {"checked": 10, "mismatches": []},
    }
    files = {
        "result": canonical(result).encode(),
        "html": f"<html><body><h1>Avstämningsrapport {system} {milestone}</h1></body></html>".encode(),
        "pdf": _tiny_pdf(f"{system} {milestone}"),
    }
    names = {"result": "result.json", "html": "report.html", "pdf": "report.pdf"}
    for key, data in files.items():
        (folder / names[key]).write_bytes(data)
    ledger.append(
        system_id=system,
        run_id=run_id,
        kind="reconciliation",
        payload={
            "milestone": milestone,
            "verdict": verdict,
            "totals": TOTALS[system],
            "files": {k: hashlib.sha256(v).hexdigest() for k, v in files.items()},
        },
    )
    return result


def signoff(ledger: Ledger, system: str, run_id: str, role: str, user: str, *, answer: str | None = "Approve") -> None:
    ledger.append(system_id=system, run_id=run_id, kind="signoff_requested", payload={"role": role, "verdict": "PASS"})
    if answer:
        ledger.append(
            system_id=system,
            run_id=run_id,
            kind="signoff",
            payload={"role": role, "by": user, "decision": answer, "at": "2025-09-10 09:30:00+00:00"},
        )


def contract_exit(home: Path, ledger: Ledger, system: str, run_id: str, record: dict[str, Any]) -> None:
    folder = home / system / "evidence"
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps(record, ensure_ascii=False).encode()
    (folder / "contract-exit.json").write_bytes(data)
    ledger.append(
        system_id=system,
        run_id=run_id,
        kind="contract_exit",
        payload={"file": "contract-exit.json", "sha256": hashlib.sha256(data).hexdigest(), "version": 1},
    )
    ledger.append(system_id=system, run_id=run_id, kind="system_status", payload={"status": "decommissioned"})


def build(home: Path) -> Ledger:
    """Write the three systems' state under ``home`` (ledger at ``home/ledger.sqlite``)."""
    ledger = Ledger.sqlite(home / "ledger.sqlite")
    for milestone, run in (
        ("test_delivery", "milestone__test_delivery__2025-03-03"),
        ("production_delivery", "milestone__production_delivery__2025-06-02"),
        ("final_delivery", "milestone__final_delivery__2025-09-01"),
    ):
        write_report(home, ledger, "vas", milestone, run, "PASS")
    final = "milestone__final_delivery__2025-09-01"
    signoff(ledger, "vas", final, "information_owner", "verksamhetschef")
    signoff(ledger, "vas", final, "archivist", "regionarkivarie")
    contract_exit(
        home,
        ledger,
        "vas",
        final,
        {"contract_end_date": "2026-09-10", "legacy_access_ends": "2026-09-10", "earliest_notice_date": "2025-09-10"},
    )
    write_report(home, ledger, "lab", "test_delivery", "milestone__test_delivery__2025-04-07", "PASS")
    write_report(home, ledger, "lab", "production_delivery", "milestone__production_delivery__2025-08-18", "PASS")
    lab_final = "milestone__final_delivery__2025-11-03"
    write_report(home, ledger, "lab", "final_delivery", lab_final, "PASS")
    signoff(ledger, "lab", lab_final, "information_owner", "verksamhetschef")
    signoff(ledger, "lab", lab_final, "archivist", "regionarkivarie", answer=None)
    write_report(home, ledger, "anestesi", "test_delivery", "milestone__test_delivery__2025-05-05", "FAIL")
    return ledger


def _tiny_pdf(text: str) -> bytes:
    from fpdf import FPDF

    doc = FPDF()
    doc.add_page()
    doc.set_font("Helvetica", size=12)
    doc.cell(0, 10, text)
    return bytes(doc.output())
