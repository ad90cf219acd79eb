"""A fast, read-only index of a plain POSIX tar, for the validator; it refuses what it cannot read.

``tarfile`` parses every member header in Python (about a tenth of a millisecond each); a package
of 100 000 files spent seconds there. This reads the 512-byte headers directly, checks each
header's checksum, and gives every member's data as a window on the file (``os.pread``). It
reads ustar headers with PAX (``path``, ``size``) and GNU long-name records and base-256
sizes. It is also the validator's only tar reader, so it trusts nothing: every length is
checked against the file before it is used, an extended header is at most
:data:`MAX_EXTENDED` bytes, every step moves forward, and anything malformed or not handled
(a truncated tar, a damaged header, a PAX record of an impossible length, sparse or
multi-volume members, compression) raises :class:`Unreadable` with a reason, which the
validator reports: a package it cannot read is not valid.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

_BLOCK = 512
_ZERO = b"\0" * _BLOCK
_FILE_TYPES = {b"0", b"\0", b"7"}
#: the largest PAX or GNU long-name header read (a path is at most a few kB)
MAX_EXTENDED = 1 << 20


@dataclass(frozen=True)
class Member:
    """One member: its name as stored, ``file``, ``dir`` or ``other``, and where its data is."""

    name: str
    kind: str
    offset: int
    size: int


class Unreadable(Exception):  # noqa: N818 (a verdict on the input, not a fault of the reader)
    """The file is not a tar this reader can read; the message says why and where."""


class Unsupported(Unreadable):
    """A tar feature the validator does not read (sparse members, global path records, not ustar)."""


def _field(head: bytes, start: int, end: int) -> bytes:
    return head[start:end].split(b"\0", 1)[0]


def _number(raw: bytes, what: str, position: int) -> int:
    """An octal header number, or GNU base-256; anything else (a sign, a letter) is refused."""
    if raw[0] & 0x80:
        if raw[0] != 0x80:  # 0xFF starts a negative number
            raise Unreadable(f"header at byte {position}: negative {what}")
        return int.from_bytes(raw[1:], "big")
    digits = raw.split(b"\0", 1)[0].strip(b" ")
    if not digits:
        return 0
    if digits.isdigit():  # no sign, no space, no underscore: what int() would also take
        try:
            return int(digits, 8)
        except ValueError:  # an 8 or a 9
            pass
    raise Unreadable(f"header at byte {position}: {what} is not a number")


def _checksum_ok(head: bytes, position: int) -> bool:
    stored = _number(head[148:156], "checksum", position)
    if stored == sum(head[:148]) + 256 + sum(head[156:]):
        return True
    # some old writers summed signed bytes; tarfile accepts both
    return stored == sum(struct.unpack("148b", head[:148])) + 256 + sum(struct.unpack("356b", head[156:]))


def _pax_records(data: bytes, position: int) -> dict[bytes, bytes]:
    """The records of a PAX header (``"<length> <key>=<value>\\n"``), every length checked.

    A length that is not a number, that does not cover its own record or that runs past the
    header is refused: each record moves forward by at least its own digits, so this ends.
    """
    records: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        if not data[pos:].strip(b"\0"):
            break  # NUL padding after the last record
        space = data.find(b" ", pos, pos + 21)
        digits = data[pos:space] if space > pos else b""
        if not digits.isdigit():
            raise Unreadable(f"PAX header at byte {position}: a record without a length")
        length = int(digits)
        end = pos + length
        if length < len(digits) + 3 or end > len(data) or data[end - 1] != 0x0A:
            raise Unreadable(f"PAX header at byte {position}: a record length of {length} does not fit")
        key, sep, value = data[space + 1 : end - 1].partition(b"=")
        if not sep or not key:
            raise Unreadable(f"PAX header at byte {position}: a record without a key")
        records[key] = value
        pos = end
    return records


def iter_index(path: Path, check: Callable[[], None] | None = None) -> Iterator[Member]:
    """The members of an uncompressed POSIX tar one at a time (nothing kept per member).

    :param check: called before each header (the validator's time budget)
    :raises Unreadable: at the first thing that is malformed, truncated or not handled
    """
    with open(path, "rb") as stream:
        end_of_file = os.fstat(stream.fileno()).st_size
        position = 0
        long_name: bytes | None = None
        pax: dict[bytes, bytes] = {}
        while True:
            if check is not None:
                check()
            head = stream.read(_BLOCK)
            if len(head) < _BLOCK:
                raise Unreadable(f"the tar ends at byte {position + len(head)} without its end marker (truncated)")
            if head == _ZERO:
                if long_name is not None or pax:
                    raise Unreadable(f"header at byte {position}: an extended header without its member")
                return
            if head[257:262] != b"ustar":
                raise Unsupported(f"header at byte {position} is not a POSIX (ustar) header")
            if not _checksum_ok(head, position):
                raise Unreadable(f"header at byte {position} is damaged (its checksum is wrong)")
            kind = head[156:157]
            size = _number(head[124:136], "size", position)
            if kind in (b"x", b"g", b"L", b"K"):
                if size > MAX_EXTENDED:
                    raise Unreadable(f"header at byte {position}: an extended header of {size} bytes")
                payload = stream.read(size)
                if len(payload) < size:
                    raise Unreadable(f"header at byte {position}: the tar ends inside it (truncated)")
                if kind == b"x":
                    pax = _pax_records(payload, position)
                    if any(key.startswith(b"GNU.sparse") for key in pax):
                        raise Unsupported(f"header at byte {position}: a sparse member")
                elif kind == b"g":
                    if {b"path", b"size"} & _pax_records(payload, position).keys():
                        raise Unsupported(f"header at byte {position}: a global header sets a path or size")
                elif kind == b"L":
                    long_name = payload.split(b"\0", 1)[0]
                following = position + _BLOCK + -(-size // _BLOCK) * _BLOCK
            elif kind in (b"S", b"M", b"V"):
                raise Unsupported(f"header at byte {position}: a sparse or multi-volume member")
            else:
                if b"size" in pax:
                    if not pax[b"size"].isdigit():
                        raise Unreadable(f"header at byte {position}: the PAX size is not a number")
                    size = int(pax[b"size"])
                data = position + _BLOCK
                following = data + -(-size // _BLOCK) * _BLOCK
                if data + size > end_of_file:
                    raise Unreadable(f"member at byte {position} ends past the end of the tar (truncated)")
                if b"path" in pax:
                    raw = pax[b"path"]
                elif long_name is not None:
                    raw = long_name
                else:
                    name, prefix = _field(head, 0, 100), _field(head, 345, 500)
                    raw = prefix + b"/" + name if prefix else name
                full = raw.decode("utf-8", "surrogateescape")
                long_name, pax = None, {}
                what = "file" if kind in _FILE_TYPES else "dir" if kind == b"5" else "other"
                yield Member(full.rstrip("/") if what == "dir" else full, what, data, size)
            stream.seek(following)
            position = following


def read_index(path: Path) -> list[Member] | None:
    """The members of an uncompressed POSIX tar, or None when it cannot be read."""
    try:
        return list(iter_index(path))
    except Unreadable:
        return None


class Window(io.RawIOBase):
    """``size`` bytes of an open file from ``offset``, read with ``os.pread`` (no shared position)."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self._fd, self._offset, self._end, self._pos = fd, offset, offset + size, offset

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        want = min(len(buffer), self._end - self._pos)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Seek inside the window (a SIARD file in a package is a ZIP, read from its central directory)."""
        start = self._offset
        base = {io.SEEK_SET: start, io.SEEK_CUR: self._pos, io.SEEK_END: self._end}[whence]
        self._pos = min(max(start, base + offset), self._end)
        return self._pos - start

    def tell(self) -> int:
        return self._pos - self._offset


RECORD_FILE = "record.xml"


def _record_key(member: Member) -> str | None:
    """The patient folder of a record file (``<package>/representations/rep1/data/<patient>/record.xml``)."""
    parts = member.name.split("/")
    if member.kind == "file" and len(parts) == 6 and parts[1:4] == ["representations", "rep1", "data"]:
        return parts[4] if parts[5] == RECORD_FILE else None
    return None


def patient_records(tar: Path) -> Iterator[tuple[str, bytes]]:
    """(patient folder, bytes of its record file) of a package tar, in the tar's order.

    The delivered tar is the only copy of a package on our side: the read-back sample and the
    fingerprints read record files from it, one at a time (sequentially, no member list kept),
    through :func:`iter_index` (the standard library's reader parses each header in Python at
    several times the cost).

    :raises Unreadable: the tar is malformed or truncated
    """
    with open(tar, "rb") as data:
        for member in iter_index(tar):
            key = _record_key(member)
            if key is not None:
                record = os.pread(data.fileno(), member.size, member.offset)
                if len(record) != member.size:
                    raise Unreadable(f"{member.name}: the tar ends inside it (truncated)")
                yield key, record


def patient_folders(tar: Path) -> list[str]:
    """The patient folders of a package tar (their names are the source's patient keys), sorted."""
    return sorted(key for member in iter_index(tar) if (key := _record_key(member)) is not None)
