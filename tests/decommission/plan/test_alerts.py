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
    assert check_programme(plan, dt.date(2025, 3, 1), lambda dag_id, at: 0) == {"overdue": 0, "problems": 0}
    with pytest.raises(DecommissionError, match="1 milestone\\(s\\) passed without a successful run"):
        check_programme(plan, dt.date(2025, 3, 4), lambda dag_id, at: 0)
    (alert,) = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert alert["kind"] == "milestone_missed" and alert["system"] == "vas"
