"""The packager: mapped Parquet files of one partition -> one E-ARK SIP (CSIP/SIP 2.1.0, eHealth1).

Layout of ``out_dir/<package_id>/`` (and the same tree in ``out_dir/<package_id>.tar``)::

    METS.xml                                   root METS (CSIP/SIP)
    metadata/descriptive/patients.xml          patient manifest (eHealth1)
    metadata/preservation/premis.xml           PREMIS 3: fixity of every data file, events, agents
    representations/rep1/METS.xml              representation METS: every data file
    representations/rep1/data/<patient_key>/record.xml
    representations/rep1/data/<patient_key>/attachments/<file name>
    schemas/                                   every schema the package uses
    documentation/                             agreement, mapping spec, system description

Attachment file names are the source names made safe (NFC, no separators, no personnummer);
a patient with protected identity gets neutral names (``attachment-<n>.<ext>``), the original
name stays inside the record file only. Every file goes into the folder and the tar as it is
written (:mod:`decommission.container`); size and SHA-256 are those of the bytes written.
The package is built in ``.<package_id>.tmp`` and renamed into place; the same input and
context give byte-identical files and tar. Patients are handled a chunk at a time
(:mod:`decommission.partition`), record files rendered column-wise (:mod:`decommission.recordxml`),
METS and PREMIS streamed: memory does not grow with the package. A package is bounded by
``context.max_patients`` and ``context.max_bytes``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import mimetypes
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from decommission import __version__, mets, premis, records, recordxml, xmltext
from decommission.container import HashingWriter, PackageWriter, Written
from decommission.errors import PackageError
from decommission.model import ENTITIES
from decommission.partition import PartitionReader

if TYPE_CHECKING:
    from collections.abc import Mapping

    from decommission.partition import Chunk

__all__ = ["HashingWriter", "PackageContext", "PackageResult", "build_package", "package_id", "safe_filename"]

RECORD_STATUSES = ("TEST", "NEW", "SUPPLEMENT", "REPLACEMENT")
SCHEMA_FILES = (
    "DILCISExtensionMETS.xsd",
    "DILCISExtensionSIPMETS.xsd",
    "mets.xsd",
    "premis.xsd",
    "record.xsd",
    "xlink.xsd",
)
METS_FILENAME = "METS.xml"
MANIFEST_PATH = "metadata/descriptive/patients.xml"
PREMIS_PATH = "metadata/preservation/premis.xml"
REPRESENTATION_DIR = f"representations/{mets.REPRESENTATION}"
XML = "application/xml"
#: default bounds of one package (a delivery is many packages; the plan's partition size decides)
DEFAULT_MAX_PATIENTS = 100_000
DEFAULT_MAX_BYTES = 50 * 2**30
_MIME = mimetypes.MimeTypes()  # built-in table only: the same answer on every host
_EXTRA_TYPES = {
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "md": "text/markdown",
    "xsd": XML,
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_PATIENT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_PERSONNUMMER = re.compile(r"(?<!\d)(?:\d{6}|\d{8})[-+]?\d{4}(?!\d)")
_MIMETYPE = re.compile(r"[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


@dataclass(frozen=True)
class PackageContext:
    """Everything a package says that is not a record: agents, agreement, status, date.

    :param region_name: records creator (ARCHIVIST agent); ``region_id`` is its identification code
    :param archive_name: the preservation agent
    :param submitter_name: the submitting organisation (CREATOR agent); ``submitter_id`` its code
    :param agreement_id: the submission agreement (altRecordID SUBMISSIONAGREEMENT)
    :param record_status: one of :data:`RECORD_STATUSES`
    :param created: tz-aware UTC; the only date written anywhere in the package
    :param documentation: files copied into ``documentation/`` (at least one, CSIP60)
    :param profile_version: E-ARK SIP version whose profile URL goes into mets/@PROFILE
    """

    system_id: str
    system_name: str
    region_name: str
    region_id: str
    archive_name: str
    submitter_name: str
    agreement_id: str
    record_status: str
    created: dt.datetime
    documentation: tuple[Path, ...] = ()
    profile_version: str = "2.1.0"
    #: the submitting organisation's identification code (SIP19-20); empty: ``region_id``
    submitter_id: str = ""
    #: the most patients and bytes (of the tar) one package may hold
    max_patients: int = DEFAULT_MAX_PATIENTS
    max_bytes: int = DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class PackageResult:
    """What :func:`build_package` wrote: the directory (None when not asked for), the tar and what they hold."""

    package_id: str
    directory: Path | None
    container: Path
    sha256: str
    size: int
    file_count: int
    counts: dict[str, int]
    patients: int


def _slug(value: str, what: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_text).strip("-.")
    if not slug:
        raise PackageError(f"{what} {value!r} leaves nothing usable in a package id")
    return slug


def package_id(system_id: str, agreement_id: str, partition_id: str, record_status: str) -> str:
    """Return the package's OBJID and folder name, e.g. ``vas-LO-2025-01-p0003``.

    :param partition_id: the partition; all digits become ``p`` + four digits
    :param record_status: TEST packages get the suffix ``-test``
    :raises PackageError: a part leaves nothing usable, or an unknown record status
    """
    if record_status not in RECORD_STATUSES:
        raise PackageError(f"record_status {record_status!r} is not one of {', '.join(RECORD_STATUSES)}")
    partition = f"p{int(partition_id):04d}" if partition_id.isascii() and partition_id.isdigit() else partition_id
    parts = [_slug(system_id, "system_id"), _slug(agreement_id, "agreement_id"), _slug(partition, "partition_id")]
    if record_status == "TEST":
        parts.append("test")
    return "-".join(parts)


def safe_filename(name: str | None, fallback: str) -> str:
    """NFC, no path separators or control characters, no personnummer; ``fallback`` if nothing is left."""
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[\\/]", text)[-1]
    text = _PERSONNUMMER.sub("_", text)
    text = "".join(c if c.isalnum() or c in "._-()+" else "_" for c in text)
    text = re.sub(r"_*\._*", ".", re.sub(r"_+", "_", text)).strip(" ._")
    encoded = text.encode()
    if len(encoded) > 150:
        stem, dot, ext = text.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        text = encoded[: 140 - len(ext)].decode(errors="ignore") + (f".{ext}" if ext else "")
    if not text or text.split(".")[0].upper() in _RESERVED:
        text = f"{fallback}_{text}" if text else fallback
    return text


def _attachment_name(filename: str | None, index: int, protected: bool) -> str:
    """The safe file name; for a patient with protected identity only ``attachment-<n>.<ext>``."""
    name = safe_filename(filename, f"attachment-{index}")
    if not protected:
        return name
    ext = name.rpartition(".")[2] if "." in name[1:] else ""
    return f"attachment-{index}.{ext}" if ext.isascii() and ext.isalnum() and len(ext) <= 10 else f"attachment-{index}"


def _mimetype(name: str) -> str:
    suffix = name.rpartition(".")[2].lower() if "." in name else ""
    return _EXTRA_TYPES.get(suffix) or _MIME.guess_type(name, strict=False)[0] or "application/octet-stream"


def _check_context(context: PackageContext) -> None:
    created = context.created
    if created.tzinfo is None or created.utcoffset() != dt.timedelta(0):
        raise PackageError("context.created must be a tz-aware UTC datetime")
    if context.profile_version not in mets.SIP_PROFILES:
        raise PackageError(f"profile_version {context.profile_version!r} is not one of {sorted(mets.SIP_PROFILES)}")
    for field in (
        "system_id",
        "system_name",
        "region_name",
        "region_id",
        "archive_name",
        "submitter_name",
        "agreement_id",
        "submitter_id",
    ):
        value = getattr(context, field)
        if (not value and field != "submitter_id") or not xmltext.is_xml_safe(value):
            raise PackageError(f"context.{field} is empty or holds a character XML 1.0 does not allow")
    if not context.documentation:
        raise PackageError("context.documentation is empty: CSIP60 requires at least one documentation file")
    if context.max_patients < 1 or context.max_bytes < 1:
        raise PackageError("context.max_patients and context.max_bytes must be positive")


def _folder_name(number: int, key: str, personal_id: str | None) -> str:
    if not _PATIENT_KEY.fullmatch(key):
        raise PackageError(f"patient #{number}: patient_key is not usable as a folder name")
    digits = re.sub(r"\D", "", personal_id or "")
    if len(digits) >= 10 and digits[-10:] in re.sub(r"\D", "", key):
        raise PackageError(f"patient #{number}: patient_key holds the personal id; refusing to put it in a path")
    return key


@dataclass
class _Attachments:
    """A chunk's attachments per patient: METS entries, bytes, documents; and the record columns."""

    entries: list[list[mets.FileEntry]] = dataclasses.field(default_factory=list)
    data: list[list[memoryview]] = dataclasses.field(default_factory=list)
    documents: list[list[tuple[str | None, list[str]]]] = dataclasses.field(default_factory=list)
    columns: dict[str, pa.Array] = dataclasses.field(default_factory=dict)


