"""Waivers, sign-off guard, contract-exit dates, the evidence tar and the annex workbook."""

from __future__ import annotations

import datetime as dt
import hashlib
import tarfile

import pytest

from decommission.evidence.contract import exit_dates
from decommission.evidence.pack import write_tar
from decommission.evidence.signoff import may_be_signed
from decommission.plan.programme import Contract
from decommission.reconcile.checks import FAIL, PASS_WITH_WAIVER, Check, apply_waivers, reconcile
from decommission.report.annex import write_annexes

WAIVER = {"check": "source = extracted", "scope": "patient", "rows": 1, "by": "Karin", "reason": "test patient"}


def _run(source_patients: int, waivers=()):
    return reconcile(
        table_entity={"patient": "patient"},
        source={"patient": source_patients},
        mapped_parts=[{"extracted": {"patient": 5}, "mapped": {"patient": 5}, "disposed": {}}],
        packages=[{"package_id": "a", "counts": {"patient": 5}}],
        receipts={"a": {"status": "accepted", "counts": {"patient": 5}}},
        sample=[],
        waivers=waivers,
    )


class TestWaivers:
    def test_waived_difference_passes_with_waiver_and_is_listed(self):
        result = _run(6, [WAIVER])
        assert result["verdict"] == PASS_WITH_WAIVER and result["reasons"] == []
        assert result["waived"][0]["waiver"]["by"] == "Karin" and result["waived"][0]["left"] == 6

    def test_a_waiver_covers_only_the_exact_difference(self):
        result = _run(7, [WAIVER])
        assert result["verdict"] == FAIL and result["waived"] == []
        assert "source = extracted fails for patient: 7 against 5" in result["reasons"]

    def test_passing_checks_are_not_waived(self):
        failing, waived = apply_waivers([Check("x", "t", 1, 1)], [WAIVER])
        assert failing == [] and waived == []


class TestSignoffGuard:
    @pytest.mark.parametrize(
        ("report", "allowed"),
        [
            ({"verdict": "PASS"}, True),
            ({"verdict": "PASS_WITH_WAIVER"}, True),
            ({"verdict": "FAIL"}, False),
            (None, False),
        ],
        ids=["pass", "waiver", "fail", "no-report"],
    )
    def test_only_a_passing_report_may_be_signed(self, report, allowed):
        assert (may_be_signed(report) is None) is allowed


class TestExitDates:
    def test_notice_from_the_approval_never_before_the_earliest_end(self):
        contract = Contract(id="c", annual_cost_sek=1, notice_months=12, earliest_end=dt.date(2026, 6, 30))
        dates = exit_dates(contract, dt.date(2025, 9, 1), dt.date(2026, 6, 30))
        assert dates == {
            "earliest_notice_date": "2025-09-01",
            "contract_end_date": "2026-09-01",
            "notice_deadline_for_end": "2025-09-01",
            "legacy_access_ends": "2026-09-01",
            "planned_contract_end": "2026-06-30",
            "deviation": {
                "field": "contract_end_date",
                "planned": "2026-06-30",
                "actual": "2026-09-01",
                "days_after_plan": 63,
                "reason": "approved 2025-09-01, 12 months' notice from then",
            },
        }
        late = exit_dates(contract.model_copy(update={"notice_months": 3}), dt.date(2025, 9, 1), dt.date(2026, 6, 30))
        assert late["contract_end_date"] == "2026-06-30" and late["notice_deadline_for_end"] == "2026-03-30"
        assert late["deviation"] is None


class TestEvidenceTar:
    def test_same_members_give_the_same_bytes_in_any_order(self, tmp_path):
        members = [("b.json", b"{}"), ("a/report.pdf", b"%PDF")]
        first = write_tar(tmp_path / "one.tar", "evidence-x", members, 1_700_000_000)
        second = write_tar(tmp_path / "two.tar", "evidence-x", list(reversed(members)), 1_700_000_000)
        assert first == second
        assert first[0] == hashlib.sha256((tmp_path / "one.tar").read_bytes()).hexdigest()
        with tarfile.open(tmp_path / "one.tar") as tar:
            assert tar.getnames() == ["evidence-x/a/report.pdf", "evidence-x/b.json"]
            assert {m.mtime for m in tar.getmembers()} == {1_700_000_000}
        assert not list(tmp_path.glob(".*.tmp"))


class TestAnnexes:
    def test_workbook_is_deterministic_and_keeps_hashes_as_text(self, tmp_path):
        sheets = lambda: {"q": (["hash", "n"], [["0123", 5], ["abcd", 7]])}  # noqa: E731
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        a = write_annexes(tmp_path / "a", sheets())
        b = write_annexes(tmp_path / "b", sheets())
        assert a["annex_xlsx"].read_bytes() == b["annex_xlsx"].read_bytes()
        import zipfile

        with zipfile.ZipFile(a["annex_xlsx"]) as z:
            shared = z.read("xl/sharedStrings.xml").decode() if "xl/sharedStrings.xml" in z.namelist() else ""
            sheet = z.read("xl/worksheets/sheet1.xml").decode()
        assert "0123" in shared + sheet
