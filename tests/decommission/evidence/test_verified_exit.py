"""A contract exit built only from verified evidence: each forgery of issue 16 meets an error, no record.

The report is written and recorded by the real ``report_stage``; sign-offs go through the real
``SignoffOperator`` (its request and its answer, without parking a task); the ledger is SQLite.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from decommission.evidence.contract import contract_exit, exit_dates
from decommission.evidence.pack import build_evidence_pack
from decommission.evidence.signoff import SignoffOperator, SignoffRefused
from decommission.evidence.verified import EvidenceError, verified_result
from decommission.ledger import Ledger
from decommission.plan.programme import Milestone, Respondent, SignOff, load_plan
from decommission.plan.run import Run
from decommission.reconcile.checks import reconcile
from decommission.report.publish import VerdictFail, report_stage

REPO = Path(__file__).resolve().parents[3]
FINAL = "milestone__final_delivery__2025-09-01"
RERUN = "manual__2026-12-10"
OWNER, ARCHIVIST = "verksamhetschef", "regionarkivarie"
APPROVED = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    )
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "vas"


def _ledger(home: Path) -> Ledger:
    return Ledger.sqlite(home.parent.parent / "ledger.sqlite")


def _kinds(home: Path) -> list[str]:
    return [e.kind for e in _ledger(home).entries(system_id="vas")]


def _run(run_id: str = FINAL) -> Run:
    plan = load_plan(REPO / "include" / "programme.yaml")
    return Run(plan, plan.system("vas"), Milestone.FINAL_DELIVERY, run_id, dt.datetime(2025, 9, 1, tzinfo=dt.UTC))


def _result(run: Run, *, fail: bool = False, software_version: str = "0.1.0") -> dict[str, Any]:
    result = reconcile(
        table_entity={"patient": "patient"},
        source={"patient": 5},
        mapped_parts=[{"extracted": {"patient": 5}, "mapped": {"patient": 5}, "disposed": {}}],
        packages=[{"package_id": "vas-p0001", "counts": {"patient": 5}}],
        receipts={
            "vas-p0001": {"status": "rejected", "reasons": [{"requirement": "X", "path": "p", "message": "m"}]}
            if fail
            else {"status": "accepted", "counts": {"patient": 5}}
        },
        sample=[],
    )
    result["breakdown"] = {
        "years": {"2019": {"source": 5, "extracted": 5, "archived": 5, "flagged": 0, "disposed": 0}},
        "by_table_year": [],
        "units": [],
        "patients": {"count": 5, "differing": []},
        "fingerprints": {},
    }
    result |= {
        "system": {"id": "vas", "name": run.system.name, "supplier": run.system.supplier},
        "run_id": run.run_id,
        "milestone": run.milestone.value,
        "cut_off": "2024-09-30",
        "snapshot": "2025-09-01T00:00:00+00:00",
        "software_version": software_version,
    }
    return result


def _report(run: Run, **kwargs: Any) -> dict[str, Any]:
    """Write and record the run's report (as the DAG's `report` task does); returns its summary (the XCom)."""
    result = _result(run, **kwargs)
    if result["verdict"] == "FAIL":
        with pytest.raises(VerdictFail):
            report_stage(run, result)
        return {}
    return report_stage(run, result)


def _operator(role: str) -> SignoffOperator:
    who = OWNER if role == "information_owner" else ARCHIVIST
    return SignoffOperator(
        task_id=f"signoff_{role}",
        system_id="vas",
        role=role,
        subject="Sign-off",
        body="## Sign-off: VAS",
        assigned_users=[{"id": who, "name": who}],
    )


class _NoXCom:
    """A task instance whose XCom must never be read (a forged XCom would be there)."""

    def xcom_pull(self, **_: Any) -> Any:
        raise AssertionError("the sign-off read XCom")


def _context(run_id: str) -> dict[str, Any]:
    return {"dag_run": SimpleNamespace(run_id=run_id), "ti": _NoXCom()}


def _sign(run_id: str, role: str, user: str, decision: str = "Approve", at: dt.datetime = APPROVED) -> None:
    """One sign-off: the request (verified, recorded) and the answer Airflow's API server passes on."""
    op = _operator(role)
    op.prepare_request(run_id)
    event = {
        "chosen_options": [decision],
        "params_input": {},
        "responded_at": at,
        "responded_by_user": {"id": user, "name": user},
    }
    op.execute_complete(_context(run_id), event)


