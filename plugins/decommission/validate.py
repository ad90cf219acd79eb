"""Our package validator: schemas, the key CSIP/SIP/eHealth1 requirements, fixity, layout.

``validate_package`` takes a package directory or its ``.tar`` (read in place, not unpacked)
and checks what the E-ARK reference validator does not: the root and representation METS
against METS 1.12 with every schema resolved locally, PREMIS against PREMIS 3, record files
and the patient manifest against ``record.xsd``, SIZE and SHA-256 of every file against
METS and PREMIS, missing files and files no METS references. Problems carry the requirement
id (``CSIP..``, ``SIP..``, ``EHR..``; our own checks: ``LAYOUT``, ``XML``, ``XSD``, ``FIXITY``,
``MISSING-FILE``, ``EXTRA-FILE``, ``PREMIS``, ``MANIFEST``, ``IDREF``) and never a record's content.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import tarfile
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import unquote

from lxml import etree

from decommission import mets, premis, records

M, X, C = mets.METS_NS, mets.XLINK_NS, mets.CSIP_NS
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CHUNK = 1 << 20


def _m(name: str) -> str:
    return f"{{{M}}}{name}"


@dataclass(frozen=True)
class Problem:
    """One finding: the requirement broken, the file (relative to the package root), what is wrong."""

    requirement: str
    path: str
    message: str


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


class _Source:
    """A package's files by NFC path relative to its root folder, from a directory or a tar."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.files: dict[str, object] = {}
        self._tar: tarfile.TarFile | None = None
        if path.is_dir():
            self.name = path.name
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                for name in sorted(filenames):
                    full = Path(dirpath) / name
                    self._add(full.relative_to(path).as_posix(), full, full.is_symlink(), problems)
            return
        self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed in close())
        members = self._tar.getmembers()
        tops = {m.name.split("/", 1)[0] for m in members}
        self.name = tops.pop() if len(tops) == 1 else ""
        if tops or not self.name:
            problems.append(Problem("LAYOUT", path.name, "the tar does not hold exactly one root folder"))
        for member in members:
            rel = member.name.split("/", 1)[1] if "/" in member.name else ""
            parts = rel.split("/")
            if member.name.startswith("/") or ".." in parts:
                problems.append(Problem("LAYOUT", member.name, "tar member escapes the package folder"))
            elif member.isfile():
                self._add(rel, member, False, problems)
            elif not member.isdir():
                problems.append(Problem("LAYOUT", member.name, "tar member is neither a file nor a folder"))

    def _add(self, rel: str, handle: object, link: bool, problems: list[Problem]) -> None:
        key = unicodedata.normalize("NFC", rel)
        if link:
            problems.append(Problem("LAYOUT", rel, "symbolic link in the package"))
        elif key in self.files:
            problems.append(Problem("LAYOUT", rel, "two files have the same NFC name"))
        else:
            self.files[key] = handle

    def open(self, rel: str) -> IO[bytes]:
        handle = self.files[rel]
        if self._tar is None:
            return open(handle, "rb")  # noqa: SIM115 (caller closes)
        stream = self._tar.extractfile(handle)
        if stream is None:
            raise OSError(f"{rel}: not a regular file in the tar")
        return stream

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()


