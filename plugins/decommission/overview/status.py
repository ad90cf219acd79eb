"""Where each system is, derived from the ledger's entries alone (pure: no files, no database).

The ledger is the only evidence: a milestone counts as done when its reconciliation passed,
a system is decommissioned while its latest ``system_status`` says so, and a sign-off is
waited for while a request of the latest final delivery has no answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from decommission.plan.programme import Milestone, System

if TYPE_CHECKING:
    from decommission.ledger import Entry

PASSING = ("PASS", "PASS_WITH_WAIVER")
APPROVE = "Approve"


class Status(StrEnum):
    """A system's place in the programme, in the order it passes them (``DEVIATION`` at any point)."""

    PLANNED = "planned"
    TEST_APPROVED = "test_approved"
    PRODUCTION_DONE = "production_done"
    AWAITING_SIGNOFF = "awaiting_signoff"
    DECOMMISSIONED = "decommissioned"
    DEVIATION = "deviation"

    def label(self, language: str = "sv") -> str:
        return _LABELS[language if language in _LABELS else "sv"][self]


_LABELS = {
    "sv": {
        Status.PLANNED: "planerad",
        Status.TEST_APPROVED: "testleverans godkänd",
        Status.PRODUCTION_DONE: "produktionsleverans klar",
        Status.AWAITING_SIGNOFF: "väntar på signering",
        Status.DECOMMISSIONED: "avvecklad",
        Status.DEVIATION: "avvikelse",
    },
    "en": {
        Status.PLANNED: "planned",
        Status.TEST_APPROVED: "test delivery approved",
        Status.PRODUCTION_DONE: "production delivery done",
        Status.AWAITING_SIGNOFF: "waiting for sign-off",
        Status.DECOMMISSIONED: "decommissioned",
        Status.DEVIATION: "deviation",
    },
}


@dataclass(frozen=True)
class Reconciliation:
    """The latest reconciliation the ledger recorded for one milestone of a system."""

    milestone: str
    run_id: str
    verdict: str
    recorded_at: dt.datetime
    totals: dict[str, int]
    files: dict[str, str]
    entry_hash: str

    @property
    def passed(self) -> bool:
        return self.verdict in PASSING


@dataclass(frozen=True)
class Signature:
    """One sign-off answer the ledger recorded (only the sign-off operator writes these)."""

    role: str
    user: str
    name: str
    decision: str
    at: dt.datetime | None


@dataclass(frozen=True)
class LedgerView:
    """What the ledger says about one system."""

    reconciliations: dict[str, Reconciliation]
    signatures: tuple[Signature, ...]
    #: roles asked to sign the latest final delivery that have not answered
    waiting_roles: tuple[str, ...]
    decommissioned: bool
    #: the latest ``system_status`` entry's status, if any
    last_status: str | None
    rejected: bool
    last_exit: dict[str, Any] | None
    decommissioned_at: dt.datetime | None

    @property
    def latest(self) -> Reconciliation | None:
        return max(self.reconciliations.values(), key=lambda r: r.recorded_at, default=None)


def read_entries(system: System, entries: Sequence[Entry]) -> LedgerView:
    """Summarise one system's ledger entries (oldest first)."""
    recs: dict[str, Reconciliation] = {}
    status, status_at, last_exit = None, None, None
    for e in entries:
        if e.kind == "reconciliation":
            p = e.payload
            recs[str(p.get("milestone"))] = Reconciliation(
                milestone=str(p.get("milestone")),
                run_id=e.run_id,
                verdict=str(p.get("verdict")),
                recorded_at=_when(e.recorded_at),
                totals={k: int(v) for k, v in (p.get("totals") or {}).items()},
                files=dict(p.get("files") or {}),
                entry_hash=e.entry_hash,
            )
        elif e.kind == "system_status":
            status, status_at = str(e.payload.get("status")), _when(e.recorded_at)
        elif e.kind == "contract_exit":
            last_exit = dict(e.payload)
    final = recs.get(Milestone.FINAL_DELIVERY.value)
    signatures, waiting, rejected = _signoffs(system, entries, final)
    return LedgerView(
        reconciliations=recs,
        signatures=signatures,
        waiting_roles=waiting,
        decommissioned=status == "decommissioned",
        last_status=status,
        rejected=rejected,
        last_exit=last_exit,
        decommissioned_at=status_at if status == "decommissioned" else None,
    )


def _signoffs(
    system: System, entries: Sequence[Entry], final: Reconciliation | None
) -> tuple[tuple[Signature, ...], tuple[str, ...], bool]:
    """The answers given on the latest final delivery, the roles still asked, and whether one rejected."""
    if final is None:
        return (), (), False
    names = {"information_owner": system.signoff.information_owner, "archivist": system.signoff.archivist}
    answers: dict[str, Signature] = {}
    asked: list[str] = []
    for e in entries:
        if e.run_id != final.run_id:
            continue
        role = str(e.payload.get("role"))
        if e.kind == "signoff_requested":
            asked.append(role)
        elif e.kind == "signoff" and role in names:
            user = str(e.payload.get("by"))
            respondent = names[role]
            answers[role] = Signature(
                role=role,
                user=user,
                name=respondent.name if respondent.id == user else user,
                decision=str(e.payload.get("decision")),
                at=_when(str(e.payload.get("at"))) if e.payload.get("at") else None,
            )
    waiting = tuple(r for r in dict.fromkeys(asked) if r not in answers)
    if final.passed and not asked:
        waiting = ("information_owner",)  # the final delivery passed: the owner is asked next
    rejected = any(s.decision != APPROVE for s in answers.values())
    return tuple(answers.values()), waiting, rejected


def status_of(view: LedgerView) -> Status:
    """The system's status from its ledger view (see :class:`Status`)."""
    if view.decommissioned:
        return Status.DECOMMISSIONED
    latest = view.latest
    if (latest is not None and not latest.passed) or view.rejected or view.last_status == "contract exit withdrawn":
        return Status.DEVIATION
    recs = view.reconciliations
    if _passed(recs, Milestone.FINAL_DELIVERY):
        return Status.AWAITING_SIGNOFF
    if _passed(recs, Milestone.PRODUCTION_DELIVERY):
        return Status.PRODUCTION_DONE
    if _passed(recs, Milestone.TEST_DELIVERY):
        return Status.TEST_APPROVED
    return Status.PLANNED


def _passed(recs: dict[str, Reconciliation], milestone: Milestone) -> bool:
    rec = recs.get(milestone.value)
    return rec is not None and rec.passed


def _when(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
