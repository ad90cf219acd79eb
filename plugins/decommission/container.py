"""The package container: every file written once into the package folder and the tar at the same time.

Size and SHA-256 are taken from the bytes as they are written, never by reading them back. The
tar is a deterministic PAX archive (fixed mtime, uid/gid 0, no user names, members in the order
written, each folder before its first file) whose own SHA-256 is also computed while writing.
A package larger than ``max_bytes`` stops at once with a :class:`PackageError`.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tarfile
from typing import TYPE_CHECKING, BinaryIO

from decommission.errors import PackageError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_COPY_CHUNK = 1 << 20


class HashingWriter:
    """Writes through to a binary file and computes SHA-256 and size of exactly what was written."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        self._raw.write(view)
        self._hash.update(view)
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._raw.flush()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class Written:
    """Size and SHA-256 of one file as written."""

    __slots__ = ("sha256", "size")

    def __init__(self, size: int, sha256: str) -> None:
        self.size = size
        self.sha256 = sha256


class PackageWriter:
    """Writes files into ``root`` (the package folder) and ``tar_path`` as ``<name>/<path>``.

    :param root: the package folder (exists, empty)
    :param tar_path: the tar to create (must not exist)
    :param name: the tar's top folder (the package id)
    :param mtime: the time stamp of every member (the package's creation time)
    :param max_bytes: the largest tar allowed
    """

    def __init__(self, root: Path, tar_path: Path, *, name: str, mtime: int, max_bytes: int) -> None:
        self._root = root
        self._name = name
        self._mtime = mtime
        self._max = max_bytes
        self._raw = open(tar_path, "xb")  # noqa: SIM115 (closed in close())
        self._tar = HashingWriter(self._raw)
        self._dirs: set[str] = set()
        self._dir_member("")

    # ------------------------------------------------------------------ tar members
    def _header(self, rel: str, *, size: int, directory: bool) -> None:
        info = tarfile.TarInfo(f"{self._name}/{rel}".rstrip("/"))
        info.mtime, info.uid, info.gid, info.uname, info.gname = self._mtime, 0, 0, "", ""
        if directory:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
        else:
            info.size, info.mode = size, 0o644
        self._tar.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _pad(self, size: int) -> None:
        rest = size % _BLOCK
        if rest:
            self._tar.write(b"\0" * (_BLOCK - rest))
        if self._tar.size > self._max:
            raise PackageError(f"the package exceeds its limit of {self._max} bytes: use smaller partitions")

    def _dir_member(self, rel: str) -> None:
        if rel in self._dirs:
            return
        if rel:
            self._dir_member(posixpath.dirname(rel))
            (self._root / rel).mkdir(exist_ok=True)
        self._header(rel, size=0, directory=True)
        self._dirs.add(rel)

    # ------------------------------------------------------------------ files
    def add(self, rel: str, parts: Iterable[bytes | memoryview]) -> Written:
        """Write a file whose bytes are in memory (``parts`` in order) to the folder and the tar."""
        views = [memoryview(p) for p in parts]
        size = sum(v.nbytes for v in views)
        self._dir_member(posixpath.dirname(rel))
        self._header(rel, size=size, directory=False)
        digest = hashlib.sha256()
        fd = os.open(self._root / rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            written = os.writev(fd, views) if views else 0
            while written < size:  # a short write: finish it part by part
                data = b"".join(views)[written:]
                written += os.write(fd, data)
        finally:
            os.close(fd)
        for view in views:
            digest.update(view)
            self._tar.write(view)
        self._pad(size)
        return Written(size, digest.hexdigest())

    def copy(self, rel: str, source: Path) -> Written:
        """Copy a file into the folder and the tar, hashing the bytes as they are written."""
        self._dir_member(posixpath.dirname(rel))
        size = source.stat().st_size
        self._header(rel, size=size, directory=False)
        digest = hashlib.sha256()
        done = 0
        with open(source, "rb") as src, open(self._root / rel, "xb") as out:
            while chunk := src.read(_COPY_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                self._tar.write(chunk)
                done += len(chunk)
        if done != size:
            raise PackageError(f"{rel}: the source changed size while it was copied")
        self._pad(size)
        return Written(size, digest.hexdigest())

    def stream(self, rel: str) -> HashingWriter:
        """A writer for a file too big to hold in memory (METS, PREMIS); :meth:`commit` puts it in the tar."""
        self._dir_member(posixpath.dirname(rel))
        return HashingWriter(open(self._root / rel, "xb"))  # noqa: SIM115 (closed in commit())

    def commit(self, rel: str, writer: HashingWriter) -> Written:
        """Close a :meth:`stream` file and append its bytes to the tar; its hash is the one taken while writing."""
        writer._raw.close()  # noqa: SLF001 (our own writer)
        self._header(rel, size=writer.size, directory=False)
        copied = 0
        with open(self._root / rel, "rb") as src:
            while chunk := src.read(_COPY_CHUNK):
                self._tar.write(chunk)
                copied += len(chunk)
        if copied != writer.size:
            raise PackageError(f"{rel}: changed while it was being packed")
        self._pad(writer.size)
        return Written(writer.size, writer.sha256)

    def close(self) -> Written:
        """End the tar (two zero blocks, padded to a full record) and sync it to disk."""
        self._tar.write(b"\0" * (2 * _BLOCK))
        rest = self._tar.size % _RECORD
        if rest:
            self._tar.write(b"\0" * (_RECORD - rest))
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        return Written(self._tar.size, self._tar.sha256)

    def abort(self) -> None:
        self._raw.close()
