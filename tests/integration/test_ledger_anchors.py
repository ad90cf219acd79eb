"""The ledger anchored in the archive: a chain cut short, a forged tail and a full rewrite are all named.

Against a real r7sim process: the head is handed over as a delivery and a contract exit do, then
the local ledger is tampered with in each way, and ``ledger verify --against-archive`` must name
the first entry that does not match.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from decommission.__main__ import main
from decommission.deliver.transport import archive_transport
from decommission.errors import ArchiveError
from decommission.evidence.anchors import anchor_head
from decommission.ledger import GENESIS, Ledger, canonical, entry_hash


@pytest.fixture
def anchored(r7sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Ledger]:
    """Six entries; the head anchored after entry 3 (a delivery) and after entry 6 (a contract exit)."""
    path = tmp_path / "ledger.sqlite"
    monkeypatch.setenv("AIRFLOW_CONN_PROGRAMME_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    ledger = Ledger.sqlite(path)
    for n, kind in enumerate(("extract", "package", "transport_receipt"), start=1):
        ledger.append(system_id="vas", run_id="r1", kind=kind, payload={"n": n})
    anchor_head(archive_transport(), ledger, "vas", "delivery LO-2025-VAS-01-NEW")
    for kind in ("signoff", "signoff", "contract_exit"):
        ledger.append(system_id="vas", run_id="r2", kind=kind, payload={"decision": "Approve"})
    anchor_head(archive_transport(), ledger, "vas", "contract exit")
    return path, ledger


def verify(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["ledger", "verify", "--sqlite", str(path), "--against-archive"])
    return code, capsys.readouterr().out


class TestAnchoredLedger:
    def test_an_intact_chain_matches_every_anchor(self, anchored, capsys) -> None:
        code, out = verify(anchored[0], capsys)
        assert (code, out.strip()) == (0, "ledger intact: 6 entries, matching all 2 anchors the archive holds")

    def test_a_deleted_tail_is_named(self, anchored, capsys) -> None:
        path, _ = anchored
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM ledger_entry WHERE seq >= 5")  # the second sign-off and the exit
        assert main(["ledger", "verify", "--sqlite", str(path)]) == 0  # the chain alone looks intact
        capsys.readouterr()
        code, out = verify(path, capsys)
        assert code == 1
        assert out.startswith("ledger entry 6 (anchored by vas at ") and "the local chain ends at entry 4" in out

    def test_a_forged_append_in_place_of_the_tail_is_named(self, anchored, capsys) -> None:
        path, ledger = anchored
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM ledger_entry WHERE seq >= 5")
        ledger.append(system_id="vas", run_id="r2", kind="signoff", payload={"decision": "Approve", "by": "forger"})
        ledger.append(system_id="vas", run_id="r2", kind="contract_exit", payload={"forged": True})
        assert ledger.verify() is None
        code, out = verify(path, capsys)
        assert code == 1 and out.startswith("ledger entry 6 (contract_exit, system vas) differs from its anchor")

    def test_a_consistent_rewrite_is_named_at_its_first_anchor(self, anchored, capsys) -> None:
        path, ledger = anchored
        rows = [list(r) for r in sqlite3.connect(path).execute("SELECT * FROM ledger_entry ORDER BY seq")]
        rows[1][5] = canonical({"n": 99})  # entry 2 changed, every hash after it recomputed
        prev = GENESIS
        for r in rows:
            r[6], r[7] = prev, entry_hash(prev, r[0], r[1], r[2], r[3], r[4], r[5])
            prev = r[7]
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM ledger_entry")
            db.executemany("INSERT INTO ledger_entry VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        assert ledger.verify() is None
        code, out = verify(path, capsys)
        assert code == 1
        assert out.splitlines()[0].startswith("ledger entry 3 (transport_receipt, system vas) differs from its anchor")

    def test_the_archive_never_lets_an_anchor_be_replaced(self, anchored) -> None:
        with pytest.raises(ArchiveError, match="anchored with another hash"):
            archive_transport().anchor("vas", 6, "0" * 64, "a rewrite")


class TestEvidenceInTheArchive:
    def test_the_pack_is_kept_once_and_never_replaced(self, r7sim, tmp_path: Path) -> None:
        import hashlib

        pack = tmp_path / "evidence-vas-final_delivery.tar"
        pack.write_bytes(b"evidence " * 1000)
        digest = hashlib.sha256(pack.read_bytes()).hexdigest()
        transport = archive_transport()
        receipt = transport.submit_evidence("vas", pack, digest)
        assert (receipt["sha256"], receipt["size"], receipt["name"]) == (digest, 9000, pack.name)
        assert transport.submit_evidence("vas", pack, digest) == receipt  # again: the same receipt
        held = r7sim.data_dir / "evidence" / "vas" / pack.name
        assert hashlib.sha256(held.read_bytes()).hexdigest() == digest
        pack.write_bytes(b"rewritten evidence")
        with pytest.raises(ArchiveError, match="held with another hash"):
            transport.submit_evidence("vas", pack, hashlib.sha256(pack.read_bytes()).hexdigest())
        assert hashlib.sha256(held.read_bytes()).hexdigest() == digest
