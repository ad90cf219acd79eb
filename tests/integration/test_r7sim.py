"""The archive client against a real r7sim process: deliveries, faults, restarts, read-back."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import tenacity

from decommission.deliver.archive import ArchiveHook, ArchiveResponseError
from decommission.deliver.triggers import wait_for_receipts
from decommission.errors import ArchiveError
from tests.r7sim_server import R7SimFactory, R7SimServer, write_fake_package

NO_WAIT = {"wait": tenacity.wait_none(), "stop": tenacity.stop_after_attempt(15)}


@pytest.fixture
def hook() -> ArchiveHook:
    return ArchiveHook(retry_args=NO_WAIT)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[R7SimServer]:
    """One well-behaved r7sim for the tests that need no settings of their own (they use distinct ids)."""
    with R7SimFactory(tmp_path_factory.mktemp("shared-r7sim")) as factory:
        yield factory.start()


@pytest.fixture
def shared(shared_server: R7SimServer, monkeypatch: pytest.MonkeyPatch) -> R7SimServer:
    return use(shared_server, monkeypatch)


def use(server: R7SimServer, monkeypatch: pytest.MonkeyPatch) -> R7SimServer:
    """Point ``r7_archive`` (the submitter) and ``r7_archivist`` (the archivist) at the server."""
    monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", server.connection_uri())
    monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVIST", server.connection_uri(role="archivist"))
    return server


@pytest.fixture
def archivist() -> ArchiveHook:
    """The archivist's client (connection ``r7_archivist``, set by :func:`use`): it may approve."""
    return ArchiveHook("r7_archivist", retry_args=NO_WAIT)


def packages(tmp_path: Path, *ids: str, filler: int = 0) -> dict[str, tuple[Path, str]]:
    out = {}
    for package_id in ids:
        path = tmp_path / f"{package_id}.tar"
        out[package_id] = (path, write_fake_package(path, package_id, filler=filler))
    return out


def held(hook: ArchiveHook, delivery_id: str) -> dict[str, str]:
    return {p["package_id"]: p["sha256"] for p in hook.delivery(delivery_id)["packages"]}


class TestDelivery:
    def test_fake_packages_get_final_rejected_receipts(self, shared, hook, archivist, tmp_path):
        hook.open_delivery("d-test", "LA-2025-01", "VAS", "TEST")
        pkgs = packages(tmp_path, "fake-1", "fake-2")
        for package_id, (path, sha) in pkgs.items():
            receipt = hook.submit_package(package_id, path, sha, "d-test")
            assert receipt["receipt_type"] == "transport"
            assert (receipt["sha256"], receipt["sha256_match"], receipt["duplicate"]) == (sha, True, False)
            assert receipt["size"] == path.stat().st_size

        receipts = wait_for_receipts(hook, list(pkgs), timeout_s=20, poll_s=0.1)

        # the fake tars are not E-ARK SIPs: the archive's validator must reject them, with reasons
        for package_id, receipt in receipts.items():
            assert receipt["status"] == "rejected", receipt
            assert receipt["reasons"] and all(set(r) == {"requirement", "path", "message"} for r in receipt["reasons"])
            assert receipt["archive_id"] is None
            assert receipt["sha256"] == pkgs[package_id][1]
        delivery = hook.delivery("d-test")
        assert delivery["state"] == "rejected"
        assert delivery["approval"] is None
        with pytest.raises(ArchiveResponseError, match="cannot be approved") as caught:
            archivist.approve_delivery("d-test", "archivist", "looks fine")
        assert caught.value.status_code == 409

    def test_open_delivery_is_idempotent_and_refuses_changes(self, shared, hook):
        first = hook.open_delivery("d-open", "LA-1", "VAS", "NEW")
        again = hook.open_delivery("d-open", "LA-1", "VAS", "NEW")
        assert first == again
        with pytest.raises(ArchiveResponseError, match="record_status") as caught:
            hook.open_delivery("d-open", "LA-1", "VAS", "TEST")
        assert (caught.value.status_code, caught.value.code) == (409, "delivery_conflict")

    def test_reject_setting_rejects_with_a_reason(self, r7sim_factory, monkeypatch, hook, tmp_path):
        use(r7sim_factory.start("--reject", "pkg-r"), monkeypatch)
        hook.open_delivery("d-r", "LA-1", "VAS", "TEST")
        ((path, sha),) = packages(tmp_path, "pkg-r").values()
        hook.submit_package("pkg-r", path, sha, "d-r")
        receipt = wait_for_receipts(hook, ["pkg-r"], timeout_s=20, poll_s=0.1)["pkg-r"]
        assert receipt["status"] == "rejected"
        assert "R7SIM-REJECT" in [r["requirement"] for r in receipt["reasons"]]