class _Validator:
    def __init__(self, source: _Source, problems: list[Problem]) -> None:
        self.src = source
        self.problems = problems
        #: package paths some METS document references (the root METS references itself)
        self.referenced: set[str] = {"METS.xml"}
        self._digests: dict[str, tuple[int, str]] = {}
        #: validators of this run (lxml validators are not shared between threads)
        self.mets_schema, self.premis_schema = mets.mets_schema(), premis.premis_schema()
        self.record_schema = records.record_schema()

    def add(self, requirement: str, path: str, message: str) -> None:
        self.problems.append(Problem(requirement, path, message))

    def need(self, ok: object, requirement: str, path: str, message: str) -> bool:
        if not ok:
            self.add(requirement, path, message)
        return bool(ok)

    # ------------------------------------------------------------------ files and XML
    def digest(self, rel: str) -> tuple[int, str]:
        if rel not in self._digests:
            sha, size = hashlib.sha256(), 0
            with self.src.open(rel) as stream:
                while chunk := stream.read(_CHUNK):
                    sha.update(chunk)
                    size += len(chunk)
            self._digests[rel] = (size, sha.hexdigest())
        return self._digests[rel]

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

    def parse(self, rel: str, schema: etree.XMLSchema, private: bool = False) -> etree._ElementTree | None:
        """Parse and schema-validate; for ``private`` files report positions only, never values."""
        if rel not in self.src.files:
            return None
        try:
            with self.src.open(rel) as stream:
                tree = etree.parse(stream, mets.schema_parser())
        except etree.XMLSyntaxError as exc:
            self.add("XML", rel, f"not well-formed XML (line {exc.lineno})")
            return None
        if not schema.validate(tree):
            for error in schema.error_log:
                detail = f"{error.type_name} at {error.path}" if private else error.message
                self.add("XSD", rel, f"line {error.line}: {detail}")
        return tree

    def check_file(self, element: etree._Element, rel: str | None, where: str) -> None:
        """SIZE and CHECKSUM of a referenced file (mets:file or mets:mdRef) against its bytes."""
        if rel is None:
            return
        self.referenced.add(rel)
        if not self.need(rel in self.src.files, "MISSING-FILE", rel, f"referenced from {where} but absent"):
            return
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


_FILE_IDS = {
    "ID": "CSIP67",
    "MIMETYPE": "CSIP68",
    "SIZE": "CSIP69",
    "CREATED": "CSIP70",
    "CHECKSUM": "CSIP71",
    "CHECKSUMTYPE": "CSIP72",
}
_FLOCAT_IDS = {"LOCTYPE": "CSIP77", f"{{{X}}}type": "CSIP78", f"{{{X}}}href": "CSIP79"}


def _md_ids(first: int) -> dict[str, str]:
    names = (
        "LOCTYPE",
        f"{{{X}}}type",
        f"{{{X}}}href",
        "MDTYPE",
        "MIMETYPE",
        "SIZE",
        "CREATED",
        "CHECKSUM",
        "CHECKSUMTYPE",
    )
    return {name: f"CSIP{first + i}" for i, name in enumerate(names)}


def _check_root_element(v: _Validator, doc: etree._Element, rel: str, folder: str, root: bool) -> None:
    ehr = ("EHR2", "EHR3", "EHR4") if root else ("EH3", "EH4", "EH5")
    """CSIP1-6 and the eHealth1 content type (EHR2-4 in the root METS, EH3-5 in a representation's)."""
    if not v.need(doc.tag == _m("mets"), "CSIP1000", rel, "the root element is not mets:mets"):
        return
    objid = doc.get("OBJID")
    if v.need(objid, "CSIP1", rel, "mets/@OBJID is missing"):
        v.need(objid == folder, "CSIP1", rel, f"mets/@OBJID {objid!r} is not the folder name {folder!r}")
    category, other = doc.get("TYPE"), doc.get(f"{{{C}}}OTHERTYPE")
    v.need(category in mets.CONTENT_CATEGORIES, "CSIP2", rel, "mets/@TYPE is missing or not in the vocabulary")
    if category and category.upper() == "OTHER":
        v.need(other, "CSIP3", rel, "mets/@TYPE is OTHER but csip:OTHERTYPE is missing")
    v.need(category == mets.CONTENT_CATEGORY, ehr[0], rel, "mets/@TYPE is not OTHER (eHealth1)")
    v.need(other == mets.OTHER_CONTENT_CATEGORY, ehr[1], rel, "csip:OTHERTYPE is not 'Patient Medical Records'")
    info = doc.get(f"{{{C}}}CONTENTINFORMATIONTYPE")
    v.need(info in mets.CONTENT_INFORMATION_TYPES, "CSIP4", rel, "csip:CONTENTINFORMATIONTYPE missing or unknown")
    if info == "OTHER":
        v.need(doc.get(f"{{{C}}}OTHERCONTENTINFORMATIONTYPE"), "CSIP5", rel, "csip:OTHERCONTENTINFORMATIONTYPE missing")
    v.need(info == mets.CONTENT_INFORMATION_TYPE, ehr[2], rel, "csip:CONTENTINFORMATIONTYPE is not citsehpj_v2_0")
    if v.need(doc.get("PROFILE"), "CSIP6", rel, "mets/@PROFILE is missing") and root:
        profile = doc.get("PROFILE")
        v.need(profile in mets.SIP_PROFILES.values(), "SIP2", rel, "mets/@PROFILE is not an E-ARK SIP profile")


