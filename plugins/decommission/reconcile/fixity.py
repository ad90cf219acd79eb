"""Does the archive hold every byte that was sent? Holdings, receipts and every package read back whole.

Nothing the archive says is taken on trust: its holdings of the delivery are compared with what
the ledger says this run sent (nothing missing, nothing extra, same SHA-256 and size), its ingest
receipts with the same figures, and every package is downloaded whole and hashed here. Each
difference becomes a FAIL reason naming the package, the archive's value and ours; an archive
that cannot be read is a reason too, never a crash.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from decommission.deliver.receipts import receipt_problems
from decommission.deliver.transport import ArchiveTransport
from decommission.errors import ArchiveError


def audit_archive(
    transport: ArchiveTransport,
    delivery_id: str,
    sent: Mapping[str, Mapping[str, Any]],
    receipts: Mapping[str, Mapping[str, Any]],
    scratch: Path,
) -> dict[str, Any]:
    """Compare the archive's holdings, receipts and whole packages with what was sent.

    :param sent: package id -> ``sha256``, ``size``, ``counts`` as the ledger recorded them
    :param receipts: package id -> the ingest receipt kept for it
    :param scratch: a folder for the downloads (each is deleted once hashed)
    :returns: ``{"holdings": ..., "packages": [...], "reasons": [...]}``
    """
    reasons: list[str] = []
    held: dict[str, Mapping[str, Any]] | None
    try:
        held = {p["package_id"]: p for p in transport.delivery(delivery_id).get("packages", [])}
    except (ArchiveError, KeyError, TypeError, AttributeError) as exc:
        held = None
        reasons.append(f"the archive's holdings of delivery {delivery_id} could not be read: {_what(exc)}")
    else:
        reasons += [
            f"the archive's holdings of delivery {delivery_id} list package {pid}, which this run did not send"
            for pid in sorted(set(held) - set(sent))
        ]
    packages = []
    for pid, ours in sorted(sent.items()):
        found: list[str] = []
        holding = None if held is None else held.get(pid)
        if held is not None and holding is None:
            found.append(f"package {pid} was sent, but the archive's holdings of delivery {delivery_id} do not list it")
        if holding is not None:
            found += [
                f"the archive holds package {pid} with {name} {holding.get(name)!r}, sent: {ours[name]!r}"
                for name in ("sha256", "size")
                if holding.get(name) != ours[name]
            ]
        receipt = receipts.get(pid)
        if receipt is None:
            found.append(f"package {pid} has no ingest receipt")
        else:
            found += receipt_problems(receipt, {"package_id": pid, **ours}, delivery_id)
        read_back = _read_whole(transport, pid, scratch)
        if "error" in read_back:
            found.append(f"package {pid} could not be read back whole from the archive: {read_back['error']}")
        elif (read_back["sha256"], read_back["size"]) != (ours["sha256"], ours["size"]):
            found.append(
                f"package {pid} read back from the archive is {read_back['size']} bytes with SHA-256 "
                f"{read_back['sha256']}, sent: {ours['size']} bytes with SHA-256 {ours['sha256']}"
            )
        packages.append({"package_id": pid, "sent_sha256": ours["sha256"], **read_back, "ok": not found})
        reasons += found
    return {
        "delivery_id": delivery_id,
        "holdings": {"sent": len(sent), "held": None if held is None else len(held)},
        "packages": packages,
        "audited_whole": sum(1 for p in packages if "sha256" in p),
        "reasons": reasons,
    }


def _read_whole(transport: ArchiveTransport, package_id: str, scratch: Path) -> dict[str, Any]:
    """Download one package and hash it here; the copy is deleted at once."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        try:
            path = transport.download_package(package_id, Path(tmp) / f"{package_id}.tar")
        except (ArchiveError, OSError) as exc:
            return {"error": _what(exc)}
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        return {"sha256": digest, "size": path.stat().st_size}


def _what(exc: BaseException) -> str:
    """An archive error's message (it names packages, never patients), or the kind of a malformed answer."""
    return str(exc) if isinstance(exc, ArchiveError) else f"a malformed answer ({type(exc).__name__})"
