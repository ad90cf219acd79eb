"""What the programme costs and saves, per calendar year: pure functions of the plan's figures.

The archive's costs (yearly fee, start-up contribution, the region's own IT) come from the
plan's ``economics`` section; each legacy contract costs its ``annual_cost_sek`` until it
ends. A contract is paid by whole months, the month it ends in included (a contract that
ends 30 June costs six twelfths of its year), so a month's delay costs a twelfth of a year.
Savings are the legacy costs that ended; the net effect of a year is those savings less
the archive's costs, and the programme pays for itself from the year its cumulative net
turns non-negative and stays so up to the horizon. Amounts are whole SEK.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from decommission.plan.programme import Economics, Plan

MONTHS = 12


@dataclass(frozen=True)
class ContractCost:
    """One legacy contract as the economics sees it: who, what a year costs, when it ends."""

    system_id: str
    annual_sek: int
    end: dt.date


@dataclass(frozen=True)
class YearFigures:
    """One calendar year of the programme's economics (SEK)."""

    year: int
    archive_fee: int
    startup: int
    own_it: int
    legacy_paid: int
    legacy_ended: int
    cumulative: int

    @property
    def archive_total(self) -> int:
        return self.archive_fee + self.startup + self.own_it

    @property
    def net(self) -> int:
        """Legacy costs that ended, less what the archive costs: positive is a saving."""
        return self.legacy_ended - self.archive_total


@dataclass(frozen=True)
class ProgrammeEconomics:
    years: tuple[YearFigures, ...]
    #: the first year from which the cumulative net stays at or above zero; None: not within the horizon
    payback_year: int | None
    #: system id -> what one month's delay of its contract end costs (SEK)
    delay_cost_per_month: dict[str, int]
    contracts: tuple[ContractCost, ...]

    @property
    def total_ended_per_year(self) -> int:
        """The yearly legacy cost that ends once every contract has ended."""
        return sum(c.annual_sek for c in self.contracts)


def amount_in(table: Mapping[int, int], year: int, *, recurring: bool) -> int:
    """The table's amount for ``year``; a recurring cost goes on after its last listed year at that amount."""
    if year in table:
        return table[year]
    if not recurring or not table:
        return 0
    earlier = [y for y in table if y < year]
    return table[max(earlier)] if earlier else 0


def months_paid(end: dt.date, year: int) -> int:
    """Months of ``year`` a contract ending on ``end`` is paid for (the month it ends in counts whole)."""
    if end.year < year:
        return 0
    if end.year > year:
        return MONTHS
    return end.month


def legacy_split(contract: ContractCost, year: int) -> tuple[int, int]:
    """(still paid, ended) of the contract's yearly cost in ``year``."""
    paid = round(contract.annual_sek * months_paid(contract.end, year) / MONTHS)
    return paid, contract.annual_sek - paid


def delay_cost_per_month(annual_sek: int) -> int:
    """What one more month of a legacy contract costs."""
    return round(annual_sek / MONTHS)


def calculate(economics: Economics, contracts: Sequence[ContractCost]) -> ProgrammeEconomics:
    """Every year from the first listed to the horizon: archive costs, legacy paid and ended, net, cumulative."""
    years, cumulative = [], 0
    for year in range(economics.first_year, economics.last_year + 1):
        split = [legacy_split(c, year) for c in contracts]
        figures = YearFigures(
            year=year,
            archive_fee=amount_in(economics.archive_fee_sek, year, recurring=True),
            startup=amount_in(economics.startup_sek, year, recurring=False),
            own_it=amount_in(economics.own_it_sek, year, recurring=True),
            legacy_paid=sum(p for p, _ in split),
            legacy_ended=sum(e for _, e in split),
            cumulative=0,
        )
        cumulative += figures.net
        years.append(YearFigures(**{**figures.__dict__, "cumulative": cumulative}))
    return ProgrammeEconomics(
        years=tuple(years),
        payback_year=payback_year(years),
        delay_cost_per_month={c.system_id: delay_cost_per_month(c.annual_sek) for c in contracts},
        contracts=tuple(contracts),
    )


def payback_year(years: Sequence[YearFigures]) -> int | None:
    """The first year from which the cumulative net stays non-negative to the last year; None if none."""
    found = None
    for figures in years:
        if figures.cumulative < 0:
            found = None
        elif found is None:
            found = figures.year
    return found


def plan_economics(plan: Plan, ends: Mapping[str, dt.date] | None = None) -> ProgrammeEconomics | None:
    """The plan's economics; ``ends`` overrides a contract's planned end (an exit record's actual end).

    :returns: None when the plan has no economics section
    """
    if plan.economics is None:
        return None
    ends = ends or {}
    contracts = [
        ContractCost(s.id, s.contract.annual_cost_sek, ends.get(s.id, s.milestones.contract_end)) for s in plan.systems
    ]
    return calculate(plan.economics, contracts)
