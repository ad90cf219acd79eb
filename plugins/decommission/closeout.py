"""The end of a run: reconcile (counts, breakdowns, read-back sample) and report; the sign-off text."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from decommission import __version__
from decommission.errors import DecommissionError
from decommission.plan import Milestone, System
from decommission.privacy import keyed_hash
from decommission.readback import check_sample
from decommission.reconcile import FAIL, draw_sample, reconcile, sample_justification
from decommission.report import write_report
from decommission.stages import Run, archive_hook, read_receipts

log = logging.getLogger(__name__)


class VerdictFail(DecommissionError):
    """The reconciliation found unexplained differences."""


def reconcile_stage(
    run: Run, mapped: list[Mapping[str, Any] | None], packages: list[Mapping[str, Any] | None]
) -> dict[str, Any]:
    """Compare source, extraction, mapping, packages and the archive's receipts; return the result.

    Runs even when waiting for the archive failed (a rejected package), so the report shows why;
    partitions whose tasks failed have no entry here and show as differences.
    """
    spec = run.spec
    mapped = [m for m in mapped if m]
    packages = [p for p in packages if p]
    cut_off = run.system.agreement.cut_off
    source = run.source.count_rows(spec, cut_off)
    receipts = read_receipts(run, [p["package_id"] for p in packages])
    seed = int(run.logical_date.strftime("%Y%m%d"))
    accepted = [p for p in packages if receipts.get(p["package_id"], {}).get("status") == "accepted"]
    population = _patients(run, accepted)
    drawn = draw_sample(population, run.system.sample_patients, seed)
    hook = archive_hook() if drawn else None
    sample = check_sample(
        source=run.source,
        spec=spec,
        cut_off=cut_off,
        drawn=drawn,
        read_record=lambda pid, key: hook.read_record(pid, key),
    )
    result = reconcile(
        table_entity={t: spec.tables[t].entity for t in spec.tables},
        source=source,
        mapped_parts=mapped,
        packages=packages,
        receipts=receipts,
        sample=sample,
        waivers=[w.model_dump(mode="json") for w in run.system.waivers],
    )
    result["sample"] |= {
        "seed": seed,
        "size_in_plan": run.system.sample_patients,
        "justification": sample_justification(run.system.sample_patients, len(population)),
        "patients": [{k: v for k, v in s.items() if k != "differences"} for s in sample],
    }
    result["breakdown"] = breakdown(run, mapped, [p["package_id"] for p in packages])
    result["reasons"] += breakdown_reasons(result["breakdown"])
    if result["reasons"]:
        result["verdict"] = FAIL
    result |= {
        "system": {"id": run.system.id, "name": run.system.name, "supplier": run.system.supplier},
        "run_id": run.run_id,
        "milestone": run.milestone.value,
        "record_status": run.record_status,
        "cut_off": cut_off.isoformat(),
        "agreement_id": run.system.agreement.id,
        "snapshot": run.logical_date.isoformat(),
        "software_version": __version__,
        "partitions": sorted(m["partition"]["id"] for m in mapped),
        "package_manifest": [
            {"package_id": p["package_id"], "sha256": p["sha256"], "size": p["size"]}
            for p in sorted(packages, key=lambda p: p["package_id"])
        ],
        "progress": _progress(run),
    }
    run.record(
        "reconciliation_result",
        {"milestone": run.milestone.value, "verdict": result["verdict"], "waived": len(result["waived"])},
    )
    return result


def _patients(run: Run, packages: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(package_id, patient_key) of every patient folder in the packages (keys are the folder names)."""
    from decommission.tarindex import patient_folders

    population = []
    for p in packages:
        population += [
            (p["package_id"], key) for key in patient_folders(run.out("packages") / f"{p['package_id']}.tar")
        ]
    return population


def breakdown(run: Run, mapped: list[Mapping[str, Any]], package_ids: list[str]) -> dict[str, Any]:
    """Per year, care unit and patient, and fingerprints (see :mod:`decommission.breakdown`)."""
    from decommission.breakdown import reconcile_breakdown

    return reconcile_breakdown(run, [m["partition"]["id"] for m in mapped], package_ids)


def breakdown_reasons(b: Mapping[str, Any]) -> list[str]:
    """FAIL reasons from the breakdown: a year, care unit or patient whose counts differ; a changed fingerprint."""
    reasons = [
        f"source = extracted fails for year {year}: {v['source']} against {v['extracted']}"
        for year, v in b["years"].items()
        if v["source"] != v["extracted"]
    ]
    reasons += [
        f"source = extracted fails for care unit {u['unit']!r} of {u['table']}: {u['source']} against {u['extracted']}"
        for u in b["units"]
        if u["source"] != u["extracted"]
    ]
    if b["patients"]["differing"]:
        reasons.append(f"{len(b['patients']['differing'])} patients have other row counts extracted than in the source")
    reasons += [
        f"content fingerprint of {entity} differs: source {f['source']} against packages {f['package']}"
        for entity, f in b["fingerprints"].items()
        if f["source"] != f["package"]
    ]
    return reasons


