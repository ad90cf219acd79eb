"""What the validator knows per file and per METS id: in memory for a package of ordinary size,
in a private temporary SQLite database beyond :data:`MEMORY_FILES` files.

A package of 100 000 files would otherwise hold a few hundred bytes per file in Python (paths,
tar offsets, digests, which METS or PREMIS entry named it); on disk the validator's memory
does not grow with the package. The database is SQLite's private temporary file (``""``),
deleted when closed; its page cache is bounded by :data:`CACHE_KIB`. Below the bound a dict
does the same job without a database call per question (a few MB at most): the validator
starts with :class:`MemoryFileTable` and :meth:`MemoryFileTable.spill` moves it to disk.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterator

CACHE_KIB = 8 * 1024
#: files a package may have before the validator keeps its file table on disk
MEMORY_FILES = 20_000
#: METS ids and references held in memory before the file table goes to disk (a METS document
#: may have any number of them, whatever the number of files)
MEMORY_IDS = 200_000
_PAGE = 2_000
#: the marks a file can get: named by a METS document, described by PREMIS, listed in the manifest
MARKS = ("referenced", "described", "listed")


def _key(text: str) -> bytes:
    # names read from a tar or a folder may hold undecodable bytes (surrogate escapes), which
    # SQLite text cannot; stored as their bytes, valid names sort as code points all the same
    return text.encode("utf-8", "surrogateescape")


def _text(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


class Entry(NamedTuple):
    """Where a file's bytes are: a folder path or a tar member name (``location``), or a tar window."""

    location: str
    offset: int
    size: int


class FileTable:
    """The package's files by NFC path, their digests once taken, and the marks the checks set."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE", f"cache_size=-{CACHE_KIB}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.executescript(
            """
            CREATE TABLE files (path BLOB PRIMARY KEY, location BLOB, offset INTEGER, size INTEGER,
                                hashed_size INTEGER, sha256 TEXT, referenced INTEGER DEFAULT 0,
                                described INTEGER DEFAULT 0, listed INTEGER DEFAULT 0) WITHOUT ROWID;
            CREATE TABLE ids (id TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TABLE refs (ref TEXT UNIQUE, attribute TEXT, line INTEGER);
            BEGIN;
            """
        )
        self._count = 0

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ files
    def add(self, path: str, location: str, offset: int = 0, size: int = 0) -> bool:
        """Record a file; False when a file of the same path is already there."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO files (path, location, offset, size) VALUES (?, ?, ?, ?)",
            (_key(path), _key(location), offset, size),
        )
        self._count += cursor.rowcount
        return cursor.rowcount == 1

    def __len__(self) -> int:
        return self._count

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        return self._db.execute("SELECT 1 FROM files WHERE path = ?", (_key(path),)).fetchone() is not None

    def __getitem__(self, path: str) -> Entry:
        row = self._db.execute("SELECT location, offset, size FROM files WHERE path = ?", (_key(path),)).fetchone()
        if row is None:
            raise KeyError(path)
        return Entry(_text(row[0]), row[1], row[2])

    def __iter__(self) -> Iterator[str]:
        """Every path in code-point order (SQLite compares the UTF-8 bytes, which sorts the same)."""
        return self._paths("1")

    def unmarked(self, mark: str) -> Iterator[str]:
        """The paths, in order, that never got ``mark`` (one of :data:`MARKS`)."""
        if mark not in MARKS:
            raise ValueError(mark)
        return self._paths(f"{mark} = 0")

    def _paths(self, condition: str) -> Iterator[str]:
        # a page at a time by key: the caller may query and mark files between pages
        last = b""
        first = True
        while True:
            rows = self._db.execute(
                f"SELECT path FROM files WHERE (path > ? OR ?) AND {condition} ORDER BY path LIMIT {_PAGE}",  # noqa: S608 (our own fixed condition)
                (last, first),
            ).fetchall()
            if not rows:
                return
            for (path,) in rows:
                yield _text(path)
            last, first = rows[-1][0], False

    def mark(self, path: str, mark: str) -> None:
        if mark not in MARKS:
            raise ValueError(mark)
        self._db.execute(f"UPDATE files SET {mark} = 1 WHERE path = ?", (_key(path),))  # noqa: S608 (a fixed column)

    def marked(self, path: str, mark: str) -> bool:
        if mark not in MARKS:
            raise ValueError(mark)
        row = self._db.execute(f"SELECT {mark} FROM files WHERE path = ?", (_key(path),)).fetchone()  # noqa: S608 (a fixed column)
        return bool(row and row[0])

    def digest(self, path: str) -> tuple[int, str] | None:
        row = self._db.execute("SELECT hashed_size, sha256 FROM files WHERE path = ?", (_key(path),)).fetchone()
        return None if row is None or row[1] is None else (row[0], row[1])

    def set_digest(self, path: str, size: int, sha256: str) -> None:
        self._db.execute("UPDATE files SET hashed_size = ?, sha256 = ? WHERE path = ?", (size, sha256, _key(path)))

    # ------------------------------------------------------------------ METS ids and references
    def reset_ids(self) -> None:
        """Forget the ids and references of the previous METS document."""
        self._db.execute("DELETE FROM ids")
        self._db.execute("DELETE FROM refs")

    def add_ids(self, ids: list[tuple[str]], refs: list[tuple[str, str, int]]) -> None:
        """Add ids and references (ref, attribute, line); a reference keeps its first place."""
        self._db.executemany("INSERT OR IGNORE INTO ids VALUES (?)", ids)
        self._db.executemany("INSERT OR IGNORE INTO refs VALUES (?, ?, ?)", refs)

    def has_id(self, ident: str) -> bool:
        """Whether the current METS document has this id."""
        return self._db.execute("SELECT 1 FROM ids WHERE id = ?", (ident,)).fetchone() is not None

    def dangling(self) -> Iterator[tuple[str, str, int]]:
        """(ref, attribute, line) of each reference that names no id, in the order first seen (a row at a time)."""
        return iter(
            self._db.execute(
                "SELECT ref, attribute, line FROM refs WHERE ref NOT IN (SELECT id FROM ids) ORDER BY rowid"
            )
        )