def _check_header(v: _Validator, doc: etree._Element, rel: str, root: bool) -> None:
    """CSIP7-16, CSIP117 and, in the root METS, the SIP agents and agreement (SIP3-31)."""
    hdr = doc.find(_m("metsHdr"))
    if not v.need(hdr is not None, "CSIP117", rel, "mets/metsHdr is missing"):
        return
    v.need(hdr.get("CREATEDATE"), "CSIP7", rel, "metsHdr/@CREATEDATE is missing")
    package_type = hdr.get(f"{{{C}}}OAISPACKAGETYPE")
    v.need(package_type in mets.OAIS_PACKAGE_TYPES, "CSIP9", rel, "metsHdr/@csip:OAISPACKAGETYPE missing or unknown")
    v.need(package_type == "SIP", "SIP4", rel, "metsHdr/@csip:OAISPACKAGETYPE is not SIP")
    status = hdr.get("RECORDSTATUS")
    v.need(status in mets.RECORD_STATUSES, "SIP3", rel, "metsHdr/@RECORDSTATUS missing (required here) or unknown")
    agents = hdr.findall(_m("agent"))
    v.need(agents, "CSIP10", rel, "metsHdr has no agent")
    creators = [a for a in agents if a.get("ROLE") == "CREATOR"]
    software = [a for a in creators if a.get("TYPE") == "OTHER" and a.get("OTHERTYPE") == "SOFTWARE"]
    if not software:
        if not creators:
            v.add("CSIP11", rel, "no agent with ROLE=CREATOR")
        elif not any(a.get("TYPE") == "OTHER" for a in creators):
            v.add("CSIP12", rel, "no CREATOR agent with TYPE=OTHER (the software agent)")
        else:
            v.add("CSIP13", rel, "no CREATOR agent with OTHERTYPE=SOFTWARE")
    for agent in software[:1]:
        names, notes = agent.findall(_m("name")), agent.findall(_m("note"))
        v.need(len(names) == 1 and (names[0].text or "").strip(), "CSIP14", rel, "software agent: not one name")
        v.need(len(notes) == 1 and (notes[0].text or "").strip(), "CSIP15", rel, "software agent: not one note")
        v.need(
            any(n.get(f"{{{C}}}NOTETYPE") == "SOFTWARE VERSION" for n in notes),
            "CSIP16",
            rel,
            "software agent note is not csip:NOTETYPE='SOFTWARE VERSION'",
        )
    if not root:
        return
    _check_sip_agent(
        v,
        rel,
        [a for a in agents if a.get("ROLE") == "ARCHIVIST"],
        "archival creator (ARCHIVIST)",
        ("SIP9", "SIP11", "SIP12", "SIP13", "SIP14"),
        {"ORGANIZATION", "INDIVIDUAL"},
        note=True,
    )
    submitters = [a for a in creators if a.get("TYPE") in ("ORGANIZATION", "INDIVIDUAL")]
    _check_sip_agent(
        v,
        rel,
        submitters,
        "submitting (CREATOR)",
        ("SIP15", "SIP17", "SIP18", None, "SIP20"),
        {"ORGANIZATION", "INDIVIDUAL"},
    )
    _check_sip_agent(
        v,
        rel,
        [a for a in agents if a.get("ROLE") == "PRESERVATION"],
        "preservation",
        ("SIP26", "SIP28", "SIP29", None, "SIP31"),
        {"ORGANIZATION"},
    )
    agreements = [a for a in hdr.findall(_m("altRecordID")) if a.get("TYPE") == "SUBMISSIONAGREEMENT"]
    v.need(any((a.text or "").strip() for a in agreements), "SIP5", rel, "no altRecordID TYPE=SUBMISSIONAGREEMENT")


