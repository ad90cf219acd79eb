"""The programme's economics: archive costs against the legacy contracts that end, per year."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from decommission.plan.economics import (
    ContractCost,
    amount_in,
    calculate,
    delay_cost_per_month,
    legacy_split,
    months_paid,
    payback_year,
    plan_economics,
)
from decommission.plan.programme import Economics, load_plan

REPO = Path(__file__).resolve().parents[3]
#: the decision paper's table, SEK
PAPER = Economics(
    archive_fee_sek={2023: 1_740_000, 2024: 2_100_000, 2025: 2_100_000, 2026: 2_100_000},
    startup_sek={2023: 680_000},
    own_it_sek={2023: 500_000, 2024: 500_000, 2025: 500_000, 2026: 500_000},
    horizon=2030,
)


class TestAmounts:
    def test_listed_year_is_taken_as_listed(self):
        assert amount_in(PAPER.archive_fee_sek, 2023, recurring=True) == 1_740_000

    def test_recurring_cost_goes_on_at_its_last_amount(self):
        assert amount_in(PAPER.archive_fee_sek, 2029, recurring=True) == 2_100_000

    def test_one_off_cost_does_not_repeat(self):
        assert amount_in(PAPER.startup_sek, 2024, recurring=False) == 0

    def test_nothing_before_the_first_listed_year(self):
        assert amount_in(PAPER.archive_fee_sek, 2020, recurring=True) == 0


class TestLegacyCosts:
    @pytest.mark.parametrize(
        ("end", "year", "months"),
        [
            (dt.date(2026, 6, 30), 2026, 6),
            (dt.date(2026, 6, 1), 2026, 6),  # the month it ends in is paid whole
            (dt.date(2026, 1, 31), 2026, 1),
            (dt.date(2026, 6, 30), 2025, 12),
            (dt.date(2026, 6, 30), 2027, 0),
        ],
        ids=["june-end", "june-first", "january", "year-before", "year-after"],
    )
    def test_months_paid(self, end, year, months):
        assert months_paid(end, year) == months

    def test_paid_and_ended_add_up_to_the_yearly_cost(self):
        contract = ContractCost("anestesi", 380_000, dt.date(2026, 1, 31))
        paid, ended = legacy_split(contract, 2026)
        assert (paid, ended) == (31_667, 348_333) and paid + ended == 380_000

    def test_a_month_of_delay_costs_a_twelfth(self):
        assert delay_cost_per_month(4_200_000) == 350_000


class TestCalculate:
    CONTRACTS = (
        ContractCost("vas", 4_200_000, dt.date(2026, 6, 30)),
        ContractCost("lab", 1_350_000, dt.date(2026, 3, 31)),
        ContractCost("anestesi", 380_000, dt.date(2026, 1, 31)),
    )

    def test_the_decision_papers_years(self):
        result = calculate(PAPER, self.CONTRACTS)
        by_year = {y.year: y for y in result.years}
        assert list(by_year) == list(range(2023, 2031))
        assert by_year[2023].archive_total == 1_740_000 + 680_000 + 500_000
        assert by_year[2024].archive_total == 2_600_000
        assert by_year[2025].legacy_paid == 5_930_000 and by_year[2025].legacy_ended == 0
        # 2026: vas 6/12 paid, lab 3/12, anestesi 1/12
        assert by_year[2026].legacy_paid == 2_100_000 + 337_500 + 31_667
        assert by_year[2026].legacy_ended == 5_930_000 - by_year[2026].legacy_paid
        assert by_year[2027].net == 5_930_000 - 2_600_000
        assert by_year[2023].cumulative == -2_920_000
        assert by_year[2030].cumulative == sum(y.net for y in result.years)

    def test_payback_year(self):
        result = calculate(PAPER, self.CONTRACTS)
        assert result.payback_year == 2029
        assert result.delay_cost_per_month == {"vas": 350_000, "lab": 112_500, "anestesi": 31_667}
        assert result.total_ended_per_year == 5_930_000

    def test_no_payback_within_the_horizon(self):
        late = [ContractCost("vas", 4_200_000, dt.date(2031, 12, 31))]
        assert calculate(PAPER, late).payback_year is None

    def test_payback_must_last(self):
        class Y:
            def __init__(self, year: int, cumulative: int) -> None:
                self.year, self.cumulative = year, cumulative

        assert payback_year([Y(2023, 5), Y(2024, -1), Y(2025, 0), Y(2026, 3)]) == 2025


class TestPlanSection:
    def test_demo_plan_holds_the_decision_papers_figures(self):
        plan = load_plan(REPO / "include" / "programme.yaml")
        assert plan.economics == PAPER
        result = plan_economics(plan)
        # the paper's three contracts paid back in 2029; the hospital system's contract ending too, in 2028
        assert result is not None and result.payback_year == 2028

    def test_an_actual_end_replaces_the_planned_one(self):
        plan = load_plan(REPO / "include" / "programme.yaml")
        late = plan_economics(plan, {"vas": dt.date(2027, 12, 3)})
        on_time = plan_economics(plan)
        assert late.years[-4].legacy_paid > on_time.years[-4].legacy_paid  # 2027: vas still paid

    def test_plan_without_the_section_has_no_economics(self, tmp_path):
        raw = _plan(tmp_path)
        del raw["economics"]
        path = _write(tmp_path, raw)
        assert load_plan(path).economics is None and plan_economics(load_plan(path)) is None

    def test_broken_section_is_a_plan_problem_and_deliveries_go_on(self, tmp_path):
        raw = _plan(tmp_path)
        raw["economics"]["own_it_sek"] = {2024: -5}
        plan = load_plan(_write(tmp_path, raw))
        assert plan.economics is None and len(plan.systems) == 4
        (problem,) = plan.problems
        assert problem.system == "(economics)" and "never negative" in problem.message


def _plan(tmp_path: Path) -> dict:
    import shutil

    shutil.copytree(REPO / "include" / "mappings", tmp_path / "mappings")
    return yaml.safe_load((REPO / "include" / "programme.yaml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "programme.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path
