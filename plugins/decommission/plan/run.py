"""One DAG run of one system: the plan entry, the milestone it acts for, where it writes, what it records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decommission import settings
from decommission.errors import MappingError
from decommission.ledger import programme_ledger
from decommission.plan.mapping_spec import MappingSpec, load_spec
from decommission.plan.programme import Milestone, Plan, System


@dataclass(frozen=True)
class Run:
    """One DAG run of one system: the plan entry, the milestone it acts for, its id and date."""

    plan: Plan
    system: System
    milestone: Milestone
    run_id: str
    logical_date: dt.datetime

    @property
    def spec(self) -> MappingSpec:
        return load_spec(self.plan.mapping_path(self.system))

    @property
    def record_status(self) -> str:
        return self.milestone.record_status

    @property
    def delivery_id(self) -> str:
        return f"{self.system.agreement.id}-{self.record_status}"

    @property
    def package_created(self) -> dt.datetime:
        """The one date inside packages: the snapshot's cut-off, so reruns give identical bytes."""
        return dt.datetime.combine(self.system.agreement.cut_off, dt.time(23, 59, 59), tzinfo=dt.UTC)

    def out(self, part: str) -> Path:
        return settings.system_dir(self.system.id, part)

    def record(self, kind: str, payload: dict[str, Any]) -> str:
        """Append evidence to the ledger; returns the entry hash."""
        entry = programme_ledger().append(system_id=self.system.id, run_id=self.run_id, kind=kind, payload=payload)
        return entry.entry_hash


def resolve_milestone(system: System, logical_date: dt.datetime | None, conf: Mapping[str, Any] | None) -> Milestone:
    """The milestone a run acts for: ``conf["milestone"]`` if given (the Trigger form always gives it),
    else the milestone whose plan date the run is on (scheduled runs)."""
    allowed = " | ".join(f'"{m.value}"' for m in Milestone if m.runs_dag)
    wanted = (conf or {}).get("milestone")
    if wanted:
        try:
            milestone = Milestone(wanted)
        except ValueError:
            milestone = None
        if milestone is None or not milestone.runs_dag:
            raise MappingError(
                f"decommission_{system.id}: the run's conf names the milestone {wanted!r}, which is none of {allowed}"
            )
        return milestone
    found = system.milestone_on(logical_date.date()) if logical_date else None
    if found is None or not found.runs_dag:
        when = (
            f"its logical date {logical_date.date()} is no milestone date of the plan"
            if logical_date
            else ("it has no logical date")
        )
        raise MappingError(
            f"decommission_{system.id}: the run acts for no milestone, as its conf names none and {when}; "
            f'choose the milestone in the Trigger form or trigger with conf {{"milestone": {allowed}}}'
        )
    return found


def run_date(system: System, milestone: Milestone, logical_date: dt.datetime | None) -> dt.datetime:
    """The run's date: its logical date, or, for a run triggered without one, its milestone's plan date.

    A REST trigger may leave the logical date out; the run then reports the snapshot of the
    milestone it acts for, as the scheduled run of that milestone would.
    """
    if logical_date is not None:
        return logical_date
    return dt.datetime.combine(getattr(system.milestones, milestone.value), dt.time(), tzinfo=dt.UTC)


def decommissioned_problem(system: System, statuses: Sequence[str]) -> str | None:
    """Why a new delivery run of the system is refused: the ledger's latest status says it is decommissioned.

    :param statuses: the system's ``system_status`` entries' statuses, oldest first
    """
    if not statuses or statuses[-1] != "decommissioned" or system.reopened is not None:
        return None
    return (
        f"decommission_{system.id}: {system.name} is decommissioned (contract-exit record in the ledger); "
        "new delivery runs are refused unless the plan reopens it (systems[].reopened: reason, decided_by, date)"
    )


def decommissioned_ids() -> set[str]:
    """The systems whose latest ``system_status`` in the ledger is 'decommissioned'."""
    latest: dict[str, str] = {}
    for entry in programme_ledger().entries(kind="system_status"):
        latest[entry.system_id] = str(entry.payload.get("status"))
    return {system_id for system_id, status in latest.items() if status == "decommissioned"}


def refuse_if_decommissioned(run: Run) -> None:
    """Refuse a delivery run of a decommissioned system; record a reopening the plan decided."""
    entries = programme_ledger().entries(system_id=run.system.id, kind="system_status")
    statuses = [str(e.payload.get("status")) for e in entries]
    problem = decommissioned_problem(run.system, statuses)
    if problem:
        raise MappingError(problem)
    reopened = run.system.reopened
    if reopened is not None and statuses and statuses[-1] == "decommissioned":
        run.record("system_status", {"status": "reopened", **reopened.model_dump(mode="json")})


def is_final(run: Run) -> bool:
    """Only the final delivery goes on to sign-off and the contract exit."""
    return run.milestone is Milestone.FINAL_DELIVERY
