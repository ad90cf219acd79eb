"""The SFTP drop-folder transport against a real SSH/SFTP server process and the r7sim drop-folder stand-in."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tenacity

from decommission.deliver.sftp_transport import SftpDropFolder
from decommission.deliver.transport import ArchiveTransport, transport_for
from decommission.deliver.triggers import IngestReceiptTrigger, wait_for_receipts
from decommission.errors import ArchiveRefusal
from tests.r7sim_server import write_fake_package
from tests.sftp_server import DropFolderServers
from tests.submit_task import REPO

pytest.importorskip("asyncssh", reason="the SFTP tests need asyncssh (a dependency of the SFTP provider)")
NO_WAIT = {"wait": tenacity.wait_fixed(0.2), "stop": tenacity.stop_after_attempt(10)}


@pytest.fixture
def drop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DropFolderServers]:
    with DropFolderServers(tmp_path / "drop") as servers:
        monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", servers.connection_uri())
        yield servers


@pytest.fixture
def transport(drop: DropFolderServers) -> SftpDropFolder:
    return SftpDropFolder("r7_archive", retry_args=NO_WAIT)


def test_connection_type_chooses_the_sftp_transport(drop):
    chosen = transport_for("r7_archive")
    assert isinstance(chosen, SftpDropFolder) and isinstance(chosen, ArchiveTransport)
    assert chosen.test_connection() == (True, "drop folder / is reachable")


def test_clean_delivery_through_the_drop_folder(drop, transport, built, tmp_path):
    transport.open_delivery("d-sftp", "LO-2025-01", "vas", "TEST")
    sent = {}
    for result in built:
        receipt = transport.submit_package(result.package_id, result.container, result.sha256, "d-sftp")
        assert (receipt["sha256"], receipt["size"], receipt["duplicate"]) == (result.sha256, result.size, False)
        sent[result.package_id] = receipt
    receipts = wait_for_receipts(transport, [r.package_id for r in built], timeout_s=30, poll_s=0.1)
    assert {r["status"] for r in receipts.values()} == {"accepted"}, receipts
    delivery = transport.delivery("d-sftp")
    assert [p["package_id"] for p in delivery["packages"]] == [r.package_id for r in built]
    assert delivery["approval"]["automatic"] is True
    # nothing left in the inbox: every drop was taken, none is half-written
    assert sorted(p.name for p in (drop.root / "inbox").iterdir()) == []

    first = built[0]
    copy = transport.download_package(first.package_id, tmp_path / "copy.tar")
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == first.sha256
    record = first.directory / "representations" / "rep1" / "data" / "2" / "record.xml"
    assert transport.read_record(first.package_id, "2") == record.read_bytes()

    again = transport.submit_package(first.package_id, first.container, first.sha256, "d-sftp")
    assert again == {**sent[first.package_id], "duplicate": True}  # a no-op: the original receipt


def test_changed_package_under_the_same_id_is_refused(drop, transport, tmp_path):
    transport.open_delivery("d-chg", "LA-1", "VAS", "NEW")
    path, changed = tmp_path / "a.tar", tmp_path / "b.tar"
    sha = write_fake_package(path, "pkg-chg", patients=["p001"])
    changed_sha = write_fake_package(changed, "pkg-chg", patients=["p001", "p002"])
    transport.submit_package("pkg-chg", path, sha, "d-chg")
    with pytest.raises(ArchiveRefusal, match="already exists in the archive with a different checksum"):
        transport.submit_package("pkg-chg", changed, changed_sha, "d-chg")
    assert [(p["package_id"], p["sha256"]) for p in transport.delivery("d-chg")["packages"]] == [("pkg-chg", sha)]


def test_half_written_drop_is_resumed(drop, transport, tmp_path):
    transport.open_delivery("d-half", "LA-1", "VAS", "NEW")
    path = tmp_path / "big.tar"
    sha = write_fake_package(path, "pkg-half", filler=3 << 20)
    data = path.read_bytes()
    part = drop.root / "inbox" / f".pkg-half.{sha[:16]}.part"
    part.write_bytes(data[: 1 << 20])  # what a killed task left behind
    receipt = transport.submit_package("pkg-half", path, sha, "d-half")
    assert (receipt["sha256"], receipt["duplicate"]) == (sha, False)
    assert not part.exists()


def test_rejected_package_receipt_has_the_reason(drop, tmp_path, monkeypatch):
    drop.start_drop_folder("--reject", "pkg-rej")
    transport = SftpDropFolder("r7_archive", retry_args=NO_WAIT)
    transport.open_delivery("d-rej", "LA-1", "VAS", "TEST")
    path = tmp_path / "rej.tar"
    sha = write_fake_package(path, "pkg-rej")
    transport.submit_package("pkg-rej", path, sha, "d-rej")
    receipt = wait_for_receipts(transport, ["pkg-rej"], timeout_s=30, poll_s=0.1)["pkg-rej"]
    assert receipt["status"] == "rejected"
    assert "R7SIM-REJECT" in [r["requirement"] for r in receipt["reasons"]]


def test_trigger_reads_receipts_from_the_outbox(drop, transport, tmp_path):
    transport.open_delivery("d-trig", "LA-1", "VAS", "NEW")
    path = tmp_path / "t.tar"
    sha = write_fake_package(path, "pkg-trig")
    transport.submit_package("pkg-trig", path, sha, "d-trig")
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).isoformat()
    trigger = IngestReceiptTrigger(["pkg-trig"], "r7_archive", 0.1, deadline)

    async def first_event():
        async for event in trigger.run():
            return event.payload

    event = asyncio.run(first_event())
    assert event["status"] == "done", event
    assert event["receipts"]["pkg-trig"]["status"] == "rejected"  # a fake package: not an E-ARK SIP


def test_task_killed_mid_drop_then_retried_loses_and_duplicates_nothing(tmp_path, monkeypatch, built):
    result = built[0]
    with DropFolderServers(tmp_path / "slow", write_delay=0.1) as drop:
        monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", drop.connection_uri(chunk_size=16 << 10))
        monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "out"))
        ledger = {"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")}
        monkeypatch.setenv("AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps(ledger))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
        command = [sys.executable, "-m", "tests.submit_task", result.package_id, str(result.container), result.sha256]
        part = drop.root / "inbox" / f".{result.package_id}.{result.sha256[:16]}.part"
        task = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (not part.exists() or part.stat().st_size < 64 << 10):
                assert task.poll() is None, "the task ended before it could be killed"
                time.sleep(0.02)
            task.send_signal(signal.SIGKILL)
            assert task.wait(timeout=10) == -signal.SIGKILL
        finally:
            if task.poll() is None:
                task.kill()
        time.sleep(0.5)  # writes the server had queued land
        left = part.stat().st_size
        assert 0 < left < result.size and not (drop.root / "inbox" / f"{result.package_id}.tar").exists()

        retried = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)

        assert retried.returncode == 0, retried.stdout[-3000:] + retried.stderr[-3000:]
        assert f"resuming the drop of package {result.package_id} at byte" in retried.stdout + retried.stderr
        transport = SftpDropFolder("r7_archive", retry_args=NO_WAIT)
        held = [(p["package_id"], p["sha256"]) for p in transport.delivery("LO-2025-VAS-01-TEST")["packages"]]
        assert held == [(result.package_id, result.sha256)]
        receipt = wait_for_receipts(transport, [result.package_id], timeout_s=30, poll_s=0.1)[result.package_id]
        assert receipt["status"] == "accepted", receipt["reasons"]
        assert (tmp_path / "out" / "vas" / "receipts" / f"{result.package_id}.transport.json").exists()
