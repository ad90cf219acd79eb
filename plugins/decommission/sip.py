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
name stays inside the record file only. Every size and SHA-256 is computed while the bytes
are written, never by reading them back.
The package is built in ``.<package_id>.tmp`` and renamed into place; the same input and
context give byte-identical files and tar. Memory holds the partition's Arrow tables and one
patient's rows at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
import os
import re
import shutil
import tarfile
import unicodedata
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from decommission import __version__, mets, premis, records
from decommission.errors import PackageError
from decommission.model import ENTITIES

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

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
_COPY_CHUNK = 1 << 20
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


@dataclass(frozen=True)
class PackageResult:
    """What :func:`build_package` wrote: the directory, the tar and what they hold."""

    package_id: str
    directory: Path
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


@contextmanager
def _hashed(path: Path) -> Iterator[HashingWriter]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as raw:
        yield HashingWriter(raw)


def _copy(source: Path, target: Path) -> HashingWriter:
    with _hashed(target) as out, open(source, "rb") as src:
        while chunk := src.read(_COPY_CHUNK):
            out.write(chunk)
    return out


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
        if (not value and field != "submitter_id") or not records.is_xml_safe(value):
            raise PackageError(f"context.{field} is empty or holds a character XML 1.0 does not allow")
    if not context.documentation:
        raise PackageError("context.documentation is empty: CSIP60 requires at least one documentation file")


def _folder_name(number: int, patient: Mapping[str, Any]) -> str:
    key = patient["patient_key"]
    if not _PATIENT_KEY.fullmatch(key):
        raise PackageError(f"patient #{number}: patient_key is not usable as a folder name")
    digits = re.sub(r"\D", "", patient.get("personal_id") or "")
    if len(digits) >= 10 and digits[-10:] in re.sub(r"\D", "", key):
        raise PackageError(f"patient #{number}: patient_key holds the personal id; refusing to put it in a path")
    return key


@dataclass
class _Writers:
    rep: mets.RepresentationMets
    premis: premis.PremisWriter
    manifest: records.ManifestWriter


def _write_patient(root: Path, number: int, rows: dict[str, list[dict]], out: _Writers) -> dict[str, int]:
    patient = rows["patient"][0]
    key = _folder_name(number, patient)
    folder = f"data/{key}"
    base = root / REPRESENTATION_DIR / folder
    stored: dict[str, records.StoredFile] = {}
    entries: list[mets.FileEntry] = []
    used = {records.RECORD_FILENAME}
    doc_files: dict[str, list[str]] = {}
    protected = bool(patient.get("protected_identity"))
    for index, row in enumerate(
        sorted(rows.get("attachment", []), key=lambda r: records.natural_key(r["attachment_id"])), start=1
    ):
        name = _attachment_name(row.get("filename"), index, protected)
        stem, dot, ext = name.rpartition(".") if "." in name[1:] else (name, "", "")
        candidate, n = name, 1
        while candidate.casefold() in used:
            n += 1
            candidate = f"{stem}-{n}{dot}{ext}"
        used.add(candidate.casefold())
        relative = f"attachments/{candidate}"
        with _hashed(base / relative) as w:
            w.write(row.get("content") or b"")
        mimetype = row.get("mimetype") if _MIMETYPE.fullmatch(row.get("mimetype") or "") else None
        entry = mets.FileEntry(
            f"file-p{number:06d}-a{index:04d}",
            f"{folder}/{relative}",
            mimetype or _mimetype(candidate),
            w.size,
            w.sha256,
        )
        stored[row["attachment_id"]] = records.StoredFile(relative, w.size, w.sha256)
        entries.append(entry)
        doc_files.setdefault(row.get("document_id") or "", []).append(entry.file_id)
    with _hashed(base / records.RECORD_FILENAME) as w:
        counts = records.write_record(w, patient, rows, stored)
    record = mets.FileEntry(f"file-p{number:06d}-record", f"{folder}/{records.RECORD_FILENAME}", XML, w.size, w.sha256)
    entries.insert(0, record)
    for entry in entries:
        out.premis.add_file(
            f"{REPRESENTATION_DIR}/{entry.href}", size=entry.size, sha256=entry.sha256, mimetype=entry.mimetype
        )
    cases = [row["case_id"] for row in records.sort_records("case", rows.get("case", []))]
    case_of = {r["document_id"]: r.get("case_id") for r in rows.get("document", [])}
    documents = [(case_of.get(doc_id), ids) for doc_id, ids in doc_files.items()]
    out.rep.add_patient(folder=folder, files=entries, cases=cases, documents=documents)
    out.manifest.add(
        patient, folder=f"{REPRESENTATION_DIR}/{folder}", record=f"{REPRESENTATION_DIR}/{record.href}", counts=counts
    )
    return counts