def _check_sip_agent(
    v: _Validator, rel: str, agents: list, what: str, ids: tuple, types: set, note: bool = False
) -> None:
    present, typed, named, noted, notetype = ids
    if not v.need(agents, present, rel, f"no {what} agent"):
        return
    agent = agents[0]
    v.need(agent.get("TYPE") in types, typed, rel, f"{what} agent TYPE is not {' or '.join(sorted(types))}")
    v.need((agent.findtext(_m("name")) or "").strip(), named, rel, f"{what} agent has no name")
    notes = agent.findall(_m("note"))
    if note:
        v.need(notes, noted, rel, f"{what} agent has no identification code note")
    for item in notes:
        v.need(
            item.get(f"{{{C}}}NOTETYPE") == "IDENTIFICATIONCODE",
            notetype,
            rel,
            f"{what} agent note is not csip:NOTETYPE='IDENTIFICATIONCODE'",
        )


def _check_metadata(v: _Validator, doc: etree._Element, rel: str) -> dict[str, list[str]]:
    """dmdSec and amdSec references; returns MDTYPE -> referenced paths."""
    found: dict[str, list[str]] = {}
    sections = [(s, "dmdSec", _md_ids(22), ("CSIP18", "CSIP19", "CSIP21")) for s in doc.findall(_m("dmdSec"))]
    v.need(sections, "EHR12", rel, "no dmdSec: eHealth1 requires the patient manifest")
    v.need(doc.find(_m("amdSec")) is not None, "CSIP31", rel, "no amdSec (PREMIS is required here)")
    for kind, first, required in (
        ("digiprovMD", 36, ("CSIP33", None, "CSIP35")),
        ("rightsMD", 49, ("CSIP46", None, "CSIP48")),
    ):
        sections += [(s, kind, _md_ids(first), required) for s in doc.iterfind(f"{_m('amdSec')}/{_m(kind)}")]
    for section, kind, ids, (id_req, created_req, ref_req) in sections:
        where = f"{rel} {kind} {section.get('ID')}"
        v.need(section.get("ID"), id_req, rel, f"line {section.sourceline}: {kind}/@ID is missing")
        if created_req:
            v.need(section.get("CREATED"), created_req, rel, f"line {section.sourceline}: {kind}/@CREATED missing")
        refs = section.findall(_m("mdRef"))
        v.need(refs, ref_req, rel, f"line {section.sourceline}: {kind} has no mdRef")
        for ref in refs:
            v.check_attributes(ref, ids, rel)
            target = v.resolve("", ref.get(f"{{{X}}}href"), where)
            v.check_file(ref, target, where)
            if target:
                found.setdefault(ref.get("OTHERMDTYPE") or ref.get("MDTYPE") or "", []).append(target)
    return found


def _check_files(v: _Validator, doc: etree._Element, rel: str, root: bool) -> set[str]:
    """File section: attributes and fixity of every file; returns the representation METS files listed."""
    base = posixpath.dirname(rel)
    representations: set[str] = set()
    section = doc.find(_m("fileSec"))
    if not v.need(section is not None, "CSIP58", rel, "no fileSec"):
        return representations
    v.need(section.get("ID"), "CSIP59", rel, "fileSec/@ID is missing")
    groups = list(section.iter(_m("fileGrp")))
    if root:
        uses = [g.get("USE") or "" for g in groups]
        v.need("Documentation" in uses, "CSIP60", rel, "no fileGrp USE=Documentation")
        v.need("Schemas" in uses, "CSIP113", rel, "no fileGrp USE=Schemas")
        v.need(any(u.startswith("Representations") for u in uses), "CSIP114", rel, "no fileGrp USE=Representations/...")
    for group in groups:
        where = f"line {group.sourceline}"
        v.need(group.get("USE"), "CSIP64", rel, f"{where}: fileGrp/@USE is missing")
        v.need(group.get("ID"), "CSIP65", rel, f"{where}: fileGrp/@ID is missing")
        v.need(group.find(_m("file")) is not None, "CSIP66", rel, f"{where}: fileGrp has no file")
        if root and (group.get("USE") or "").startswith("Representations"):
            info = group.get(f"{{{C}}}CONTENTINFORMATIONTYPE")
            v.need(info, "CSIP62", rel, f"{where}: Representations fileGrp has no csip:CONTENTINFORMATIONTYPE")
            v.need(info == mets.CONTENT_INFORMATION_TYPE, "EHR22", rel, f"{where}: fileGrp is not citsehpj_v2_0")
        for file in group.findall(_m("file")):
            v.check_attributes(file, _FILE_IDS, rel)
            locations = file.findall(_m("FLocat"))
            if v.need(len(locations) == 1, "CSIP76", rel, f"line {file.sourceline}: file has not one FLocat"):
                v.check_attributes(locations[0], _FLOCAT_IDS, rel)
                target = v.resolve(base, locations[0].get(f"{{{X}}}href"), rel)
                v.check_file(file, target, rel)
                if root and target and target.endswith("/METS.xml") and group.get("USE", "").startswith("Repr"):
                    representations.add(target)
    return representations