class _Package:
    """The open package: the container and the streamed metadata files, filled chunk by chunk."""

    def __init__(self, root: Path, tar_path: Path, pkg_id: str, context: PackageContext, directory: bool) -> None:
        self.context = context
        self.header = mets.Header(
            created=context.created,
            record_status=context.record_status,
            agreement_id=context.agreement_id,
            software_version=__version__,
            archivist_name=context.region_name,
            archivist_code=context.region_id,
            submitter_name=context.submitter_name,
            submitter_code=context.submitter_id or context.region_id,
            preservation_name=context.archive_name,
            profile_version=context.profile_version,
        )
        created = int(context.created.timestamp())
        self.out = PackageWriter(
            root, tar_path, name=pkg_id, mtime=created, max_bytes=context.max_bytes, directory=directory
        )
        self.files = 0
        self.rep_file = self.out.stream(f"{REPRESENTATION_DIR}/{METS_FILENAME}")
        self.premis_file = self.out.stream(PREMIS_PATH)
        self.manifest_file = self.out.stream(MANIFEST_PATH)
        self.rep = mets.RepresentationMets(self.rep_file, objid=mets.REPRESENTATION, header=self.header)
        self.premis = premis.PremisWriter(
            self.premis_file,
            premis.Provenance(
                package_id=pkg_id,
                representation=REPRESENTATION_DIR,
                created=context.created,
                software_name=mets.SOFTWARE_NAME,
                software_version=__version__,
                system_name=context.system_name,
                region_name=context.region_name,
                region_id=context.region_id,
                archive_name=context.archive_name,
            ),
        )
        created_text = records.format_value(context.created) or ""
        self.manifest_file.write(recordxml.manifest_head(pkg_id, context.system_id, created_text).encode())

    def add(self, rel: str, parts: list, sha256: str | None = None) -> Written:
        self.files += 1
        return self.out.add(rel, parts, sha256)

    def write_chunk(self, chunk: Chunk) -> None:
        """Attachments, record files, METS, PREMIS and manifest entries of one chunk of patients.

        Files go into the container patient by patient (attachments, then the record file), so the
        bytes do not depend on the chunk size.
        """
        patients = chunk.patients
        keys = patients.column("patient_key").to_pylist()
        personal = patients.column("personal_id").to_pylist()
        protected = patients.column("protected_identity").to_pylist()
        folders = [_folder_name(chunk.first + i + 1, k, p) for i, (k, p) in enumerate(zip(keys, personal, strict=True))]
        attachments = self._attachments(chunk, folders, protected)
        chunk_records = recordxml.ChunkRecords(chunk, attachments.columns)
        cases, bounds = chunk.tables["case"].column("case_id").to_pylist(), chunk.bounds["case"]
        premis_files = []
        for i, folder in enumerate(folders):
            number = chunk.first + i + 1
            for entry, data in zip(attachments.entries[i], attachments.data[i], strict=True):
                self.add(f"{REPRESENTATION_DIR}/{entry.href}", [data], sha256=entry.sha256)
            rel = f"data/{folder}/{records.RECORD_FILENAME}"
            written = self.add(f"{REPRESENTATION_DIR}/{rel}", chunk_records.record(i))
            record = mets.FileEntry(f"file-p{number:06d}-record", rel, XML, written.size, written.sha256)
            files = [record, *attachments.entries[i]]
            premis_files += [(f"{REPRESENTATION_DIR}/{f.href}", f.size, f.sha256, f.mimetype) for f in files]
            self.rep.add_patient(
                folder=f"data/{folder}",
                files=files,
                cases=cases[bounds[i] : bounds[i + 1]],
                documents=attachments.documents[i],
            )
        self.premis.add_files(premis_files)
        manifest = recordxml.manifest_entries(
            chunk,
            [f"{REPRESENTATION_DIR}/data/{f}" for f in folders],
            [f"{REPRESENTATION_DIR}/data/{f}/{records.RECORD_FILENAME}" for f in folders],
        )
        self.manifest_file.write("".join(manifest).encode())

    @staticmethod
    def _attachments(chunk: Chunk, folders: list[str], protected: list[bool | None]) -> _Attachments:
        """Name and hash the chunk's attachments (their bytes are views into the chunk, not copies)."""
        table, bounds = chunk.tables["attachment"], chunk.bounds["attachment"]
        documents_table = chunk.tables["document"]
        case_index = pc.index_in(table.column("document_id"), value_set=documents_table.column("document_id"))
        case_of = pc.take(documents_table.column("case_id"), case_index).to_pylist()
        filenames = table.column("filename").to_pylist()
        mimetypes_ = table.column("mimetype").to_pylist()
        document_ids = table.column("document_id").to_pylist()
        content = table.column("content").combine_chunks() if table.num_rows else None
        out = _Attachments()
        paths, sizes, digests = [], [], []
        for i, folder in enumerate(folders):
            number = chunk.first + i + 1
            used = {records.RECORD_FILENAME}
            entries, data, doc_files = [], [], {}
            for index, row in enumerate(range(bounds[i], bounds[i + 1]), start=1):
                name = _attachment_name(filenames[row], index, bool(protected[i]))
                stem, dot, ext = name.rpartition(".") if "." in name[1:] else (name, "", "")
                candidate, n = name, 1
                while candidate.casefold() in used:
                    n += 1
                    candidate = f"{stem}-{n}{dot}{ext}"
                used.add(candidate.casefold())
                relative = f"attachments/{candidate}"
                buffer = content[row].as_buffer() if content[row].is_valid else None
                view = memoryview(buffer) if buffer is not None else memoryview(b"")
                digest = hashlib.sha256(view).hexdigest()
                declared = mimetypes_[row]
                mimetype = declared if _MIMETYPE.fullmatch(declared or "") else _mimetype(candidate)
                file_id = f"file-p{number:06d}-a{index:04d}"
                entries.append(mets.FileEntry(file_id, f"data/{folder}/{relative}", mimetype, view.nbytes, digest))
                data.append(view)
                doc_files.setdefault(document_ids[row] or "", []).append(file_id)
                paths.append(relative)
                sizes.append(str(view.nbytes))
                digests.append(digest)
            first_of = {document_ids[r] or "": r for r in range(bounds[i + 1] - 1, bounds[i] - 1, -1)}
            out.documents.append([(case_of[first_of[d]] if d else None, ids) for d, ids in doc_files.items()])
            out.entries.append(entries)
            out.data.append(data)
        out.columns = {
            "path": xmltext.escape(pa.array(paths, pa.large_string())),
            "size": pa.array(sizes, pa.large_string()),
            "sha256": pa.array(digests, pa.large_string()),
        }
        return out

    def finish(self, pkg_id: str) -> Written:
        """Close the streamed files, add schemas, documentation and the root METS; end the tar."""
        context = self.context
        self.rep.close()
        self.premis.close()
        self.manifest_file.write(recordxml.MANIFEST_TAIL.encode())
        manifest = self.out.commit(MANIFEST_PATH, self.manifest_file)
        premis_written = self.out.commit(PREMIS_PATH, self.premis_file)
        rep_rel = f"{REPRESENTATION_DIR}/{METS_FILENAME}"
        rep = self.out.commit(rep_rel, self.rep_file)
        self.files += 3
        schemas = []
        for i, name in enumerate(SCHEMA_FILES, start=1):
            written = self.out.copy(f"schemas/{name}", records.SCHEMA_DIR / name)
            schemas.append(_entry(f"file-schema-{i:02d}", f"schemas/{name}", XML, written))
        documentation, names = [], set()
        for i, source in enumerate(sorted(context.documentation, key=lambda p: safe_filename(Path(p).name, "doc")), 1):
            name = safe_filename(Path(source).name, f"documentation-{i}")
            if name in names:
                raise PackageError(f"documentation: two files are both named {name!r} once made safe")
            names.add(name)
            written = self.out.copy(f"documentation/{name}", Path(source))
            documentation.append(_entry(f"file-doc-{i:02d}", f"documentation/{name}", _mimetype(name), written))
        self.files += len(schemas) + len(documentation)
        root = io.BytesIO()
        mets.write_root_mets(
            root,
            objid=pkg_id,
            profile=mets.SIP_PROFILES[context.profile_version],
            label=f"Patient records from {context.system_name}, {context.region_name}",
            header=self.header,
            manifest=_entry("file-manifest", MANIFEST_PATH, XML, manifest),
            premis=_entry("file-premis", PREMIS_PATH, XML, premis_written),
            documentation=documentation,
            schemas=schemas,
            representation=_entry(f"file-{mets.REPRESENTATION}-mets", rep_rel, XML, rep),
        )
        self.add(METS_FILENAME, [root.getvalue()])
        return self.out.close()


