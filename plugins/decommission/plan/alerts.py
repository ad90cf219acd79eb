"""Alerts for operators: a milestone run that is late, milestones passed without a run, contract risks.

Alerts go to the task or triggerer log and, as JSON lines, to ``<home>/alerts.jsonl``,
where the demo summary and a monitoring agent can read them. They never carry patient data.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Collection
from typing import Any

from decommission import settings
from decommission.errors import DecommissionError
from decommission.plan.deadlines import forecast_end, notice_deadline
from decommission.plan.programme import Plan

#: notice deadlines this close are alerted
NOTICE_WINDOW_DAYS = 90

log = logging.getLogger(__name__)


def emit(kind: str, **fields: Any) -> dict[str, Any]:
    alert = {"kind": kind, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **fields}
    log.warning("ALERT %s", json.dumps(alert, ensure_ascii=False))
    path = settings.home() / "alerts.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(alert, ensure_ascii=False) + "\n")
    return alert


async def milestone_late(system_id: str, late_after_hours: int, context: Any = None, **_: Any) -> None:
    """Deadline callback (runs in the triggerer): a milestone run has not finished in time."""
    # Airflow 3.3 passes the run as a DAGRunResponse dump, whose id key is ``dag_run_id``
    dag_run = context.get("dag_run") if isinstance(context, dict) else None
    run_id = (dag_run.get("dag_run_id") or dag_run.get("run_id")) if isinstance(dag_run, dict) else None
    emit("milestone_late", system=system_id, run_id=run_id, late_after_hours=late_after_hours)


def find_overdue(plan: Plan, today: dt.date, successful_runs: Callable[[str, dt.datetime], int]) -> list[dict]:
    """Milestones whose date has passed without a successful run of the system's DAG.

    :param successful_runs: (dag_id, milestone datetime) -> number of successful runs
    """
    overdue = []
    for system in plan.systems:
        for milestone, day in system.milestones.items():
            if not milestone.runs_dag or day >= today:
                continue
            at = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            if successful_runs(f"decommission_{system.id}", at) == 0:
                overdue.append({"system": system.id, "milestone": milestone.value, "date": day.isoformat()})
    return overdue


def find_contract_risks(plan: Plan, today: dt.date, decommissioned: Collection[str] = ()) -> list[dict]:
    """Notice deadlines within :data:`NOTICE_WINDOW_DAYS`, and final deliveries that end a contract too late.

    Notice may be given only after the final delivery is signed, so a final delivery on day D ends
    the contract ``notice_months`` after D at the earliest; later than the plan's contract end is
    a milestone that pushes the contract past its planned end. Decommissioned systems are done.
    """
    found = []
    for system in plan.systems:
        if system.id in decommissioned:
            continue
        deadline = notice_deadline(system)
        if today <= deadline <= today + dt.timedelta(days=NOTICE_WINDOW_DAYS):
            found.append(
                {
                    "kind": "notice_deadline_near",
                    "system": system.id,
                    "deadline": deadline.isoformat(),
                    "days_left": (deadline - today).days,
                    "contract_end": system.milestones.contract_end.isoformat(),
                }
            )
        end = forecast_end(system, today)
        if end > system.milestones.contract_end:
            found.append(
                {
                    "kind": "contract_end_pushed",
                    "system": system.id,
                    "final_delivery": max(system.milestones.final_delivery, today).isoformat(),
                    "notice_months": system.contract.notice_months,
                    "earliest_end": end.isoformat(),
                    "planned_end": system.milestones.contract_end.isoformat(),
                    "days_after_plan": (end - system.milestones.contract_end).days,
                }
            )
    return found


def check_programme(
    plan: Plan,
    today: dt.date,
    successful_runs: Callable[[str, dt.datetime], int],
    *,
    decommissioned: Collection[str] = (),
) -> dict:
    """The watchdog: alert on every missed milestone, plan problem and contract risk; fail on the first two.

    A contract risk (notice deadline near, end pushed past the plan) is a decision for the programme,
    not a fault to mend: it is alerted and shown on the overview and the board report, the task stays green.
    """
    overdue = find_overdue(plan, today, successful_runs)
    for item in overdue:
        emit("milestone_missed", **item)
    for problem in plan.problems:
        emit("plan_problem", detail=str(problem))
    risks = find_contract_risks(plan, today, decommissioned)
    for risk in risks:
        emit(risk.pop("kind"), **risk)
    if overdue or plan.problems:
        raise DecommissionError(
            f"{len(overdue)} milestone(s) passed without a successful run, "
            f"{len(plan.problems)} plan problem(s); see the log and alerts.jsonl"
        )
    return {"overdue": 0, "problems": 0, "contract_risks": len(risks)}
