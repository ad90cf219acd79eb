"""The sign-off body and the contract-exit record state the rows archived flagged, corrected and disposed,
and the decision covering each class."""

from __future__ import annotations

from decommission.evidence.contract import archive_content
from decommission.evidence.signoff import decisions_text

RESULT = {
    "totals": {"source": 120, "archived": 110, "flagged": 7, "corrected": 1, "disposed": 10, "accepted": 112},
    "coverage": {"coverage": 1.0},
    "dispositions": {
        "classes": [
            {
                "table": "diagnos",
                "reason": "CODE_INVALID",
                "class": "flagged",
                "rows": 6,
                "reference": "",
                "decision_kind": "default",
                "decision": "",
                "decided_by": "",
            },
            {
                "table": "diagnos",
                "reason": "CODE_INVALID",
                "class": "corrected",
                "rows": 1,
                "reference": "RN 2025/0418",
                "references": ["RN 2025/0418"],
                "decision_kind": "correction_list",
                "decision": "",
                "decided_by": "Karin Lindström (verksamhetschef)",
            },
            {
                "table": "journalanteckning",
                "reason": "SOFT_DELETED",
                "class": "disposed",
                "rows": 10,
                "reference": "RN 2025/0415 (gallringsbeslut, demo)",
                "decision_kind": "declared",
                "decision": "Makulerade journalanteckningar gallras",
                "decided_by": "Olof Öberg (regionarkivarie)",
            },
        ]
    },
}


def test_the_signoff_body_names_each_class_and_its_decision():
    text = decisions_text(RESULT)
    assert (
        "journalanteckning, deleted in the source (soft delete): 10 rows disposed of by decision; "
        "Makulerade journalanteckningar gallras"
    ) in text
    assert "RN 2025/0415 (gallringsbeslut, demo), Olof Öberg (regionarkivarie)" in text
    assert (
        "diagnos, invalid code: 1 row archived, corrected; the correction list (Karin Lindström (verksamhetschef))"
    ) in text
    assert "diagnos, invalid code: 6 rows archived, flagged; kept and flagged, the default" in text
    swedish = decisions_text(RESULT, "sv")
    assert "journalanteckning, makulerad i källan: 10 rader gallrade genom beslut" in swedish
    assert "diagnos, ogiltig kod: 1 rad arkiverad, rättad; rättelselistan" in swedish
    assert "SOFT_DELETED" not in swedish and "CODE_INVALID" not in swedish
    assert decisions_text({"totals": {}}) == ""


def test_the_contract_exit_record_states_what_the_archive_holds():
    content = archive_content(RESULT)
    assert {k: content[k] for k in ("source", "archived", "flagged", "corrected", "disposed", "coverage")} == {
        "source": 120,
        "archived": 110,
        "flagged": 7,
        "corrected": 1,
        "disposed": 10,
        "coverage": 1.0,
    }
    disposed = next(c for c in content["classes"] if c["class"] == "disposed")
    assert disposed == {
        "table": "journalanteckning",
        "reason": "SOFT_DELETED",
        "class": "disposed",
        "rows": 10,
        "decision": "Makulerade journalanteckningar gallras",
        "reference": "RN 2025/0415 (gallringsbeslut, demo)",
        "decided_by": "Olof Öberg (regionarkivarie)",
    }
    assert {c["decision"] for c in content["classes"]} >= {
        "kept and flagged (the default)",
        "corrected from the correction list",
    }
