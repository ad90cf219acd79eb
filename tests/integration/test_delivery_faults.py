"""Delivery that survives faults, against a real r7sim process: the "done when" list of the delivery issue.

Real packages from the packager, the DAG's own submit and receipt stages, the archive client over
HTTP; faults injected by r7sim (500s, stalls beyond the client's timeout, a dropped connection,
a restart), and a task process killed with SIGKILL in the middle of an upload.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import tenacity

from decommission import stages
from decommission.deliver.archive import ArchiveHook
from decommission.deliver.transport import archive_transport
from decommission.deliver.triggers import wait_for_receipts
from decommission.errors import ArchiveRefusal
from decommission.ledger import Ledger
from tests.r7sim_server import R7SimServer
from tests.submit_task import REPO, built_package, make_run

DELIVERY = "LO-2025-VAS-01-TEST"  # the demo plan's vas agreement, test delivery


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Outputs and the ledger of the run under tmp_path."""
    monkeypatch.setenv("DECOMMISSION_HOME", str(tmp_path / "out"))
    monkeypatch.setenv(
        "AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.sqlite")})
    )
    return tmp_path / "out"


def package(run, result) -> dict:
    return built_package(run, result.package_id, result.container, result.sha256, result.counts)


def held(hook: ArchiveHook, delivery_id: str = DELIVERY) -> list[tuple[str, str]]:
    return [(p["package_id"], p["sha256"]) for p in hook.delivery(delivery_id)["packages"]]


def committed_chunks(log: str, package_id: str) -> list[int]:
    """First bytes of the chunks r7sim committed for a package, in order."""
    return [int(m) for m in re.findall(rf"upload of {re.escape(package_id)}: bytes (\d+)\.\.\d+ committed", log)]


def serve(server: R7SimServer, monkeypatch: pytest.MonkeyPatch, **uri: float) -> R7SimServer:
    monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", server.connection_uri(**uri))
    return server


def test_clean_delivery_accepted_and_every_receipt_kept(validator, r7sim, home, built):
    run = make_run()
    submitted = [stages.submit(run, package(run, r)) for r in built]
    receipts = wait_for_receipts(archive_transport(), [r.package_id for r in built], timeout_s=30, poll_s=0.1)

    assert stages.keep_ingest_receipts(run, receipts) == {"accepted": len(built)}
    for result, answer in zip(built, submitted, strict=True):
        assert answer["duplicate"] is False
        folder = home / "vas" / "receipts"
        transport = (folder / f"{result.package_id}.transport.json").read_bytes()
        assert hashlib.sha256(transport).hexdigest() == answer["receipt_sha256"]
        ingest = json.loads((folder / f"{result.package_id}.ingest.json").read_text())
        assert (ingest["status"], ingest["reasons"], ingest["sha256"]) == ("accepted", [], result.sha256)
    kinds = [e.kind for e in Ledger.sqlite(home.parent / "ledger.sqlite").entries(system_id="vas")]
    assert kinds.count("transport_receipt") == kinds.count("ingest_receipt") == len(built)


def test_500s_and_timeouts_then_every_package_exactly_once(r7sim_factory, monkeypatch, built, tmp_path):
    server = serve(
        r7sim_factory.start("--error-rate", "0.2", "--stall-rate", "0.2", "--stall-seconds", "1.2", "--seed", "5"),
        monkeypatch,
        timeout=0.5,
        chunk_size=32 << 10,
    )
    hook = ArchiveHook(retry_args={"wait": tenacity.wait_none(), "stop": tenacity.stop_after_attempt(40)})
    hook.open_delivery(DELIVERY, "LO-2025-VAS-01", "vas", "TEST")

    receipts = [hook.submit_package(r.package_id, r.container, r.sha256, DELIVERY) for r in built]

    assert [(r["sha256"], r["duplicate"]) for r in receipts] == [(r.sha256, False) for r in built]
    assert held(hook) == [(r.package_id, r.sha256) for r in built]
    log = server.log_text()
    assert log.count("error_rate: answering") >= 3 and log.count("stall_rate: holding") >= 3
    for result in built:
        starts = committed_chunks(log, result.package_id)
        assert starts == list(range(0, result.size, 32 << 10)), "a chunk was committed twice or skipped"
        copy = hook.download_package(result.package_id, tmp_path / f"{result.package_id}.tar")
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == result.sha256


def test_task_killed_mid_submit_then_retried_loses_and_duplicates_nothing(
    validator, r7sim_factory, monkeypatch, home, built
):
    server = serve(r7sim_factory.start("--latency", "0.2"), monkeypatch, chunk_size=16 << 10)
    result = built[0]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    command = [sys.executable, "-m", "tests.submit_task", result.package_id, str(result.container), result.sha256]
    task = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    hook = ArchiveHook(retry_args={"wait": tenacity.wait_none()})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(committed_chunks(server.log_text(), result.package_id)) < 3:
            assert task.poll() is None, task.stdout.read().decode() if task.stdout else ""
            time.sleep(0.05)
        task.send_signal(signal.SIGKILL)
        assert task.wait(timeout=10) == -signal.SIGKILL
    finally:
        if task.poll() is None:
            task.kill()
    time.sleep(1.0)  # a chunk the killed task had fully sent may still be committed (latency 0.2 s): let it land
    upload = hook.upload_status(result.package_id)
    assert upload["state"] == "open" and 0 < upload["offset"] < result.size
    assert not (home / "vas" / "receipts" / f"{result.package_id}.transport.json").exists()

    retried = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

    assert retried.returncode == 0, retried.stdout[-3000:] + retried.stderr[-3000:]
    assert json.loads(retried.stdout.split("SUBMITTED ", 1)[1])["duplicate"] is False
    log = server.log_text()
    assert f"upload of {result.package_id} found open at byte {upload['offset']} of {result.size}" in log
    starts = committed_chunks(log, result.package_id)
    assert starts == sorted(set(starts)) == list(range(0, result.size, 16 << 10))  # nothing sent twice
    assert held(hook) == [(result.package_id, result.sha256)]
    receipt = wait_for_receipts(hook, [result.package_id], timeout_s=30, poll_s=0.1)[result.package_id]
    assert receipt["status"] == "accepted", receipt["reasons"]
    assert (home / "vas" / "receipts" / f"{result.package_id}.transport.json").exists()


