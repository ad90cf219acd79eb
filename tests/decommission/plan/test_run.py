"""Which milestone a run acts for, its date, and a decommissioned system's refusal."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from decommission.errors import MappingError
from decommission.plan.programme import Milestone, Reopening, load_plan
from decommission.plan.run import (
    Run,
    decommissioned_ids,
    decommissioned_problem,
    refuse_if_decommissioned,
    resolve_milestone,
    run_date,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def vas():
    return load_plan(REPO / "include" / "programme.yaml").system("vas")


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


class TestResolveMilestone:
    def test_the_conf_decides(self, vas):
        assert resolve_milestone(vas, utc(2026, 12, 3), {"milestone": "production_delivery"}) is (
            Milestone.PRODUCTION_DELIVERY
        )

    def test_without_conf_the_plan_date_decides(self, vas):
        assert resolve_milestone(vas, utc(2025, 9, 1), {}) is Milestone.FINAL_DELIVERY

    @pytest.mark.parametrize("wanted", ["nonsense", "contract_end"], ids=["unknown", "not-a-delivery"])
    def test_a_wrong_milestone_is_one_sentence(self, vas, wanted):
        with pytest.raises(MappingError) as caught:
            resolve_milestone(vas, None, {"milestone": wanted})
        assert str(caught.value) == (
            f"decommission_vas: the run's conf names the milestone '{wanted}', which is none of "
            '"test_delivery" | "production_delivery" | "final_delivery"'
        )
        assert not caught.value.retryable  # failing_fast fails the task at once, no retries

    def test_no_milestone_and_no_date_is_one_sentence(self, vas):
        with pytest.raises(
            MappingError,
            match=r"^decommission_vas: the run acts for no milestone, as its conf names "
            r"none and it has no logical date; choose the milestone in the Trigger form",
        ):
            resolve_milestone(vas, None, None)

    def test_a_date_off_the_plan_is_named(self, vas):
        with pytest.raises(MappingError, match="its logical date 2026-12-03 is no milestone date of the plan"):
            resolve_milestone(vas, utc(2026, 12, 3), {})


class TestRunDate:
    def test_the_logical_date_when_there_is_one(self, vas):
        assert run_date(vas, Milestone.FINAL_DELIVERY, utc(2026, 12, 3)) == utc(2026, 12, 3)

    def test_the_milestones_plan_date_without_one(self, vas):
        assert run_date(vas, Milestone.PRODUCTION_DELIVERY, None) == utc(2025, 6, 2)


class TestDecommissioned:
    def test_a_decommissioned_system_refuses(self, vas):
        problem = decommissioned_problem(vas, ["decommissioned"])
        assert problem.startswith("decommission_vas: VAS – Vårdadministrativt system is decommissioned")
        assert "unless the plan reopens it" in problem

    def test_a_withdrawn_exit_or_none_does_not(self, vas):
        assert decommissioned_problem(vas, []) is None
        assert decommissioned_problem(vas, ["decommissioned", "contract exit withdrawn"]) is None

    def test_the_plan_reopens_it(self, vas):
        reopened = vas.model_copy(
            update={"reopened": Reopening(reason="records found", decided_by="K L", date=dt.date(2026, 2, 1))}
        )
        assert decommissioned_problem(reopened, ["decommissioned"]) is None

    def test_preflight_refuses_through_the_ledger(self, vas, tmp_path, monkeypatch):
        from decommission.ledger import Ledger

        ledger_path = tmp_path / "ledger.sqlite"
        monkeypatch.setenv(
            "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(ledger_path)})
        )
        monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path))
        ledger = Ledger.sqlite(ledger_path)
        ledger.append(system_id="vas", run_id="r1", kind="system_status", payload={"status": "decommissioned"})
        plan = load_plan(REPO / "include" / "programme.yaml")
        run = Run(plan, vas, Milestone.TEST_DELIVERY, "r2", utc(2025, 3, 3))
        with pytest.raises(MappingError, match="is decommissioned"):
            refuse_if_decommissioned(run)
        assert decommissioned_ids() == {"vas"}
        reopened = vas.model_copy(
            update={"reopened": Reopening(reason="records found", decided_by="K L", date=dt.date(2026, 2, 1))}
        )
        refuse_if_decommissioned(Run(plan, reopened, Milestone.TEST_DELIVERY, "r3", utc(2025, 3, 3)))
        last = ledger.entries(system_id="vas", kind="system_status")[-1]
        assert last.payload["status"] == "reopened" and last.payload["reason"] == "records found"
        assert decommissioned_ids() == set()
