"""The programme's state as the overview and the board report show it: plan, ledger and verified files only.

Figures come from ``result.json`` only when its SHA-256 equals the one the ledger recorded
(and the report files likewise); a file that changed after it was recorded is named as such
and its figures are not shown. Nothing here carries patient data: counts, dates, hashes and
the names of the staff who signed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from decommission import settings
from decommission.evidence.verified import sha256_of
from decommission.overview.status import LedgerView, Reconciliation, Status, read_entries, status_of
from decommission.plan.deadlines import days_past_plan, forecast_end, notice_deadline
from decommission.plan.economics import ProgrammeEconomics, delay_cost_per_month, plan_economics
from decommission.plan.programme import Milestone, Plan, System

if TYPE_CHECKING:
    from decommission.ledger import Entry, Ledger

#: report files the ledger records per reconciliation (report/publish.py) and their names on disk
REPORT_FILES = {"result": "result.json", "html": "report.html", "pdf": "report.pdf"}


@dataclass(frozen=True)
class ReportFiles:
    """One milestone's report files checked against the ledger's hashes."""

    reconciliation: Reconciliation
    folder: Path
    #: file key (result, html, pdf) -> None when it matches the ledger, else what is wrong
    problems: dict[str, str | None]
    #: result.json's content, only when it matches the ledger
    result: dict[str, Any] | None

    def ok(self, key: str) -> bool:
        return key in self.problems and self.problems[key] is None

    @property
    def figures(self) -> dict[str, Any]:
        """The figures shown: from the verified result.json (the ledger's own totals when it is not)."""
        if self.result is None:
            return {"totals": self.reconciliation.totals, "packages": None, "sample": None, "verified": False}
        sample = self.result.get("sample") or {}
        return {
            "totals": {k: int(v) for k, v in self.result["totals"].items()},
            "packages": self.result.get("packages"),
            "sample": {"checked": sample.get("checked", 0), "mismatches": len(sample.get("mismatches") or [])},
            "verified": True,
        }


@dataclass(frozen=True)
class MilestoneRow:
    milestone: Milestone
    planned: dt.date
    actual: dt.date | None
    verdict: str | None
    overdue: bool


@dataclass(frozen=True)
class ExitRecord:
    """The latest contract-exit record, as the ledger recorded it and as verified on disk."""

    file: str
    verified: bool
    problem: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class SystemState:
    system: System
    status: Status
    view: LedgerView
    milestones: tuple[MilestoneRow, ...]
    reports: dict[str, ReportFiles]
    exit: ExitRecord | None
    notice_deadline: dt.date
    contract_end: dt.date
    contract_end_is_actual: bool
    access_ends: dt.date
    delay_cost_per_month: int

    @property
    def days_past_plan(self) -> int:
        return days_past_plan(self.system, self.contract_end)

    @property
    def latest_report(self) -> ReportFiles | None:
        latest = self.view.latest
        return self.reports.get(latest.milestone) if latest else None

    @property
    def waiting_for(self) -> list[str]:
        """The names of the respondents asked to sign who have not answered."""
        who = {"information_owner": self.system.signoff.information_owner, "archivist": self.system.signoff.archivist}
        return (
            [who[r].name for r in self.view.waiting_roles if r in who] if self.status is Status.AWAITING_SIGNOFF else []
        )


@dataclass(frozen=True)
class ProgrammeState:
    plan: Plan
    today: dt.date
    systems: tuple[SystemState, ...]
    economics: ProgrammeEconomics | None
    #: the first ledger entry whose content or link was changed, if any ("seq kind system")
    ledger_broken: str | None
    board_reports: tuple[dict[str, Any], ...] = field(default=())

    @property
    def totals(self) -> dict[str, int]:
        """Programme totals over every system's latest verified figures."""
        out: dict[str, int] = defaultdict(int)
        for s in self.systems:
            report = s.latest_report
            if report is not None:
                for k, v in report.figures["totals"].items():
                    out[k] += v
        out["systems"] = len(self.systems)
        out["decommissioned"] = sum(s.status is Status.DECOMMISSIONED for s in self.systems)
        out["annual_cost"] = sum(s.system.contract.annual_cost_sek for s in self.systems)
        out["annual_cost_ended"] = sum(
            s.system.contract.annual_cost_sek for s in self.systems if s.status is Status.DECOMMISSIONED
        )
        return dict(out)


def programme_state(plan: Plan, today: dt.date, ledger: Ledger | None = None) -> ProgrammeState:
    """Read the ledger once and the files it vouches for; build every system's state."""
    from decommission.ledger import programme_ledger

    ledger = ledger or programme_ledger()
    broken = ledger.verify()
    by_system: dict[str, list[Entry]] = defaultdict(list)
    for entry in ledger.entries():
        by_system[entry.system_id].append(entry)
    systems = tuple(system_state(s, by_system.get(s.id, []), today) for s in plan.systems)
    ends = {s.system.id: s.contract_end for s in systems}
    return ProgrammeState(
        plan=plan,
        today=today,
        systems=systems,
        economics=plan_economics(plan, ends),
        ledger_broken=f"{broken.seq} ({broken.kind}, {broken.system_id})" if broken else None,
        board_reports=tuple(e.payload | {"recorded_at": e.recorded_at} for e in by_system.get(BOARD_SYSTEM_ID, [])),
    )


#: the ledger's system id for programme-wide entries (the board report)
BOARD_SYSTEM_ID = "programme"


def system_state(system: System, entries: list[Entry], today: dt.date) -> SystemState:
    view = read_entries(system, entries)
    base = settings.home() / system.id
    reports = {m: check_reports(r, base / "reconciliation" / m) for m, r in view.reconciliations.items()}
    exit_record = check_exit(view.last_exit, base / "evidence") if view.decommissioned else None
    if exit_record is not None and exit_record.verified:
        end = dt.date.fromisoformat(exit_record.data["contract_end_date"])
        access = dt.date.fromisoformat(exit_record.data["legacy_access_ends"])
        actual = True
    else:
        end = forecast_end(system, today)
        access, actual = max(end, system.milestones.contract_end), False
    return SystemState(
        system=system,
        status=status_of(view),
        view=view,
        milestones=tuple(_milestone_rows(system, view, today)),
        reports=reports,
        exit=exit_record,
        notice_deadline=notice_deadline(system),
        contract_end=end,
        contract_end_is_actual=actual,
        access_ends=access,
        delay_cost_per_month=delay_cost_per_month(system.contract.annual_cost_sek),
    )


def _milestone_rows(system: System, view: LedgerView, today: dt.date) -> list[MilestoneRow]:
    rows = []
    for milestone, planned in system.milestones.items():
        if not milestone.runs_dag:
            continue
        rec = view.reconciliations.get(milestone.value)
        actual = rec.recorded_at.date() if rec is not None and rec.passed else None
        rows.append(
            MilestoneRow(
                milestone=milestone,
                planned=planned,
                actual=actual,
                verdict=rec.verdict if rec else None,
                overdue=actual is None and planned < today and not view.decommissioned,
            )
        )
    return rows


def check_reports(rec: Reconciliation, folder: Path) -> ReportFiles:
    """Each report file against the SHA-256 the ledger recorded; result.json read only when it matches."""
    problems: dict[str, str | None] = {}
    for key, name in REPORT_FILES.items():
        recorded = rec.files.get(key)
        if recorded is None:
            continue
        actual = sha256_of(folder / name, recorded)
        if actual is None:
            problems[key] = f"{name} saknas"
        elif actual != recorded:
            problems[key] = f"{name} har ändrats efter att den registrerades i liggaren"
        else:
            problems[key] = None
    result = None
    if problems.get("result") is None and "result" in problems:
        result = json.loads((folder / REPORT_FILES["result"]).read_bytes())
    return ReportFiles(reconciliation=rec, folder=folder, problems=problems, result=result)


def check_exit(payload: dict[str, Any] | None, folder: Path) -> ExitRecord | None:
    """The latest contract-exit record whose SHA-256 equals the ledger's."""
    if not payload or not payload.get("file"):
        return None
    path = folder / str(payload["file"])
    actual = sha256_of(path, payload.get("sha256"))
    if actual is None:
        return ExitRecord(path.name, False, f"{path.name} saknas", {})
    if actual != payload.get("sha256"):
        return ExitRecord(path.name, False, f"{path.name} har ändrats efter att den registrerades i liggaren", {})
    return ExitRecord(path.name, True, None, json.loads(path.read_bytes()))
