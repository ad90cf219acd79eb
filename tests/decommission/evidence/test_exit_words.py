"""The contract-exit record for procurement in natural Swedish: signers by name and title, no codes."""

from __future__ import annotations

import re
from pathlib import Path

from decommission.evidence.contract import render_exit_pdf, signer_name
from decommission.plan.programme import load_plan

REPO = Path(__file__).resolve().parents[3]


def _record(approvals):
    return {
        "system": {"id": "vas", "name": "VAS – Vårdadministrativt system"},
        "version": 1,
        "supersedes": None,
        "supplier": "Tieto",
        "contract": {"id": "AVT-2019-0412"},
        "notice_months": 12,
        "approved_on": "2025-09-10",
        "earliest_notice_date": "2025-09-10",
        "contract_end_date": "2026-09-10",
        "planned_contract_end": "2026-06-30",
        "deviation": {"days_after_plan": 72},
        "legacy_access_ends": "2026-09-10",
        "annual_cost_ending_sek": 4200000,
        "reconciliation": {"verdict": "PASS", "result_sha256": "a" * 64},
        "evidence_pack": {"file": "evidence-vas.tar", "sha256": "b" * 64},
        "archive_content": {
            "source": 3092,
            "archived": 3008,
            "flagged": 40,
            "corrected": 0,
            "disposed": 84,
            "coverage": 0.975,
            "classes": [
                {
                    "table": "anteckning",
                    "reason": "CODE_INVALID",
                    "class": "flagged",
                    "rows": 40,
                    "decision": "kept and flagged (the default)",
                    "reference": "",
                }
            ],
        },
        "approvals": approvals,
    }


def _text(pdf: bytes) -> str:
    import pypdfium2

    doc = pypdfium2.PdfDocument(pdf)
    return re.sub(r"\s+", " ", " ".join(doc[i].get_textpage().get_text_range() for i in range(len(doc))))


def test_signers_are_named_by_the_plan_not_by_user_id():
    system = load_plan(REPO / "include" / "programme.yaml").system("vas")
    owner = {"role": "information_owner", "by": "verksamhetschef", "at": "2025-09-10 08:15:00+00:00"}
    archivist = {"role": "archivist", "by": "regionarkivarie", "at": "2025-09-10 09:40:00+00:00"}
    assert signer_name(system, owner) == "Karin Lindström (verksamhetschef)"
    assert signer_name(system, archivist) == "Olof Öberg (regionarkivarie)"
    assert signer_name(system, {"role": "archivist", "by": "someone"}) == "someone"


def test_the_exit_record_reads_as_swedish():
    approvals = [
        {
            "role": "information_owner",
            "by": "verksamhetschef",
            "name": "Karin Lindström (verksamhetschef)",
            "at": "2025-09-10 08:15:00+00:00",
        },
        {
            "role": "archivist",
            "by": "regionarkivarie",
            "name": "Olof Öberg (regionarkivarie)",
            "at": "2025-09-10 09:40:00+00:00",
        },
    ]
    text = _text(render_exit_pdf(_record(approvals)))
    for term in (
        "Avtalsavslut: VAS",
        "Utlåtande för slutleveransen Godkänd",
        "Årskostnad som upphör 4 200 000 kr",
        "Avvikelse från planen 72 dagar efter planen",
        "Godkänt av informationsägare Karin Lindström (verksamhetschef), 2025-09-10 08:15 (UTC)",
        "Godkänt av arkivarie Olof Öberg (regionarkivarie), 2025-09-10 09:40 (UTC)",
        "3 092 / 3 008 / 40 / 0 / 84",
        "97,5 %",
        "anteckning, ogiltig kod 40 rader arkiverade, flaggade: behålls och flaggas (standard)",
    ):
        assert term in text.replace("\u00a0", " "), term
    for leftover in ("verdict", "PASS", "CODE_INVALID", "information_owner", " / approved", "kept and flagged"):
        assert leftover not in text, leftover
    english = _text(render_exit_pdf(_record(approvals), "en"))
    assert "Approved by the information owner Karin Lindström (verksamhetschef)" in english
    assert "Verdict on the final delivery Pass" in english and "Avtalsavslut" not in english
