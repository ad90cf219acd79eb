"""The programme state and its risks, from the ledger and the report files it vouches for."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from decommission.overview.risks import risks
from decommission.overview.state import programme_state
from decommission.overview.status import Status
from decommission.overview.view import programme_view
from decommission.plan.programme import load_plan
from tests.decommission.overview.programme_fixture import PLAN, TOTALS, build

TODAY = dt.date(2025, 9, 15)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def state(home):
    return programme_state(load_plan(PLAN), TODAY, build(home))


def _system(state, system_id):
    return next(s for s in state.systems if s.system.id == system_id)


class TestStatus:
    def test_each_systems_status_follows_the_ledger(self, state):
        assert {s.system.id: s.status for s in state.systems} == {
            "vas": Status.DECOMMISSIONED,
            "lab": Status.AWAITING_SIGNOFF,
            "anestesi": Status.DEVIATION,
            "sjukhus": Status.PLANNED,  # the hospital system: no delivery in the fixture's ledger
        }

    def test_swedish_labels(self):
        assert [s.label("sv") for s in Status] == [
            "planerad",
            "testleverans godkänd",
            "produktionsleverans klar",
            "väntar på signering",
            "avvecklad",
            "avvikelse",
        ]

    def test_who_signed_and_who_is_waited_for(self, state):
        vas, lab = _system(state, "vas"), _system(state, "lab")
        assert [(s.name, s.decision) for s in vas.view.signatures] == [
            ("Karin Lindström (verksamhetschef)", "Approve"),
            ("Olof Öberg (regionarkivarie)", "Approve"),
        ]
        assert lab.waiting_for == ["Olof Öberg (regionarkivarie)"]
        assert vas.waiting_for == []


class TestFiguresAndFiles:
    def test_figures_are_those_of_the_verified_result(self, state):
        for system_id, totals in TOTALS.items():
            report = _system(state, system_id).latest_report
            assert report.figures["totals"] == totals and report.figures["verified"]

    def test_a_changed_file_is_named_and_its_figures_are_not_shown(self, home):
        ledger = build(home)
        result = home / "lab" / "reconciliation" / "final_delivery" / "result.json"
        data = json.loads(result.read_bytes())
        data["totals"]["archived"] = 1500  # someone makes the figures look better
        result.write_text(json.dumps(data))
        lab = _system(programme_state(load_plan(PLAN), TODAY, ledger), "lab")
        report = lab.latest_report
        assert report.problems["result"] == "result.json har ändrats efter att den registrerades i liggaren"
        assert report.figures == {"totals": TOTALS["lab"], "packages": None, "sample": None, "verified": False}
        view = next(v for v in programme_view(programme_state(load_plan(PLAN), TODAY, ledger))["systems"])
        assert view["id"] == "vas"  # the others stay as they were

    def test_the_exit_record_gives_the_actual_contract_end(self, state):
        vas = _system(state, "vas")
        assert vas.exit.verified and vas.contract_end == dt.date(2026, 9, 10) and vas.contract_end_is_actual
        assert vas.access_ends == dt.date(2026, 9, 10)
        assert vas.days_past_plan == 72  # planned 2026-06-30

    def test_a_forecast_when_not_yet_signed(self, state):
        lab = _system(state, "lab")  # final delivery 2025-11-03 + 6 months' notice
        assert not lab.contract_end_is_actual and lab.contract_end == dt.date(2026, 5, 3)

    def test_actual_dates_and_overdue_milestones(self, state):
        anestesi = _system(state, "anestesi")
        rows = {m.milestone.value: m for m in anestesi.milestones}
        assert rows["test_delivery"].overdue and rows["test_delivery"].actual is None
        assert rows["test_delivery"].verdict == "FAIL"
        assert not rows["production_delivery"].overdue  # due today is not yet overdue
        assert all(m.actual is not None for m in _system(state, "vas").milestones)


class TestRisks:
    def test_risks_name_system_and_date(self, state):
        found = {(r.kind, r.system_id) for r in risks(state)}
        assert found == {
            ("overdue", "anestesi"),
            ("overdue", "sjukhus"),
            ("fail", "anestesi"),
            ("waiting", "lab"),
            ("notice_soon", "lab"),
            ("notice_soon", "anestesi"),
            ("late_end", "vas"),
            ("late_end", "lab"),
            ("late_end", "anestesi"),
        }
        texts = [r.text for r in risks(state) if r.system_id == "lab"]
        assert "Klinisk kemi – laboratoriesystem: väntar på signering av Olof Öberg (regionarkivarie)." in texts
        assert any("sista dag för uppsägning inför planerat avtalsslut är 2025-09-30 (om 15 dagar)" in t for t in texts)

    def test_a_decision_only_where_one_is_left(self, state):
        by_kind = {(r.kind, r.system_id): r for r in risks(state)}
        assert by_kind[("late_end", "vas")].decision == ""  # the exit is signed: a fact, not a choice
        assert "förhandla om uppsägningstiden" in by_kind[("late_end", "lab")].decision

    def test_a_passed_notice_deadline(self, home):
        state = programme_state(load_plan(PLAN), dt.date(2025, 11, 15), build(home))
        kinds = {(r.kind, r.system_id) for r in risks(state)}
        assert ("notice_passed", "lab") in kinds and ("notice_passed", "anestesi") in kinds

    def test_a_broken_ledger_is_a_risk(self, home):
        import sqlite3

        ledger = build(home)
        with sqlite3.connect(home / "ledger.sqlite") as db:
            db.execute(
                "UPDATE ledger_entry SET payload = replace(payload, 'FAIL', 'PASS') WHERE system_id = 'anestesi'"
            )
        state = programme_state(load_plan(PLAN), TODAY, ledger)
        assert state.ledger_broken is not None
        assert any(r.kind == "ledger" for r in risks(state))


class TestView:
    def test_swedish_numbers_and_words(self, state):
        view = programme_view(state, "sv")
        vas = next(s for s in view["systems"] if s["id"] == "vas")
        assert vas["source"] == "3\u00a0092" and vas["disposed_share"] == "3,3\u00a0%"
        assert vas["status_label"] == "avvecklad" and vas["verdict"] == "Godkänd"
        assert vas["kind"] == "journalsystem" and vas["annual_cost"] == "4\u00a0200\u00a0000\u00a0kr"
        assert vas["delay_cost"] == "350\u00a0000\u00a0kr"
        assert vas["links"] == {
            "html": "/decommission/systems/vas/final_delivery/report.html",
            "pdf": "/decommission/systems/vas/final_delivery/report.pdf",
        }
        assert view["totals"]["source"] == "4\u00a0992"
        assert view["economics"]["years"][0]["archive_total"] == "2\u00a0920\u00a0tkr"

    def test_english_on_request(self, state):
        view = programme_view(state, "en")
        assert next(s for s in view["systems"] if s["id"] == "vas")["source"] == "3,092"
        assert view["t"]["status"] == "Status" and view["systems"][0]["status_label"] == "decommissioned"
