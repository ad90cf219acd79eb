"""A part of a file as a request body: read from disk as it is sent, never whole in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Self

_BLOCK = 1 << 16


class FileSlice:
    """``length`` bytes of a file from ``offset``, as a streamed body for ``requests``.

    ``requests`` sends an object with ``__iter__`` and ``read`` block by block and takes
    ``len()`` as its Content-Length. Use it as a context manager so the file is closed.

    :param path: the file
    :param offset: the first byte
    :param length: how many bytes
    :raises ValueError: the slice runs past the end of the file
    """

    def __init__(self, path: Path, offset: int, length: int) -> None:
        path = Path(path) if isinstance(path, str) else path  # a Path or an ObjectStoragePath
        size = path.stat().st_size
        if offset < 0 or length < 0 or offset + length > size:
            raise ValueError(f"bytes {offset}..{offset + length} are not within {path} ({size} bytes)")
        self._file = path.open("rb")
        self._file.seek(offset)
        self._left = length
        self._length = length

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (all that is left when negative) of the slice."""
        wanted = self._left if size is None or size < 0 else min(size, self._left)
        data = self._file.read(wanted)
        self._left -= len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while block := self.read(_BLOCK):
            yield block

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
