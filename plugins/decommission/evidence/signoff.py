"""Sign-off by the plan's respondents: the stock HITL approval, on verified evidence, with every answer recorded.

:class:`SignoffOperator` is Airflow's ``ApprovalOperator`` with three additions. Before asking,
it reads the verdict and hashes from ``result.json`` verified against the ledger (never from
the XCom of ``report``, which a user may overwrite) and refuses to ask on anything but a
verified PASS or PASS_WITH_WAIVER; it shows those verified values in the body and records
them in the ledger (``signoff_requested``). When answered, it writes the answer to the ledger
(``signoff``) with the responder from Airflow's own HITL answer and the hashes that were
shown. A rejection skips everything after it and withdraws an earlier contract-exit record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from decommission.errors import DecommissionError
from decommission.evidence.records import withdraw_latest
from decommission.evidence.verified import (
    PDF_FILE,
    RESULT_FILE,
    EvidenceError,
    VerifiedResult,
    may_be_signed,
    run_entries,
    verified_result,
)

if TYPE_CHECKING:
    from decommission.plan.programme import System

__all__ = ["SignoffOperator", "SignoffRefused", "may_be_signed", "responder_id", "signoff_intro"]

REQUESTED_KIND = "signoff_requested"


class SignoffRefused(DecommissionError):
    """A sign-off was asked for on a result that may not be approved."""


def responder_id(user: Any) -> str:
    """HITL records the responder as {"id", "name"}; older answers may be a plain name."""
    return str(user.get("id") if isinstance(user, Mapping) else user)


class SignoffOperator(ApprovalOperator):
    """Ask one assigned respondent to approve the verified reconciliation; record the answer in the ledger.

    :param system_id: the system signed off
    :param role: ``information_owner`` or ``archivist``
    :param body: the fixed part of the request (:func:`signoff_intro`); the verified figures are added in execute
    """

    # no Jinja in the body: it is built in execute() from verified evidence, so no XCom can reach the signers
    template_fields = tuple(f for f in ApprovalOperator.template_fields if f != "body")

    def __init__(self, *, system_id: str, role: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.system_id = system_id
        self.role = role

    def execute(self, context: Any) -> Any:
        self.body = self.prepare_request(context["dag_run"].run_id)
        return super().execute(context)

    def prepare_request(self, run_id: str) -> str:
        """Verify the result, record what will be shown, return the body; refuse anything but a verified pass."""
        from decommission.ledger import programme_ledger

        try:
            verified = verified_result(self.system_id, run_id)
        except EvidenceError as exc:
            raise SignoffRefused(f"system {self.system_id}: no {self.role} sign-off: {exc}") from exc
        problem = may_be_signed(verified.result)
        if problem:
            raise SignoffRefused(f"system {self.system_id}: no {self.role} sign-off: {problem} ({RESULT_FILE})")
        programme_ledger().append(
            system_id=self.system_id,
            run_id=run_id,
            kind=REQUESTED_KIND,
            payload={
                "role": self.role,
                "verdict": verified.verdict,
                "result_sha256": verified.sha256,
                "pdf_sha256": verified.pdf_sha256,
                "reconciliation_entry": verified.entry_hash,
            },
        )
        return f"{self.body or ''}\n\n{verified_figures(verified)}\n\n{CLOSING}"

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        # record first: on a rejection the parent skips what follows by raising (Airflow 3's skip())
        if "error" not in event:
            self.validate_chosen_options(event["chosen_options"])
            self._record(context["dag_run"].run_id, event)
        return super().execute_complete(context, event)

    def _record(self, run_id: str, event: Mapping[str, Any]) -> None:
        from decommission.ledger import programme_ledger

        # the hashes the respondent was shown, as recorded when asking (this attempt's body is gone)
        asked = [e for e in run_entries(self.system_id, run_id, REQUESTED_KIND) if e.payload.get("role") == self.role]
        shown = asked[-1].payload if asked else {}
        decision = event["chosen_options"][0]
        payload = {
            "role": self.role,
            # the user Airflow's API server authenticated for this answer, not anything a task wrote
            "by": responder_id(event["responded_by_user"]),
            "decision": decision,
            "at": str(event["responded_at"]),
            "verdict": shown.get("verdict"),
            "result_sha256": shown.get("result_sha256"),
            "pdf_sha256": shown.get("pdf_sha256"),
            "request": asked[-1].entry_hash if asked else None,
        }
        ledger = programme_ledger()
        ledger.append(system_id=self.system_id, run_id=run_id, kind="signoff", payload=payload)
        if decision != self.APPROVE:
            ledger.append(
                system_id=self.system_id,
                run_id=run_id,
                kind="contract_exit_stopped",
                payload={"role": self.role, "by": payload["by"], "reason": "sign-off rejected"},
            )
            withdraw_latest(self.system_id, run_id, role=self.role, by=payload["by"], at=payload["at"])


CLOSING = (
    "Approving confirms the archive holds the system's records as reported, so the "
    "supplier contract may be ended. A FAIL verdict is never put to sign-off."
)


def signoff_intro(system: System) -> str:
    """The fixed start of the request (Markdown); the verified figures follow it."""
    return (
        f"## Sign-off: {system.name}\n\n"
        f"Supplier **{system.supplier}**, contract {system.contract.id} "
        f"({system.contract.annual_cost_sek:,} SEK a year)."
    )


def verified_figures(verified: VerifiedResult) -> str:
    """The verdict, figures and hashes of ``result.json`` as verified against the ledger (Markdown)."""
    r = verified.result
    totals, sample = r.get("totals", {}), r.get("sample", {})
    waived = len(r.get("waived") or [])
    return (
        f"Verdict: **{verified.verdict}**"
        + (f" ({waived} difference(s) accepted by waiver)" if waived else "")
        + "  \n"
        f"Rows in the source: {totals.get('source')}; archived: {totals.get('archived')}; "
        f"quarantined: {totals.get('quarantined')}.  \n"
        f"Read-back sample: {sample.get('checked')} patients, "
        f"{len(sample.get('mismatches') or [])} with differences.  \n"
        f"Report: `{verified.folder / PDF_FILE}`  \n"
        f"SHA-256 of the report ({RESULT_FILE}, as recorded in the ledger): `{verified.sha256}`  \n"
        f"SHA-256 of the PDF: `{verified.pdf_sha256}`"
    )