def _both_sign(run_id: str = FINAL, at: dt.datetime = APPROVED) -> None:
    _sign(run_id, "information_owner", OWNER, at=at)
    _sign(run_id, "archivist", ARCHIVIST, at=at)


def _exit(run: Run) -> dict[str, Any]:
    build_evidence_pack(run)
    return contract_exit(run)


def _no_record(home: Path) -> None:
    assert not list((home / "evidence").glob("contract-exit*")), "a contract-exit record was written"
    assert "contract_exit" not in _kinds(home) and "system_status" not in _kinds(home)


class TestVerifiedResult:
    def test_result_edited_after_its_hash_was_recorded_is_refused_everywhere(self, home):
        run = _run()
        _report(run)
        _both_sign(run.run_id)
        path = home / "reconciliation" / "final_delivery" / "result.json"
        recorded = hashlib.sha256(path.read_bytes()).hexdigest()
        path.write_bytes(path.read_bytes().replace(b'"source":5', b'"source":6'))
        edited = hashlib.sha256(path.read_bytes()).hexdigest()
        both = rf"{path}: SHA-256 on disk is {edited}, the ledger recorded {recorded}"
        with pytest.raises(EvidenceError, match=both):
            build_evidence_pack(run)
        with pytest.raises(EvidenceError, match=both):
            contract_exit(run)
        with pytest.raises(SignoffRefused, match=both):
            _operator("archivist").prepare_request(run.run_id)
        _no_record(home)

    def test_missing_result_is_refused(self, home):
        run = _run()
        _report(run)
        path = home / "reconciliation" / "final_delivery" / "result.json"
        path.unlink()
        with pytest.raises(EvidenceError, match=rf"{path}: missing; the ledger recorded SHA-256 [0-9a-f]{{64}}"):
            verified_result("vas", run.run_id)

    def test_a_run_without_a_recorded_reconciliation_has_nothing_to_exit_on(self, home):
        with pytest.raises(EvidenceError, match=f"system vas: the ledger holds no reconciliation of run {FINAL}"):
            contract_exit(_run())
        _no_record(home)


class TestSignoffOperator:
    def test_forged_report_xcom_saying_pass_after_a_fail_is_not_put_to_sign_off(self, home, monkeypatch):
        run = _run()
        _report(run, fail=True)  # the archive rejected the package: result.json says FAIL
        forged = {"verdict": "PASS", "result_sha256": "0" * 64}
        asked = []
        monkeypatch.setattr("airflow.providers.standard.operators.hitl.HITLOperator.execute", asked.append)
        context = _context(run.run_id) | {"ti": SimpleNamespace(xcom_pull=lambda **_: forged)}
        with pytest.raises(SignoffRefused, match="no information_owner sign-off: the reconciliation verdict is 'FAIL'"):
            _operator("information_owner").execute(context)
        assert asked == [] and "signoff_requested" not in _kinds(home)

    def test_the_request_shows_the_verified_values_and_records_them(self, home, monkeypatch):
        run = _run()
        summary = _report(run)
        bodies = []
        monkeypatch.setattr(
            "airflow.providers.standard.operators.hitl.HITLOperator.execute", lambda op, _ctx: bodies.append(op.body)
        )
        op = _operator("information_owner")
        assert "body" not in op.template_fields  # nothing templated from XCom can reach the signers
        op.execute(_context(run.run_id))
        (body,) = bodies
        assert "Utlåtande för slutleveransen: **Godkänd**" in body
        # the report through the overview app, never a path on the server; what approving leads to
        assert "(/decommission/systems/vas/final_delivery/report.pdf)" in body and str(home) not in body
        assert "**Om du godkänner**" in body and "årskostnaden 4\u00a0200\u00a0000 kr upphör" in body
        assert f"`{summary['result_sha256']}`" in body and f"`{summary['pdf_sha256']}`" in body
        (asked,) = [e for e in _ledger(home).entries(system_id="vas") if e.kind == "signoff_requested"]
        assert asked.payload["result_sha256"] == summary["result_sha256"] and asked.payload["verdict"] == "PASS"

    def test_the_answer_records_the_responder_and_the_hash_shown(self, home):
        run = _run()
        summary = _report(run)
        _sign(run.run_id, "information_owner", OWNER)
        (entry,) = [e for e in _ledger(home).entries(system_id="vas") if e.kind == "signoff"]
        assert entry.payload | {"request": None} == {
            "role": "information_owner",
            "by": OWNER,
            "decision": "Approve",
            "at": str(APPROVED),
            "verdict": "PASS",
            "result_sha256": summary["result_sha256"],
            "pdf_sha256": summary["pdf_sha256"],
            "request": None,
        }