def _entry(file_id: str, href: str, mimetype: str, written: Written) -> mets.FileEntry:
    return mets.FileEntry(file_id, href, mimetype, written.size, written.sha256)


def build_package(
    *, mapped: Mapping[str, Path], context: PackageContext, partition_id: str, out_dir: Path, directory: bool = True
) -> PackageResult:
    """Write one partition as an E-ARK SIP tar (and folder) under ``out_dir``; replace an older one.

    :param mapped: entity name -> Parquet file with exactly that entity's model columns
    :param context: agents, agreement, status, creation time, documentation and size bounds
    :param partition_id: the partition's id (part of the package id)
    :param out_dir: where ``<package_id>.tar`` (and ``<package_id>/``) go
    :param directory: also write the package folder (the same bytes as the tar); without it the
        tar alone, which saves creating a file per record on disk
    :raises PackageError: bad input (the message names entity, record and column, never a value),
        or a package beyond ``context.max_patients`` or ``context.max_bytes``
    """
    _check_context(context)
    pkg_id = package_id(context.system_id, context.agreement_id, partition_id, context.record_status)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp, tmp_tar, old = out_dir / f".{pkg_id}.tmp", out_dir / f".{pkg_id}.tar.tmp", out_dir / f".{pkg_id}.old"
    scratch = out_dir / f".{pkg_id}.scratch"
    final, final_tar = out_dir / pkg_id, out_dir / f"{pkg_id}.tar"
    for stale in (tmp, old, scratch):
        shutil.rmtree(stale, ignore_errors=True)
    tmp_tar.unlink(missing_ok=True)
    package = None
    try:
        tmp.mkdir()
        reader = PartitionReader(mapped, scratch)
        if len(reader) > context.max_patients:
            raise PackageError(
                f"the partition holds {len(reader)} patients, more than a package may hold ({context.max_patients})"
            )
        package = _Package(tmp, tmp_tar, pkg_id, context, directory)
        counts = dict.fromkeys(ENTITIES, 0)
        for chunk in reader.chunks():
            package.write_chunk(chunk)
            for name, table in chunk.tables.items():
                counts[name] += table.num_rows
        counts["patient"] = len(reader)
        tar = package.finish(pkg_id)
        shutil.rmtree(scratch, ignore_errors=True)
        if final.exists():
            final.rename(old)
        if directory:
            tmp.rename(final)
        os.replace(tmp_tar, final_tar)
    except BaseException:
        if package is not None:
            package.out.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
        tmp_tar.unlink(missing_ok=True)
        if old.exists() and not final.exists():
            old.rename(final)
        raise
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return PackageResult(
        pkg_id, final if directory else None, final_tar, tar.sha256, tar.size, package.files, counts, counts["patient"]
    )
