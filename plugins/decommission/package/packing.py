"""The open package: container, streamed METS/PREMIS/manifest, filled one chunk of patients at a time."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from decommission import __version__
from decommission.errors import PackageError
from decommission.package import mets, premis, records, recordxml, siard, xmltext
from decommission.package.container import PackageWriter, Written
from decommission.package.names import MIMETYPE_RE, XML, attachment_name, folder_name, mimetype, safe_filename

if TYPE_CHECKING:
    from decommission.package.context import PackageContext
    from decommission.package.partition import Chunk

SCHEMA_FILES = (
    "DILCISExtensionMETS.xsd",
    "DILCISExtensionSIPMETS.xsd",
    "mets.xsd",
    "premis.xsd",
    "record.xsd",
    "siard2-2-metadata.xsd",
    "xlink.xsd",
)
METS_FILENAME = "METS.xml"
MANIFEST_PATH = "metadata/descriptive/patients.xml"
PREMIS_PATH = "metadata/preservation/premis.xml"
REPRESENTATION_DIR = f"representations/{mets.REPRESENTATION}"
RAW_DIR = f"representations/{mets.RAW_REPRESENTATION}"


@dataclass
class _Attachments:
    """A chunk's attachments per patient: METS entries, bytes, documents; and the record columns."""

    entries: list[list[mets.FileEntry]] = dataclasses.field(default_factory=list)
    data: list[list[memoryview]] = dataclasses.field(default_factory=list)
    documents: list[list[tuple[str | None, list[str]]]] = dataclasses.field(default_factory=list)
    columns: dict[str, pa.Array] = dataclasses.field(default_factory=dict)


class Package:
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
        self.raw_mets: Written | None = None
        self.raw_rows: dict[str, int] = {}
        self.raw_seconds = 0.0
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
        folders = [folder_name(chunk.first + i + 1, k, p) for i, (k, p) in enumerate(zip(keys, personal, strict=True))]
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
            patient_dir = f"{REPRESENTATION_DIR}/data/{folder}"
            self.out.forget(patient_dir, f"{patient_dir}/attachments")  # files go in patient by patient
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
                name = attachment_name(filenames[row], index, bool(protected[i]))
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
                media = declared if MIMETYPE_RE.fullmatch(declared or "") else mimetype(candidate)
                file_id = f"file-p{number:06d}-a{index:04d}"
                entries.append(mets.FileEntry(file_id, f"data/{folder}/{relative}", media, view.nbytes, digest))
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

    def write_raw(self, raw: siard.RawPart, scratch: Path, pkg_id: str) -> None:
        """The raw representation: the SIARD file (built in ``scratch``, hashed into the tar) and its METS."""
        started = time.perf_counter()
        scratch.mkdir(parents=True, exist_ok=True)
        built = scratch / f"{pkg_id}.siard"
        built.unlink(missing_ok=True)
        result = siard.write_siard(built, raw.database, raw.tables)
        rel = f"data/{pkg_id}.siard"
        written = self.out.copy(f"{RAW_DIR}/{rel}", built)
        built.unlink()
        self.premis.add_files([(f"{RAW_DIR}/{rel}", written.size, written.sha256, siard.MIMETYPE)])
        body = io.BytesIO()
        entry = mets.FileEntry("file-siard", rel, siard.MIMETYPE, written.size, written.sha256)
        mets.write_raw_mets(body, header=self.header, siard=entry)
        self.raw_mets = self.add(f"{RAW_DIR}/{METS_FILENAME}", [body.getvalue()])
        self.files += 1
        self.raw_rows = result.rows
        self.raw_seconds = time.perf_counter() - started  # for the bench: the SIARD part's share of a build

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
            documentation.append(_entry(f"file-doc-{i:02d}", f"documentation/{name}", mimetype(name), written))
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
            raw=None
            if self.raw_mets is None
            else _entry(f"file-{mets.RAW_REPRESENTATION}-mets", f"{RAW_DIR}/{METS_FILENAME}", XML, self.raw_mets),
        )
        self.add(METS_FILENAME, [root.getvalue()])
        return self.out.close()


def _entry(file_id: str, href: str, mimetype_: str, written: Written) -> mets.FileEntry:
    return mets.FileEntry(file_id, href, mimetype_, written.size, written.sha256)
