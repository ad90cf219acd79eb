"""A run's outputs where every worker reaches them: the local home, mirrored to object storage.

Tasks write and read their outputs (packages, validation reports, receipts, results,
reports, evidence) as files under ``DECOMMISSION_HOME/<system>/``. With
``DECOMMISSION_ARTEFACTS`` set to an object-storage URL (``s3://<conn_id>@<bucket>/<prefix>``,
read through Airflow's ``ObjectStoragePath`` and the Amazon provider's connection), that tree
is shared: a task publishes what it wrote when it ends (:func:`publishing`), and a task on
another worker fetches what it reads on first use (:func:`fetch`), its SHA-256 checked
against the figure the ledger holds where there is one. Without it, one machine's home is
the shared tree and both are no-ops.

Why mirror rather than write to the store directly: the writers (tar, lxml, fpdf, xlsxwriter)
and readers (the validator's tar index, random access into packages) work on files; the
local copy is a worker's scratch, the store is what counts. Objects are put whole, so a
reader sees an old object or a new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from decommission import settings

log = logging.getLogger(__name__)

CHUNK = 8 << 20


def store() -> Any | None:
    """The shared tree's root (an ``ObjectStoragePath``), or None when the local home is shared."""
    url = os.environ.get("DECOMMISSION_ARTEFACTS")
    if not url:
        return None
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url)


def key(path: Path) -> str:
    """A file's name in the shared tree: its path under the home (what XCom and the ledger may carry)."""
    return Path(path).resolve().relative_to(settings.home().resolve()).as_posix()


def local(name: str) -> Path:
    """The local path of a shared-tree name (this worker's copy; it may not exist yet)."""
    return settings.home() / name


def remote(path: Path) -> Any:
    """The object that mirrors a local file (only when a store is set)."""
    root = store()
    if root is None:
        raise RuntimeError("no DECOMMISSION_ARTEFACTS store is set")
    return root / key(path)


def fetch(path: Path, sha256: str | None = None) -> Path:
    """Make sure ``path`` is here, fetched from the store if another worker wrote it; return it.

    :param sha256: the digest the ledger holds; a local copy that differs is fetched again, a
        fetched copy that differs raises (the store was changed after the file was written)
    :raises FileNotFoundError: neither here nor in the store
    :raises ValueError: the fetched copy's SHA-256 differs from ``sha256``
    """
    path = Path(path)
    root = store()
    if root is None:
        return path
    if path.is_file() and (sha256 is None or _digest(path) == sha256):
        return path
    source = remote(path)
    if not source.exists():
        raise FileNotFoundError(f"{key(path)} is neither on this worker nor in the artefact store")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            while block := src.read(CHUNK):
                digest.update(block)
                out.write(block)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise ValueError(f"{key(path)} in the artefact store is not the file the ledger records (SHA-256 differs)")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_bytes(path: Path, sha256: str | None = None) -> bytes:
    return fetch(path, sha256).read_bytes()


def find(path: Path) -> Path | None:
    """The file, fetched if another worker wrote it; None when it is nowhere."""
    try:
        found = fetch(path)
    except FileNotFoundError:
        return None
    return found if found.is_file() else None


def names(folder: Path, pattern: str = "*") -> list[Path]:
    """The files of one folder, here or in the store (union, sorted), as local paths; fetch before reading."""
    folder = Path(folder)
    found = {p.name for p in folder.glob(pattern) if p.is_file()} if folder.is_dir() else set()
    root = store()
    if root is not None:
        shared = remote(folder)
        if shared.exists():
            # files only, as here: a folder inside is no file of this one
            found |= {p.name for p in shared.glob(pattern) if not p.name.startswith(".") and p.is_file()}
    return [folder / name for name in sorted(found)]


def open_shared(path: Path) -> Any:
    """Something with ``open("rb")`` and ``stat().st_size`` for the file: here, else its object.

    The archive upload reads its chunks through this, so a package goes from the store to the
    archive without a local copy of the whole of it.
    """
    path = Path(path)
    if store() is None or path.is_file():
        return path
    return remote(path)


def publish(path: Path) -> None:
    """Put one local file into the store (streamed); a no-op without a store."""
    if store() is None:
        return
    target = remote(path)
    if target.protocol in ("file", "local"):  # object storage has no folders to make
        target.parent.mkdir(parents=True, exist_ok=True)
    with Path(path).open("rb") as src, target.open("wb") as out:
        while block := src.read(CHUNK):
            out.write(block)


@contextlib.contextmanager
def publishing(folder: Path) -> Iterator[None]:
    """Publish every file under ``folder`` that the block wrote or changed (not temporary ones)."""
    if store() is None:
        yield
        return
    before = _files(folder)
    try:
        yield
    finally:
        changed = [p for p, seen in _files(folder).items() if before.get(p) != seen]
        for path in sorted(changed):
            publish(path)
        if changed:
            log.info("published %d file(s) to the artefact store", len(changed))


def _files(folder: Path) -> dict[Path, tuple[int, int]]:
    if not folder.is_dir():
        return {}
    return {
        p: (p.stat().st_mtime_ns, p.stat().st_size)
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def _digest(path: Path) -> str:
    with Path(path).open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