def _check_struct_map(v: _Validator, doc: etree._Element, rel: str, root: bool) -> list[str]:
    """The CSIP structural map; returns the representation METS paths its mptr elements name."""
    maps = doc.findall(_m("structMap"))
    if not v.need(maps, "CSIP80", rel, "no structMap"):
        return []
    v.need(any(s.get("TYPE") == "PHYSICAL" for s in maps), "CSIP81", rel, "no structMap TYPE=PHYSICAL")
    csip = [s for s in maps if s.get("LABEL") == "CSIP"]
    if not v.need(csip, "CSIP82", rel, "no structMap LABEL=CSIP"):
        return []
    v.need(csip[0].get("ID"), "CSIP83", rel, "structMap/@ID is missing")
    divs = csip[0].findall(_m("div"))
    if not v.need(len(divs) == 1, "CSIP84", rel, "the CSIP structMap has not exactly one div"):
        return []
    v.need(divs[0].get("ID"), "CSIP85", rel, "the main div has no ID")
    if not root:
        return []
    children = {d.get("LABEL"): d for d in divs[0].findall(_m("div"))}
    for label, present, ident, pointer, fileid in (
        ("Metadata", "CSIP88", "CSIP89", None, None),
        ("Documentation", "CSIP93", "CSIP94", "CSIP96", "CSIP116"),
        ("Schemas", "CSIP97", "CSIP98", "CSIP100", "CSIP118"),
    ):
        div = children.get(label)
        if v.need(div is not None, present, rel, f"no div LABEL={label}"):
            v.need(div.get("ID"), ident, rel, f"div {label} has no ID")
            if pointer:
                pointers = div.findall(_m("fptr"))
                v.need(pointers, pointer, rel, f"div {label} has no fptr")
                v.need(all(p.get("FILEID") for p in pointers), fileid, rel, f"div {label}: fptr without FILEID")
    representations = [d for label, d in children.items() if (label or "").startswith("Representations/")]
    v.need(representations, "CSIP105", rel, "no representation div (LABEL=Representations/...)")
    group_ids = {g.get("ID") for g in doc.iter(_m("fileGrp"))}
    found = []
    for div in representations:
        v.need(div.get("ID"), "CSIP106", rel, f"div {div.get('LABEL')} has no ID")
        pointers = div.findall(_m("mptr"))
        if not v.need(len(pointers) == 1, "CSIP109", rel, f"div {div.get('LABEL')} has not one mptr"):
            continue
        mptr = pointers[0]
        v.need(mptr.get(f"{{{X}}}title") in group_ids, "CSIP108", rel, "mptr/@xlink:title names no fileGrp")
        v.need(mptr.get("LOCTYPE") == "URL", "CSIP112", rel, "mptr/@LOCTYPE is not URL")
        v.need(mptr.get(f"{{{X}}}type") == "simple", "CSIP111", rel, "mptr/@xlink:type is not simple")
        if v.need(mptr.get(f"{{{X}}}href"), "CSIP110", rel, "mptr/@xlink:href is missing"):
            target = v.resolve("", mptr.get(f"{{{X}}}href"), rel)
            if target and v.need(target in v.src.files, "MISSING-FILE", target, "the mptr target is absent"):
                found.append(target)
    return found


