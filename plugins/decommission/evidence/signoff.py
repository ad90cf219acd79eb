"""Sign-off by the plan's respondents: the stock HITL approval, with the verdict checked and the answer recorded.

:class:`SignoffOperator` is Airflow's ``ApprovalOperator`` with two additions: it refuses to
ask for an approval of a FAIL verdict (so a FAIL can never be approved), and it writes every
answer, approval or rejection, to the ledger with who gave it and the hash of the report it
was given on. A rejection skips everything after it, so no evidence pack and no contract exit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from decommission.errors import DecommissionError

if TYPE_CHECKING:
    from decommission.plan.programme import System

REPORT_TASK = "report"


class SignoffRefused(DecommissionError):
    """A sign-off was asked for on a result that may not be approved."""


def may_be_signed(report: Mapping[str, Any] | None) -> str | None:
    """Return why the report may not be signed off, or None when it may."""
    if not report:
        return "there is no reconciliation report for this run"
    if report.get("verdict") not in ("PASS", "PASS_WITH_WAIVER"):
        return f"the reconciliation verdict is {report.get('verdict')!r}; only PASS (or PASS with waiver) is signed"
    return None


def responder_id(user: Any) -> str:
    """HITL records the responder as {"id", "name"}; older answers may be a plain name."""
    return str(user.get("id") if isinstance(user, Mapping) else user)


class SignoffOperator(ApprovalOperator):
    """Ask one assigned respondent to approve the reconciliation; record the answer in the ledger.

    :param system_id: the system signed off
    :param role: ``information_owner`` or ``archivist``
    """

    template_fields = ApprovalOperator.template_fields

    def __init__(self, *, system_id: str, role: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.system_id = system_id
        self.role = role

    def execute(self, context: Any) -> Any:
        problem = may_be_signed(context["ti"].xcom_pull(task_ids=REPORT_TASK))
        if problem:
            raise SignoffRefused(f"system {self.system_id}: no {self.role} sign-off: {problem}")
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        # record first: on a rejection the parent skips what follows by raising (Airflow 3's skip())
        if "error" not in event:
            self.validate_chosen_options(event["chosen_options"])
            self._record(context, event)
        return super().execute_complete(context, event)

    def _record(self, context: Any, event: Mapping[str, Any]) -> None:
        from decommission.ledger import programme_ledger as ledger

        report = context["ti"].xcom_pull(task_ids=REPORT_TASK) or {}
        decision = event["chosen_options"][0]
        payload = {
            "role": self.role,
            "by": responder_id(event["responded_by_user"]),
            "decision": decision,
            "at": str(event["responded_at"]),
            "verdict": report.get("verdict"),
            "result_sha256": report.get("result_sha256"),
            "pdf_sha256": report.get("pdf_sha256"),
        }
        run_id = context["dag_run"].run_id
        ledger().append(system_id=self.system_id, run_id=run_id, kind="signoff", payload=payload)
        if decision != self.APPROVE:
            ledger().append(
                system_id=self.system_id,
                run_id=run_id,
                kind="contract_exit_stopped",
                payload={"role": self.role, "by": payload["by"], "reason": "sign-off rejected"},
            )


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