class TestIdempotence:
    def test_identical_resubmission_is_a_noop(self, shared, hook, tmp_path):
        hook.open_delivery("d-dup", "LA-1", "VAS", "NEW")
        ((path, sha),) = packages(tmp_path, "pkg-dup").values()
        first = hook.submit_package("pkg-dup", path, sha, "d-dup")
        second = hook.submit_package("pkg-dup", path, sha, "d-dup")
        assert (first["duplicate"], second["duplicate"]) == (False, True)
        assert {k: v for k, v in second.items() if k != "duplicate"} == {
            k: v for k, v in first.items() if k != "duplicate"
        }
        assert held(hook, "d-dup") == {"pkg-dup": sha}

    def test_changed_bytes_under_the_same_id_raise(self, shared, hook, tmp_path):
        hook.open_delivery("d-changed", "LA-1", "VAS", "NEW")
        path = tmp_path / "pkg-changed.tar"
        sha = write_fake_package(path, "pkg-changed", patients=["p001"])
        hook.submit_package("pkg-changed", path, sha, "d-changed")
        changed = tmp_path / "changed.tar"
        changed_sha = write_fake_package(changed, "pkg-changed", patients=["p001", "p002"])
        with pytest.raises(ArchiveError, match="already exists in the archive with a different checksum") as caught:
            hook.submit_package("pkg-changed", changed, changed_sha, "d-changed")
        assert caught.value.status_code == 409
        assert held(hook, "d-changed") == {"pkg-changed": sha}

    def test_wrong_declared_checksum_keeps_nothing(self, r7sim, hook, tmp_path):
        hook.open_delivery("d-1", "LA-1", "VAS", "NEW")
        ((path, sha),) = packages(tmp_path, "pkg-1").values()
        with pytest.raises(ArchiveError, match="does not hash to the declared SHA-256") as caught:
            hook.submit_package("pkg-1", path, "0" * 64, "d-1")
        assert caught.value.status_code == 422
        assert held(hook, "d-1") == {}
        assert list((r7sim.data_dir / "packages").iterdir()) == []
        assert list((r7sim.data_dir / "incoming").iterdir()) == []


