"""r7sim's ingest isolates each package: one that hangs, takes too long or crashes r7sim is rejected
with a reason, also across a restart, and the packages after it are ingested all the same."""

from __future__ import annotations

import hashlib
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tenacity

from decommission.deliver.archive import ArchiveHook
from decommission.deliver.triggers import wait_for_receipts
from decommission.package import sip
from r7sim import ingest
from r7sim.settings import Settings
from r7sim.store import Store
from tests.decommission.fixtures import make_context, write_mapped
from tests.decommission.validate import handmade
from tests.decommission.validate.test_fail_closed import with_pax
from tests.r7sim_server import R7SimFactory, R7SimServer

GIB = 1 << 30
BOMBS = {f"documentation/big-{n}.bin": 3 * GIB for n in range(4)}  # 12 GiB to hash, 12 MB to send


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> sip.PackageResult:
    base = tmp_path_factory.mktemp("good")
    context = make_context(base / "docs", record_status="TEST")
    return sip.build_package(mapped=write_mapped(base / "mapped"), context=context, partition_id="1", out_dir=base)


def deflated_zeros(size: int) -> bytes:
    """A raw deflate stream of ``size`` zero bytes, made in milliseconds: one MiB compressed and
    ended by a full flush (byte-aligned, referring to nothing before it), repeated, then a final block."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return segment * (size >> 20) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def bomb(base: Path) -> tuple[Path, str]:
    """The hand-made package as a zip whose big documentation files inflate to 3 GiB of zeros each,
    the size the root METS declares: the validator must hash 12 GiB. Returns the zip and its SHA-256."""
    folder = handmade.write_folder(base, declared=BOMBS)
    local, central = bytearray(), bytearray()
    paths = [folder, *sorted(folder.rglob("*"))]
    for path in paths:
        name = path.relative_to(folder.parent).as_posix() + ("/" if path.is_dir() else "")
        rel = name.split("/", 1)[1]
        if path.is_dir():
            data, size, crc = b"", 0, 0
        elif rel in BOMBS:
            data, size, crc = deflated_zeros(BOMBS[rel]), BOMBS[rel], 0  # never read to its end
        else:
            raw = path.read_bytes()
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            data, size, crc = compressor.compress(raw) + compressor.flush(), len(raw), zlib.crc32(raw)
        encoded, offset = name.encode(), len(local)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x800, 8, 0, 0x21, crc, len(data), size, len(encoded), 0)
        local += encoded + data
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0x800, 8, 0, 0x21, crc, len(data), size, len(encoded), 0, 0, 0, 0,
            0, offset,
        )  # fmt: skip
        central += encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(paths), len(paths), len(central), len(local), 0)
    target = base / "bomb.zip"
    target.write_bytes(bytes(local + central + end))
    return target, hashlib.sha256(target.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------- in process
@pytest.fixture
def store(tmp_path: Path) -> Store:
    held = Store(tmp_path / "holdings")
    held.open_delivery("d-1", "LO-2025-01", "vas", "TEST")
    return held


def hold(store: Store, package_id: str, source: Path) -> None:
    staged = store.incoming_dir / f"{package_id}.staged"
    staged.write_bytes(source.read_bytes())
    store.add_package(package_id, "d-1", staged.stat().st_size, hashlib.sha256(staged.read_bytes()).hexdigest(), staged)


class TestIngestIsolation:
    def test_a_validation_that_never_returns_is_given_up_and_the_next_package_ingested(self, store, good, monkeypatch):
        release = threading.Event()
        real = ingest.ingest_package

        def hangs_for_the_first(path: Path, **options: object) -> tuple:
            if path.stem == "p-hangs":
                release.wait(60)  # a validation stuck in C, say: only the process could stop it
            return real(path, **options)

        monkeypatch.setattr(ingest, "ingest_package", hangs_for_the_first)
        monkeypatch.setattr(ingest, "GRACE_SECONDS", 0.5)
        monkeypatch.setenv("R7SIM_INGEST_SECONDS", "0.5")
        hold(store, "p-hangs", good.container)
        hold(store, "p-good", good.container)
        try:
            started = time.monotonic()
            hung = ingest.ingest_held(store, "p-hangs", settings=Settings())
            assert time.monotonic() - started < 10
            monkeypatch.setenv("R7SIM_INGEST_SECONDS", "600")
            after = ingest.ingest_held(store, "p-good", settings=Settings())
        finally:
            release.set()
        assert (hung["status"], hung["reasons"]) == (
            "rejected",
            [{"requirement": "R7SIM-INGEST", "path": "", "message": "validation did not finish within 0.5 s"}],
        )
        assert after["status"] == "accepted", after["reasons"]
        assert store.pending_packages() == []

    @pytest.mark.parametrize(
        ("begun", "status"),
        [pytest.param(0, "accepted", id="first-ingest"), pytest.param(1, "accepted", id="after-one-crash")]
        + [pytest.param(ingest.MAX_ATTEMPTS, "rejected", id="after-two-crashes")],
    )
    def test_an_ingest_cut_short_again_and_again_is_rejected(self, store, good, begun, status):
        hold(store, "p-1", good.container)
        attempts = store.package_path("p-1").with_name("p-1.ingest-attempts")
        if begun:
            attempts.write_text(str(begun))  # what r7sim left when it died while validating
        receipt = ingest.ingest_held(store, "p-1", settings=Settings())
        assert receipt["status"] == status, receipt["reasons"]
        if status == "rejected":
            assert receipt["reasons"] == [
                {
                    "requirement": "R7SIM-INGEST",
                    "path": "",
                    "message": "its ingest was cut short 2 times (r7sim stopped or crashed while validating it)",
                }
            ]
        assert not attempts.exists() and store.pending_packages() == []


# ---------------------------------------------------------------------------------------- a real r7sim
@pytest.fixture
def factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[R7SimFactory]:
    monkeypatch.setenv("R7SIM_INGEST_SECONDS", "2")  # the servers inherit the environment
    with R7SimFactory(tmp_path / "r7sim") as started:
        yield started


def client(server: R7SimServer, monkeypatch: pytest.MonkeyPatch) -> ArchiveHook:
    monkeypatch.setenv("AIRFLOW_CONN_R7_ARCHIVE", server.connection_uri())
    return ArchiveHook(retry_args={"wait": tenacity.wait_none(), "stop": tenacity.stop_after_attempt(5)})


class TestRealR7Sim:
    def test_a_package_over_the_time_limit_is_rejected_and_the_next_accepted(
        self, factory, good, tmp_path, monkeypatch
    ):
        hook = client(factory.start(), monkeypatch)
        looping = tmp_path / "pax.tar"
        looping.write_bytes(with_pax(b"-5 path=pkg/METS.xml\n"))  # once an endless loop of the ingest thread
        zipped, sha256 = bomb(tmp_path)
        hook.open_delivery("d-bomb", "LO-2025-01", "vas", "TEST")
        hook.submit_package("p-pax", looping, hashlib.sha256(looping.read_bytes()).hexdigest(), "d-bomb")
        hook.submit_package("p-bomb", zipped, sha256, "d-bomb")
        hook.submit_package(good.package_id, good.container, good.sha256, "d-bomb")
        receipts = wait_for_receipts(hook, ["p-pax", "p-bomb", good.package_id], timeout_s=60, poll_s=0.1)
        assert receipts["p-pax"]["reasons"] == [
            {
                "requirement": "LAYOUT",
                "path": "p-pax.tar",
                "message": "not a readable tar: PAX header at byte 512: a record without a length",
            }
        ]
        assert receipts["p-bomb"]["status"] == "rejected"
        assert receipts["p-bomb"]["reasons"] == [
            {
                "requirement": "LIMIT",
                "path": "p-bomb.tar",
                "message": "validation took longer than its budget of 2 s and was stopped",
            }
        ]
        assert receipts[good.package_id]["status"] == "accepted", receipts[good.package_id]["reasons"]

    def test_packages_left_pending_by_a_stop_are_finished_after_the_restart(self, factory, good, tmp_path, monkeypatch):
        server = factory.start("--ingest-delay", "3600")  # nothing is ingested before the stop
        hook = client(server, monkeypatch)
        zipped, sha256 = bomb(tmp_path)
        hook.open_delivery("d-restart", "LO-2025-01", "vas", "TEST")
        hook.submit_package("p-bomb", zipped, sha256, "d-restart")
        hook.submit_package(good.package_id, good.container, good.sha256, "d-restart")
        assert hook.ingest_receipt("p-bomb")["status"] == "pending"

        server.restart(["--ingest-delay", "0"])
        receipts = wait_for_receipts(hook, ["p-bomb", good.package_id], timeout_s=60, poll_s=0.1)

        assert receipts["p-bomb"]["status"] == "rejected"
        assert receipts["p-bomb"]["reasons"][0]["message"].startswith("validation took longer than its budget")
        assert receipts[good.package_id]["status"] == "accepted"
        assert "resuming the ingest of p-bomb" in server.log_text()
