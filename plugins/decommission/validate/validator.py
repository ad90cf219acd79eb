"""Our package validator: schemas, the key CSIP/SIP/eHealth1 requirements, fixity, layout.

``validate_package`` takes a package directory, its ``.tar`` or a ``.zip`` (read in place, not
unpacked) and checks what the E-ARK reference validator does not: the root and representation
METS against METS 1.12 with every schema resolved locally, PREMIS against PREMIS 3, record
files and the patient manifest against ``record.xsd``, SIZE and SHA-256 of every file against
METS and PREMIS, missing files and files no METS references (files under ``schemas/`` need no
reference: CSIP does not ask for one). Problems carry the requirement id (``CSIP..``,
``SIP..``, ``EHR..``; our own checks: ``LAYOUT``, ``XML``, ``XSD``, ``FIXITY``,
``MISSING-FILE``, ``EXTRA-FILE``, ``PREMIS``, ``MANIFEST``, ``IDREF``, ``LIMIT``,
``INTERNAL``) and never a record's content.

It fails closed: whatever the bytes (a truncated or hostile tar, a DTD, an entity, a file of
many GiB), the answer is a report, invalid with the reason, in bounded time and memory
(:mod:`~decommission.validate.limits`, :mod:`~decommission.validate.xmlsafe`); an exception
the checks did not foresee is a finding too (``INTERNAL``), never a pass.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from decommission.validate.content import check_premis, check_records
from decommission.validate.limits import Budget, Limits, Stop
from decommission.validate.mets_rules import check_mets
from decommission.validate.package_source import Checker, Findings, PackageSource, Problem, RecordVisitor
from decommission.validate.siard import check_siard_files

__all__ = ["Limits", "Problem", "ValidationReport", "validate_package"]

log = logging.getLogger(__name__)

#: CSIP's schema folders, of the package and of each representation: their files need no METS reference
_SCHEMAS = re.compile(r"(?:representations/[^/]+/)?schemas/")


@dataclass
class ValidationReport:
    """The verdict on one package; ``ok`` is True when there are no problems."""

    package_id: str
    ok: bool
    problems: list[Problem] = field(default_factory=list)
    #: rows per source table counted in the raw representation's SIARD file(s)
    raw_rows: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "package_id": self.package_id,
            "ok": self.ok,
            "problems": [asdict(p) for p in self.problems],
            "raw_rows": self.raw_rows,
        }

    def to_text(self) -> str:
        if self.ok:
            return f"{self.package_id}: valid"
        lines = [f"{self.package_id}: INVALID ({len(self.problems)} problems)"]
        lines += [f"  [{p.requirement}] {p.path}: {p.message}" for p in self.problems]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)


def validate_package(
    path: Path, limits: Limits | None = None, read_record: RecordVisitor | None = None
) -> ValidationReport:
    """Validate a package directory, ``.tar`` or ``.zip``; nothing is fetched over the network.

    :param path: the package's root folder (named after its OBJID), its tar or its zip
    :param limits: sizes and time budget (:meth:`Limits.from_env` when not given)
    :param read_record: called with each record file that is valid against record.xsd, its bytes and
        its parsed root (None when it was too large to keep as a tree), so that whoever reads the
        records next (the reconciliation's digests) need not parse them again
    :returns: the report; ``ok`` is False when any problem was found
    """
    path = Path(path)
    limits = limits or Limits.from_env()
    budget = Budget(limits.seconds)
    findings = Findings(limits.max_findings)
    package = path.name
    source: PackageSource | None = None
    raw_rows: dict[str, int] = {}
    try:
        source = PackageSource(path, findings, limits, budget)
        package = source.name or path.name
        checker = Checker(source, findings, limits, budget)
        checker.read_record = read_record
        package = _check(checker, raw_rows) or package
    except Stop as stop:
        findings.limit += 1  # the reason validation stopped is reported even when the findings are capped
        findings.append(Problem(stop.requirement, stop.path or path.name, stop.message))
    except Exception as exc:  # fail closed: a fault of ours on strange input is not a pass
        where = traceback.extract_tb(exc.__traceback__)[-1]
        at = f"{posixpath.basename(where.filename)}:{where.lineno}"
        # the type and place only: an exception's text may quote the package's content
        log.error("validation of %s stopped by %s at %s", path.name, type(exc).__name__, at)
        findings.limit += 1
        findings.append(
            Problem("INTERNAL", path.name, f"validation stopped by an unexpected {type(exc).__name__} at {at}")
        )
    finally:
        if source is not None:
            source.close()
    problems = findings.result()
    return ValidationReport(package, not problems, problems, raw_rows)


def _check(v: Checker, raw_rows: dict[str, int]) -> str | None:
    """Every check in turn; returns the package's OBJID when the root METS could be read."""
    root = check_mets(v, "METS.xml", v.src.name, root=True)
    if root is None:
        return None
    for rep in sorted(root.representations):
        check_mets(v, rep, posixpath.basename(posixpath.dirname(rep)), root=False)
    for premis_path in root.metadata.get("PREMIS", []):
        check_premis(v, premis_path)
    v.need(root.metadata.get("PREMIS"), "PREMIS", "METS.xml", "no digiprovMD references a PREMIS file")
    check_records(v, root.metadata.get("PatientManifest", []))
    for counted in check_siard_files(v).values():
        for table, rows in counted.items():
            raw_rows[table] = raw_rows.get(table, 0) + rows
    for rel in v.src.files.unmarked("referenced"):
        if not _SCHEMAS.match(rel):
            v.add("EXTRA-FILE", rel, "no METS document references this file")
    return root.objid
