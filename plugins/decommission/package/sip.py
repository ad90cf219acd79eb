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
written (:mod:`decommission.package.container`); size and SHA-256 are those of the bytes written.
The package is built in ``.<package_id>.tmp`` and renamed into place; the same input and
context give byte-identical files and tar. Patients are handled a chunk at a time
(:mod:`decommission.package.partition`), record files rendered column-wise (:mod:`decommission.package.recordxml`),
METS and PREMIS streamed: memory does not grow with the package. A package is bounded by
``context.max_patients`` and ``context.max_bytes``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from decommission.errors import PackageError
from decommission.files import exclusive
from decommission.model import ENTITIES
from decommission.package.container import HashingWriter
from decommission.package.context import RECORD_STATUSES, PackageContext, check_context
from decommission.package.names import safe_filename
from decommission.package.packing import Package
from decommission.package.partition import PartitionReader
from decommission.package.siard import RawPart

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["HashingWriter", "PackageContext", "PackageResult", "build_package", "package_id", "safe_filename"]


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
    #: rows per source table in the raw representation (SIARD); empty without one
    raw_rows: dict[str, int] = dataclasses.field(default_factory=dict)
    #: seconds spent on the raw representation (measured, never in the package)
    raw_seconds: float = 0.0


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


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cycle collection while a package is built.

    The build makes no reference cycles but allocates containers by the hundred thousand, which
    set off collections that walk the whole worker's heap, Airflow's included: 6 % of the build.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def build_package(
    *,
    mapped: Mapping[str, Path],
    context: PackageContext,
    partition_id: str,
    out_dir: Path,
    directory: bool = True,
    raw: RawPart | None = None,
) -> PackageResult:
    """Write one partition as an E-ARK SIP tar (and folder) under ``out_dir``; replace an older one.

    :param mapped: entity name -> Parquet file with exactly that entity's model columns
    :param context: agents, agreement, status, creation time, documentation and size bounds
    :param partition_id: the partition's id (part of the package id)
    :param out_dir: where ``<package_id>.tar`` (and ``<package_id>/``) go
    :param directory: also write the package folder (the same bytes as the tar); without it the
        tar alone, which saves creating a file per record on disk
    :param raw: the partition's source rows for the raw representation (SIARD 2.2, ``representations/rep2``)
    :raises PackageError: bad input (the message names entity, record and column, never a value),
        or a package beyond ``context.max_patients`` or ``context.max_bytes``
    """
    check_context(context)
    pkg_id = package_id(context.system_id, context.agreement_id, partition_id, context.record_status)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # one build of a package at a time (a retry beside a zombie attempt): the fixed temporary names
    # below are then this build's own, and the second build rebuilds the same bytes
    with exclusive(out_dir / pkg_id):
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
            package = Package(tmp, tmp_tar, pkg_id, context, directory)
            counts = dict.fromkeys(ENTITIES, 0)
            with _cyclic_gc_paused():
                for chunk in reader.chunks():
                    package.write_chunk(chunk)
                    for name, table in chunk.tables.items():
                        counts[name] += table.num_rows
                counts["patient"] = len(reader)
                if raw is not None:
                    package.write_raw(raw, scratch / "raw", pkg_id)
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
        pkg_id,
        final if directory else None,
        final_tar,
        tar.sha256,
        tar.size,
        package.files,
        counts,
        counts["patient"],
        package.raw_rows,
        package.raw_seconds,
    )
