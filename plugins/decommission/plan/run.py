"""One DAG run of one system: the plan entry, the milestone it acts for, where it writes, what it records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
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
    """The milestone a run acts for: ``conf["milestone"]`` if given, else the plan date it runs on."""
    wanted = (conf or {}).get("milestone")
    if wanted:
        try:
            return Milestone(wanted)
        except ValueError as exc:
            allowed = ", ".join(m.value for m in Milestone if m.runs_dag)
            raise MappingError(f"run conf milestone '{wanted}' is not one of: {allowed}") from exc
    found = system.milestone_on(logical_date.date()) if logical_date else None
    if found is None or not found.runs_dag:
        raise MappingError(
            f"system '{system.id}': no delivery milestone on {logical_date and logical_date.date()}; "
            'trigger with conf {"milestone": "test_delivery" | "production_delivery" | "final_delivery"}'
        )
    return found


def is_final(run: Run) -> bool:
    """Only the final delivery goes on to sign-off and the contract exit."""
    return run.milestone is Milestone.FINAL_DELIVERY
