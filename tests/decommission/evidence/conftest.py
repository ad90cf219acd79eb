"""The evidence unit tests run without an archive: anchors and the evidence pack go to a stand-in that keeps them."""

from __future__ import annotations

from typing import Any

import pytest


class KeptAnchors:
    """An archive's anchor store, as far as the contract exit uses it (the real one: tests/integration)."""

    def __init__(self) -> None:
        self.held: list[dict[str, Any]] = []
        self.evidence: list[dict[str, Any]] = []

    def anchor(self, system_id: str, seq: int, entry_hash: str, note: str = "") -> dict[str, Any]:
        anchor = {"system_id": system_id, "seq": seq, "entry_hash": entry_hash, "note": note}
        self.held.append(anchor)
        return anchor

    def anchors(self, system_id: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.held if system_id in (None, a["system_id"])]

    def submit_evidence(self, system_id: str, path: Any, sha256: str) -> dict[str, Any]:
        receipt = {"receipt_type": "evidence", "system_id": system_id, "name": path.name, "sha256": sha256}
        self.evidence.append(receipt)
        return receipt


@pytest.fixture(autouse=True)
def kept_anchors(monkeypatch: pytest.MonkeyPatch) -> KeptAnchors:
    kept = KeptAnchors()
    monkeypatch.setattr("decommission.evidence.contract.archive_transport", lambda: kept)
    monkeypatch.setattr("decommission.evidence.pack.archive_transport", lambda: kept)
    return kept