def _check_references(v: _Validator, doc: etree._Element, rel: str) -> None:
    """Every FILEID, DMDID, ADMID and mptr xlink:title names an element of the document (XSD does not check)."""
    ids = {element.get("ID") for element in doc.iter() if element.get("ID")}
    for element in doc.iter(_m("fptr"), _m("div"), _m("fileGrp"), _m("file"), _m("mptr")):
        for attribute in ("FILEID", "DMDID", "ADMID", f"{{{X}}}title" if element.tag == _m("mptr") else ""):
            for ref in (element.get(attribute) or "").split() if attribute else ():
                v.need(ref in ids, "IDREF", rel, f"line {element.sourceline}: {attribute.rsplit('}')[-1]} names no ID")


def _check_mets(v: _Validator, rel: str, folder: str, root: bool) -> tuple[etree._Element | None, set[str]]:
    """Schema, references, root element, header and file section of one METS document."""
    tree = v.parse(rel, v.mets_schema)
    if tree is None:
        v.need(rel in v.src.files, "LAYOUT" if root else "MISSING-FILE", rel, "METS document is absent")
        return None, set()
    doc = tree.getroot()
    _check_references(v, doc, rel)
    _check_root_element(v, doc, rel, folder, root)
    _check_header(v, doc, rel, root)
    return doc, _check_files(v, doc, rel, root)


def _check_premis(v: _Validator, rel: str) -> None:
    tree = v.parse(rel, v.premis_schema)
    if tree is None:
        return
    described = set()
    for path, size, digests in premis.file_objects(tree.getroot()):
        path = unicodedata.normalize("NFC", path)
        described.add(path)
        if v.need(path in v.src.files, "PREMIS", path, f"described in {rel} but absent"):
            actual_size, sha = v.digest(path)
            v.need(size == str(actual_size), "PREMIS", path, f"size differs from {rel}")
            v.need((premis.DIGEST_ALGORITHM, sha) in digests, "PREMIS", path, f"SHA-256 differs from {rel}")
    for path in sorted(v.src.files):
        if re.match(r"representations/[^/]+/data/", path):
            v.need(path in described, "PREMIS", path, f"data file has no object in {rel}")


def _check_records(v: _Validator, manifests: list[str]) -> None:
    schema = v.record_schema
    listed: set[str] = set()
    for rel in manifests:
        tree = v.parse(rel, schema, private=True)
        if tree is not None:
            for patient in tree.getroot().iter(f"{{{records.NS}}}patient"):
                target = unicodedata.normalize("NFC", patient.get("record") or "")
                listed.add(target)
                v.need(target in v.src.files, "MANIFEST", rel, f"line {patient.sourceline}: record file absent")
    for rel in sorted(v.src.files):
        if re.match(r"representations/[^/]+/data/[^/]+/record\.xml$", rel):
            v.parse(rel, schema, private=True)
            v.need(not manifests or rel in listed, "MANIFEST", rel, "record file not in the patient manifest")


def validate_package(path: Path) -> ValidationReport:
    """Validate a package directory or ``.tar``; nothing is fetched over the network.

    :param path: the package's root folder (named after its OBJID) or its tar
    :returns: the report; ``ok`` is False when any problem was found
    """
    path = Path(path)
    problems: list[Problem] = []
    if not (path.is_dir() or (path.is_file() and tarfile.is_tarfile(path))):
        return ValidationReport(path.name, False, [Problem("LAYOUT", path.name, "neither a folder nor a tar")])
    source = _Source(path, problems)
    try:
        v = _Validator(source, problems)
        doc, listed = _check_mets(v, "METS.xml", source.name, root=True)
        package = (doc.get("OBJID") if doc is not None else None) or source.name or path.name
        if doc is not None:
            metadata = _check_metadata(v, doc, "METS.xml")
            for rep in sorted(listed | set(_check_struct_map(v, doc, "METS.xml", root=True))):
                rep_doc, _ = _check_mets(v, rep, posixpath.basename(posixpath.dirname(rep)), root=False)
                if rep_doc is not None:
                    _check_struct_map(v, rep_doc, rep, root=False)
            for premis_path in metadata.get("PREMIS", []):
                _check_premis(v, premis_path)
            v.need(metadata.get("PREMIS"), "PREMIS", "METS.xml", "no digiprovMD references a PREMIS file")
            _check_records(v, metadata.get("PatientManifest", []))
            for rel in sorted(set(source.files) - v.referenced):
                v.add("EXTRA-FILE", rel, "no METS document references this file")
    finally:
        source.close()
    return ValidationReport(package, not problems, problems)