def test_r7sim_restarted_mid_delivery_then_the_delivery_completes(r7sim_factory, monkeypatch, built):
    server = serve(r7sim_factory.start("--latency", "0.1"), monkeypatch, chunk_size=16 << 10)
    hook = ArchiveHook(retry_args={"wait": tenacity.wait_fixed(0.2), "stop": tenacity.stop_after_delay(60)})
    hook.open_delivery(DELIVERY, "LO-2025-VAS-01", "vas", "TEST")
    outcome: dict[str, object] = {}

    def deliver() -> None:
        try:
            outcome["receipts"] = [hook.submit_package(r.package_id, r.container, r.sha256, DELIVERY) for r in built]
        except Exception as exc:  # handed to the test thread
            outcome["error"] = exc

    worker = threading.Thread(target=deliver)
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(committed_chunks(server.log_text(), built[0].package_id)) < 4:
        time.sleep(0.05)
    before = len(committed_chunks(server.log_text(), built[0].package_id))
    server.restart()
    worker.join(timeout=120)

    assert not worker.is_alive() and "error" not in outcome, outcome.get("error")
    assert [r["duplicate"] for r in outcome["receipts"]] == [False] * len(built)
    assert held(hook) == [(r.package_id, r.sha256) for r in built]
    log = server.log_text()
    assert re.search(rf"upload of {built[0].package_id} open at byte [1-9]\d* of {built[0].size}", log), before
    final = wait_for_receipts(hook, [r.package_id for r in built], timeout_s=30, poll_s=0.1)
    assert {r["status"] for r in final.values()} <= {"accepted", "rejected"}


def test_rejected_package_fails_with_the_archives_reason_and_keeps_the_receipt(r7sim_factory, monkeypatch, home, built):
    result = built[0]
    serve(r7sim_factory.start("--reject", result.package_id), monkeypatch)
    run = make_run()
    stages.submit(run, package(run, result))
    receipts = wait_for_receipts(archive_transport(), [result.package_id], timeout_s=30, poll_s=0.1)

    with pytest.raises(ArchiveRefusal, match=rf"rejected 1 package\(s\): {result.package_id}: R7SIM-REJECT") as caught:
        stages.keep_ingest_receipts(run, receipts)

    assert "record.xml" not in str(caught.value) and "/data/" not in str(caught.value)  # no patient paths
    kept = json.loads((home / "vas" / "receipts" / f"{result.package_id}.ingest.json").read_text())
    assert kept["status"] == "rejected"
    assert kept["reasons"][0] == {
        "requirement": "R7SIM-REJECT",
        "path": "",
        "message": "rejected by the r7sim setting 'reject' (a simulated archive rejection)",
    }


def test_unchanged_resubmission_is_a_noop_and_a_changed_package_is_refused(r7sim, home, built, tmp_path):
    run = make_run()
    first = stages.submit(run, package(run, built[0]))
    again = stages.submit(run, package(run, built[0]))
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert first["receipt_sha256"] != again["receipt_sha256"]  # the kept copy says duplicate: true
    log = r7sim.log_text()
    assert log.count(f"upload of {built[0].package_id}: bytes 0..") == 1  # the bytes went once

    changed = tmp_path / "changed.tar"
    changed.write_bytes(built[0].container.read_bytes() + b"\0" * 512)
    sha = hashlib.sha256(changed.read_bytes()).hexdigest()
    with pytest.raises(ArchiveRefusal, match="already exists in the archive with a different checksum"):
        stages.submit(run, built_package(run, built[0].package_id, changed, sha))
    assert held(archive_transport()) == [(built[0].package_id, built[0].sha256)]


def test_rejection_error_names_no_patient_folder(home):
    reasons = [{"requirement": "CSIP1", "path": "representations/rep1/data/4711/record.xml", "message": "bad"}]
    with pytest.raises(ArchiveRefusal) as caught:
        stages.keep_ingest_receipts(make_run(), {"pkg-x": {"status": "rejected", "reasons": reasons}})
    assert "4711" not in str(caught.value)
    assert re.search(r"pkg-x: CSIP1 representations/rep1/data/patient-[0-9a-f]{16}/record.xml: bad", str(caught.value))
    kept = json.loads((home / "vas" / "receipts" / "pkg-x.ingest.json").read_text())
    assert kept["reasons"] == reasons  # the receipt itself is kept verbatim
