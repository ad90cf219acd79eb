"""The ledger anchored outside the writable output: its head handed to the archive, and checked against it.

A hash chain shows an edited entry, but not a chain cut short at its end, nor one rewritten
consistently from some entry on: for that, something outside the programme's reach must hold
earlier heads. Every delivery hands the archive the ledger's head (``submit``), and so does the
contract exit; the archive keeps each anchor and never lets it be replaced (protocol section 5).
``python -m decommission ledger verify --against-archive`` checks the local chain against every
anchor the archive holds and names the first entry that does not match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from decommission.deliver.transport import ArchiveTransport
from decommission.ledger import Entry, Ledger


def anchor_head(transport: ArchiveTransport, ledger: Ledger, system_id: str, note: str) -> dict[str, Any] | None:
    """Hand the archive the ledger's current head (global sequence and entry hash); None for an empty ledger."""
    entries = ledger.entries()
    if not entries:
        return None
    head = entries[-1]
    return transport.anchor(system_id, head.seq, head.entry_hash, note)


def check_against_anchors(entries: list[Entry], anchors: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every way the local chain disagrees with the archive's anchors, the first entry first.

    An anchored position missing here is a chain cut short (entries deleted from its end); a
    position holding another hash is a changed or rewritten chain, or an entry forged in before it.
    """
    by_seq = {e.seq: e for e in entries}
    last = entries[-1].seq if entries else 0
    problems: list[tuple[int, str]] = []
    for anchor in sorted(anchors, key=lambda a: (a["seq"], a.get("received_at", ""))):
        seq, expected = anchor["seq"], anchor["entry_hash"]
        entry = by_seq.get(seq)
        when = f"anchored by {anchor.get('system_id')} at {anchor.get('received_at', '?')}"
        if entry is None:
            problems.append((seq, f"ledger entry {seq} ({when}) is missing: the local chain ends at entry {last}"))
        elif entry.entry_hash != expected:
            problems.append(
                (seq, f"ledger entry {seq} ({entry.kind}, system {entry.system_id}) differs from its anchor ({when})")
            )
    return [text for _, text in sorted(problems)]
