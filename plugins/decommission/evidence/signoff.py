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

import datetime as dt
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
from decommission.words import MILESTONES, REASONS, ROLES, VERDICTS, number, percent, word

if TYPE_CHECKING:
    from decommission.plan.programme import System

__all__ = ["SignoffOperator", "SignoffRefused", "may_be_signed", "responder_id", "signoff_intro", "signoff_subject"]

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
        return self._body(run_id, verified)

    def _body(self, run_id: str, verified: VerifiedResult) -> str:
        """The request: what is signed, the verified figures, what approving leads to, the owner's answer."""
        from decommission import settings
        from decommission.plan.programme import load_plan

        try:
            system = load_plan(settings.plan_path(), check_mappings=False).system(self.system_id)
        except DecommissionError:
            system = None  # the request still shows the verified figures
        language = system.report_language if system else "sv"
        parts = [self.body or "", verified_figures(verified, language)]
        if system is not None:
            parts.append(consequence(system, dt.datetime.now(dt.UTC).date()))
            if self.role == "archivist":
                parts.append(owners_answer(system, run_id, language))
        parts.append(CLOSING[language])
        return "\n\n".join(p for p in parts if p)

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


CLOSING = {
    "sv": (
        "Ett underkänt utlåtande läggs aldrig fram för signering. Avvisar du stoppas bevispaketet och "
        "avtalsavslutet, och ett tidigare avtalsavslut återkallas."
    ),
    "en": (
        "A FAIL verdict is never put to sign-off. Rejecting stops the evidence pack and the contract exit, "
        "and withdraws an earlier contract-exit record."
    ),
}
ROLE_NAMES = ROLES
VERDICT_WORDS = VERDICTS


def _num(value: Any, language: str) -> str:
    return number(value, language) if isinstance(value, int) else str(value)


def _rows(n: int, language: str, singular: str, plural: str) -> str:
    return f"{number(n, language)} {singular if n == 1 else plural}"


def signoff_subject(system: System, role: str) -> str:
    """The request's title as the respondent sees it in Required Actions."""
    language = system.report_language
    if language == "en":
        return f"Sign-off as {ROLE_NAMES['en'][role]}: decommissioning of {system.name}"
    return f"Signering som {ROLE_NAMES['sv'][role]}: avveckling av {system.name}"


def signoff_intro(system: System) -> str:
    """The fixed start of the request (Markdown): what is signed off and under which agreement."""
    c, a = system.contract, system.agreement
    if system.report_language == "en":
        log = "archived" if system.access_log.disposition == "archived" else "deleted by decision"
        return (
            f"## Decommissioning of {system.name}\n\n"
            f"Supplier **{system.supplier}**, contract {c.id}: {number(c.annual_cost_sek, 'en')} SEK a year, "
            f"{c.notice_months} months' notice, no earlier end than {c.earliest_end}.  \n"
            f"Delivery agreement {a.id} to the archive's {a.archive}, cut-off {a.cut_off}. "
            f"Access log: {log} ({system.access_log.reference or '-'})."
        )
    archive = "mellanarkiv" if a.archive == "mellanarkiv" else "slutarkiv"
    log = "arkiveras" if system.access_log.disposition == "archived" else "gallras enligt beslut"
    return (
        f"## Avveckling av {system.name}\n\n"
        f"Leverantör **{system.supplier}**, avtal {c.id}: {number(c.annual_cost_sek)} kr per år, "
        f"{c.notice_months} månaders uppsägningstid, upphör tidigast {c.earliest_end}.  \n"
        f"Leveransöverenskommelse {a.id} till arkivets {archive}, brytdatum {a.cut_off}. "
        f"Åtkomstloggen {log} ({system.access_log.reference or '–'})."
    )


def consequence(system: System, today: dt.date) -> str:
    """What approving leads to, if the other respondent approves today too (Markdown)."""
    from decommission.plan.deadlines import end_if_signed_on

    end = end_if_signed_on(system, today)
    planned = system.milestones.contract_end
    access = max(end, planned)
    c = system.contract
    if system.report_language == "en":
        late = f" (planned {planned}: {(end - planned).days} days later)" if end > planned else f" (planned {planned})"
        return (
            f"**If you approve** (and the other respondent does too): notice can be given from {today}; "
            f"the contract then ends {end} at the earliest{late}; access to the legacy system ends {access}; "
            f"the yearly cost of {number(c.annual_cost_sek, 'en')} SEK ends with the contract."
        )
    late = f" (planerat {planned}: {(end - planned).days} dagar senare)" if end > planned else f" (planerat {planned})"
    return (
        f"**Om du godkänner** (och den andra signeraren också gör det): uppsägning kan ske från {today}; "
        f"avtalet upphör då tidigast {end}{late}; åtkomsten till det gamla systemet upphör {access}; "
        f"årskostnaden {number(c.annual_cost_sek)} kr upphör med avtalet."
    )