class TestForgedApprovals:
    def test_answers_without_ledger_sign_offs_give_no_pack_and_no_record(self, home):
        """Answer XComs posted and both tasks marked success: no sign-off entry, so nothing follows."""
        run = _run()
        _report(run)
        with pytest.raises(EvidenceError, match="the ledger holds no information_owner sign-off"):
            build_evidence_pack(run)
        with pytest.raises(EvidenceError, match="the ledger holds no information_owner sign-off"):
            contract_exit(run)
        _no_record(home)

    def test_one_role_signed_is_not_enough(self, home):
        run = _run()
        _report(run)
        _sign(run.run_id, "information_owner", OWNER)
        with pytest.raises(EvidenceError, match=f"run {FINAL}: the ledger holds no archivist sign-off"):
            contract_exit(run)
        _no_record(home)

    def test_an_answer_by_a_user_who_is_not_assigned_gives_no_record(self, home):
        run = _run()
        _report(run)
        _sign(run.run_id, "information_owner", OWNER)
        _sign(run.run_id, "archivist", "operator")
        with pytest.raises(EvidenceError, match="given by 'operator', not by the assigned 'regionarkivarie'"):
            contract_exit(run)
        _no_record(home)

    def test_an_approval_of_another_result_gives_no_record(self, home):
        run = _run()
        _report(run)
        _both_sign(run.run_id)
        first = verified_result("vas", run.run_id).sha256
        _report(run, software_version="0.1.1")  # the report rerun after the approvals: another result
        with pytest.raises(EvidenceError, match=f"approved result.json with SHA-256 {first}, but the ledger-verified"):
            contract_exit(run)
        _no_record(home)

    def test_a_fail_gives_no_record_even_with_approvals_in_the_ledger(self, home):
        run = _run()
        _report(run, fail=True)
        digest = verified_result("vas", run.run_id).sha256
        for role, user in (("information_owner", OWNER), ("archivist", ARCHIVIST)):
            _ledger(home).append(
                system_id="vas",
                run_id=run.run_id,
                kind="signoff",
                payload={"role": role, "by": user, "decision": "Approve", "at": str(APPROVED), "result_sha256": digest},
            )
        with pytest.raises(EvidenceError, match="system vas: no contract exit: the reconciliation verdict is 'FAIL'"):
            contract_exit(run)
        _no_record(home)

    def test_the_same_person_in_both_roles_is_refused_at_run_time(self, home):
        run = _run()
        _report(run)
        _sign(run.run_id, "information_owner", OWNER)
        _sign(run.run_id, "archivist", OWNER)
        # a plan that slipped past the plan check (built without validation)
        one = Respondent(id=OWNER, name="Karin")
        twice = SignOff.model_construct(information_owner=one, archivist=one)
        system = run.system.model_copy(update={"signoff": twice})
        with pytest.raises(EvidenceError, match=f"the information owner and the archivist are the same user '{OWNER}'"):
            contract_exit(dataclasses.replace(run, system=system))
        _no_record(home)

    def test_an_evidence_pack_changed_after_it_was_recorded_gives_no_record(self, home):
        run = _run()
        _report(run)
        _both_sign(run.run_id)
        build_evidence_pack(run)
        pack = home / "evidence" / "evidence-vas-final_delivery.tar"
        pack.write_bytes(pack.read_bytes() + b"\0" * 512)
        with pytest.raises(EvidenceError, match=rf"{pack}: SHA-256 on disk is [0-9a-f]{{64}}, the ledger recorded"):
            contract_exit(run)
        _no_record(home)


