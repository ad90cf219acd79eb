"""What the validator reads and how it records findings: the package's files (folder or tar) and the checker.

The checker hashes each file once (SHA-256, streamed), resolves METS hrefs inside the package,
parses XML with every schema resolved locally and keeps the list of problems.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import tarfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote

from lxml import etree

from decommission.package import mets, premis, records
from decommission.validate import tarindex
from decommission.validate.state import MEMORY_FILES, FileTable, MemoryFileTable

if TYPE_CHECKING:
    from collections.abc import Iterable

X = mets.XLINK_NS
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Problem:
    """One finding: the requirement broken, the file (relative to the package root), what is wrong."""

    requirement: str
    path: str
    message: str


class PackageSource:
    """A package's files by NFC path relative to its root folder, from a directory or a tar.

    ``files`` is a :class:`~decommission.validate.state.MemoryFileTable`, moved to a
    :class:`~decommission.validate.state.FileTable` on disk past ``MEMORY_FILES`` files, so a
    package of any size is read with bounded memory.
    """

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.files: FileTable | MemoryFileTable = MemoryFileTable()
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        self._fd: int | None = None
        if path.is_dir():
            self.name = path.name
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                for name in sorted(filenames):
                    full = Path(dirpath) / name
                    self._add(full.relative_to(path).as_posix(), str(full), 0, 0, full.is_symlink(), problems)
            return
        found: list[Problem] = []
        tops: set[str] = set()
        try:
            self._read_members(path, tarindex.iter_index(path), tops, found)
            self._fd = os.open(path, os.O_RDONLY)
        except tarindex.Unsupported:  # something the fast reader does not handle: tarfile reads it
            self.files.close()
            self.files, found, tops = MemoryFileTable(), [], set()
            self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed in close())
            every = self._tar.getmembers()
            self._members = {m.name: m for m in every}
            members = (
                tarindex.Member(m.name, "file" if m.isfile() else "dir" if m.isdir() else "other", 0, m.size)
                for m in every
            )
            self._read_members(path, members, tops, found)
        self.name = tops.pop() if len(tops) == 1 else ""
        if tops or not self.name:
            problems.append(Problem("LAYOUT", path.name, "the tar does not hold exactly one root folder"))
        problems += found

    def _read_members(
        self, path: Path, members: Iterable[tarindex.Member], tops: set[str], problems: list[Problem]
    ) -> None:
        for member in members:
            if len(tops) < 2:  # one root folder is all a package may have; two already say it does not
                tops.add(member.name.split("/", 1)[0])
            rel = member.name.split("/", 1)[1] if "/" in member.name else ""
            parts = rel.split("/")
            if member.name.startswith("/") or ".." in parts:
                problems.append(Problem("LAYOUT", member.name, "tar member escapes the package folder"))
            elif member.kind == "file":
                self._add(rel, member.name, member.offset, member.size, False, problems)
            elif member.kind != "dir":
                problems.append(Problem("LAYOUT", member.name, "tar member is neither a file nor a folder"))

    def _add(self, rel: str, location: str, offset: int, size: int, link: bool, problems: list[Problem]) -> None:
        key = unicodedata.normalize("NFC", rel)
        if link:
            problems.append(Problem("LAYOUT", rel, "symbolic link in the package"))
        elif not self.files.add(key, location, offset, size):
            problems.append(Problem("LAYOUT", rel, "two files have the same NFC name"))
        elif isinstance(self.files, MemoryFileTable) and len(self.files) > MEMORY_FILES:
            self.files = self.files.spill()

    def open(self, rel: str) -> IO[bytes]:
        entry = self.files[rel]
        if self._fd is not None:
            return io.BufferedReader(tarindex.Window(self._fd, entry.offset, entry.size), 1 << 16)
        if self._tar is None:
            return open(entry.location, "rb")  # noqa: SIM115 (caller closes)
        stream = self._tar.extractfile(self._members[entry.location])
        if stream is None:
            raise OSError(f"{rel}: not a regular file in the tar")
        return stream

    def sha256(self, rel: str) -> tuple[int, str]:
        """Size and SHA-256 of a file's bytes, read a chunk at a time (from a tar with ``pread`` alone)."""
        sha, size = hashlib.sha256(), 0
        if self._fd is not None:
            entry = self.files[rel]
            while size < entry.size:
                chunk = os.pread(self._fd, min(_CHUNK, entry.size - size), entry.offset + size)
                if not chunk:
                    break  # the tar ends early: the size check reports it
                sha.update(chunk)
                size += len(chunk)
            return size, sha.hexdigest()
        with self.open(rel) as stream:
            while chunk := stream.read(_CHUNK):
                sha.update(chunk)
                size += len(chunk)
        return size, sha.hexdigest()

    def read(self, rel: str) -> bytes:
        """A whole (small) file: one ``pread`` from the tar."""
        if self._fd is not None:
            entry = self.files[rel]
            return os.pread(self._fd, entry.size, entry.offset)
        with self.open(rel) as stream:
            return stream.read()

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
        if self._fd is not None:
            os.close(self._fd)
        self.files.close()


