"""Writing output files so that a reader, or a concurrent writer, never sees half of one."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to a unique temporary file beside ``path``, then rename it into place."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def exclusive(output: Path) -> Iterator[None]:
    """Hold an exclusive lock on one output path (a staging folder, a package) for the block.

    Two attempts at the same output (a retry while a "zombie" attempt still runs, two workers on
    one partition) then take turns: the second finds no half-written folder of the first to
    trip over, and rebuilds the same bytes. The lock files live in the machine's temporary
    folder, not beside the output, and a lock is released when its process dies. It serialises
    attempts on one machine; across machines Airflow runs one attempt of a task at a time.
    """
    digest = hashlib.sha256(str(Path(output).resolve()).encode()).hexdigest()[:32]
    folder = Path(tempfile.gettempdir()) / "decommission-locks"
    folder.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(folder / f"{digest}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
