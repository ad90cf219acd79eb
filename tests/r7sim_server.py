"""Test helpers around r7sim: the process helpers (re-exported) and a fake package writer.

Every r7sim asks for credentials: ``server.connection_uri()`` is the submitter's connection and
``server.connection_uri(role="archivist")`` the archivist's (both with ``allow_insecure_http``),
so every test that talks to r7sim goes through the client's authentication.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from r7sim.process import R7SimFactory, R7SimServer, free_port, running_r7sim

__all__ = ["R7SimFactory", "R7SimServer", "free_port", "running_r7sim", "write_fake_package"]


def write_fake_package(path: Path, package_id: str, patients: Sequence[str] = ("p001",), filler: int = 0) -> str:
    """Write a small deterministic tar shaped like a package (not a valid E-ARK SIP) and return its SHA-256.

    The archive's validator is expected to reject it; it serves the transport, read-back and
    rejection paths. ``filler`` adds that many bytes of documentation, to make uploads bigger.
    """
    import hashlib
    import io
    import tarfile

    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(f"{package_id}/{name}")
        info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, "METS.xml", f'<mets OBJID="{package_id}"/>'.encode())
        for key in patients:
            add(tar, f"representations/rep1/data/{key}/record.xml", f'<record patient="{key}"/>'.encode())
        if filler:
            add(tar, "documentation/filler.bin", bytes(range(256)) * (filler // 256) + b"x" * (filler % 256))
    with path.open("rb") as written:
        return hashlib.file_digest(written, "sha256").hexdigest()