class Checker:
    def __init__(self, source: PackageSource, problems: list[Problem]) -> None:
        self.src = source
        self.problems = problems
        # the root METS references itself; the files other METS documents name are marked as read
        if "METS.xml" in source.files:
            source.files.mark("METS.xml", "referenced")
        #: validators of this run (lxml validators are not shared between threads)
        self.mets_schema, self.premis_schema = mets.mets_schema(), premis.premis_schema()
        self.record_schema = records.record_schema()
        self._parser = mets.schema_parser()

    def add(self, requirement: str, path: str, message: str) -> None:
        self.problems.append(Problem(requirement, path, message))

    def need(self, ok: object, requirement: str, path: str, message: str) -> bool:
        if not ok:
            self.add(requirement, path, message)
        return bool(ok)

    # ------------------------------------------------------------------ files and XML
    def digest(self, rel: str) -> tuple[int, str]:
        """Size and SHA-256 of a file's bytes, read once (later calls get the recorded digest)."""
        known = self.src.files.digest(rel)
        if known is None:
            known = self.src.sha256(rel)
            self.src.files.set_digest(rel, *known)
        return known

    def resolve(self, base: str, href: str | None, where: str) -> str | None:
        """Package-relative NFC path of an href written in a METS file in folder ``base``."""
        if not href:
            return None
        href = unquote(href)
        joined = posixpath.normpath(posixpath.join(base, href))
        if href.startswith("/") or _SCHEME.match(href) or joined.startswith("../") or joined == "..":
            self.add("LAYOUT", where, "a reference is not a relative path inside the package")
            return None
        return unicodedata.normalize("NFC", joined)

    def schema_errors(self, rel: str, log: etree._ListErrorLog, private: bool) -> None:
        """Report schema errors; for ``private`` files positions only, never values."""
        for error in log:
            detail = f"{error.type_name} at {error.path}" if private else error.message
            self.add("XSD", rel, f"line {error.line}: {detail}")

    def syntax_error(self, rel: str, exc: etree.XMLSyntaxError, private: bool) -> None:
        """Report a failed (stream-)parse: schema errors (for ``private`` files positions only), or bad XML."""
        if not any(e.domain_name == "SCHEMASV" for e in exc.error_log):
            self.add("XML", rel, f"not well-formed XML (line {exc.lineno})")
        elif private:
            self.schema_errors(rel, exc.error_log, private=True)
        else:
            self.add("XSD", rel, f"line {exc.lineno}: {exc.msg}")

    def parse(self, rel: str, schema: etree.XMLSchema, private: bool = False) -> etree._ElementTree | None:
        """Parse a whole (small) file, then schema-validate; for ``private`` files positions only, never values."""
        if rel not in self.src.files:
            return None
        try:
            tree = etree.ElementTree(etree.fromstring(self.src.read(rel), self._parser))
        except etree.XMLSyntaxError as exc:
            self.add("XML", rel, f"not well-formed XML (line {exc.lineno})")
            return None
        if not schema.validate(tree):
            self.schema_errors(rel, schema.error_log, private)
        return tree

    def check_file(self, element: etree._Element, rel: str | None, where: str) -> None:
        """SIZE and CHECKSUM of a referenced file (mets:file or mets:mdRef) against its bytes."""
        if rel is None:
            return
        if not self.need(rel in self.src.files, "MISSING-FILE", rel, f"referenced from {where} but absent"):
            return
        self.src.files.mark(rel, "referenced")
        size, sha = self.digest(rel)
        if element.get("SIZE") is not None and element.get("SIZE") != str(size):
            self.add("FIXITY", rel, f"size {size} differs from SIZE {element.get('SIZE')} in {where}")
        if element.get("CHECKSUMTYPE") not in (None, mets.CHECKSUM_TYPE):
            self.add("FIXITY", rel, f"CHECKSUMTYPE in {where} is not SHA-256, the only one checked")
        elif element.get("CHECKSUM") is not None and element.get("CHECKSUM", "").lower() != sha:
            self.add("FIXITY", rel, f"SHA-256 differs from CHECKSUM in {where}")

    def check_attributes(self, element: etree._Element, ids: dict[str, str], where: str) -> None:
        for attribute, requirement in ids.items():
            value = element.get(attribute)
            if attribute == "LOCTYPE":
                self.need(value == "URL", requirement, where, f"line {element.sourceline}: LOCTYPE is not URL")
            elif attribute == f"{{{X}}}type":
                self.need(value == "simple", requirement, where, f"line {element.sourceline}: xlink:type not simple")
            else:
                name = attribute.rsplit("}", 1)[-1]
                self.need(value, requirement, where, f"line {element.sourceline}: {name} is missing")


def free(element: etree._Element) -> None:
    """Drop an element's content and the siblings before it (iterparse keeps them otherwise)."""
    element.clear(keep_tail=True)
    parent = element.getparent()
    while parent is not None and element.getprevious() is not None:
        del parent[0]


def stream_parse(stream: IO[bytes], schema: etree.XMLSchema, **options: Any) -> Any:
    """``iterparse`` validating against ``schema`` as it reads; never fetches or expands anything."""
    return etree.iterparse(stream, schema=schema, huge_tree=True, no_network=True, resolve_entities=False, **options)
