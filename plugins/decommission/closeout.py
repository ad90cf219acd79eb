"""The end of a run: reconcile, report, and on the final milestone the contract-exit record."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from dateutil.relativedelta import relativedelta

from decommission import __version__
from decommission.errors import DecommissionError
from decommission.files import write_atomic
from decommission.plan import System
from decommission.reconcile import FAIL, draw_sample, reconcile
from decommission.report import write_report
from decommission.stages import Run, archive_hook, read_receipts

log = logging.getLogger(__name__)
RECORD = "representations/rep1/data/{patient}/record.xml"


class VerdictFail(DecommissionError):
    """The reconciliation found unexplained differences."""


def reconcile_stage(run: Run, mapped: list[Mapping[str, Any]], packages: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Compare source, extraction, mapping, packages and the archive's receipts; write the result."""
    spec = run.spec
    source = run.source.count_rows(spec, run.system.agreement.cut_off)
    receipts = read_receipts(run, [p["package_id"] for p in packages])
    seed = int(run.logical_date.strftime("%Y%m%d"))
    sample = _read_back(run, packages, seed)
    result = reconcile(
        table_entity={t: spec.tables[t].entity for t in spec.tables},
        source=source,
        mapped_parts=mapped,
        packages=packages,
        receipts=receipts,
        sample=sample,
    )
    result["sample"]["seed"] = seed
    result |= {
        "system": {"id": run.system.id, "name": run.system.name, "supplier": run.system.supplier},
        "run_id": run.run_id,
        "milestone": run.milestone.value,
        "record_status": run.record_status,
        "cut_off": run.system.agreement.cut_off.isoformat(),
        "agreement_id": run.system.agreement.id,
        "snapshot": run.logical_date.isoformat(),
        "software_version": __version__,
    }
    return result


def _read_back(run: Run, packages: list[Mapping[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Download sampled patients' records from the archive and compare them byte for byte with what was sent."""
    population = []
    for p in packages:
        data = run.out("packages") / p["package_id"] / "representations" / "rep1" / "data"
        population += [(p["package_id"], d.name) for d in sorted(data.iterdir()) if d.is_dir()]
    hook = archive_hook()
    checked = []
    for package_id, patient in draw_sample(population, run.system.sample_patients, seed):
        sent = (run.out("packages") / package_id / RECORD.format(patient=patient)).read_bytes()
        got = hook.read_record(package_id, patient)
        checked.append(
            {
                "package_id": package_id,
                "patient_key": patient,
                "match": hashlib.sha256(sent).hexdigest() == hashlib.sha256(got).hexdigest(),
            }
        )
    return checked


def report_stage(run: Run, result: dict[str, Any]) -> dict[str, Any]:
    """Write the report, record its hash; a FAIL verdict fails the task after the report is written."""
    out = write_report(result, run.out("reconciliation") / run.milestone.value)
    run.record(
        "reconciliation",
        {
            "milestone": run.milestone.value,
            "verdict": result["verdict"],
            "result_sha256": out["result_sha256"],
            "html_sha256": out["html_sha256"],
            "totals": result["totals"],
        },
    )
    summary = {
        "verdict": result["verdict"],
        "totals": result["totals"],
        "quarantine_by_reason": result["quarantine_by_reason"],
        **out,
    }
    if result["verdict"] == FAIL:
        raise VerdictFail(f"reconciliation of {run.system.id} is FAIL: " + "; ".join(result["reasons"]))
    return summary


def signoff_body(system: System) -> str:
    """Markdown shown to the respondents (templated by Airflow with the report's XCom)."""
    return (
        f"## Sign-off: {system.name}\n\n"
        f"Supplier **{system.supplier}**, contract {system.contract.id}.\n\n"
        "Verdict: **{{ ti.xcom_pull(task_ids='report')['verdict'] }}**  \n"
        "Rows archived: {{ ti.xcom_pull(task_ids='report')['totals']['archived'] }}, "
        "quarantined: {{ ti.xcom_pull(task_ids='report')['totals']['quarantined'] }} "
        "of {{ ti.xcom_pull(task_ids='report')['totals']['source'] }} in the source.  \n"
        "Report: `{{ ti.xcom_pull(task_ids='report')['html'] }}`  \n"
        "SHA-256 of the result: `{{ ti.xcom_pull(task_ids='report')['result_sha256'] }}`\n\n"
        "Approving confirms the archive holds the system's records as reported, so the "
        "supplier contract may be ended."
    )


def contract_exit(run: Run, report: Mapping[str, Any], approvals: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Write the contract-exit record for procurement and mark the system decommissioned."""
    contract = run.system.contract
    signed = run.logical_date.date()
    end = max(contract.earliest_end, signed + relativedelta(months=contract.notice_months))
    record = {
        "system": {"id": run.system.id, "name": run.system.name},
        "supplier": run.system.supplier,
        "contract": contract.model_dump(mode="json"),
        "signed_off": signed.isoformat(),
        "earliest_notice_date": signed.isoformat(),
        "contract_end_date": end.isoformat(),
        "notice_deadline_for_end": (end - relativedelta(months=contract.notice_months)).isoformat(),
        "legacy_access_ends": max(run.system.milestones.contract_end, end).isoformat(),
        "annual_cost_ending_sek": contract.annual_cost_sek,
        "reconciliation": {
            "verdict": report["verdict"],
            "result_sha256": report["result_sha256"],
            "report": report["html"],
        },
        "approvals": [
            {
                "role": a["role"],
                "by": _user_id(a["responded_by_user"]),
                "at": str(a["responded_at"]),
                "decision": a["chosen_options"][0],
            }
            for a in approvals
        ],
        "status": "decommissioned",
    }
    assigned = {
        "information_owner": run.system.signoff.information_owner.id,
        "archivist": run.system.signoff.archivist.id,
    }
    for a in record["approvals"]:
        if a["decision"] != "Approve" or a["by"] != assigned[a["role"]]:
            raise DecommissionError(
                f"system {run.system.id}: the {a['role']} sign-off is '{a['decision']}' by '{a['by']}', "
                f"not an approval by the assigned '{assigned[a['role']]}'; no contract exit"
            )
    path = run.out("evidence") / "contract-exit.json"
    data = json.dumps(record, indent=2, ensure_ascii=False).encode()
    write_atomic(path, data)
    digest = hashlib.sha256(data).hexdigest()
    run.record("contract_exit", {"sha256": digest, "status": "decommissioned", "end": record["contract_end_date"]})
    return {"path": str(path), "sha256": digest, "contract_end_date": record["contract_end_date"]}


def _user_id(user: Any) -> str:
    """HITL records the responder as {"id", "name"}; older answers may be a plain name."""
    return str(user.get("id") if isinstance(user, Mapping) else user)
