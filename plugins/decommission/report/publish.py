"""Publish a run's reconciliation: the report and its annexes written, their hashes in the ledger.

A FAIL verdict fails the task, after the report is written, so the grid shows red and the report says why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import Any

from decommission.errors import DecommissionError
from decommission.plan.run import Run
from decommission.privacy import keyed_hash
from decommission.reconcile.checks import FAIL
from decommission.report.labels import LABELS, check_name, entity_name, reason_name, year_label
from decommission.report.writer import about_system, write_report
from decommission.words import DIFFERENCES, word


class VerdictFail(DecommissionError):
    """The reconciliation found unexplained differences."""


def report_stage(run: Run, result: dict[str, Any]) -> dict[str, Any]:
    """Write the report, record its hashes; a FAIL verdict fails the task after the report is written."""
    out = write_report(
        result,
        run.out("reconciliation") / run.milestone.value,
        language=run.system.report_language,
        annexes=exception_lists(run, result),
        about=about_system(run.system),
    )
    run.record(
        "reconciliation",
        {
            "milestone": run.milestone.value,
            "verdict": result["verdict"],
            "reasons": len(result["reasons"]),
            "waived": result.get("waived", []),
            "files": {k.removesuffix("_sha256"): v for k, v in out.items() if k.endswith("_sha256")},
            "totals": result["totals"],
        },
    )
    dispositions = result.get("dispositions") or {}
    run.record(
        "dispositions",
        {
            "milestone": run.milestone.value,
            # per table, reason and class: the rows and the decision that covers them
            "classes": dispositions.get("classes", []),
            "corrections": dispositions.get("corrections", {}),
            "mapping_specification_sha256": hashlib.sha256(run.plan.mapping_path(run.system).read_bytes()).hexdigest(),
        },
    )
    summary = {
        "verdict": result["verdict"],
        "totals": result["totals"],
        "findings_by_reason": result["findings_by_reason"],
        "waived": len(result.get("waived", [])),
        "sample": {"checked": result["sample"]["checked"], "mismatches": len(result["sample"]["mismatches"])},
        **out,
    }
    if result["verdict"] == FAIL:
        raise VerdictFail(f"reconciliation of {run.system.id} is FAIL: " + "; ".join(result["reasons"]))
    return summary


def exception_lists(run: Run, result: Mapping[str, Any]) -> dict[str, Any]:
    """The report's annexes: rows with a finding, disposed rows, sample differences, rejections, failing checks.

    Identifiers only as keyed hashes. Codes keep their column; a column beside names them in the report's language.
    """
    language = run.system.report_language
    handling = {"keep_flagged": "flagged", "correct": "corrected", "dispose": "disposed"}
    t = LABELS[language]
    from decommission.model import FINDINGS_FILE, Disposition
    from decommission.source import staging

    def findings(disposed_only: bool) -> Iterator[list[Any]]:
        for pid in result.get("partitions", []):
            path = staging.stage_dir(run.system.id, run.milestone.value, "mapped", pid) / FINDINGS_FILE
            if not path.exists():
                continue
            for row in staging.read_frame(path).itertuples(index=False):
                if disposed_only and row.disposition != Disposition.DISPOSE:
                    continue
                if disposed_only:
                    yield [
                        pid,
                        row.source_table,
                        keyed_hash(row.source_key),
                        keyed_hash(row.patient_key),
                        row.reason,
                        reason_name(row.reason, language),
                        row.decision,
                    ]
                    continue
                yield [
                    pid,
                    row.source_table,
                    row.reason,
                    reason_name(row.reason, language),
                    row.reasons,
                    row.column,
                    row.detail,
                    row.disposition,
                    t["class_" + handling.get(row.disposition, "flagged")],
                    row.decision,
                    keyed_hash(row.source_key),
                    keyed_hash(row.patient_key),
                    row.value_digest,
                ]

    differences = [
        [
            m["package_id"],
            m["patient"],
            d["entity"],
            entity_name(d["entity"], language),
            d["record"],
            d["field"],
            word(DIFFERENCES, d["kind"], language),
        ]
        for m in result["sample"]["mismatches"]
        for d in m.get("differences", [])
    ]
    return {
        "findings": (
            [
                "partition",
                "table",
                "reason",
                "reason_name",
                "reasons",
                "column",
                "detail",
                "disposition",
                "disposition_name",
                "decision",
                "row_hash",
                "patient_hash",
                "value_digest",
            ],
            findings(disposed_only=False),
        ),
        # the rows disposed of, each with its decision: what the evidence pack lists for the auditor
        "disposed": (
            ["partition", "table", "row_hash", "patient_hash", "reason", "reason_name", "decision"],
            findings(disposed_only=True),
        ),
        "sample": (
            ["package_id", "patient_hash", "entity", "entity_name", "record_hash", "field", "kind"],
            differences,
        ),
        "rejections": (
            ["package_id", "requirement", "path", "message"],
            [[r["package_id"], r["requirement"], r["path"], r["message"]] for r in result.get("rejections", [])],
        ),
        "checks": (
            ["check", "check_name", "scope", "left", "right", "ok"],
            [
                [c["name"], check_name(c["name"], language), c["scope"], c["left"], c["right"], c["ok"]]
                for c in result["checks"]
            ],
        ),
        "years": (
            ["table", "year", "source", "extracted"],
            [
                [y["table"], year_label(y["year"], t), y["source"], y["extracted"]]
                for y in result["breakdown"]["by_table_year"]
            ],
        ),
        "patients": (
            ["patient_hash", "source", "extracted"],
            [[p["patient"], p["source"], p["extracted"]] for p in result["breakdown"]["patients"]["differing"]],
        ),
    }