def _progress(run: Run) -> list[dict[str, Any]]:
    """Archived rows at each earlier milestone of this system (for the progress chart)."""
    out = []
    for m in Milestone:
        if not m.runs_dag or m is run.milestone:
            continue
        path = run.out("reconciliation") / m.value / "result.json"
        if path.exists():
            earlier = json.loads(path.read_text(encoding="utf-8"))
            out.append({"milestone": m.value, **earlier["totals"]})
    return out


def report_stage(run: Run, result: dict[str, Any]) -> dict[str, Any]:
    """Write the report, record its hashes; a FAIL verdict fails the task after the report is written."""
    out = write_report(
        result,
        run.out("reconciliation") / run.milestone.value,
        language=run.system.report_language,
        annexes=exception_lists(run, result),
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
    run.record(
        "quarantine_decisions",
        {
            "milestone": run.milestone.value,
            "rows": {t: row["quarantined"] for t, row in result["tables"].items() if row["quarantined"]},
            "decided_by": "mapping specification "
            + hashlib.sha256(run.plan.mapping_path(run.system).read_bytes()).hexdigest(),
        },
    )
    summary = {
        "verdict": result["verdict"],
        "totals": result["totals"],
        "quarantine_by_reason": result["quarantine_by_reason"],
        "waived": len(result.get("waived", [])),
        "sample": {"checked": result["sample"]["checked"], "mismatches": len(result["sample"]["mismatches"])},
        **out,
    }
    if result["verdict"] == FAIL:
        raise VerdictFail(f"reconciliation of {run.system.id} is FAIL: " + "; ".join(result["reasons"]))
    return summary


def exception_lists(run: Run, result: Mapping[str, Any]) -> dict[str, Any]:
    """The report's annexes: quarantined rows, sample differences, rejections, failing checks (keyed hashes only)."""
    from decommission import staging

    def quarantine() -> Iterator[list[Any]]:
        for pid in result.get("partitions", []):
            path = staging.stage_dir(run.system.id, run.milestone.value, "mapped", pid) / "quarantine.parquet"
            if not path.exists():
                continue
            for row in staging.read_frame(path).itertuples(index=False):
                yield [
                    pid,
                    row.source_table,
                    row.rule,
                    row.column,
                    row.detail,
                    keyed_hash(row.source_key),
                    keyed_hash(row.patient_key),
                    row.value_digest,
                ]

    differences = [
        [m["package_id"], m["patient"], d["entity"], d["record"], d["field"], d["kind"]]
        for m in result["sample"]["mismatches"]
        for d in m.get("differences", [])
    ]
    return {
        "quarantine": (
            ["partition", "table", "reason", "column", "detail", "row_hash", "patient_hash", "value_digest"],
            quarantine(),
        ),
        "sample": (["package_id", "patient_hash", "entity", "record_hash", "field", "kind"], differences),
        "rejections": (
            ["package_id", "requirement", "path", "message"],
            [[r["package_id"], r["requirement"], r["path"], r["message"]] for r in result.get("rejections", [])],
        ),
        "checks": (
            ["check", "scope", "left", "right", "ok"],
            [[c["name"], c["scope"], c["left"], c["right"], c["ok"]] for c in result["checks"]],
        ),
        "years": (
            ["table", "year", "source", "extracted"],
            [[y["table"], y["year"], y["source"], y["extracted"]] for y in result["breakdown"]["by_table_year"]],
        ),
        "patients": (
            ["patient_hash", "source", "extracted"],
            [[p["patient"], p["source"], p["extracted"]] for p in result["breakdown"]["patients"]["differing"]],
        ),
    }


def signoff_body(system: System) -> str:
    """Markdown shown to the respondents (templated by Airflow with the report's XCom)."""
    x = "ti.xcom_pull(task_ids='report')"
    return (
        f"## Sign-off: {system.name}\n\n"
        f"Supplier **{system.supplier}**, contract {system.contract.id} "
        f"({system.contract.annual_cost_sek:,} SEK a year).\n\n"
        f"Verdict: **{{{{ {x}['verdict'] }}}}**"
        f"{{% if {x}['waived'] %}} ({{{{ {x}['waived'] }}}} difference(s) accepted by waiver){{% endif %}}  \n"
        f"Rows in the source: {{{{ {x}['totals']['source'] }}}}; archived: {{{{ {x}['totals']['archived'] }}}}; "
        f"quarantined: {{{{ {x}['totals']['quarantined'] }}}}.  \n"
        f"Read-back sample: {{{{ {x}['sample']['checked'] }}}} patients, "
        f"{{{{ {x}['sample']['mismatches'] }}}} with differences.  \n"
        f"Report: `{{{{ {x}['pdf'] }}}}`  \n"
        f"SHA-256 of the report (result.json): `{{{{ {x}['result_sha256'] }}}}`  \n"
        f"SHA-256 of the PDF: `{{{{ {x}['pdf_sha256'] }}}}`\n\n"
        "Approving confirms the archive holds the system's records as reported, so the "
        "supplier contract may be ended. A FAIL verdict is never put to sign-off."
    )