class TestFaults:
    def test_error_rate_half_still_delivers_every_package_once(self, r7sim_factory, monkeypatch, hook, tmp_path):
        server = use(r7sim_factory.start("--error-rate", "0.5", "--seed", "7"), monkeypatch)
        hook.open_delivery("d-e", "LA-1", "VAS", "TEST")
        pkgs = packages(tmp_path, *(f"pkg-{i}" for i in range(6)))
        receipts = {pid: hook.submit_package(pid, path, sha, "d-e") for pid, (path, sha) in pkgs.items()}
        assert all(r["sha256"] == pkgs[pid][1] for pid, r in receipts.items())
        assert held(hook, "d-e") == {pid: sha for pid, (_path, sha) in pkgs.items()}
        final = wait_for_receipts(hook, list(pkgs), timeout_s=20, poll_s=0.05)
        assert {r["status"] for r in final.values()} <= {"accepted", "rejected"}
        assert server.log_text().count("error_rate: answering") >= 5  # the faults really happened

    def test_dropped_upload_resumes_from_the_committed_chunk(self, r7sim_factory, monkeypatch, hook, tmp_path):
        server = r7sim_factory.start("--drop-upload-once", "pkg-d")
        monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", server.connection_uri(chunk_size=1 << 20))
        hook.open_delivery("d-d", "LA-1", "VAS", "NEW")
        ((path, sha),) = packages(tmp_path, "pkg-d", filler=4 << 20).values()
        receipt = hook.submit_package("pkg-d", path, sha, "d-d")
        assert (receipt["sha256"], receipt["duplicate"]) == (sha, False)
        assert held(hook, "d-d") == {"pkg-d": sha}
        log = server.log_text()
        dropped = re.search(r"dropping the connection of the chunk of pkg-d at byte (\d+)", log)
        assert dropped and int(dropped.group(1)) >= 1 << 20  # a later chunk: the ones before it were kept
        starts = [int(m) for m in re.findall(r"upload of pkg-d: bytes (\d+)\.\.\d+ committed", log)]
        assert starts == sorted(set(starts)) and len(starts) == 5  # each chunk committed once, none sent again
        assert list((server.data_dir / "incoming").iterdir()) == []

    def test_gives_up_after_the_injected_number_of_attempts(self, r7sim_factory, monkeypatch, tmp_path):
        server = use(r7sim_factory.start("--error-rate", "1.0"), monkeypatch)
        hook = ArchiveHook(retry_args={"wait": tenacity.wait_none(), "stop": tenacity.stop_after_attempt(3)})
        with pytest.raises(ArchiveResponseError, match="HTTP 500 simulated_fault") as caught:
            hook.open_delivery("d-x", "LA-1", "VAS", "NEW")
        assert caught.value.status_code == 500
        assert server.log_text().count("error_rate: answering") == 3

    def test_restart_between_uploads_keeps_state(self, r7sim_factory, monkeypatch, hook, tmp_path):
        server = use(r7sim_factory.start("--ingest-delay", "30"), monkeypatch)
        hook.open_delivery("d-s", "LA-1", "VAS", "NEW")
        pkgs = packages(tmp_path, "pkg-a", "pkg-b")
        first = hook.submit_package("pkg-a", *pkgs["pkg-a"], "d-s")
        assert hook.ingest_receipt("pkg-a")["status"] == "pending"

        old_process = server.process
        server.restart(["--ingest-delay", "0"])  # pkg-a's ingest was left pending: it resumes
        assert old_process is not None and old_process.poll() is not None

        hook.submit_package("pkg-b", *pkgs["pkg-b"], "d-s")
        again = hook.submit_package("pkg-a", *pkgs["pkg-a"], "d-s")
        assert again["duplicate"] is True
        assert again["received_at"] == first["received_at"]
        final = wait_for_receipts(hook, ["pkg-a", "pkg-b"], timeout_s=20, poll_s=0.1)
        assert set(final) == {"pkg-a", "pkg-b"}
        assert held(hook, "d-s") == {pid: sha for pid, (_path, sha) in pkgs.items()}
        assert "resuming the ingest of pkg-a" in server.log_text()


class TestReadBack:
    def test_download_and_read_record(self, shared, hook, tmp_path):
        hook.open_delivery("d-read", "LA-1", "VAS", "NEW")
        path = tmp_path / "pkg-read.tar"
        sha = write_fake_package(path, "pkg-read", patients=["p001", "p002"])
        hook.submit_package("pkg-read", path, sha, "d-read")
        out_dir = tmp_path / "back"
        out_dir.mkdir()

        copy = hook.download_package("pkg-read", out_dir)

        assert copy == out_dir / "pkg-read.tar"
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == sha
        assert hook.read_record("pkg-read", "p002") == b'<record patient="p002"/>'
        with pytest.raises(FileExistsError, match="refusing to overwrite"):
            hook.download_package("pkg-read", copy)
        with pytest.raises(ArchiveResponseError, match="no record for that patient key") as caught:
            hook.read_record("pkg-read", "p999")
        assert caught.value.status_code == 404
        assert "p999" not in str(caught.value)  # no patient key in error messages

    def test_unknown_package_is_a_json_404(self, shared, hook):
        with pytest.raises(ArchiveResponseError, match="no package nope") as caught:
            hook.ingest_receipt("nope")
        assert (caught.value.status_code, caught.value.code) == (404, "package_not_found")


