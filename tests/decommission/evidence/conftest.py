"""The evidence unit tests run without an archive: the contract exit's anchor goes to a stand-in that keeps it."""

from __future__ import annotations

from typing import Any

import pytest


class KeptAnchors:
    """An archive's anchor store, as far as the contract exit uses it (the real one: tests/integration)."""

    def __init__(self) -> None:
        self.held: list[dict[str, Any]] = []

    def anchor(self, system_id: str, seq: int, entry_hash: str, note: str = "") -> dict[str, Any]:
        anchor = {"system_id": system_id, "seq": seq, "entry_hash": entry_hash, "note": note}
        self.held.append(anchor)
        return anchor

    def anchors(self, system_id: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.held if system_id in (None, a["system_id"])]


@pytest.fixture(autouse=True)
def kept_anchors(monkeypatch: pytest.MonkeyPatch) -> KeptAnchors:
    kept = KeptAnchors()
    monkeypatch.setattr("decommission.evidence.contract.archive_transport", lambda: kept)
    return kept
