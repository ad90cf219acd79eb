"""r7sim's lies and damage: an archive that stores other bytes than it got or answers what is not so.

Each setting is a set of package ids (or, for approvals, one way to answer), so a test can make one
package or one delivery misbehave and check that the client never counts it as safely archived:

- ``store_empty``: after ingest the stored file is emptied; receipts and holdings honestly give
  the empty file's SHA-256 and size.
- ``store_flip_record`` / ``store_flip_mets``: after ingest one byte of the first ``record.xml``
  (or of the root ``METS.xml``) in the stored tar is changed; receipts keep the hash of what arrived.
- ``receipt_other_sha256``: the ingest receipt states another SHA-256 than the one held.
- ``hide_holdings``: the delivery document leaves the package out of its holdings.
- ``approval``: ``false`` (approval with ``approved: false``), ``other_delivery`` (an approval
  naming another delivery) or ``partial`` (covering all but the last package).
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path
from typing import Any

from r7sim.settings import Settings

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
APPROVAL_FAULTS = ("", "false", "other_delivery", "partial")


def damage_stored(path: Path, package_id: str, settings: Settings) -> str | None:
    """Damage a stored package after ingest as the settings ask; return the SHA-256 to report honestly, if any."""
    if package_id in settings.store_empty:
        path.write_bytes(b"")
        return EMPTY_SHA256
    if package_id in settings.store_flip_record:
        _flip_byte(path, lambda name: name.endswith("/record.xml"))
    elif package_id in settings.store_flip_mets:
        _flip_byte(path, lambda name: name.count("/") == 1 and name.endswith("/METS.xml"))
    return None


def _flip_byte(path: Path, wanted: Any) -> None:
    """Change one letter or digit in the middle of the first member ``wanted`` picks, in place (same size)."""
    with tarfile.open(path) as tar:
        member = next(m for m in tar.getmembers() if m.isfile() and wanted(m.name))
        start, size = member.offset_data, member.size
    with path.open("r+b") as f:
        f.seek(start)
        data = bytearray(f.read(size))
        for i in range(size // 2, size):
            c = data[i]
            if 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122:
                # another character of the same class keeps the XML well formed
                data[i] = 48 + (c - 48 + 1) % 10 if c <= 57 else (c ^ 0x01 if c not in (90, 122) else c - 1)
                f.seek(start + i)
                f.write(bytes([data[i]]))
                return
    raise ValueError(f"no letter or digit to change in {path.name}")


def receipt_answer(receipt: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The ingest receipt as answered: with another SHA-256 when the settings ask for it."""
    if receipt.get("package_id") in settings.receipt_other_sha256 and receipt.get("status") != "pending":
        return {**receipt, "sha256": hashlib.sha256(b"another package").hexdigest()}
    return receipt


def delivery_answer(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The delivery document as answered: holdings left out, approval falsified as the settings ask."""
    packages = [p for p in document["packages"] if p["package_id"] not in settings.hide_holdings]
    out = {**document, "packages": packages, "package_count": len(packages)}
    approval = document.get("approval")
    if approval and settings.approval == "false":
        out["approval"] = {**approval, "approved": False}
    elif approval and settings.approval == "other_delivery":
        out["approval"] = {**approval, "delivery_id": f"{document['delivery_id']}-OTHER"}
    elif approval and settings.approval == "partial":
        out["approval"] = {**approval, "packages": approval["packages"][:-1]}
    return out
