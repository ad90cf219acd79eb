"""The archive transport: what the DAG's stages need from an archive, whatever carries it.

Two transports implement it: :class:`decommission.deliver.archive.ArchiveHook` (the HTTP protocol of
``docs/archive-protocol.md``) and :class:`decommission.deliver.sftp_transport.SftpDropFolder` (an SFTP
drop folder with receipt files). The archive connection's type chooses one: ``http``/``https``
or ``sftp``. R7 e-Arkiv's real interface, once known, becomes a third implementation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from decommission.errors import ArchiveError

#: connection type -> the transport class that serves it (imported when chosen)
TRANSPORTS = {
    "http": "decommission.deliver.archive.ArchiveHook",
    "https": "decommission.deliver.archive.ArchiveHook",
    "sftp": "decommission.deliver.sftp_transport.SftpDropFolder",
}


@runtime_checkable
class ArchiveTransport(Protocol):
    """Deliveries, uploads, receipts, read-back, holdings and approval, as the stages use them.

    Every method is safe to repeat; failures raise :class:`decommission.errors.ArchiveError`
    (retryable) or :class:`decommission.errors.ArchiveRefusal` (the archive said no).
    """

    def open_delivery(self, delivery_id: str, agreement_id: str, system_id: str, record_status: str) -> dict:
        """Open a delivery under an agreement (or find the identical one); return its document."""
        ...

    def delivery(self, delivery_id: str) -> dict:
        """Return the delivery: holdings (package, sha256, size, status, counts) and ``approval``."""
        ...

    def approve_delivery(self, delivery_id: str, approved_by: str, comment: str) -> dict:
        """Ask the archive to record its approval of a TEST delivery; return the delivery."""
        ...

    def submit_package(self, package_id: str, container: Path, sha256: str, delivery_id: str) -> dict:
        """Deliver a package's tar, streamed and resumable; return the transport receipt with ``duplicate``."""
        ...

    def ingest_receipt(self, package_id: str) -> dict:
        """Return the ingest receipt: status pending, accepted or rejected with ``reasons``."""
        ...

    def download_package(self, package_id: str, dest: Path) -> Path:
        """Read a held package back into a file, checked against the archive's SHA-256."""
        ...

    def read_record(self, package_id: str, patient_key: str) -> bytes:
        """Return one patient's ``record.xml`` from a held package (the read-back sample)."""
        ...

    def anchor(self, system_id: str, seq: int, entry_hash: str, note: str = "") -> dict:
        """Hand the archive the ledger's head; the archive keeps it and never lets it be replaced."""
        ...

    def anchors(self, system_id: str | None = None) -> list[dict]:
        """Every ledger anchor the archive holds (of one system)."""
        ...

    def submit_evidence(self, system_id: str, path: Path, sha256: str) -> dict:
        """Hand the archive an evidence pack; return its receipt, checked against what was sent."""
        ...

    def test_connection(self) -> tuple[bool, str]:
        """Check that the archive answers."""
        ...


def transport_class(conn_type: str) -> type:
    """Return the transport class for an archive connection type.

    :raises ArchiveError: no transport serves that connection type
    """
    import importlib

    try:
        module_name, _, class_name = TRANSPORTS[conn_type.lower()].rpartition(".")
    except KeyError:
        raise ArchiveError(
            f"no archive transport for connection type {conn_type!r}; known: {', '.join(sorted(TRANSPORTS))}"
        ) from None
    return getattr(importlib.import_module(module_name), class_name)


def transport_for(conn_id: str, **kwargs: Any) -> ArchiveTransport:
    """Return the transport that the archive connection ``conn_id`` asks for, by its type.

    :param conn_id: the archive connection (``r7_archive`` by default in the stages)
    :param kwargs: passed on to the transport (e.g. ``retry_args``)
    """
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    return transport_class(conn.conn_type or "http")(conn_id, **kwargs)


def check_transport_receipt(receipt: dict, package_id: str, size: int, sha256: str) -> None:
    """Raise unless the transport receipt confirms this package, size and checksum."""
    wrong = [
        name
        for name, expected in (("package_id", package_id), ("size", size), ("sha256", sha256), ("sha256_match", True))
        if receipt.get(name) != expected
    ]
    if receipt.get("receipt_type") != "transport" or wrong:
        raise ArchiveError(
            f"the transport receipt of package {package_id} does not confirm it: "
            f"wrong {', '.join(wrong) or 'receipt_type'}"
        )


_PATIENT_FOLDER = re.compile(r"(representations/[^/]+/data/)([^/]+)")


def describe_reasons(reasons: Iterable[Mapping[str, Any]]) -> str:
    """Return an ingest receipt's reasons as one line for an error, naming no patient.

    Paths keep their shape, but a patient folder's name is replaced by its keyed hash
    (``.../data/patient-<hash>/record.xml``); the receipt itself is kept verbatim elsewhere.
    """
    from decommission.privacy import keyed_hash

    def path(value: Any) -> str:
        return _PATIENT_FOLDER.sub(lambda m: f"{m.group(1)}patient-{keyed_hash(m.group(2))}", str(value or ""))

    return "; ".join(f"{r.get('requirement')} {path(r.get('path'))}: {r.get('message')}" for r in reasons)


def archive_transport() -> ArchiveTransport:
    """The transport the programme's archive connection asks for (HTTP protocol or SFTP drop folder)."""
    from decommission import settings

    return transport_for(settings.ARCHIVE_CONN_ID)
