"""Is the TEST delivery approved? Only an approval that says so, for that delivery, covering every TEST package sent."""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any


def test_approval_problem(document: Mapping[str, Any], test_delivery: str, sent: Set[str]) -> str | None:
    """What keeps the archive's answer from being an approval of the TEST delivery; None when it is one.

    :param document: the archive's delivery document (``GET deliveries/{id}``)
    :param sent: the TEST package ids the ledger says were delivered
    """
    if document.get("delivery_id") != test_delivery:
        return f"the archive answered with delivery {document.get('delivery_id')!r}"
    approval = document.get("approval")
    if not approval:
        return "the archive has not approved it"
    if approval.get("approved") is not True:
        return f"the archive's approval says approved {approval.get('approved')!r}"
    if approval.get("delivery_id") != test_delivery:
        return f"the archive's approval is for delivery {approval.get('delivery_id')!r}"
    if not sent:
        return "the ledger records no TEST package delivered"
    missing = sorted(sent - set(approval.get("packages") or []))
    if missing:
        return f"the approval leaves out {len(missing)} of the {len(sent)} TEST packages sent: {', '.join(missing)}"
    return None
