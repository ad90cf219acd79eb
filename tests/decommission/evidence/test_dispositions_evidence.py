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
    assert "journalanteckning SOFT_DELETED: 10 rows disposed; Makulerade journalanteckningar gallras" in text
    assert "RN 2025/0415 (gallringsbeslut, demo), Olof Öberg (regionarkivarie)" in text
    assert "diagnos CODE_INVALID: 1 rows corrected; the correction list (Karin Lindström (verksamhetschef))" in text
    assert "diagnos CODE_INVALID: 6 rows flagged; kept and flagged, the default" in text
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