class TestVerifiedExit:
    def test_the_record_rests_on_the_ledger_and_dates_follow_the_later_approval(self, home):
        run = _run()
        summary = _report(run)
        _sign(run.run_id, "information_owner", OWNER, at=dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC))
        _sign(run.run_id, "archivist", ARCHIVIST, at=APPROVED)
        out = _exit(run)
        # paths under DECOMMISSION_HOME, never the machine's: the record travels to procurement
        assert out["path"] == "vas/evidence/contract-exit.json"
        record_file = home.parent / out["path"]
        record = json.loads(record_file.read_text(encoding="utf-8"))
        assert str(home.parent) not in record_file.read_text(encoding="utf-8")
        assert record["reconciliation"]["report"] == "vas/reconciliation/final_delivery/report.html"
        assert record["version"] == 1 and record["supersedes"] is None
        assert record["reconciliation"]["verdict"] == "PASS"
        assert record["reconciliation"]["result_sha256"] == summary["result_sha256"]
        assert [(a["role"], a["by"], a["decision"]) for a in record["approvals"]] == [
            ("information_owner", OWNER, "Approve"),
            ("archivist", ARCHIVIST, "Approve"),
        ]
        # approved 2026-12-03 (the later approval), 12 months' notice: not the milestone's 2025-09-01
        assert record["approved_on"] == record["earliest_notice_date"] == "2026-12-03"
        assert record["contract_end_date"] == "2027-12-03" and record["planned_contract_end"] == "2026-06-30"
        assert record["deviation"]["actual"] == "2027-12-03" and record["deviation"]["planned"] == "2026-06-30"
        assert record_file.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
        with (home / "evidence" / "evidence-vas-final_delivery.tar").open("rb") as fh:
            assert record["evidence_pack"]["sha256"] == hashlib.file_digest(fh, "sha256").hexdigest()
        assert _kinds(home)[-2:] == ["contract_exit", "system_status"]

    def test_the_evidence_pack_holds_the_ledger_approvals_and_the_verified_result(self, home):
        import tarfile

        run = _run()
        _report(run)
        _both_sign(run.run_id)
        build_evidence_pack(run)
        with tarfile.open(home / "evidence" / "evidence-vas-final_delivery.tar") as tar:
            approvals = json.loads(tar.extractfile("evidence-vas/approvals.json").read())
            manifest = json.loads(tar.extractfile("evidence-vas/manifest.json").read())
            result = tar.extractfile("evidence-vas/report/result.json").read()
        assert [(a["role"], a["by"]) for a in approvals] == [("information_owner", OWNER), ("archivist", ARCHIVIST)]
        assert all(len(a["ledger_entry"]) == 64 for a in approvals)
        assert manifest["verdict"] == "PASS" and manifest["result_sha256"] == hashlib.sha256(result).hexdigest()

    def test_a_report_file_changed_after_it_was_recorded_is_not_packed(self, home):
        run = _run()
        _report(run)
        _both_sign(run.run_id)
        html = home / "reconciliation" / "final_delivery" / "report.html"
        html.write_text(html.read_text(encoding="utf-8").replace("GODKÄND", "UNDERKÄND"), encoding="utf-8")
        with pytest.raises(EvidenceError, match=rf"{html}: SHA-256 [0-9a-f]{{64}} is not one the ledger recorded"):
            build_evidence_pack(run)


