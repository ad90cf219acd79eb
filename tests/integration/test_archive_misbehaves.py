"""An archive that stores other bytes than it got, or answers untruly, never gets a package counted as safe.

Each case runs against a real r7sim process with one fault of ``r7sim.misbehave``: the receipts
are checked against the ledger's figures, the archive's holdings are listed and every package is
read back whole (:func:`decommission.reconcile.fixity.audit_archive`), and a production delivery
asks for a test approval that is really one.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import tenacity

from decommission import stages
from decommission.deliver.receipts import sent_packages
from decommission.deliver.transport import archive_transport
from decommission.deliver.triggers import wait_for_receipts
from decommission.errors import ArchiveError, ArchiveRefusal
from decommission.ledger import programme_ledger
from decommission.plan.programme import Milestone
from decommission.reconcile.fixity import audit_archive
from tests.submit_task import built_package, make_run

DELIVERY = "LO-2025-VAS-01-TEST"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "out"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    )
    return tmp_path / "out"


def deliver(built: list, server, monkeypatch) -> tuple[object, dict]:
    """Submit both TEST packages through the submit stage and wait for their ingest receipts."""
    monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", server.connection_uri(timeout=5))
    run = make_run()
    for r in built:
        stages.submit(run, built_package(run, r.package_id, r.container, r.sha256, r.counts))
    receipts = wait_for_receipts(archive_transport(), [r.package_id for r in built], timeout_s=30, poll_s=0.1)
    return run, receipts


class TestFixity:
    def test_well_behaved_archive_passes_the_audit(self, validator, r7sim_factory, home, built, monkeypatch, tmp_path):
        run, receipts = deliver(built, r7sim_factory.start(), monkeypatch)
        assert stages.keep_ingest_receipts(run, receipts) == {"accepted": 2}
        audit = audit_archive(archive_transport(), DELIVERY, sent_packages(run), receipts, tmp_path / "scratch")
        assert audit["reasons"] == []
        assert audit["audited_whole"] == 2 and all(p["ok"] for p in audit["packages"])
        assert {p["sha256"] for p in audit["packages"]} == {r.sha256 for r in built}

    @pytest.mark.parametrize(
        ("fault", "receipt_refused", "says"),
        [
            ("--store-empty", True, "read back from the archive is 0 bytes"),
            ("--store-flip-record", False, "could not be read back whole"),
            ("--store-flip-mets", False, "could not be read back whole"),
            ("--receipt-other-sha256", True, "ingest receipt of package {pid} gives sha256"),
            ("--hide-holdings", False, "do not list it"),
        ],
        ids=["stored-empty", "record-byte-changed", "mets-byte-changed", "receipt-lies", "holdings-incomplete"],
    )
    def test_misbehaving_archive_is_caught(
        self, validator, r7sim_factory, home, built, monkeypatch, tmp_path, fault, receipt_refused, says
    ):
        pid = built[0].package_id
        run, receipts = deliver(built, r7sim_factory.start(fault, pid), monkeypatch)
        if receipt_refused:
            with pytest.raises(ArchiveRefusal, match=f"do not confirm what was sent: .*package {pid}"):
                stages.keep_ingest_receipts(run, receipts)
        else:
            stages.keep_ingest_receipts(run, receipts)
        audit = audit_archive(archive_transport(), DELIVERY, sent_packages(run), receipts, tmp_path / "scratch")
        assert audit["reasons"], "the audit found nothing wrong"
        assert all(pid in reason for reason in audit["reasons"])
        assert any(says.format(pid=pid) in reason for reason in audit["reasons"]), audit["reasons"]
        assert [p["package_id"] for p in audit["packages"] if not p["ok"]] == [pid]
        assert not list((tmp_path / "scratch").iterdir()), "a downloaded copy was left behind"


class TestTestApproval:
    def production(self, run: object) -> object:
        return dataclasses.replace(run, milestone=Milestone.PRODUCTION_DELIVERY, run_id="manual__production")

    def test_true_approval_of_every_package_lets_production_go(
        self, validator, r7sim_factory, home, built, monkeypatch
    ):
        run, _ = deliver(built, r7sim_factory.start(), monkeypatch)
        stages._require_test_approval(self.production(run), archive_transport(), None)
        entries = programme_ledger().entries(system_id="vas", kind="test_approval")
        assert [e.payload for e in entries] == [{"delivery": DELIVERY, "packages": sorted(r.package_id for r in built)}]

    @pytest.mark.parametrize(
        ("answer", "says"),
        [
            ("false", "approval says approved False"),
            ("other_delivery", f"approval is for delivery '{DELIVERY}-OTHER'"),
            ("partial", "approval leaves out 1 of the 2 TEST packages sent"),
        ],
        ids=["approved-false", "other-delivery", "covers-too-few"],
    )
    def test_untrue_approval_stops_production(self, validator, r7sim_factory, home, built, monkeypatch, answer, says):
        run, _ = deliver(built, r7sim_factory.start("--approval", answer), monkeypatch)
        with pytest.raises(ArchiveRefusal, match=f"test delivery {DELIVERY} is not approved: .*{says}"):
            stages._require_test_approval(self.production(run), archive_transport(), None)

    def test_archive_down_is_unreachable_not_unapproved(self, validator, r7sim_factory, home, built, monkeypatch):
        server = r7sim_factory.start()
        run, _ = deliver(built, server, monkeypatch)
        server.stop()
        hook = archive_transport()
        hook.retry_args = {**hook.retry_args, "stop": tenacity.stop_after_attempt(1)}
        with pytest.raises(ArchiveError, match=f"did not answer for test delivery {DELIVERY}") as caught:
            stages._require_test_approval(self.production(run), hook, None)
        assert caught.value.retryable and not isinstance(caught.value, ArchiveRefusal)
