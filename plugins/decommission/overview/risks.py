"""The risks a programme leader must see, and the decisions they call for (pure functions of the state)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from decommission.overview.state import ProgrammeState, SystemState
from decommission.overview.status import Status
from decommission.overview.words import MILESTONES, day, kronor, word

#: notice deadlines this close are flagged
NOTICE_WINDOW = dt.timedelta(days=90)


@dataclass(frozen=True)
class Risk:
    kind: str
    system_id: str
    text: str
    #: what the board or the programme must decide, if anything
    decision: str = ""


def risks(state: ProgrammeState, language: str = "sv") -> list[Risk]:
    """Overdue milestones, near or passed notice deadlines, failed reconciliations, sign-offs waited for."""
    out: list[Risk] = []
    for s in state.systems:
        out += _overdue(s, language) + _notice(s, state.today, language) + _failed(s, language)
        out += _waiting(s, language) + _late_end(s, language)
    if state.ledger_broken:
        out.append(Risk("ledger", "", _t(language, "ledger", entry=state.ledger_broken)))
    return out


def _overdue(s: SystemState, language: str) -> list[Risk]:
    return [
        Risk(
            "overdue",
            s.system.id,
            _t(
                language,
                "overdue",
                system=s.system.name,
                milestone=word(MILESTONES, m.milestone.value, language),
                planned=day(m.planned),
            ),
        )
        for m in s.milestones
        if m.overdue
    ]


def _notice(s: SystemState, today: dt.date, language: str) -> list[Risk]:
    if s.status is Status.DECOMMISSIONED:
        return []
    deadline = s.notice_deadline
    if today <= deadline <= today + NOTICE_WINDOW:
        return [
            Risk(
                "notice_soon",
                s.system.id,
                _t(language, "notice_soon", system=s.system.name, deadline=day(deadline), days=(deadline - today).days),
                _t(language, "notice_soon_decision", system=s.system.name),
            )
        ]
    if deadline < today:
        return [
            Risk(
                "notice_passed",
                s.system.id,
                _t(
                    language,
                    "notice_passed",
                    system=s.system.name,
                    deadline=day(deadline),
                    end=day(s.system.milestones.contract_end),
                ),
            )
        ]
    return []


def _failed(s: SystemState, language: str) -> list[Risk]:
    latest = s.view.latest
    if latest is None or latest.passed:
        return []
    return [
        Risk(
            "fail",
            s.system.id,
            _t(language, "fail", system=s.system.name, milestone=word(MILESTONES, latest.milestone, language)),
            _t(language, "fail_decision"),
        )
    ]


def _waiting(s: SystemState, language: str) -> list[Risk]:
    if not s.waiting_for:
        return []
    return [Risk("waiting", s.system.id, _t(language, "waiting", system=s.system.name, who=", ".join(s.waiting_for)))]


def _late_end(s: SystemState, language: str) -> list[Risk]:
    days = s.days_past_plan
    if days == 0:
        return []
    cost = kronor(s.delay_cost_per_month * -(-days // 30), language)
    return [
        Risk(
            "late_end",
            s.system.id,
            _t(
                language,
                "late_end_actual" if s.contract_end_is_actual else "late_end",
                system=s.system.name,
                end=day(s.contract_end),
                planned=day(s.system.milestones.contract_end),
                days=days,
                cost=cost,
            ),
            # an end already agreed is a fact to report; only a forecast leaves something to decide
            ""
            if s.contract_end_is_actual
            else _t(language, "late_end_decision", system=s.system.name, planned=day(s.system.milestones.contract_end)),
        )
    ]


_TEXTS = {
    "sv": {
        "overdue": "{system}: {milestone} planerad {planned} är inte klar.",
        "notice_soon": "{system}: sista dag för uppsägning inför planerat avtalsslut är {deadline} (om {days} dagar).",
        "notice_soon_decision": "Säga upp avtalet för {system} i tid, eller besluta om senare avtalsslut.",
        "notice_passed": (
            "{system}: sista dag för uppsägning ({deadline}) har passerat; avtalet kan inte upphöra {end}."
        ),
        "fail": "{system}: avstämningen av {milestone} är underkänd.",
        "fail_decision": "Avvikelsen utreds; ett undantag kräver beslut av informationsägaren och arkivarien.",
        "waiting": "{system}: väntar på signering av {who}.",
        "late_end": (
            "{system}: avtalet kan tidigast upphöra {end}, {days} dagar efter planerat avtalsslut {planned} "
            "(kostar omkring {cost})."
        ),
        "late_end_actual": (
            "{system}: avtalet upphör {end}, {days} dagar efter planerat avtalsslut {planned} (kostar omkring {cost})."
        ),
        "late_end_decision": "Godta senare avtalsslut för {system} än {planned}, eller förhandla om uppsägningstiden.",
        "ledger": "Liggarens kedja är bruten vid post {entry}: uppgifterna kan inte styrkas.",
    },
    "en": {
        "overdue": "{system}: {milestone} planned for {planned} is not done.",
        "notice_soon": "{system}: the last day to give notice for the planned end is {deadline} (in {days} days).",
        "notice_soon_decision": "Give notice for {system} in time, or decide on a later contract end.",
        "notice_passed": (
            "{system}: the last day to give notice ({deadline}) has passed; the contract cannot end {end}."
        ),
        "fail": "{system}: the reconciliation of the {milestone} failed.",
        "fail_decision": (
            "The deviation is investigated; a waiver needs a decision by the information owner and archivist."
        ),
        "waiting": "{system}: waiting for sign-off by {who}.",
        "late_end": (
            "{system}: the contract can end {end} at the earliest, {days} days after the planned end {planned} "
            "(costs about {cost})."
        ),
        "late_end_actual": (
            "{system}: the contract ends {end}, {days} days after the planned end {planned} (costs about {cost})."
        ),
        "late_end_decision": "Accept a later contract end for {system} than {planned}, or negotiate the notice period.",
        "ledger": "The ledger's chain is broken at entry {entry}: the figures cannot be vouched for.",
    },
}


def _t(language: str, key: str, **values: object) -> str:
    return _TEXTS[language if language in _TEXTS else "sv"][key].format(**values)