class TestPages:
    def test_health_and_home_page_say_it_is_not_r7(self, shared):
        with urllib.request.urlopen(f"{shared.url}/healthz") as response:
            assert json.load(response)["status"] == "ok"
            assert response.headers["X-Archive-Stand-In"] == "r7sim, a local stand-in for R7 e-Arkiv, not R7"
        with urllib.request.urlopen(f"{shared.url}/") as response:
            page = response.read().decode()
        assert "r7sim — a local stand-in for R7 e-Arkiv, not R7" in page
        assert "stand-in for R7 e-Arkiv, not R7" in shared.log_text()


def deliver(hook: ArchiveHook, delivery_id: str, *results) -> dict[str, dict]:
    hook.open_delivery(delivery_id, "LO-2025-01", "vas", "TEST")
    for result in results:
        hook.submit_package(result.package_id, result.container, result.sha256, delivery_id)
    return wait_for_receipts(hook, [r.package_id for r in results], timeout_s=30, poll_s=0.1)


class TestRealPackages:
    def test_read_back_matches_the_package(self, shared, hook, built, tmp_path):
        result = built[0]
        hook.open_delivery("d-real", "LO-2025-01", "vas", "TEST")
        hook.submit_package(result.package_id, result.container, result.sha256, "d-real")
        record = result.directory / "representations" / "rep1" / "data" / "2" / "record.xml"
        assert hook.read_record(result.package_id, "2") == record.read_bytes()
        copy = hook.download_package(result.package_id, tmp_path / "copy.tar")
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == result.sha256

    def test_clean_test_delivery_is_accepted_and_approved(self, validator, r7sim, hook, built):
        receipts = deliver(hook, "d-clean", *built)

        for result in built:
            receipt = receipts[result.package_id]
            assert receipt["status"] == "accepted", receipt["reasons"]
            assert (receipt["reasons"], receipt["sha256"]) == ([], result.sha256)
            assert receipt["counts"] == result.counts
            assert receipt["archive_id"].startswith("r7sim:")
        delivery = hook.delivery("d-clean")
        assert delivery["state"] == "accepted"
        assert delivery["approval"]["automatic"] is True
        assert delivery["approval"]["packages"] == [r.package_id for r in built]

    def test_manual_approval_when_auto_approval_is_off(
        self, validator, r7sim_factory, monkeypatch, hook, archivist, built
    ):
        use(r7sim_factory.start("--no-auto-approve-test"), monkeypatch)
        deliver(hook, "d-manual", built[0])
        assert hook.delivery("d-manual")["approval"] is None

        approved = archivist.approve_delivery("d-manual", "Regionarkivet", "test delivery meets the agreement")
        again = archivist.approve_delivery("d-manual", "someone else", "again")

        assert approved["approval"]["approved_by"] == "Regionarkivet"
        assert approved["approval"]["automatic"] is False
        assert again["approval"] == approved["approval"]

    def test_new_package_withdraws_an_automatic_approval(self, validator, r7sim_factory, monkeypatch, hook, built):
        use(r7sim_factory.start("--ingest-delay", "0.5"), monkeypatch)
        first, second = built
        deliver(hook, "d-grow", first)
        assert hook.delivery("d-grow")["approval"]["packages"] == [first.package_id]

        hook.submit_package(second.package_id, second.container, second.sha256, "d-grow")
        assert hook.delivery("d-grow")["approval"] is None
        wait_for_receipts(hook, [second.package_id], timeout_s=30, poll_s=0.1)
        assert hook.delivery("d-grow")["approval"]["packages"] == [first.package_id, second.package_id]
