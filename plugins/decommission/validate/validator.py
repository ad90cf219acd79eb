"""Our package validator: schemas, the key CSIP/SIP/eHealth1 requirements, fixity, layout.

``validate_package`` takes a package directory or its ``.tar`` (read in place, not unpacked)
and checks what the E-ARK reference validator does not: the root and representation METS
against METS 1.12 with every schema resolved locally, PREMIS against PREMIS 3, record files
and the patient manifest against ``record.xsd``, SIZE and SHA-256 of every file against
METS and PREMIS, missing files and files no METS references. Problems carry the requirement
id (``CSIP..``, ``SIP..``, ``EHR..``; our own checks: ``LAYOUT``, ``XML``, ``XSD``, ``FIXITY``,
``MISSING-FILE``, ``EXTRA-FILE``, ``PREMIS``, ``MANIFEST``, ``IDREF``) and never a record's content.
Large METS and PREMIS files are stream-parsed; each file is read once.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from decommission.validate.content import check_premis, check_records
from decommission.validate.mets_rules import check_metadata, check_mets, check_representation_mets, check_struct_map
from decommission.validate.package_source import Checker, PackageSource, Problem

__all__ = ["Problem", "ValidationReport", "validate_package"]


@dataclass
class ValidationReport:
    """The verdict on one package; ``ok`` is True when there are no problems."""

    package_id: str
    ok: bool
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"package_id": self.package_id, "ok": self.ok, "problems": [asdict(p) for p in self.problems]}

    def to_text(self) -> str:
        if self.ok:
            return f"{self.package_id}: valid"
        lines = [f"{self.package_id}: INVALID ({len(self.problems)} problems)"]
        lines += [f"  [{p.requirement}] {p.path}: {p.message}" for p in self.problems]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)


def validate_package(path: Path) -> ValidationReport:
    """Validate a package directory or ``.tar``; nothing is fetched over the network.

    :param path: the package's root folder (named after its OBJID) or its tar
    :returns: the report; ``ok`` is False when any problem was found
    """
    path = Path(path)
    problems: list[Problem] = []
    if not (path.is_dir() or (path.is_file() and tarfile.is_tarfile(path))):
        return ValidationReport(path.name, False, [Problem("LAYOUT", path.name, "neither a folder nor a tar")])
    source = PackageSource(path, problems)
    try:
        v = Checker(source, problems)
        doc, listed = check_mets(v, "METS.xml", source.name)
        package = (doc.get("OBJID") if doc is not None else None) or source.name or path.name
        if doc is not None:
            metadata = check_metadata(v, doc, "METS.xml")
            for rep in sorted(listed | set(check_struct_map(v, doc, "METS.xml", root=True))):
                check_representation_mets(v, rep, posixpath.basename(posixpath.dirname(rep)))
            for premis_path in metadata.get("PREMIS", []):
                check_premis(v, premis_path)
            v.need(metadata.get("PREMIS"), "PREMIS", "METS.xml", "no digiprovMD references a PREMIS file")
            check_records(v, metadata.get("PatientManifest", []))
            for rel in source.files.unmarked("referenced"):
                v.add("EXTRA-FILE", rel, "no METS document references this file")
    finally:
        source.close()
    return ValidationReport(package, not problems, problems)
