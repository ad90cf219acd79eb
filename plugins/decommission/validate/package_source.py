"""What the validator reads and how it records findings: the package's files (folder, tar or zip) and the checker.

The checker hashes each file once (SHA-256, streamed), resolves METS hrefs inside the package,
parses XML through :mod:`~decommission.validate.xmlsafe` and keeps the findings. Whatever the
container holds, reading it ends in a finding rather than an exception: a container that
cannot be read, a file over the size limit or a spent time budget raises
:class:`~decommission.validate.limits.Stop`, which the validator turns into the last finding.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
import stat
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote

from lxml import etree

from decommission.package import mets, premis, records
from decommission.validate import tarindex, xmlsafe
from decommission.validate.limits import Budget, Limits, Stop
from decommission.validate.state import MEMORY_FILES, MEMORY_IDS, Entry, FileTable, MemoryFileTable

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

X = mets.XLINK_NS
#: what :meth:`Checker.parse` hands a valid file to: its bytes and its root (None for a file read as a stream)
RecordVisitor = Callable[[bytes, "etree._Element | None"], None]
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CHUNK = 1 << 20
_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


@dataclass(frozen=True)
class Problem:
    """One finding: the requirement broken, the file (relative to the package root), what is wrong."""

    requirement: str
    path: str
    message: str


class Findings(list):
    """The problems found, at most ``limit`` of them kept (a broken package can have millions).

    :meth:`result` adds one more problem that counts those left out.
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.dropped = 0

    def append(self, problem: Problem) -> None:
        if len(self) < self.limit:
            super().append(problem)
        else:
            self.dropped += 1

    def extend(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.append(problem)

    def result(self) -> list[Problem]:
        kept = list(self)
        if self.dropped:
            kept.append(Problem("LIMIT", "", f"{self.dropped} more problems are not listed"))
        return kept


def container_kind(path: Path) -> str | None:
    """``folder``, ``tar``, ``zip``, ``compressed`` (a compressed tar) or None, from the path and first bytes.

    Only a folder or a regular file is looked at: opening a FIFO or a device could block.
    """
    if path.is_dir():
        return "folder"
    if not path.is_file():
        return None
    with path.open("rb") as stream:
        head = stream.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if len(head) == 512 and head[257:262] == b"ustar":
        return "tar"
    if head.startswith(_COMPRESSED):
        return "compressed"
    return None


class PackageSource:
    """A package's files by NFC path relative to its root folder, from a directory, a tar or a zip.

    ``files`` is a :class:`~decommission.validate.state.MemoryFileTable`, moved to a
    :class:`~decommission.validate.state.FileTable` on disk past ``MEMORY_FILES`` files (or
    ``MEMORY_IDS`` METS ids), so a package of any size is read with bounded memory.

    :raises Stop: the container cannot be read, or a file is larger than ``limits.max_member_bytes``
    """

    def __init__(
        self, path: Path, findings: list[Problem], limits: Limits | None = None, budget: Budget | None = None
    ) -> None:
        self.files: FileTable | MemoryFileTable = MemoryFileTable()
        self.limits = limits or Limits()
        self.budget = budget or Budget(self.limits.seconds)
        self._findings = findings
        self._fd: int | None = None
        self._zip: zipfile.ZipFile | None = None
        self.name = ""
        kind = container_kind(path)
        try:
            if kind == "folder":
                self.name = path.name
                self._walk(path, "")
                return
            if kind == "tar":
                members = self._tar_members(path)
            elif kind == "zip":
                members = self._zip_members(path)
            elif kind == "compressed":
                raise Stop("LAYOUT", path.name, "a compressed tar is not read: deliver a plain tar or a zip")
            else:
                raise Stop("LAYOUT", path.name, "neither a folder, a tar nor a zip")
            tops: set[str] = set()
            self._read_members(members, tops)
        except BaseException:
            self.close()
            raise
        self.name = tops.pop() if len(tops) == 1 else ""
        if tops or not self.name:
            findings.append(Problem("LAYOUT", path.name, "the container does not hold exactly one root folder"))

    # ------------------------------------------------------------------ listing
    def _walk(self, folder: Path, rel: str) -> None:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        for entry in entries:
            self.budget.check()
            name = f"{rel}{entry.name}"
            if entry.is_symlink():
                self._findings.append(Problem("LAYOUT", name, "symbolic link in the package"))
            elif entry.is_dir(follow_symlinks=False):
                self._walk(Path(entry.path), name + "/")
            elif entry.is_file(follow_symlinks=False):
                self._add(name, entry.path, 0, entry.stat(follow_symlinks=False).st_size)
            else:  # a FIFO or a device: never opened (reading a FIFO blocks)
                self._findings.append(Problem("LAYOUT", name, "neither a file nor a folder"))

    def _tar_members(self, path: Path) -> Iterator[tarindex.Member]:
        try:
            yield from tarindex.iter_index(path, self.budget.check)
        except tarindex.Unreadable as exc:
            raise Stop("LAYOUT", path.name, f"not a readable tar: {exc}") from None
        self._fd = os.open(path, os.O_RDONLY)

    def _zip_members(self, path: Path) -> Iterator[tarindex.Member]:
        try:
            directory = _zip_directory_bytes(path)
            if directory > MAX_ZIP_DIRECTORY:
                raise Stop(
                    "LIMIT",
                    path.name,
                    f"the zip's central directory has {directory} bytes, more than the {MAX_ZIP_DIRECTORY} "
                    "read (about 130 000 files): deliver a package this large as a tar",
                )
            self._zip = zipfile.ZipFile(path)  # noqa: SIM115 (closed in close())
            infos = self._zip.infolist()
        except Stop:
            raise
        except Exception as exc:  # zipfile raises many kinds on a damaged central directory
            raise Stop("LAYOUT", path.name, f"not a readable zip ({type(exc).__name__})") from None
        for info in infos:
            if info.flag_bits & 0x1:
                self._findings.append(Problem("LAYOUT", info.filename, "encrypted zip member"))
            elif stat.S_ISLNK(info.external_attr >> 16):
                self._findings.append(Problem("LAYOUT", info.filename, "symbolic link in the package"))
            elif info.is_dir():
                yield tarindex.Member(info.filename.rstrip("/"), "dir", 0, 0)
            else:
                yield tarindex.Member(info.filename, "file", 0, info.file_size)

    def _read_members(self, members: Iterable[tarindex.Member], tops: set[str]) -> None:
        for member in members:
            self.budget.check()
            if len(tops) < 2:  # one root folder is all a package may have; two already say it does not
                tops.add(member.name.split("/", 1)[0])
            rel = member.name.split("/", 1)[1] if "/" in member.name else ""
            parts = rel.split("/")
            if member.name.startswith("/") or ".." in parts:
                self._findings.append(Problem("LAYOUT", member.name, "member escapes the package folder"))
            elif member.kind == "file":
                self._add(rel, member.name, member.offset, member.size)
            elif member.kind != "dir":
                self._findings.append(Problem("LAYOUT", member.name, "member is neither a file nor a folder"))

    def _add(self, rel: str, location: str, offset: int, size: int) -> None:
        if size > self.limits.max_member_bytes:
            raise Stop(
                "LIMIT", rel, f"{size} bytes: larger than the limit of {self.limits.max_member_bytes} bytes per file"
            )
        key = unicodedata.normalize("NFC", rel)
        if not self.files.add(key, location, offset, size):
            self._findings.append(Problem("LAYOUT", rel, "two files have the same NFC name"))
        elif isinstance(self.files, MemoryFileTable) and len(self.files) > MEMORY_FILES:
            self.files = self.files.spill()

    def add_ids(self, ids: list[tuple[str]], refs: list[tuple[str, str, int]]) -> None:
        """Record METS ids and references; past ``MEMORY_IDS`` in memory the file table goes to disk."""
        self.files.add_ids(ids, refs)
        if isinstance(self.files, MemoryFileTable) and self.files.ids_held() > MEMORY_IDS:
            self.files = self.files.spill()

    # ------------------------------------------------------------------ reading
    def open(self, rel: str) -> IO[bytes]:
        """A file's bytes as a stream; a read the container fails raises :class:`Stop`."""
        entry = self.files[rel]
        raw: IO[bytes]
        if self._fd is not None:
            raw = tarindex.Window(self._fd, entry.offset, entry.size)  # type: ignore[assignment]
        elif self._zip is not None:
            try:
                raw = self._zip.open(entry.location)
            except Exception as exc:  # unsupported compression, encryption, a damaged local header
                raise Stop("LAYOUT", rel, f"cannot be read from the zip ({type(exc).__name__})") from None
        else:
            raw = _open_regular(entry.location, rel)
        return io.BufferedReader(_Reader(raw, rel), 1 << 16)

    def sha256(self, rel: str, entry: Entry | None = None) -> tuple[int, str]:
        """Size and SHA-256 of a file's bytes, read a chunk at a time (from a tar with ``pread`` alone)."""
        sha, size = hashlib.sha256(), 0
        if self._fd is not None:
            entry = entry or self.files[rel]
            while size < entry.size:
                self.budget.check()
                chunk = os.pread(self._fd, min(_CHUNK, entry.size - size), entry.offset + size)
                if not chunk:
                    break  # the tar shrank since it was indexed: the size check reports it
                sha.update(chunk)
                size += len(chunk)
            return size, sha.hexdigest()
        with self.open(rel) as stream:
            while True:
                self.budget.check()
                chunk = stream.read(_CHUNK)
                if not chunk:
                    break
                sha.update(chunk)
                size += len(chunk)
        return size, sha.hexdigest()

    def read(self, rel: str, entry: Entry | None = None) -> bytes:
        """A whole (small) file: one ``pread`` from the tar (``entry``: its row, when already looked up)."""
        if self._fd is not None:
            entry = entry or self.files[rel]
            return os.pread(self._fd, entry.size, entry.offset)
        with self.open(rel) as stream:
            return stream.read()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.files.close()


#: the largest zip central directory read: zipfile holds it, and an object of about 600 bytes
#: per entry, in memory (a tar's headers are read as a stream instead)
MAX_ZIP_DIRECTORY = 16 << 20


def _zip_directory_bytes(path: Path) -> int:
    """The size of a zip's central directory as its end record states it (what zipfile reads whole)."""
    with path.open("rb") as stream:
        end = zipfile._EndRecData(stream)  # noqa: SLF001 (the very record zipfile reads next)
    return int(end[zipfile._ECD_SIZE]) if end else 0  # noqa: SLF001


def _open_regular(location: str, rel: str) -> IO[bytes]:
    """A file of a package folder, opened only if it is still a regular file (a FIFO put there would block)."""
    fd = os.open(location, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Stop("LAYOUT", rel, "is no longer a regular file")
    return os.fdopen(fd, "rb", buffering=0)


class _Reader(io.RawIOBase):
    """A file's raw stream whose read errors (a bad CRC, a damaged deflate stream) become :class:`Stop`."""

    def __init__(self, raw: IO[bytes], rel: str) -> None:
        self._raw, self._rel = raw, rel

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._raw.read(len(buffer))
        except Exception as exc:
            raise Stop("LAYOUT", self._rel, f"cannot be read from the container ({type(exc).__name__})") from None
        buffer[: len(data)] = data
        return len(data)

    def seekable(self) -> bool:
        return bool(getattr(self._raw, "seekable", lambda: False)())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._raw.close()
        super().close()


class Checker:
    def __init__(
        self, source: PackageSource, problems: list[Problem], limits: Limits | None = None, budget: Budget | None = None
    ) -> None:
        self.src = source
        self.problems = problems
        self.limits = limits or source.limits
        self.budget = budget or source.budget
        # the root METS references itself; the files other METS documents name are marked as read
        if "METS.xml" in source.files:
            source.files.mark("METS.xml", "referenced")
        #: validators of this run (lxml validators are not shared between threads)
        self.mets_schema, self.premis_schema = mets.mets_schema(), premis.premis_schema()
        self.record_schema = records.record_schema()
        self._parser = xmlsafe.parser()
        #: given each valid record file (see :func:`validator.validate_package`)
        self.read_record: RecordVisitor | None = None

    def add(self, requirement: str, path: str, message: str) -> None:
        self.problems.append(Problem(requirement, path, message))

    def need(self, ok: object, requirement: str, path: str, message: str) -> bool:
        if not ok:
            self.add(requirement, path, message)
        return bool(ok)

    # ------------------------------------------------------------------ files and XML
    def digest(self, rel: str, entry: Entry | None = None) -> tuple[int, str]:
        """Size and SHA-256 of a file's bytes, read once (later calls get the recorded digest)."""
        known = self.src.files.digest(rel)
        if known is None:
            known = self.src.sha256(rel, entry)
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

    def xml_error(self, rel: str, exc: Exception, private: bool) -> None:
        """Report a document that could not be parsed: refused, schema errors or not well-formed.

        libxml2's own messages may quote names and values; for ``private`` files (and for
        well-formedness errors of any file) only the line and the error's type are given.
        """
        if isinstance(exc, xmlsafe.Incomplete):
            self.add("XML", rel, str(exc))
        elif isinstance(exc, xmlsafe.Refused):
            self.add("XML", rel, f"refused: {exc}")
        elif not isinstance(exc, etree.XMLSyntaxError):
            self.add("XML", rel, f"could not be parsed ({type(exc).__name__})")
        elif not any(e.domain_name == "SCHEMASV" for e in exc.error_log):
            parser_errors = exc.error_log.filter_domains([etree.ErrorDomains.PARSER])
            last = parser_errors[-1] if parser_errors else None
            line, kind = (last.line, f", {last.type_name}") if last is not None else (exc.lineno, "")
            self.add("XML", rel, f"not well-formed XML (line {line}{kind})" if line else "not well-formed XML")
        elif private:
            self.schema_errors(rel, exc.error_log.filter_domains([etree.ErrorDomains.SCHEMASV]), private=True)
        else:
            self.add("XSD", rel, f"line {exc.lineno}: {exc.msg}")

    def xml_size_ok(self, rel: str, size: int | None = None) -> bool:
        """False (and a finding) for an XML document over ``limits.max_xml_bytes``: it is not parsed."""
        size = self.src.files[rel].size if size is None else size
        return self.need(
            size <= self.limits.max_xml_bytes,
            "LIMIT",
            rel,
            f"{size} bytes: larger than the limit of {self.limits.max_xml_bytes} bytes for an XML document",
        )

    def events(self, stream: IO[bytes], schema: etree.XMLSchema, **options: Any) -> Iterator[tuple[str, Any]]:
        """A document's parse events (schema-validated as read), within the bounds of :mod:`xmlsafe`."""
        return xmlsafe.iterparse(stream, schema, self.budget.check, **options)

    def parse(
        self, rel: str, schema: etree.XMLSchema, private: bool = False, visit: RecordVisitor | None = None
    ) -> None:
        """Parse and schema-validate a file; for ``private`` files positions only, never values.

        Files up to ``xmlsafe.WHOLE`` are read whole and parsed as a tree (fast for many small
        record files); larger ones are parsed as read, each element freed once parsed. ``visit``
        gets a valid file's bytes and tree (a large file's bytes and None).
        """
        try:
            entry = self.src.files[rel]  # one look-up: a package may have 100 000 record files
        except KeyError:
            return
        if not self.xml_size_ok(rel, entry.size):
            return
        self.budget.check()
        before = len(self.problems)
        try:
            if entry.size <= xmlsafe.WHOLE:
                data = self.src.read(rel, entry)
                tree = xmlsafe.parse_whole(data, self._parser)
                if not schema.validate(tree):
                    self.schema_errors(rel, schema.error_log, private)
                elif visit is not None:
                    visit(data, tree.getroot())
                return
            with self.src.open(rel) as stream:
                for _event, element in self.events(stream, schema, events=("end",)):
                    xmlsafe.free(element)
        except (etree.LxmlError, xmlsafe.Refused) as exc:
            self.xml_error(rel, exc, private)
            return
        if visit is not None and len(self.problems) == before:
            visit(self.src.read(rel, entry), None)

    def check_file(self, element: etree._Element, rel: str | None, where: str) -> None:
        """SIZE and CHECKSUM of a referenced file (mets:file or mets:mdRef) against its bytes.

        A file whose size already differs is not hashed: the size is a finding of its own, and
        a file that claims to be small may be huge.
        """
        if rel is None:
            return
        try:
            entry = self.src.files[rel]
        except KeyError:
            self.add("MISSING-FILE", rel, f"referenced from {where} but absent")
            return
        self.src.files.mark(rel, "referenced")
        declared = element.get("SIZE")
        if declared is not None and declared != str(entry.size):
            self.add("FIXITY", rel, f"size {entry.size} differs from SIZE {declared} in {where} (so not hashed)")
            return
        _size, sha = self.digest(rel, entry)
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