class MemoryFileTable:
    """:class:`FileTable` in a dict, for packages of up to :data:`MEMORY_FILES` files."""

    def __init__(self) -> None:
        # path -> [location, offset, size, hashed_size, sha256, referenced, described, listed]
        self._files: dict[str, list] = {}
        self._ids: set[str] = set()
        self._refs: dict[str, tuple[str, int]] = {}

    def close(self) -> None:
        self._files.clear()

    def spill(self) -> FileTable:
        """The same content in a :class:`FileTable` on disk (this one is emptied)."""
        table = FileTable()
        table._db.executemany(  # noqa: SLF001 (its sibling)
            "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((_key(path), _key(row[0]), *row[1:]) for path, row in self._files.items()),
        )
        table._count = len(self._files)  # noqa: SLF001
        table.add_ids([(i,) for i in self._ids], [(r, a, n) for r, (a, n) in self._refs.items()])
        self.close()
        return table

    def add(self, path: str, location: str, offset: int = 0, size: int = 0) -> bool:
        if path in self._files:
            return False
        self._files[path] = [location, offset, size, None, None, 0, 0, 0]
        return True

    def __len__(self) -> int:
        return len(self._files)

    def __contains__(self, path: object) -> bool:
        return path in self._files

    def __getitem__(self, path: str) -> Entry:
        row = self._files[path]
        return Entry(row[0], row[1], row[2])

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._files, key=_key))  # the order of the database: by UTF-8 bytes

    def unmarked(self, mark: str) -> Iterator[str]:
        column = _column(mark)
        return iter(sorted((p for p, row in self._files.items() if not row[column]), key=_key))

    def mark(self, path: str, mark: str) -> None:
        column = _column(mark)
        row = self._files.get(path)
        if row is not None:
            row[column] = 1

    def marked(self, path: str, mark: str) -> bool:
        column = _column(mark)
        row = self._files.get(path)
        return bool(row and row[column])

    def digest(self, path: str) -> tuple[int, str] | None:
        row = self._files.get(path)
        return None if row is None or row[4] is None else (row[3], row[4])

    def set_digest(self, path: str, size: int, sha256: str) -> None:
        row = self._files.get(path)
        if row is not None:
            row[3], row[4] = size, sha256

    def reset_ids(self) -> None:
        self._ids.clear()
        self._refs.clear()

    def add_ids(self, ids: list[tuple[str]], refs: list[tuple[str, str, int]]) -> None:
        self._ids.update(i for (i,) in ids)
        for ref, attribute, line in refs:
            self._refs.setdefault(ref, (attribute, line))

    def ids_held(self) -> int:
        """Ids and references held in memory (the caller spills past a bound)."""
        return len(self._ids) + len(self._refs)

    def has_id(self, ident: str) -> bool:
        return ident in self._ids

    def dangling(self) -> Iterator[tuple[str, str, int]]:
        return ((r, a, n) for r, (a, n) in self._refs.items() if r not in self._ids)


def _column(mark: str) -> int:
    if mark not in MARKS:
        raise ValueError(mark)
    return 5 + MARKS.index(mark)