def _write_tree(root: Path, pkg_id: str, partition: records.Partition, context: PackageContext) -> dict[str, int]:
    header = mets.Header(
        created=context.created,
        record_status=context.record_status,
        agreement_id=context.agreement_id,
        software_version=__version__,
        archivist_name=context.region_name,
        archivist_code=context.region_id,
        submitter_name=context.submitter_name,
        submitter_code=context.submitter_id or context.region_id,
        preservation_name=context.archive_name,
    )
    provenance = premis.Provenance(
        package_id=pkg_id,
        representation=REPRESENTATION_DIR,
        created=context.created,
        software_name=mets.SOFTWARE_NAME,
        software_version=__version__,
        system_name=context.system_name,
        region_name=context.region_name,
        region_id=context.region_id,
        archive_name=context.archive_name,
    )
    totals = dict.fromkeys(ENTITIES, 0)
    with ExitStack() as stack:
        rep_file = stack.enter_context(_hashed(root / REPRESENTATION_DIR / METS_FILENAME))
        premis_file = stack.enter_context(_hashed(root / PREMIS_PATH))
        manifest_file = stack.enter_context(_hashed(root / MANIFEST_PATH))
        out = _Writers(
            rep=mets.RepresentationMets(rep_file, objid=mets.REPRESENTATION, header=header),
            premis=premis.PremisWriter(premis_file, provenance),
            manifest=records.ManifestWriter(
                manifest_file, package_id=pkg_id, system_id=context.system_id, created=context.created
            ),
        )
        for number, rows in enumerate(partition.patients(), start=1):
            for name, count in _write_patient(root, number, rows, out).items():
                totals[name] += count
        out.rep.close()
        out.premis.close()
        out.manifest.close()
    schemas = [
        _entry(
            f"file-schema-{i:02d}", f"schemas/{name}", XML, _copy(records.SCHEMA_DIR / name, root / "schemas" / name)
        )
        for i, name in enumerate(SCHEMA_FILES, start=1)
    ]
    documentation = []
    for i, source in enumerate(sorted(context.documentation, key=lambda p: safe_filename(Path(p).name, "doc")), 1):
        name = safe_filename(Path(source).name, f"documentation-{i}")
        if (root / "documentation" / name).exists():
            raise PackageError(f"documentation: two files are both named {name!r} once made safe")
        documentation.append(
            _entry(
                f"file-doc-{i:02d}",
                f"documentation/{name}",
                _mimetype(name),
                _copy(Path(source), root / "documentation" / name),
            )
        )
    with _hashed(root / METS_FILENAME) as w:
        mets.write_root_mets(
            w,
            objid=pkg_id,
            profile=mets.SIP_PROFILES[context.profile_version],
            label=f"Patient records from {context.system_name}, {context.region_name}",
            header=header,
            manifest=_entry("file-manifest", MANIFEST_PATH, XML, manifest_file),
            premis=_entry("file-premis", PREMIS_PATH, XML, premis_file),
            documentation=documentation,
            schemas=schemas,
            representation=_entry(
                f"file-{mets.REPRESENTATION}-mets", f"{REPRESENTATION_DIR}/{METS_FILENAME}", XML, rep_file
            ),
        )
    totals["patient"] = len(partition)
    return totals


def _entry(file_id: str, href: str, mimetype: str, written: HashingWriter) -> mets.FileEntry:
    return mets.FileEntry(file_id, href, mimetype, written.size, written.sha256)


def _members(root: Path) -> list[tuple[str, Path]]:
    """(posix path relative to ``root``, path) of every folder and file below ``root``, sorted."""
    return sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*"))


def _write_tar(root: Path, members: list[tuple[str, Path]], pkg_id: str, target: Path, mtime: int) -> tuple[str, int]:
    """Write a deterministic PAX tar of ``root`` as ``<pkg_id>/...``; hash it while writing."""
    with open(target, "xb") as raw:
        out = HashingWriter(raw)
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
            for name, path in [("", root), *members]:
                info = tarfile.TarInfo(f"{pkg_id}/{name}".rstrip("/"))
                info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
                if path.is_dir():
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                else:
                    info.size, info.mode = path.stat().st_size, 0o644
                    with open(path, "rb") as src:
                        tar.addfile(info, src)
        raw.flush()
        os.fsync(raw.fileno())
    return out.sha256, out.size


def build_package(
    *, mapped: Mapping[str, Path], context: PackageContext, partition_id: str, out_dir: Path
) -> PackageResult:
    """Write one partition as an E-ARK SIP directory and tar under ``out_dir``; replace an older one.

    :param mapped: entity name -> Parquet file with exactly that entity's model columns
    :param context: agents, agreement, status, creation time and documentation
    :param partition_id: the partition's id (part of the package id)
    :param out_dir: where ``<package_id>/`` and ``<package_id>.tar`` go
    :raises PackageError: bad input (the message names entity, record and column, never a value)
    """
    _check_context(context)
    pkg_id = package_id(context.system_id, context.agreement_id, partition_id, context.record_status)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp, tmp_tar, old = out_dir / f".{pkg_id}.tmp", out_dir / f".{pkg_id}.tar.tmp", out_dir / f".{pkg_id}.old"
    final, final_tar = out_dir / pkg_id, out_dir / f"{pkg_id}.tar"
    for stale in (tmp, old):
        shutil.rmtree(stale, ignore_errors=True)
    tmp_tar.unlink(missing_ok=True)
    try:
        tmp.mkdir()
        counts = _write_tree(tmp, pkg_id, records.load_partition(mapped), context)
        members = _members(tmp)
        file_count = sum(1 for _name, path in members if path.is_file())
        sha256, size = _write_tar(tmp, members, pkg_id, tmp_tar, int(context.created.timestamp()))
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        os.replace(tmp_tar, final_tar)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp_tar.unlink(missing_ok=True)
        if old.exists() and not final.exists():
            old.rename(final)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return PackageResult(pkg_id, final, final_tar, sha256, size, file_count, counts, counts["patient"])
