"""What became of the rows with a finding, and which decision covers each class of them.

Read from the run's findings files (one per mapped partition): per table, reason and
disposition the rows, with the decision that covers them: the spec's declared disposition
(``keep_flagged`` is the default and needs no decision), the correction list's entries, or the
decision reference of a dispose (a disposed patient's rows carry the patient's). At the final
delivery a finding without a disposition is a FAIL reason: rows disposed of without a decision
reference, and rows declared ``correct`` that the correction list does not name (kept flagged).
Before it they are warnings.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from decommission.model import FINDINGS_FILE, Disposition, Reason
from decommission.plan.mapping_spec import MappingSpec
from decommission.source import staging

if TYPE_CHECKING:
    from decommission.plan.run import Run

_COLUMNS = ["source_table", "source_key", "reason", "disposition", "decision"]


def findings_tables(run: Run, partition_ids: list[str], columns: list[str] | None = None) -> Iterator[pa.Table]:
    """The findings file of each mapped partition (only the columns asked for)."""
    for pid in partition_ids:
        path = staging.stage_dir(run.system.id, run.milestone.value, "mapped", pid) / FINDINGS_FILE
        if path.exists():
            table = staging.read_table(path)
            yield table.select(columns) if columns else table


def summarise(
    spec: MappingSpec, findings: Iterator[pa.Table], tables: Mapping[str, Mapping[str, Any]], *, final: bool
) -> dict[str, Any]:
    """The classes of rows with a finding and their decisions; problems as FAIL reasons (final) or warnings.

    :param tables: the reconciliation's per-table result (for the rows declared ``correct`` but not corrected)
    """
    counts: Counter[tuple[str, str, str, str]] = Counter()
    corrected_rows: set[tuple[str, str]] = set()
    for table in findings:
        for name, key, reason, disposition, decision in zip(
            *(table.column(c).to_pylist() for c in _COLUMNS), strict=True
        ):
            counts[(name, reason, disposition, decision or "")] += 1
            if disposition == Disposition.CORRECT:
                corrected_rows.add((name, str(key)))
    classes = []
    problems = []
    for (name, reason, disposition, reference), rows in sorted(counts.items()):
        entry: dict[str, Any] = {
            "table": name,
            "reason": reason,
            "class": Disposition.CLASS[disposition],
            "disposition": disposition,
            "rows": rows,
            "reference": reference,
        }
        entry |= _decision(spec, name, reason, disposition)
        if disposition == Disposition.DISPOSE and not reference:
            problems.append(
                f"{rows} rows of {name} ({reason}) are disposed of without a decision reference: "
                "a finding without a disposition"
            )
        classes.append(entry)
    for name, row in tables.items():
        for reason, rows in sorted((row.get("uncorrected") or {}).items()):
            problems.append(
                f"{rows} rows of {name} ({reason}) are to be corrected, but the correction list names none of "
                "them (kept flagged): a finding without a disposition"
            )
    listed = {(c.table, str(c.key)) for c in spec.correction_list}
    not_applied = sorted(listed - corrected_rows)
    path = spec.corrections_path()
    corrections = {
        "file": path.name if path else None,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest() if path and path.exists() else None,
        "listed": len(spec.correction_list),
        "rows_corrected": len(corrected_rows),
        "not_applied": len(not_applied),
    }
    warnings = []
    if not_applied:
        # a correction of a row this delivery does not hold (gone from the source, or disposed): said, not failed
        warnings.append(
            f"{len(not_applied)} rows the correction list names were not corrected (not in the delivery, or disposed)"
        )
    return {
        "classes": classes,
        "corrections": corrections,
        "reasons": problems if final else [],
        "warnings": warnings + ([] if final else problems),
    }


def _decision(spec: MappingSpec, table: str, reason: str, disposition: str) -> dict[str, Any]:
    """Who decided what for one class of rows (from the spec and its correction list)."""
    if disposition == Disposition.CORRECT:
        listed = [c for c in spec.corrections_of(table) if c.reason == reason]
        return {
            "decision_kind": "correction_list",
            "decision": "",
            "decided_by": "; ".join(sorted({c.decided_by for c in listed})),
            "references": sorted({c.reference for c in listed if c.reference}),
        }
    if reason == Reason.PATIENT_DISPOSED:
        return {"decision_kind": "patient", "decision": "", "decided_by": ""}
    declared = spec.disposition(table, reason)
    if declared is None:
        return {"decision_kind": "default", "decision": "", "decided_by": ""}
    return {
        "decision_kind": "declared",
        "decision": declared.decision or declared.disposition,
        "decided_by": declared.decided_by,
        "date": declared.date.isoformat() if declared.date else None,
    }
