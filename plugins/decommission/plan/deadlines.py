"""A contract's dates as the plan makes them: the last day to give notice, and the end a sign-off day gives.

Notice may be given only once both signers have approved the final delivery (see
evidence/contract.py); the contract then ends ``notice_months`` later, never before its
earliest end. So a final delivery signed on day D ends the contract on
``max(earliest_end, D + notice_months)``, and the plan's contract end is reachable only
when notice is given by ``contract_end - notice_months``.
"""

from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta

from decommission.plan.programme import System


def notice_deadline(system: System) -> dt.date:
    """The last day notice can be given for the contract to end on the plan's contract end."""
    return system.milestones.contract_end - relativedelta(months=system.contract.notice_months)


def end_if_signed_on(system: System, signed: dt.date) -> dt.date:
    """The contract end that follows from both approvals on ``signed``."""
    return max(system.contract.earliest_end, signed + relativedelta(months=system.contract.notice_months))


def forecast_end(system: System, today: dt.date) -> dt.date:
    """The earliest contract end still possible: signed on the final delivery's date, or today if that passed."""
    return end_if_signed_on(system, max(system.milestones.final_delivery, today))


def days_past_plan(system: System, end: dt.date) -> int:
    """How many days ``end`` lies after the plan's contract end (0 when on time or earlier)."""
    return max(0, (end - system.milestones.contract_end).days)
