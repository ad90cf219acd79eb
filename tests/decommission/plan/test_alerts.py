from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

from decommission.plan.alerts import find_overdue, milestone_late
from decommission.plan.programme import load_plan

REPO = Path(__file__).resolve().parents[3]


def test_milestones_passed_without_a_successful_run_are_listed():
    plan = load_plan(REPO / "include" / "programme.yaml")
    done = {("decommission_vas", dt.datetime(2025, 3, 3, tzinfo=dt.UTC))}

    def successful(dag_id: str, at: dt.datetime) -> int:
        return int((dag_id, at) in done)

    overdue = find_overdue(plan, dt.date(2025, 6, 10), successful)
    assert overdue == [
        {"system": "vas", "milestone": "production_delivery", "date": "2025-06-02"},
        {"system": "lab", "milestone": "test_delivery", "date": "2025-04-07"},
        {"system": "anestesi", "milestone": "test_delivery", "date": "2025-05-05"},
        {"system": "sjukhus", "milestone": "test_delivery", "date": "2025-06-09"},
    ]
    assert find_overdue(plan, dt.date(2025, 3, 3), successful) == []  # due today is not yet overdue


def test_late_milestone_alert_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path))
    asyncio.run(milestone_late(system_id="lab", late_after_hours=24, context={"dag_run": {"dag_run_id": "r1"}}))
    (line,) = (tmp_path / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    alert = json.loads(line)
    assert alert | {"at": None} == {
        "kind": "milestone_late",
        "at": None,
        "system": "lab",
        "run_id": "r1",
        "late_after_hours": 24,
    }


def test_watchdog_fails_and_alerts_on_a_missed_milestone(tmp_path, monkeypatch):
    import pytest

    from decommission.errors import DecommissionError
    from decommission.plan.alerts import check_programme

    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path))
    plan = load_plan(REPO / "include" / "programme.yaml")
    # the demo plan's contracts all end later than planned: alerted, not a failure
    assert check_programme(plan, dt.date(2025, 3, 1), lambda dag_id, at: 0) == {
        "overdue": 0,
        "problems": 0,
        "contract_risks": 3,
    }
    with pytest.raises(DecommissionError, match="1 milestone\\(s\\) passed without a successful run"):
        check_programme(plan, dt.date(2025, 3, 4), lambda dag_id, at: 0)
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    (alert,) = [a for a in alerts if a["kind"] == "milestone_missed"]
    assert alert["system"] == "vas"


def test_contract_risks_near_notice_deadline_and_pushed_end():
    from decommission.plan.alerts import find_contract_risks

    plan = load_plan(REPO / "include" / "programme.yaml")
    # lab: contract end 2026-03-31, 6 months' notice: the last day to give notice is 2025-09-30
    found = find_contract_risks(plan, dt.date(2025, 8, 1))
    near = [r for r in found if r["kind"] == "notice_deadline_near"]
    assert {r["system"]: r["days_left"] for r in near} == {"lab": 60}  # anestesi: 2025-10-31, 91 days
    pushed = {r["system"]: r for r in found if r["kind"] == "contract_end_pushed"}
    # vas: final delivery 2025-09-01 + 12 months' notice ends 2026-09-01, after the planned 2026-06-30
    assert pushed["vas"]["earliest_end"] == "2026-09-01" and pushed["vas"]["days_after_plan"] == 63
    assert find_contract_risks(plan, dt.date(2025, 8, 1), decommissioned={"vas", "lab", "anestesi"}) == []


def test_watchdog_writes_contract_risks_to_alerts(tmp_path, monkeypatch):
    from decommission.plan.alerts import check_programme

    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path))
    plan = load_plan(REPO / "include" / "programme.yaml")
    check_programme(plan, dt.date(2025, 2, 1), lambda dag_id, at: 0, decommissioned={"anestesi"})
    alerts = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert {(a["kind"], a["system"]) for a in alerts} == {
        ("contract_end_pushed", "vas"),
        ("contract_end_pushed", "lab"),
    }
