"""What became of the rows with a finding: each class with its decision; a finding without a disposition fails."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from decommission.model import FINDINGS_SCHEMA
from decommission.plan.mapping_spec import load_spec
from decommission.reconcile.dispositions import summarise

REPO = Path(__file__).resolve().parents[3]
SPEC = load_spec(REPO / "include" / "mappings" / "vas.yaml")
DECISION = "RN 2025/0415 (gallringsbeslut, demo)"


def _findings(rows: list[tuple[str, str, str, str, str]]) -> pa.Table:
    """(table, key, reason, disposition, decision) rows of a findings file."""
    columns = {f.name: [""] * len(rows) for f in FINDINGS_SCHEMA}
    for i, (table, key, reason, disposition, decision) in enumerate(rows):
        for name, value in zip(
            ("source_table", "source_key", "reason", "disposition", "decision"),
            (table, key, reason, disposition, decision),
            strict=True,
        ):
            columns[name][i] = value
    return pa.Table.from_pydict(columns, schema=FINDINGS_SCHEMA)


ROWS = [
    ("journalanteckning", "5", "SOFT_DELETED", "dispose", DECISION),
    ("journalanteckning", "9", "SOFT_DELETED", "dispose", DECISION),
    ("journalanteckning", "4", "XML_ILLEGAL_CHAR", "keep_flagged", ""),
    ("diagnos", "1", "CODE_INVALID", "correct", "RN 2025/0418 (rättelse, demo)"),
]


class TestSummarise:
    def test_each_class_has_its_rows_and_decision(self):
        out = summarise(SPEC, iter([_findings(ROWS)]), {}, final=True)
        assert out["reasons"] == [] and out["warnings"] == []
        by = {(c["table"], c["reason"], c["class"]): c for c in out["classes"]}
        disposed = by[("journalanteckning", "SOFT_DELETED", "disposed")]
        assert disposed["rows"] == 2 and disposed["reference"] == DECISION
        assert disposed["decided_by"] == "Olof Öberg (regionarkivarie)" and disposed["decision_kind"] == "declared"
        assert by[("journalanteckning", "XML_ILLEGAL_CHAR", "flagged")]["decision_kind"] == "default"
        corrected = by[("diagnos", "CODE_INVALID", "corrected")]
        assert corrected["decision_kind"] == "correction_list"
        assert corrected["decided_by"] == "Karin Lindström (verksamhetschef)"
        assert out["corrections"] | {"sha256": None} == {
            "file": "vas.yaml",
            "sha256": None,
            "listed": 1,
            "rows_corrected": 1,
            "not_applied": 0,
        }

    @pytest.mark.parametrize("final", [True, False], ids=["final: FAIL reason", "before: warning"])
    def test_a_dispose_without_a_decision_is_a_finding_without_a_disposition(self, final):
        rows = [("journalanteckning", "5", "SOFT_DELETED", "dispose", "")]
        out = summarise(SPEC, iter([_findings(rows)]), {}, final=final)
        message = (
            "1 rows of journalanteckning (SOFT_DELETED) are disposed of without a decision reference: "
            "a finding without a disposition"
        )
        assert (out["reasons"], message in out["warnings"]) == (([message], False) if final else ([], True))

    def test_rows_to_be_corrected_that_the_list_does_not_name_fail_at_the_final_delivery(self):
        tables = {"diagnos": {"uncorrected": {"CODE_INVALID": 3}}}
        out = summarise(SPEC, iter([_findings(ROWS)]), tables, final=True)
        assert out["reasons"] == [
            "3 rows of diagnos (CODE_INVALID) are to be corrected, but the correction list names none of them "
            "(kept flagged): a finding without a disposition"
        ]

    def test_a_correction_of_a_row_the_delivery_lacks_is_a_warning(self):
        out = summarise(SPEC, iter([_findings(ROWS[:3])]), {}, final=True)
        assert out["reasons"] == [] and out["corrections"]["not_applied"] == 1
        assert out["warnings"] == [
            "1 rows the correction list names were not corrected (not in the delivery, or disposed)"
        ]