def verified_figures(verified: VerifiedResult, language: str = "sv") -> str:
    """The verdict, figures and hashes of ``result.json`` as verified against the ledger (Markdown)."""
    from decommission.settings import report_url

    r = verified.result
    totals, sample = r.get("totals", {}), r.get("sample", {})
    waived = len(r.get("waived") or [])
    verdict = VERDICT_WORDS[language].get(verified.verdict, verified.verdict)
    pdf = report_url(verified.system_id, verified.milestone, PDF_FILE)
    html = report_url(verified.system_id, verified.milestone, "report.html")
    source, disposed = totals.get("source"), totals.get("disposed")
    share = ""
    if isinstance(source, int) and isinstance(disposed, int) and source:
        share = f" ({percent(disposed / source, language)})"
    delivery = word(MILESTONES, verified.milestone, language).lower()
    n = len(sample.get("mismatches") or [])
    archived, flagged, corrected = (_num(totals.get(k), language) for k in ("archived", "flagged", "corrected"))
    coverage = (r.get("coverage") or {}).get("coverage")
    if language == "en":
        return (
            f"Verdict on the {delivery}: **{verdict}**"
            + (f" ({_rows(waived, language, 'difference', 'differences')} accepted by waiver)" if waived else "")
            + "  \n"
            f"Rows in the source: {_num(source, language)}; archived: {archived} (of them flagged: {flagged}, "
            f"corrected: {corrected}); disposed of by decision: {_num(disposed, language)}{share}.  \n"
            + (f"Coverage of the source's columns: {percent(coverage, language)}.  \n" if coverage is not None else "")
            + decisions_text(r, language)
            + f"Read-back sample: {_num(sample.get('checked'), language)} patients, {number(n, language)} with "
            "differences.  \n"
            f"Report: [reconciliation report (PDF)]({pdf}) · [HTML]({html})  \n"
            f"SHA-256 of {RESULT_FILE} (as recorded in the ledger): `{verified.sha256}`  \n"
            f"SHA-256 of the PDF: `{verified.pdf_sha256}`"
        )
    return (
        f"Utlåtande för {delivery}en: **{verdict}**"
        + (
            f" ({_rows(waived, language, 'avvikelse godtagen', 'avvikelser godtagna')} genom undantag)"
            if waived
            else ""
        )
        + "  \n"
        f"Rader i källan: {_num(source, language)}; arkiverade: {archived} (varav flaggade: {flagged}, "
        f"rättade: {corrected}); gallrade genom beslut: {_num(disposed, language)}{share}.  \n"
        + (f"Täckning av källans kolumner: {percent(coverage, language)}.  \n" if coverage is not None else "")
        + decisions_text(r, language)
        + f"Stickprov: {_num(sample.get('checked'), language)} patienter kontrollerade, {number(n, language)} med "
        "avvikelser.  \n"
        f"Rapport: [avstämningsrapporten (PDF)]({pdf}) · [HTML]({html})  \n"
        f"SHA-256 för {RESULT_FILE} (enligt liggaren): `{verified.sha256}`  \n"
        f"SHA-256 för PDF:en: `{verified.pdf_sha256}`"
    )


def owners_answer(system: System, run_id: str, language: str) -> str:
    """For the archivist: the information owner's answer on this run, from the ledger."""
    answers = [
        e.payload for e in run_entries(system.id, run_id, "signoff") if e.payload.get("role") == "information_owner"
    ]
    if not answers:
        return ""
    p = answers[-1]
    owner = system.signoff.information_owner
    who = owner.name if p.get("by") == owner.id else str(p.get("by"))
    when = str(p.get("at", ""))[:16]
    if language == "en":
        decision = "approved" if p.get("decision") == ApprovalOperator.APPROVE else "rejected"
        return f"The information owner {who} {decision} on {when} (UTC)."
    decision = "godkände" if p.get("decision") == ApprovalOperator.APPROVE else "avvisade"
    return f"Informationsägaren {who} {decision} {when} (UTC)."


def decisions_text(result: Mapping[str, Any], language: str = "en") -> str:
    """One Markdown line per class of rows with a finding: rows, what became of them, the decision covering them."""
    classes = (result.get("dispositions") or {}).get("classes") or []
    if not classes:
        return ""
    sv = language == "sv"
    words = _CLASS_WORDS["sv" if sv else "en"]
    lines = [
        "Rader med fynd, och beslutet som gäller varje klass:"
        if sv
        else "Rows with a finding, and the decision covering each class:"
    ]
    for c in classes:
        kind = c.get("decision_kind")
        if kind == "declared":
            decision = (
                f"{c.get('decision')} ({c.get('reference') or ('utan referens' if sv else 'no reference')}, "
                f"{c.get('decided_by')})"
            )
        elif kind == "correction_list":
            decision = f"{'rättelselistan' if sv else 'the correction list'} ({c.get('decided_by')})"
        elif kind == "patient":
            decision = f"{'patientens beslut' if sv else 'the patient' + chr(39) + 's decision'} {c.get('reference')}"
        else:
            decision = "behålls och flaggas, standard" if sv else "kept and flagged, the default"
        rows = _rows(int(c["rows"]), language, "rad" if sv else "row", "rader" if sv else "rows")
        reason = word(REASONS, c["reason"], "sv" if sv else "en")
        what = _ONE_ROW[c["class"]] if sv and int(c["rows"]) == 1 else words[c["class"]]
        lines.append(f"- {c['table']}, {reason}: {rows} {what}; {decision}")
    return "  \n".join(lines) + "  \n"


_CLASS_WORDS = {
    "sv": {"flagged": "arkiverade, flaggade", "corrected": "arkiverade, rättade", "disposed": "gallrade genom beslut"},
    "en": {"flagged": "archived, flagged", "corrected": "archived, corrected", "disposed": "disposed of by decision"},
}
#: a single row in Swedish: "1 rad arkiverad, rättad"
_ONE_ROW = {"flagged": "arkiverad, flaggad", "corrected": "arkiverad, rättad", "disposed": "gallrad genom beslut"}