class TestExitDatesFromApproval:
    def test_an_approval_before_the_plan_leaves_the_earliest_end_and_no_deviation(self):
        contract = _run().system.contract.model_copy(update={"notice_months": 6})
        dates = exit_dates(contract, dt.date(2025, 9, 1), dt.date(2026, 6, 30))
        assert dates["earliest_notice_date"] == "2025-09-01" and dates["contract_end_date"] == "2026-06-30"
        assert dates["notice_deadline_for_end"] == "2025-12-30" and dates["deviation"] is None

    def test_the_notice_deadline_is_never_before_the_approval(self):
        contract = _run().system.contract.model_copy(update={"notice_months": 6, "earliest_end": dt.date(2026, 1, 1)})
        dates = exit_dates(contract, dt.date(2025, 8, 31), dt.date(2026, 6, 30))
        assert dates["contract_end_date"] == "2026-02-28" and dates["notice_deadline_for_end"] == "2025-08-31"


class TestVersionsAndWithdrawal:
    def test_a_rerun_writes_a_new_version_naming_the_one_it_supersedes(self, home):
        run = _run()
        _report(run)
        _both_sign(run.run_id)
        first = _exit(run)
        v1 = (home / "evidence" / "contract-exit.json").read_bytes()
        rerun = _run(RERUN)
        _report(rerun)
        _both_sign(rerun.run_id, at=dt.datetime(2026, 12, 10, 8, 0, tzinfo=dt.UTC))
        second = _exit(rerun)
        assert (home / "evidence" / "contract-exit.json").read_bytes() == v1, "version 1 was changed"
        assert Path(second["path"]).name == "contract-exit-v2.json" and second["version"] == 2
        assert (home / "evidence" / "contract-exit-v2.pdf").exists()
        record = json.loads((home.parent / second["path"]).read_text(encoding="utf-8"))
        assert record["supersedes"] == {
            "version": 1,
            "file": "contract-exit.json",
            "sha256": first["sha256"],
            "run_id": FINAL,
            "withdrawn": False,
        }
        assert record["approved_on"] == "2026-12-10"
        exits = [e.payload for e in _ledger(home).entries(system_id="vas", kind="contract_exit")]
        assert [(p["version"], p["file"]) for p in exits] == [(1, "contract-exit.json"), (2, "contract-exit-v2.json")]

    def test_a_rejection_after_an_exit_withdraws_the_record_without_editing_it(self, home):
        run = _run()
        _report(run)
        _both_sign(run.run_id)
        first = _exit(run)
        v1 = (home / "evidence" / "contract-exit.json").read_bytes()
        rerun = _run(RERUN)
        _report(rerun)
        _sign(rerun.run_id, "information_owner", OWNER, decision="Reject")
        assert (home / "evidence" / "contract-exit.json").read_bytes() == v1
        notice = json.loads((home / "evidence" / "contract-exit.withdrawn.json").read_text(encoding="utf-8"))
        assert notice["status"] == "withdrawn" and notice["withdraws"]["sha256"] == first["sha256"]
        assert notice["rejected_by"] == {"role": "information_owner", "by": OWNER, "at": str(APPROVED)}
        entries = _ledger(home).entries(system_id="vas")
        assert [e.kind for e in entries][-3:] == ["contract_exit_stopped", "contract_exit_withdrawn", "system_status"]
        withdrawn = entries[-2].payload
        assert withdrawn["file"] == "contract-exit.json" and withdrawn["sha256"] == first["sha256"]
        assert withdrawn["withdrawal_file"] == "contract-exit.withdrawn.json"
        assert entries[-1].payload == {"status": "contract exit withdrawn"}

        # a second rejection withdraws nothing more; a later exit supersedes the withdrawn record
        _sign(rerun.run_id, "archivist", ARCHIVIST, decision="Reject")
        assert [e.kind for e in _ledger(home).entries(system_id="vas")].count("contract_exit_withdrawn") == 1
        again = _run("manual__2027-01-15")
        _report(again)
        _both_sign(again.run_id)
        record = json.loads((home.parent / _exit(again)["path"]).read_text(encoding="utf-8"))
        assert record["version"] == 2 and record["supersedes"]["withdrawn"] is True
